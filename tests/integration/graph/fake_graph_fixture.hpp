#pragma once
// Starts tools/fake-graph on a random port for one test and talks to its test hooks.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "index/archive.hpp"
#include "index/util/sha256.hpp"
#include "ingest/oauth/http.hpp"
#include "support/testutil.hpp"

extern char** environ;

namespace mv::test::graph {

using json = nlohmann::json;
namespace fs = std::filesystem;

inline const std::string k_tenant = "contoso.onmicrosoft.com";
inline const std::string k_client_id = "11111111-2222-3333-4444-555555555555";
inline const std::string k_secret = "s3cret-value";

inline pid_t spawn(const std::vector<std::string>& argv, const fs::path& log, const std::vector<std::string>& env = {}) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) envs.emplace_back(*e);
    for (const auto& kv : env) envs.push_back(kv);
    std::vector<char*> cargv, cenv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, cargv[0], &fa, nullptr, cargv.data(), cenv.data());
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : -1;
}

class FakeGraph {
  public:
    FakeGraph(const fs::path& dir, std::vector<std::string> args) : dir_(dir) {
        fs::create_directories(dir_);
        fs::path port_file = dir_ / "fake.port";
        std::vector<std::string> argv = {FAKE_GRAPH_BINARY, "--port-file", port_file.string(), "--quiet"};
        argv.insert(argv.end(), args.begin(), args.end());
        pid_ = spawn(argv, dir_ / "fake.log");
        for (int i = 0; i < 1200 && pid_ > 0; ++i) {
            if (fs::exists(port_file)) {
                std::ifstream(port_file) >> port_;
                break;
            }
            int status;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    ~FakeGraph() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            int status;
            waitpid(pid_, &status, 0);
        }
    }
    bool ok() const { return port_ > 0; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::string log() const { return read_file(dir_ / "fake.log"); }

    json get(const std::string& path) {
        ingest::oauth::HttpClient http;
        auto r = http.get(url() + path, {});
        if (!r || r->status != 200) return json();
        return json::parse(r->body);
    }
    json stats() { return get("/_stats"); }
    json dump() { return get("/_dump"); }
    json control(const std::string& path_and_query, const std::string& body = "") {
        ingest::oauth::HttpClient http;
        auto r = http.post_form(url() + "/_control/" + path_and_query, body);
        if (!r || r->status != 200) return json();
        return json::parse(r->body);
    }

  private:
    fs::path dir_;
    pid_t pid_ = -1;
    int port_ = 0;
};

struct ConfigOptions {
    std::vector<std::string> mailboxes = {"user0@contoso.test"};
    std::string extra;  // more TOML lines for the source
};

inline std::string toml_list(const std::vector<std::string>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", \"" : "\"") + v[i] + "\"";
    return s + "]";
}

// A config with one graph source "office" pointed at the fake; the secret comes from the env.
inline fs::path write_config(const fs::path& dir, const FakeGraph& fake, const ConfigOptions& o) {
    std::string t = "[archive]\npath = \"" + (dir / "archive").string() + "\"\n\n[[source]]\nname = \"office\"\ntype = \"graph\"\n" +
                    "tenant = \"" + k_tenant + "\"\nclient_id = \"" + k_client_id + "\"\nclient_secret_env = \"MV_TEST_GRAPH_SECRET\"\n" +
                    "mailboxes = " + toml_list(o.mailboxes) + "\nauthority_url = \"" + fake.url() + "\"\ngraph_url = \"" + fake.url() +
                    "\"\nretry_base_ms = 20\n" + o.extra;
    fs::path p = dir / "mailvault.toml";
    write_file(p, t);
    return p;
}

inline std::vector<std::string> mv_args(const fs::path& dir, std::vector<std::string> rest) {
    std::vector<std::string> a = {"--archive", (dir / "archive").string(), "--config", (dir / "mailvault.toml").string()};
    a.insert(a.end(), rest.begin(), rest.end());
    return a;
}

inline RunResult sync(const fs::path& dir, const std::string& secret = k_secret) {
    return run_mailvault(mv_args(dir, {"sync"}), "", {"MV_TEST_GRAPH_SECRET=" + secret});
}

inline long count(const fs::path& dir, const std::string& query) {
    auto r = run_mailvault(mv_args(dir, {"search", query, "--count"}));
    if (r.exit_code != 0) return -1;
    return std::atol(r.out.c_str());
}

// sha256 of every archived original.
inline std::multiset<std::string> archived_digests(const fs::path& dir) {
    std::multiset<std::string> out;
    auto a = index::Archive::open(dir / "archive", index::OpenMode::read);
    if (!a) return out;
    auto db = (*a)->database();
    for (auto it = db.postlist_begin(""); it != db.postlist_end(""); ++it) {
        auto raw = (*a)->read_original(*it);
        if (raw) out.insert(to_hex(sha256(*raw)));
    }
    return out;
}

inline std::vector<std::pair<std::string, std::string>> archive_metadata(const fs::path& dir, const std::string& prefix) {
    auto a = index::Archive::open(dir / "archive", index::OpenMode::read);
    if (!a) return {};
    return (*a)->metadata_with_prefix(prefix);
}

inline std::uint64_t archived_count(const fs::path& dir) {
    auto a = index::Archive::open(dir / "archive", index::OpenMode::read);
    return a ? (*a)->document_count() : 0;
}

}  // namespace mv::test::graph
