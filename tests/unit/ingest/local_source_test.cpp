#include "ingest/local/local_source.hpp"

#include <gtest/gtest.h>

#include "support/testutil.hpp"

namespace mv::ingest {
namespace {

std::vector<RawMessage> drain(const std::vector<std::filesystem::path>& paths, LocalImportOptions o = {}) {
    auto src = make_local_import(paths, o);
    EXPECT_TRUE(src);
    std::vector<RawMessage> out;
    if (!src) return out;
    while (auto m = (*src)->next()) out.push_back(std::move(*m));
    return out;
}

TEST(LocalSource, MaildirTreeLabels) {
    test::TempDir t;
    auto root = t / "alice";
    test::write_file(root / "cur" / "1:2,S", "Subject: a\n\nx\n");
    test::write_file(root / "new" / "2", "Subject: b\n\nx\n");
    test::write_file(root / ".Work.Projects" / "cur" / "3:2,RS", "Subject: c\n\nx\n");
    test::write_file(root / "Archive" / "2020" / "cur" / "4:2,", "Subject: d\n\nx\n");
    auto msgs = drain({root});
    ASSERT_EQ(msgs.size(), 4u);
    std::map<std::string, std::string> folder_of;
    for (const auto& m : msgs) {
        EXPECT_EQ(m.where.mailbox, "alice");
        EXPECT_EQ(m.where.source, "import");
        folder_of[m.bytes.substr(9, 1)] = m.where.folder;
    }
    EXPECT_EQ(folder_of["a"], "Inbox");
    EXPECT_EQ(folder_of["b"], "Inbox");
    EXPECT_EQ(folder_of["c"], "Work/Projects");
    EXPECT_EQ(folder_of["d"], "Archive/2020");
    for (const auto& m : msgs)
        if (m.bytes[9] == 'c') EXPECT_EQ(m.flags, (std::vector<std::string>{"R", "S"}));

    LocalImportOptions o;
    o.mailbox = "bob@example.com";
    o.folder = "Imported";
    for (const auto& m : drain({root}, o)) {
        EXPECT_EQ(m.where.mailbox, "bob@example.com");
        EXPECT_EQ(m.where.folder.rfind("Imported", 0), 0u) << m.where.folder;
    }
}

TEST(LocalSource, MboxSplittingRules) {
    test::TempDir t;
    // A "From " line inside a body without a blank line before it is not a separator;
    // CRLF messages keep their CRLF; the last message needs no trailing blank line.
    std::string mbox =
        "From x Mon Jan  1 00:00:00 2024\nSubject: one\n\nline\nFrom inside body\n\n"
        "From y Mon Jan  1 00:00:00 2024\r\nSubject: two\r\n\r\ncrlf body\r\n\n"
        "From z Mon Jan  1 00:00:00 2024\nSubject: three\n\nno newline at end";
    test::write_file(t / "a.mbox", mbox);
    auto msgs = drain({t / "a.mbox"});
    ASSERT_EQ(msgs.size(), 3u);
    EXPECT_EQ(msgs[0].bytes, "Subject: one\n\nline\nFrom inside body\n");
    EXPECT_EQ(msgs[1].bytes, "Subject: two\r\n\r\ncrlf body\r\n");
    EXPECT_EQ(msgs[2].bytes, "Subject: three\n\nno newline at end");
    EXPECT_EQ(msgs[0].where.folder, "a");
    EXPECT_EQ(msgs[2].where.server_id, "3");
}

TEST(LocalSource, DetectsKinds) {
    test::TempDir t;
    test::write_file(t / "m" / "cur" / "1", "Subject: a\n\nb\n");
    test::write_file(t / "x.eml", "Subject: a\n\nb\n");
    test::write_file(t / "noext", "From a Mon Jan  1 00:00:00 2024\nSubject: a\n\nb\n");
    test::write_file(t / "emls" / "one.eml", "Subject: a\n\nb\n");
    EXPECT_EQ(detect_local_kind(t / "m"), LocalKind::maildir);
    EXPECT_EQ(detect_local_kind(t / "x.eml"), LocalKind::eml);
    EXPECT_EQ(detect_local_kind(t / "noext"), LocalKind::mbox);
    EXPECT_EQ(detect_local_kind(t / "emls"), LocalKind::eml_dir);
    EXPECT_EQ(detect_local_kind(t / "missing"), LocalKind::unknown);
}

TEST(LocalSource, TruncatedZstdIsReportedNotFatal) {
    test::TempDir t;
    std::string mbox;
    for (int i = 0; i < 200; ++i)
        mbox += "From x Mon Jan  1 00:00:00 2024\nSubject: m" + std::to_string(i) + "\n\n" + std::string(2000, 'a' + i % 26) + "\n\n";
    test::write_file(t / "b.mbox", mbox);
    ASSERT_EQ(test::run_program({"zstd", "-q", "-f", (t / "b.mbox").string(), "-o", (t / "b.mbox.zst").string()}).exit_code, 0);
    ASSERT_EQ(test::run_program({"gzip", "-k", "-f", (t / "b.mbox").string()}).exit_code, 0);
    for (const char* ext : {".zst", ".gz"}) {
        std::string z = test::read_file(t / ("b.mbox" + std::string(ext)));
        auto cut = t / ("cut.mbox" + std::string(ext));
        test::write_file(cut, z.substr(0, z.size() / 2));
        auto src = make_local_import({cut}, {});
        ASSERT_TRUE(src);
        std::size_t n = 0;
        while ((*src)->next()) ++n;
        EXPECT_GT(n, 0u) << ext;
        EXPECT_LT(n, 200u) << ext;
        EXPECT_EQ((*src)->report().failed, 1u) << ext;
        ASSERT_EQ((*src)->report().errors.size(), 1u) << ext;
        EXPECT_NE((*src)->report().errors[0].find(cut.filename().string()), std::string::npos);
    }
}

}  // namespace
}  // namespace mv::ingest
