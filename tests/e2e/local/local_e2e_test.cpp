// mailvault import of local files and export --mbox through the binary.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <sstream>

#include "support/testutil.hpp"

namespace mv::test {
namespace {

// Text that compresses poorly, so a cut compressed file still holds whole messages.
std::string noise(int seed, std::size_t n) {
    std::string out;
    std::uint32_t x = 2463534242u + static_cast<std::uint32_t>(seed);
    while (out.size() < n) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        out += static_cast<char>('a' + x % 26);
        if (out.size() % 72 == 71) out += '\n';
    }
    return out + "\n";
}

std::string message(int i, const std::string& extra_body = "") {
    return "From: Sender " + std::to_string(i) + " <s" + std::to_string(i) + "@example.com>\n" +
           "To: bob@example.org\nSubject: message " + std::to_string(i) + "\nDate: Tue, 08 Aug 2023 08:08:0" +
           std::to_string(i % 10) + " +0000\nMessage-ID: <m" + std::to_string(i) + "@local.example>\n\n" +
           "body " + std::to_string(i) + "\n" + extra_body + noise(i, 3000);
}

std::string mbox_of(int from, int to) {
    std::string out;
    for (int i = from; i < to; ++i) out += "From s@example.com Tue Aug  8 08:08:08 2023\n" + message(i) + "\n";
    return out;
}

class LocalE2E : public ::testing::Test {
  protected:
    RunResult mv(std::vector<std::string> args) {
        args.insert(args.begin(), {"--archive", (dir_ / "arc").string()});
        return run_mailvault(args);
    }
    std::string count(const std::string& query) { return mv({"--quiet", "search", "--count", query}).out; }
    TempDir dir_;
};

// Regression: the message a truncated .gz broke off in was archived cut short, and the
// complete copy imported later became a second document.
TEST_F(LocalE2E, TruncatedArchiveThenCompleteCopyGivesOneDocumentPerMessage) {
    write_file(dir_ / "all.mbox", mbox_of(0, 200));
    for (const char* tool : {"gzip", "zstd"}) {
        std::string z = dir_.path().string() + "/all.mbox" + (std::string(tool) == "gzip" ? ".gz" : ".zst");
        ASSERT_EQ(run_program({tool, "-q", "-k", "-f", (dir_ / "all.mbox").string()}).exit_code, 0);
        auto cut = dir_ / (std::string("cut-") + tool);
        write_file(cut, read_file(z).substr(0, read_file(z).size() * 2 / 3));
        auto r = mv({"import", cut.string()});
        EXPECT_EQ(r.exit_code, 1) << r.err;
        EXPECT_NE(r.err.find("was not archived"), std::string::npos) << r.err;
    }
    auto r = mv({"import", (dir_ / "all.mbox").string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count("*"), "200\n");
    auto v = mv({"--quiet", "verify"});
    EXPECT_EQ(v.exit_code, 0) << v.err;
}

// Regression: a Thunderbird profile became one "message" per mbox file, .msf files included.
TEST_F(LocalE2E, ThunderbirdProfileIsImportedMessageByMessage) {
    auto lf = dir_ / "Local Folders";
    write_file(lf / "Inbox", mbox_of(0, 3));
    write_file(lf / "Inbox.msf", "// <!-- <mdb:mork:z v=\"1.4\"/> -->\n");
    write_file(lf / "Inbox.sbd" / "Work", mbox_of(3, 5));
    write_file(lf / "Inbox.sbd" / "Work.msf", "// <!-- <mdb:mork:z v=\"1.4\"/> -->\n");
    write_file(lf / "archive2019.mbox", mbox_of(5, 6));
    write_file(lf / "lists.mbx", mbox_of(6, 7));
    write_file(lf / "Old.mbox", mbox_of(7, 9));
    ASSERT_EQ(run_program({"zstd", "-q", "--rm", (lf / "Old.mbox").string()}).exit_code, 0);
    write_file(lf / "Trash", "");
    auto r = mv({"import", lf.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("import: 9 new"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("import: 3 skipped"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("Inbox.msf: Thunderbird index"), std::string::npos) << r.err;
    auto s = mv({"--quiet", "search", "--json", "--limit", "50", "*"});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    std::map<std::string, std::string> folder_of;
    std::istringstream in(s.out);
    for (std::string line; std::getline(in, line);) {
        auto j = nlohmann::json::parse(line);
        folder_of[j["subject"].get<std::string>()] = j["folders"][0].get<std::string>();
    }
    EXPECT_EQ(folder_of.size(), 9u);
    EXPECT_EQ(folder_of["message 0"], "Inbox");
    EXPECT_EQ(folder_of["message 3"], "Inbox/Work");
    EXPECT_EQ(folder_of["message 5"], "archive2019");
    EXPECT_EQ(folder_of["message 6"], "lists");
    EXPECT_EQ(folder_of["message 8"], "Old");
}

// Regression: two `x -> .` links made discovery read one message 262,143 times.
TEST_F(LocalE2E, SymlinkLoopsInAMaildirImportEachMessageOnce) {
    auto md = dir_ / "md";
    write_file(md / "cur" / "1:2,S", message(1));
    write_file(md / ".Sub" / "cur" / "2:2,S", message(2));
    for (const char* name : {"x", "y", "z"}) std::filesystem::create_directory_symlink(".", md / name);
    auto r = mv({"import", md.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("import: 2 new, 0 duplicates"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("import: 3 skipped"), std::string::npos) << r.err;
    EXPECT_EQ(mv({"import", md.string(), "--mbox-format", "mmdf"}).exit_code, 2);
}

// Regression: export --mbox wrote "From mboxrd@z Thu Jan  1 00:00:00 1970" for every
// message and replaced an existing file without asking.
TEST_F(LocalE2E, ExportMboxFromLinesAndNoOverwriteWithoutForce) {
    write_file(dir_ / "in" / "a.eml", message(1, "From the desk of someone\n"));
    write_file(dir_ / "in" / "b.eml", "Return-Path: <bounces@lists.example.org>\n" + message(2));
    ASSERT_EQ(mv({"import", (dir_ / "in").string()}).exit_code, 0);
    auto out = dir_ / "out.mbox";
    write_file(out, "precious\n");
    auto e = mv({"--quiet", "export", "*", "--mbox", out.string()});
    EXPECT_EQ(e.exit_code, 2) << e.err;
    EXPECT_NE(e.err.find("--force"), std::string::npos) << e.err;
    EXPECT_EQ(read_file(out), "precious\n");
    e = mv({"--quiet", "export", "*", "--mbox", out.string(), "--force"});
    ASSERT_EQ(e.exit_code, 0) << e.err;
    std::string mbox = read_file(out);
    EXPECT_NE(mbox.find("From s1@example.com Tue Aug  8 08:08:01 2023\n"), std::string::npos) << mbox.substr(0, 200);
    EXPECT_NE(mbox.find("From bounces@lists.example.org Tue Aug  8 08:08:02 2023\n"), std::string::npos);
    EXPECT_EQ(mbox.find("mboxrd@z"), std::string::npos);
    std::size_t leftovers = 0;
    for (const auto& f : std::filesystem::directory_iterator(dir_.path()))
        if (f.path().filename().string().find(".part") != std::string::npos) ++leftovers;
    EXPECT_EQ(leftovers, 0u);
    // Round trip, told that it is mboxrd: the same two messages, nothing new.
    auto r = mv({"import", out.string(), "--mbox-format", "mboxrd"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("import: 0 new, 2 duplicates"), std::string::npos) << r.err;

    auto eml = dir_ / "eml";
    ASSERT_EQ(mv({"--quiet", "export", "*", "--eml", eml.string()}).exit_code, 0);
    write_file(eml / "1.eml", "changed\n");
    e = mv({"--quiet", "export", "*", "--eml", eml.string()});
    EXPECT_EQ(e.exit_code, 2) << e.err;
    EXPECT_EQ(read_file(eml / "1.eml"), "changed\n");
    EXPECT_EQ(mv({"--quiet", "export", "*", "--eml", eml.string(), "--force"}).exit_code, 0);
    EXPECT_NE(read_file(eml / "1.eml"), "changed\n");
}

}  // namespace
}  // namespace mv::test
