// Operation end to end through the binary (issue 13): config errors exit 2 and create nothing,
// the archive is its owner's alone, `sync --deadline` stops cleanly and the next sync completes.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <ctime>
#include <regex>
#include <set>
#include <sstream>

#include "index/archive.hpp"
#include "index/schema.hpp"
#include "support/testutil.hpp"

namespace mv {
namespace {
namespace fs = std::filesystem;

std::string generated_mbox(int count) {
    std::string out;
    for (int i = 0; i < count; ++i) {
        out += "From sender@example.com Mon May  1 10:00:00 2023\n";
        out += "Message-ID: <ops-" + std::to_string(i) + "@mailvault.test>\n"
               "Date: Mon, 1 May 2023 10:00:00 +0000\nFrom: Sender <sender@example.com>\nTo: r@example.com\n"
               "Subject: generated message " + std::to_string(i) + "\n\n";
        for (int l = 0; l < 8; ++l) out += "line " + std::to_string(l) + " of message " + std::to_string(i) + " with words\n";
        out += "\n";
    }
    return out;
}

// Runs mailvault with `dir` as the working directory (so a fallback to ./archive would show).
test::RunResult mv_in(const fs::path& dir, const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    std::string cmd = "cd '" + dir.string() + "' && exec '" + test::mailvault_binary() + "'";
    for (const auto& a : args) cmd += " '" + a + "'";
    return test::run_program({"/bin/sh", "-c", cmd}, "", env);
}

std::size_t lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

void write_private(const fs::path& p, const std::string& text) {
    test::write_file(p, text);
    fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
}

struct BadConfig {
    const char* name;
    const char* toml;
    const char* expect;  // in the one error line, besides the file name
};

class ConfigError : public ::testing::TestWithParam<BadConfig> {};

// The issue's five silently ignored mistakes: each is one line naming the file, the key and the
// fix; exit 2; no ./archive appears.
TEST_P(ConfigError, OneLineExitTwoAndNothingCreated) {
    test::TempDir tmp;
    const auto& c = GetParam();
    write_private(tmp / "mailvault.toml", std::string(c.toml) + "\n[[source]]\nname = \"drop\"\ntype = \"mbox\"\npath = \"" +
                                              (tmp / "in.mbox").string() + "\"\n");
    test::write_file(tmp / "in.mbox", generated_mbox(3));
    for (const char* cmd : {"sync", "search"}) {
        std::vector<std::string> args{"--config", (tmp / "mailvault.toml").string(), cmd};
        if (std::string(cmd) == "search") args.push_back("words");
        auto r = mv_in(tmp.path(), args);
        EXPECT_EQ(r.exit_code, 2) << cmd << ": " << r.err;
        EXPECT_EQ(lines(r.err), 1u) << r.err;
        EXPECT_NE(r.err.find("mailvault.toml:"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
        EXPECT_FALSE(fs::exists(tmp / "archive")) << cmd << " created ./archive";
    }
}

INSTANTIATE_TEST_SUITE_P(
    Issue13, ConfigError,
    ::testing::Values(BadConfig{"MisspelledKey", "[archive]\nstemer = \"english\"", "unknown key 'stemer' in [archive]; did you mean 'stemmer'?"},
                      BadConfig{"MisspelledTable", "[archiv]\npath = \"a\"", "unknown table [archiv]; did you mean [archive]?"},
                      BadConfig{"MisspelledLinkKey", "[links]\nbase_ur = \"http://x\"", "did you mean 'base_url'?"},
                      BadConfig{"StemmerNotAString", "[archive]\nstemmer = 1", "key 'stemmer' must be a string in quotes"},
                      BadConfig{"PathNotAString", "[archive]\npath = 5", "key 'path' must be a string in quotes"},
                      BadConfig{"PortNotANumber", "[smtp]\nhost = \"h\"\nport = \"abc\"", "key 'port' must be a whole number"},
                      BadConfig{"BadDeadline", "[sync]\ndeadline = \"soon\"", "[sync] deadline: 'soon' is not a duration"}),
    [](const auto& info) { return std::string(info.param.name); });

// A missing secret is found before anything is created: unset variable, missing file,
// group-readable file, and a password inside a group-readable config.
TEST(ConfigSecrets, MissingOrExposedSecretExitsTwoBeforeCreatingTheArchive) {
    test::TempDir tmp;
    const std::string src = "[[source]]\nname = \"mail\"\ntype = \"imap\"\nhost = \"127.0.0.1\"\nport = 1\nusername = \"u\"\n";
    auto run = [&](const std::string& toml, bool private_file, const std::string& expect) {
        const fs::path cfg = tmp / "mailvault.toml";
        test::write_file(cfg, "[archive]\npath = \"" + (tmp / "arch").string() + "\"\n" + src + toml);
        fs::permissions(cfg, private_file ? fs::perms::owner_read | fs::perms::owner_write
                                          : fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                                fs::perms::others_read);
        auto r = mv_in(tmp.path(), {"--config", cfg.string(), "sync"});
        EXPECT_EQ(r.exit_code, 2) << toml << r.err;
        EXPECT_EQ(lines(r.err), 1u) << r.err;
        EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
        EXPECT_FALSE(fs::exists(tmp / "arch")) << toml;
        EXPECT_EQ(r.err.find("s3cret"), std::string::npos) << "a secret value in the output";
    };
    ::unsetenv("MV_OPS_UNSET_PW");
    run("password_env = \"MV_OPS_UNSET_PW\"\n", true, "password_env names environment variable MV_OPS_UNSET_PW, which is not set");
    run("password_file = \"" + (tmp / "nope").string() + "\"\n", true, "password_file " + (tmp / "nope").string());
    test::write_file(tmp / "pw", "s3cret\n");
    fs::permissions(tmp / "pw", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    run("password_file = \"" + (tmp / "pw").string() + "\"\n", true, "chmod 600 " + (tmp / "pw").string());
    run("password = \"s3cret\"\n", false, "chmod 600 " + (tmp / "mailvault.toml").string());
    // And fixed, the same file is accepted (the server is unreachable: not exit 2).
    fs::permissions(tmp / "pw", fs::perms::owner_read | fs::perms::owner_write);
    write_private(tmp / "mailvault.toml", "[archive]\npath = \"" + (tmp / "arch").string() + "\"\n" + src +
                                              "password_file = \"" + (tmp / "pw").string() + "\"\nreconnect_attempts = 0\n");
    auto ok = mv_in(tmp.path(), {"--config", (tmp / "mailvault.toml").string(), "sync"});
    EXPECT_NE(ok.exit_code, 2) << ok.err;
}

TEST(ConfigFile, UnreadableOrMissingConfigNamesTheCause) {
    test::TempDir tmp;
    auto r = mv_in(tmp.path(), {"--config", (tmp / "none.toml").string(), "sync"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("none.toml: cannot read the config file: No such file"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(tmp / "archive"));
}

// Every file and directory of a new archive is the owner's alone, whatever the caller's umask.
TEST(Permissions, ArchiveIsPrivateWhateverTheUmask) {
    test::TempDir tmp;
    test::write_file(tmp / "in.mbox", generated_mbox(20));
    const mode_t old = ::umask(000);
    auto r = test::run_mailvault({"--archive", (tmp / "archive").string(), "import", (tmp / "in.mbox").string()});
    ::umask(old);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::size_t checked = 0;
    EXPECT_EQ(fs::status(tmp / "archive").permissions() & fs::perms::all, fs::perms::owner_all);
    for (const auto& e : fs::recursive_directory_iterator(tmp / "archive")) {
        const auto p = e.symlink_status().permissions() & fs::perms::all;
        EXPECT_EQ(p & (fs::perms::group_all | fs::perms::others_all), fs::perms::none) << e.path();
        ++checked;
    }
    EXPECT_GT(checked, 5u);
}

bool can_run_as_nobody() {
    if (::geteuid() != 0) return false;
    auto r = test::run_program({"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", test::mailvault_binary(), "--help"});
    return r.exit_code == 0;
}

test::RunResult as_nobody(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", test::mailvault_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run_program(argv);
}

// Another local user can neither search nor read; and where an old archive lets them search but
// not read an original, `show` says "permission denied", not "original missing".
TEST(Permissions, OtherUsersAreDeniedAndToldSo) {
    if (!can_run_as_nobody()) GTEST_SKIP() << "needs root and setpriv to run as nobody";
    test::TempDir tmp;
    fs::permissions(tmp.path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    test::write_file(tmp / "in.mbox", generated_mbox(5));
    const std::string archive = (tmp / "archive").string();
    auto r = test::run_mailvault({"--archive", archive, "import", (tmp / "in.mbox").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto s = as_nobody({"--archive", archive, "search", "words"});
    EXPECT_NE(s.exit_code, 0) << s.out;
    EXPECT_EQ(s.out, "");
    EXPECT_NE(s.err.find("permission denied"), std::string::npos) << s.err;
    EXPECT_EQ(s.err.find("no archive"), std::string::npos) << s.err;

    // An archive made before this fix: index readable by all, originals not.
    for (const auto& e : fs::recursive_directory_iterator(archive)) {
        if (e.is_directory()) fs::permissions(e.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                                            fs::perms::others_read | fs::perms::others_exec);
        else if (e.path().string().find("originals") == std::string::npos)
            fs::permissions(e.path(), fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
    }
    fs::permissions(archive, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec | fs::perms::group_read |
                                 fs::perms::others_read);
    auto found = as_nobody({"--archive", archive, "search", "--count", "words"});
    ASSERT_EQ(found.exit_code, 0) << found.err;
    auto show = as_nobody({"--archive", archive, "show", "1"});
    EXPECT_NE(show.exit_code, 0) << show.out;
    EXPECT_NE(show.err.find("permission denied"), std::string::npos) << show.err;
    EXPECT_EQ(show.err.find("original missing"), std::string::npos) << show.err;
}

std::uint64_t search_count(const fs::path& archive, const std::string& query) {
    auto r = test::run_mailvault({"--archive", archive.string(), "search", "--count", query});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::strtoull(r.out.c_str(), nullptr, 10);
}

std::size_t duplicate_dedupe_keys(const fs::path& archive) {
    auto a = index::Archive::open(archive, index::OpenMode::read);
    EXPECT_TRUE(a);
    if (!a) return 1;
    Xapian::Database db = (*a)->database();
    std::size_t dups = 0;
    const std::string q(schema::k_dedupe_prefix);
    for (auto t = db.allterms_begin(q); t != db.allterms_end(q); ++t)
        if (t.get_termfreq() != 1) ++dups;
    return dups;
}

// `sync --deadline 1s` stops at a commit point with exit 1 and says what was left; the next
// sync adds exactly the rest; a second source not reached is left for it too.
TEST(Deadline, StopsCleanlyAndTheNextSyncCompletes) {
    test::TempDir tmp;
    const int total = 20000;
    test::write_file(tmp / "bulk.mbox", generated_mbox(total));
    test::write_file(tmp / "small.mbox", generated_mbox(3));
    const fs::path archive = tmp / "archive";
    write_private(tmp / "mailvault.toml", "[archive]\npath = \"" + archive.string() + "\"\n[[source]]\nname = \"bulk\"\ntype = \"mbox\"\npath = \"" +
                                              (tmp / "bulk.mbox").string() + "\"\n[[source]]\nname = \"later\"\ntype = \"mbox\"\npath = \"" +
                                              (tmp / "small.mbox").string() + "\"\n");
    const std::string cfg = (tmp / "mailvault.toml").string();
    auto first = test::run_mailvault({"--config", cfg, "sync", "--deadline", "1s"});
    EXPECT_EQ(first.exit_code, 1) << first.err;
    EXPECT_NE(first.err.find("deadline 1s reached"), std::string::npos) << first.err;
    EXPECT_NE(first.err.find("later (not started)"), std::string::npos) << first.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(first.err, m, std::regex("bulk: ([0-9]+) new"))) << first.err;
    const std::uint64_t added = std::stoull(m[1]);
    EXPECT_LT(added, static_cast<std::uint64_t>(total)) << "stopped before the end: " << first.err;
    EXPECT_EQ(search_count(archive, "*"), added);
    EXPECT_EQ(duplicate_dedupe_keys(archive), 0u);

    auto second = test::run_mailvault({"--config", cfg, "sync"});
    EXPECT_EQ(second.exit_code, 0) << second.err;
    // small.mbox has the same Message-IDs as the first 3 of bulk: all duplicates, nothing new.
    EXPECT_EQ(search_count(archive, "*"), static_cast<std::uint64_t>(total));
    EXPECT_EQ(duplicate_dedupe_keys(archive), 0u);
}

TEST(Deadline, ConfigDeadlineAndBadValues) {
    test::TempDir tmp;
    test::write_file(tmp / "in.mbox", generated_mbox(10));
    write_private(tmp / "mailvault.toml", "[archive]\npath = \"" + (tmp / "archive").string() + "\"\n[sync]\ndeadline = \"2h\"\n"
                                              "[[source]]\nname = \"drop\"\ntype = \"mbox\"\npath = \"" + (tmp / "in.mbox").string() + "\"\n");
    auto ok = test::run_mailvault({"--config", (tmp / "mailvault.toml").string(), "sync"});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_EQ(search_count(tmp / "archive", "*"), 10u);
    auto bad = mv_in(tmp.path(), {"--config", (tmp / "mailvault.toml").string(), "sync", "--deadline", "tomorrow"});
    EXPECT_EQ(bad.exit_code, 2) << bad.err;
    EXPECT_NE(bad.err.find("--deadline: 'tomorrow' is not a duration"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace mv

namespace mv {
namespace {

fs::perms mode_of(const fs::path& p) { return fs::status(p).permissions() & fs::perms::all; }

// `stats --prometheus`: node_exporter text-file format; every sample has HELP and TYPE, label
// values are escaped, last run and per-mailbox figures are there.
TEST(Prometheus, TextFileFormatWithEscapedLabels) {
    test::TempDir tmp;
    test::write_file(tmp / "a.mbox", generated_mbox(4));
    write_private(tmp / "mailvault.toml", "[archive]\npath = \"" + (tmp / "archive").string() +
                                              "\"\n[[source]]\nname = 'we\"ird\\name'\ntype = \"mbox\"\npath = \"" +
                                              (tmp / "a.mbox").string() + "\"\n");
    auto s = test::run_mailvault({"--config", (tmp / "mailvault.toml").string(), "sync"});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    auto r = test::run_mailvault({"--config", (tmp / "mailvault.toml").string(), "stats", "--prometheus"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string& out = r.out;
    const std::regex sample(R"re(^([a-z_]+)(\{[a-z_]+="([^"\\\n]|\\[\\"n])*"(,[a-z_]+="([^"\\\n]|\\[\\"n])*")*\})? -?[0-9.e+]+$)re");
    std::set<std::string> typed, helped, seen;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
        std::smatch m;
        if (line.rfind("# HELP ", 0) == 0) helped.insert(line.substr(7, line.find(' ', 7) - 7));
        else if (line.rfind("# TYPE ", 0) == 0) typed.insert(line.substr(7, line.find(' ', 7) - 7));
        else {
            ASSERT_TRUE(std::regex_match(line, m, sample)) << "not a sample: " << line;
            EXPECT_TRUE(typed.count(m[1])) << "sample before its TYPE: " << line;
            seen.insert(m[1]);
        }
    }
    for (const char* name : {"mailvault_last_run_timestamp_seconds", "mailvault_last_run_success", "mailvault_last_run_duration_seconds",
                             "mailvault_messages", "mailvault_bytes", "mailvault_failures_total", "mailvault_messages_total"}) {
        EXPECT_TRUE(seen.count(name)) << name << "\n" << out;
        EXPECT_TRUE(helped.count(name)) << name;
    }
    EXPECT_NE(out.find("mailvault_last_run_success{source=\"we\\\"ird\\\\name\"} 1\n"), std::string::npos) << out;
    EXPECT_NE(out.find("mailvault_failures_total{source=\"we\\\"ird\\\\name\"} 0\n"), std::string::npos) << out;
    EXPECT_NE(out.find("mailvault_messages_total 4\n"), std::string::npos) << out;
    const auto now = static_cast<double>(std::time(nullptr));
    std::smatch ts;
    ASSERT_TRUE(std::regex_search(out, ts, std::regex(R"(mailvault_last_run_timestamp_seconds\{[^}]*\} ([0-9.e+]+))"))) << out;
    EXPECT_NEAR(std::stod(ts[1]), now, 3600);
}

// tools/install into a staging root: binary, private archive and config directories, units that
// point at the installed binary; a second run keeps the administrator's config.
TEST(Install, StagedInstallHasTheRightModesAndKeepsTheConfig) {
    test::TempDir tmp;
    const fs::path root = tmp / "root";
    const std::string script = (test::source_dir() / "tools" / "install").string();
    auto r = test::run_program({script, "--destdir", root.string(), "--prefix", "/opt/mv", "--binary", test::mailvault_binary()});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(mode_of(root / "opt/mv/bin/mailvault"), fs::perms(0755));
    EXPECT_EQ(mode_of(root / "var/lib/mailvault"), fs::perms(0700));
    EXPECT_EQ(mode_of(root / "etc/mailvault/mailvault.toml"), fs::perms(0600));
    EXPECT_EQ(mode_of(root / "etc/mailvault/secrets.env"), fs::perms(0600));
    for (const char* unit : {"mailvault-sync.service", "mailvault-sync.timer", "mailvault-serve.service"})
        EXPECT_TRUE(fs::exists(root / "etc/systemd/system" / unit)) << unit;
    const std::string sync_unit = test::read_file(root / "etc/systemd/system/mailvault-sync.service");
    EXPECT_NE(sync_unit.find("ExecStart=/opt/mv/bin/mailvault "), std::string::npos) << sync_unit;
    EXPECT_EQ(sync_unit.find("/usr/local/bin"), std::string::npos) << sync_unit;
    EXPECT_NE(sync_unit.find("ProtectSystem=strict"), std::string::npos);
    EXPECT_NE(sync_unit.find("User=mailvault"), std::string::npos);
    // The installed config is valid as it stands.
    auto c = test::run_mailvault({"--config", (root / "etc/mailvault/mailvault.toml").string(), "--archive", (tmp / "a").string(),
                                  "search", "x"});
    EXPECT_NE(c.exit_code, 2) << c.err;
    // An administrator's config survives a re-install.
    test::write_file(root / "etc/mailvault/mailvault.toml", "# mine\n");
    auto again = test::run_program({script, "--destdir", root.string(), "--prefix", "/opt/mv", "--binary", test::mailvault_binary()});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(test::read_file(root / "etc/mailvault/mailvault.toml"), "# mine\n");
}

}  // namespace
}  // namespace mv
