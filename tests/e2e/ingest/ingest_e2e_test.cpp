// Import and sync end to end through the binary: Ctrl-C/SIGTERM stop cleanly and resume, what
// is not mail is rejected, huge messages are indexed within stated memory bounds.
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <thread>

#include "index/archive.hpp"
#include "index/schema.hpp"
#include "support/testutil.hpp"

extern char** environ;

namespace mv {
namespace {
namespace fs = std::filesystem;

// A mailvault child with stderr in a file, so the test can signal it while it runs.
class Child {
  public:
    Child(const std::vector<std::string>& args, const fs::path& err_file) : err_file_(err_file) {
        std::vector<std::string> argv{test::mailvault_binary()};
        argv.insert(argv.end(), args.begin(), args.end());
        std::vector<char*> cargv;
        for (auto& a : argv) cargv.push_back(a.data());
        cargv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (posix_spawn(&pid_, cargv[0], &fa, nullptr, cargv.data(), environ) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&fa);
    }
    ~Child() {
        if (pid_ > 0 && !waited_) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    pid_t pid() const { return pid_; }
    // Waits; the exit code (1000 + signal when killed by one) and peak RSS in KiB.
    int wait(long* max_rss_kib = nullptr) {
        int status = 0;
        struct rusage ru {};
        wait4(pid_, &status, 0, &ru);
        waited_ = true;
        if (max_rss_kib) *max_rss_kib = ru.ru_maxrss;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);  // apart from exit(130)
    }
    std::string err() const { return test::read_file(err_file_); }

  private:
    pid_t pid_ = -1;
    bool waited_ = false;
    fs::path err_file_;
};

std::uint64_t pack_bytes(const fs::path& archive) {
    std::uint64_t n = 0;
    std::error_code ec;
    if (!fs::exists(archive / "originals")) return 0;
    for (const auto& e : fs::directory_iterator(archive / "originals", ec))
        if (e.is_regular_file()) n += e.file_size();
    return n;
}

std::string generated_mbox(int count) {
    std::string out;
    for (int i = 0; i < count; ++i) {
        out += "From sender@example.com Mon May  1 10:00:00 2023\n";
        out += "Message-ID: <bulk-" + std::to_string(i) + "@mailvault.test>\n"
               "Date: Mon, 1 May 2023 10:00:00 +0000\nFrom: Sender <sender@example.com>\nTo: r@example.com\n"
               "Subject: generated message " + std::to_string(i) + "\n\n";
        for (int l = 0; l < 8; ++l)
            out += "line " + std::to_string(l) + " of message " + std::to_string(i) + " with some words to index\n";
        out += "\n";
    }
    return out;
}

struct Counts {
    std::uint64_t added = 0, duplicates = 0;
    bool found = false;
};
Counts summary_counts(const std::string& err, const std::string& label) {
    std::smatch m;
    Counts c;
    std::regex re(label + ": ([0-9]+) new, ([0-9]+) duplicates");
    if (std::regex_search(err, m, re)) {
        c.added = std::stoull(m[1]);
        c.duplicates = std::stoull(m[2]);
        c.found = true;
    }
    return c;
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

std::uint64_t search_count(const fs::path& archive, const std::string& query) {
    auto r = test::run_mailvault({"--archive", archive.string(), "search", "--count", query});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::strtoull(r.out.c_str(), nullptr, 10);
}

struct InterruptCase {
    const char* name;
    int sig;
    bool sync;  // through `sync` of a configured mbox source, else `import`
};

void PrintTo(const InterruptCase& c, std::ostream* os) { *os << c.name; }

class Interrupt : public ::testing::TestWithParam<InterruptCase> {};

// Ctrl-C (or SIGTERM) after some messages are in: exit 130 with the summary, what was read is
// committed, and the next run adds exactly the rest.
TEST_P(Interrupt, StopsAtASafePointThenTheNextRunAddsTheRest) {
    const auto& c = GetParam();
    test::TempDir tmp;
    const int total = 12000;
    test::write_file(tmp / "bulk.mbox", generated_mbox(total));
    const fs::path archive = tmp / "archive";
    std::vector<std::string> args{"--archive", archive.string()};
    std::string label = "import";
    if (c.sync) {
        test::write_file(tmp / "mailvault.toml", "[[source]]\nname = \"drop\"\ntype = \"mbox\"\npath = \"" +
                                                     (tmp / "bulk.mbox").string() + "\"\n");
        args.insert(args.end(), {"--config", (tmp / "mailvault.toml").string(), "sync"});
        label = "drop";
    } else {
        args.insert(args.end(), {"import", (tmp / "bulk.mbox").string()});
    }
    {
        Child child(args, tmp / "err1");
        ASSERT_GT(child.pid(), 0);
        // "Some messages are in": originals are being written.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (pack_bytes(archive) < 100000 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        ASSERT_GE(pack_bytes(archive), 100000u) << child.err();
        kill(child.pid(), c.sig);
        EXPECT_EQ(child.wait(), 130) << child.err();
        const std::string err = child.err();
        Counts first = summary_counts(err, label);
        ASSERT_TRUE(first.found) << "the summary is printed: " << err;
        EXPECT_GT(first.added, 0u) << err;
        EXPECT_LT(first.added, static_cast<std::uint64_t>(total)) << "interrupted before the end: " << err;
        EXPECT_NE(err.find("interrupted"), std::string::npos) << err;
        // What was counted is durable: a reader sees exactly that.
        EXPECT_EQ(search_count(archive, "*"), first.added);
        EXPECT_EQ(duplicate_dedupe_keys(archive), 0u);

        auto r = test::run_mailvault(args);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        Counts second = summary_counts(r.err, label);
        ASSERT_TRUE(second.found) << r.err;
        EXPECT_EQ(first.added + second.added, static_cast<std::uint64_t>(total)) << err << r.err;
        EXPECT_EQ(second.duplicates, first.added) << r.err;
    }
    EXPECT_EQ(search_count(archive, "*"), static_cast<std::uint64_t>(total));
    EXPECT_EQ(duplicate_dedupe_keys(archive), 0u);
    auto v = test::run_mailvault({"--archive", archive.string(), "verify"});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

INSTANTIATE_TEST_SUITE_P(Signals, Interrupt,
                         ::testing::Values(InterruptCase{"ImportSigint", SIGINT, false},
                                           InterruptCase{"SyncSigterm", SIGTERM, true}),
                         [](const auto& info) { return std::string(info.param.name); });

// The files: only Received headers, only Return-Path (neither has Message-ID, From or
// Subject, nor a body) and a binary file. Before: "1 new, 2 duplicates".
TEST(NotMail, IdentitylessMessagesAreKeptAndBinaryIsRejected) {
    test::TempDir tmp;
    test::write_file(tmp / "in" / "received.eml", "Received: from a.example by b.example; Tue, 25 Apr 2023 10:02:15 +0000\n");
    test::write_file(tmp / "in" / "return-path.eml", "Return-Path: <bounce@example.com>\n");
    std::mt19937 rng(3);
    std::string junk(20000, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng());
    test::write_file(tmp / "in" / "junk.bin", junk);
    const fs::path archive = tmp / "archive";
    auto r = test::run_mailvault({"--archive", archive.string(), "import", (tmp / "in" / "received.eml").string(),
                                  (tmp / "in" / "return-path.eml").string(), (tmp / "in" / "junk.bin").string()});
    // A file named on the command line that is not mail is a failure of that run (partial);
    // the two messages are archived all the same.
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("import: 2 new, 0 duplicates"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("junk.bin: binary data, not mail"), std::string::npos) << "the rejected file is named: " << r.err;
    EXPECT_EQ(search_count(archive, "*"), 2u);
    // Each is its own message: importing them again finds both, the junk is rejected again.
    r = test::run_mailvault({"--archive", archive.string(), "import", (tmp / "in" / "received.eml").string(),
                             (tmp / "in" / "return-path.eml").string()});
    EXPECT_NE(r.err.find("import: 0 new, 2 duplicates"), std::string::npos) << r.err;
}

// Peak memory of importing one huge generated message, in a child (getrusage via wait4).
long import_peak_rss_kib(const fs::path& dir, const std::string& raw, test::RunResult* out = nullptr) {
    test::write_file(dir / "big.eml", raw);
    Child child({"--archive", (dir / "archive").string(), "import", "--threads", "2", (dir / "big.eml").string()},
                dir / "err");
    long rss = 0;
    int code = child.wait(&rss);
    if (out) {
        out->exit_code = code;
        out->err = child.err();
    }
    fs::remove(dir / "big.eml");
    return rss;
}

// Bounds (README "Bounds"): a 50 MB Subject took 1.4 GB before. Peak RSS must stay under the
// message size plus 160 MB (the original is read whole and compressed; what is indexed is cut).
TEST(Bounds, FiftyMegabyteSubject) {
    test::TempDir tmp;
    std::string subject = "needle ";
    while (subject.size() < (50u << 20)) subject += "subjectword" + std::to_string(subject.size() % 9973) + " ";
    const std::string raw = "Message-ID: <huge-subject@x>\nFrom: a@example.com\nSubject: " + subject +
                            "\nDate: Mon, 1 May 2023 10:00:00 +0000\n\nsmall body\n";
    test::RunResult r;
    long kib = import_peak_rss_kib(tmp.path(), raw, &r);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::cout << "50 MB subject: peak RSS " << kib / 1024 << " MiB\n";
    // Not under ASan or TSan: their shadow memory (and ASan's redzones and quarantine) are RSS
    // our code does not use (README "Sanitizers").
    if (!test::under_asan && !test::under_tsan) EXPECT_LT(kib, static_cast<long>(raw.size() / 1024) + 160 * 1024);
    EXPECT_EQ(search_count(tmp / "archive", "subject:needle"), 1u);
    EXPECT_EQ(search_count(tmp / "archive", "body:small"), 1u);
    auto shown = test::run_mailvault({"--archive", (tmp / "archive").string(), "show", "1", "--raw"});
    EXPECT_EQ(shown.out.size(), raw.size()) << "the original is stored whole";
}

// A 300 MB message (a 200 MB base64 attachment, a 40 MB text body, 40 MB of HTML): peak RSS
// under the message size twice plus 160 MB (before: about 3x the size).
TEST(Bounds, ThreeHundredMegabyteMessage) {
    test::TempDir tmp;
    std::string raw = "Message-ID: <huge@x>\nFrom: a@example.com\nSubject: huge message\n"
                      "Date: Mon, 1 May 2023 10:00:00 +0000\nMIME-Version: 1.0\n"
                      "Content-Type: multipart/mixed; boundary=BOUND\n\n--BOUND\nContent-Type: text/plain\n\n"
                      "firstbodyword\n";
    std::mt19937 rng(5);
    while (raw.size() < (40u << 20)) raw += "word" + std::to_string(rng() % 50000) + " filler text line\n";
    raw += "\n--BOUND\nContent-Type: text/html\n\n<html><body>";
    while (raw.size() < (80u << 20)) raw += "<p>para" + std::to_string(rng() % 50000) + " <b>bold</b></p>\n";
    raw += "</body></html>\n--BOUND\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
           "Content-Disposition: attachment; filename=\"blob.bin\"\n\n";
    const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string line(76, 'A');
    while (raw.size() < (300u << 20)) {
        for (auto& ch : line) ch = b64[rng() % 64];
        raw += line;
        raw += '\n';
    }
    raw += "--BOUND--\n";
    test::RunResult r;
    long kib = import_peak_rss_kib(tmp.path(), raw, &r);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::cout << "300 MB message: peak RSS " << kib / 1024 << " MiB\n";
    if (!test::under_asan && !test::under_tsan) EXPECT_LT(kib, static_cast<long>(2 * raw.size() / 1024) + 160 * 1024);
    EXPECT_EQ(search_count(tmp / "archive", "firstbodyword"), 1u);
    EXPECT_EQ(search_count(tmp / "archive", "attachment:blob.bin"), 1u);
}

}  // namespace
}  // namespace mv
