// Graph JSON handling (ingest/graph, ingest/oauth): `check`, then a whole sync of a graph
// source against an HTTP server whose answers are the fuzz input: segments separated by a line
// "--", one per Graph request in order (a segment may start with "NNN " to set the status);
// token requests always get a valid token; after the last segment, 404. Every request goes
// through this server as an HTTP proxy, so links in the input never leave the machine.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

#include "index/archive.hpp"
#include "ingest/graph/graph_source.hpp"
#include "ingest/net/account.hpp"
#include "tests/fuzz/fuzz_util.hpp"

namespace {

std::vector<std::string> g_segments;
std::atomic<std::size_t> g_next{0};

// Reads one request (headers and a Content-Length body); false at end of connection.
bool read_request(int fd, std::string& buf, std::string& request_line) {
    for (;;) {
        auto end = buf.find("\r\n\r\n");
        if (end != std::string::npos) {
            request_line = buf.substr(0, buf.find("\r\n"));
            std::size_t body = 0;
            auto cl = buf.find("Content-Length: ");
            if (cl != std::string::npos && cl < end) body = std::strtoul(buf.c_str() + cl + 16, nullptr, 10);
            while (buf.size() < end + 4 + body) {
                char tmp[4096];
                ssize_t n = read(fd, tmp, sizeof tmp);
                if (n <= 0) return false;
                buf.append(tmp, static_cast<std::size_t>(n));
            }
            buf.erase(0, end + 4 + body);
            return true;
        }
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 3000) <= 0) return false;
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n <= 0) return false;
        buf.append(tmp, static_cast<std::size_t>(n));
    }
}

void answer(int fd, int status, const std::string& body) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
    mv::fuzz::write_all(fd, r);
}

void serve(int fd) {
    std::string buf, line;
    while (read_request(fd, buf, line)) {
        if (line.find("/oauth2/") != std::string::npos) {
            answer(fd, 200, R"({"access_token":"tok","token_type":"Bearer","expires_in":3600})");
            continue;
        }
        std::size_t i = g_next++;
        if (i >= g_segments.size()) {
            answer(fd, 404, R"({"error":{"code":"ErrorItemNotFound","message":"gone"}})");
            continue;
        }
        std::string seg = g_segments[i];
        int status = 200;
        if (seg.size() >= 4 && std::isdigit(static_cast<unsigned char>(seg[0])) &&
            std::isdigit(static_cast<unsigned char>(seg[1])) && std::isdigit(static_cast<unsigned char>(seg[2])) &&
            seg[3] == ' ') {
            status = std::stoi(seg.substr(0, 3));
            if (status < 200) status = 200;
            seg.erase(0, 4);
        }
        answer(fd, status, seg);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static mv::fuzz::ScriptedServer server;
    static std::unique_ptr<mv::index::Archive> archive = [] {
        auto a = mv::index::Archive::open(mv::fuzz::temp_dir() / "archive", mv::index::OpenMode::write);
        if (!a) std::abort();
        return std::move(*a);
    }();
    static const std::string proxy = [] {
        std::string p = "http://127.0.0.1:" + std::to_string(server.port());
        setenv("http_proxy", p.c_str(), 1);
        setenv("https_proxy", p.c_str(), 1);
        setenv("HTTPS_PROXY", p.c_str(), 1);
        unsetenv("no_proxy");
        unsetenv("NO_PROXY");
        return p;
    }();
    (void)proxy;
    static const bool quiet = [] {  // the source's log lines would cost more than the parsing
        mv::ingest::net::set_log_sink([](const std::string&) {});
        return true;
    }();
    (void)quiet;
    std::string_view in = mv::fuzz::as_view(data, size);
    g_segments.clear();
    g_next = 0;
    for (;;) {
        auto sep = in.find("\n--\n");
        g_segments.emplace_back(in.substr(0, sep));
        if (sep == std::string_view::npos) break;
        in.remove_prefix(sep + 4);
    }
    server.start(serve);
    mv::SourceConfig c;
    c.name = "fz";
    c.type = "graph";
    c.strings = {{"tenant", "t.example"}, {"client_id", "cid"}, {"client_secret", "s3cret"},
                 {"authority_url", "http://login.example"}, {"graph_url", "http://graph.example"},
                 {"concurrency", "1"}, {"parallel_mailboxes", "1"}, {"retry_base_ms", "1"}};
    c.lists["mailboxes"] = {size % 2 ? "*" : "a@x.example"};
    (void)mv::ingest::check_graph_source(c);
    g_next = 0;
    if (auto s = mv::ingest::make_graph_source(c, *archive); s) {
        for (int i = 0; i < 100000; ++i) {
            auto m = (*s)->next();
            if (!m) break;
            if (m->ack) (*s)->on_durable({m->ack});
        }
        (*s)->finish();
    }
    server.stop();
    return 0;
}
