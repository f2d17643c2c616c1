#include "ingest/local/local_source.hpp"

#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <map>
#include <set>

#include "query/export.hpp"
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
    for (const auto& m : msgs) {
        if (m.bytes[9] == 'c') {
            EXPECT_EQ(m.flags, (std::vector<std::string>{"R", "S"}));
        }
    }

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
    test::write_file(t / "blank-first", "\n\nFrom a Mon Jan  1 00:00:00 2024\nSubject: a\n\nb\n");
    EXPECT_EQ(detect_local_kind(t / "blank-first"), LocalKind::mbox);
    EXPECT_EQ(drain({t / "blank-first"}).at(0).bytes, "Subject: a\n\nb\n");
    test::write_file(t / "blanks", "\n\r\n");
    EXPECT_EQ(detect_local_kind(t / "blanks"), LocalKind::not_mail);
}

std::string numbered_mbox(int n, std::vector<std::string>* msgs = nullptr) {
    std::string mbox;
    for (int i = 0; i < n; ++i) {
        std::string m = "Subject: m" + std::to_string(i) + "\n\n" + std::string(2000, 'a' + i % 26) + "\n";
        if (msgs) msgs->push_back(m);
        mbox += "From x Mon Jan  1 00:00:00 2024\n" + m + "\n";
    }
    return mbox;
}

// Regression: the message a truncated .gz/.zst broke off in was archived cut short (and the
// file also counted failed), so the complete copy imported later became a second document.
TEST(LocalSource, TruncatedCompressedMboxKeepsTheCutMessageOut) {
    test::TempDir t;
    std::vector<std::string> originals;
    test::write_file(t / "b.mbox", numbered_mbox(200, &originals));
    ASSERT_EQ(test::run_program({"zstd", "-q", "-f", (t / "b.mbox").string(), "-o", (t / "b.mbox.zst").string()}).exit_code, 0);
    ASSERT_EQ(test::run_program({"gzip", "-k", "-f", (t / "b.mbox").string()}).exit_code, 0);
    std::set<std::string> complete(originals.begin(), originals.end());
    for (const char* ext : {".zst", ".gz"}) {
        std::string z = test::read_file(t / ("b.mbox" + std::string(ext)));
        for (double fraction : {0.5, 0.93}) {
            auto cut = t / ("cut.mbox" + std::string(ext));
            test::write_file(cut, z.substr(0, static_cast<std::size_t>(z.size() * fraction)));
            auto src = make_local_import({cut}, {});
            ASSERT_TRUE(src);
            std::size_t n = 0;
            while (auto m = (*src)->next()) {
                EXPECT_TRUE(complete.count(m->bytes)) << ext << ": message " << n << " is not a complete original";
                EXPECT_EQ(m->bytes, originals[n]) << ext;
                ++n;
            }
            EXPECT_GT(n, 0u) << ext;
            EXPECT_LT(n, 200u) << ext;
            EXPECT_EQ((*src)->report().failed, 1u) << ext;
            ASSERT_EQ((*src)->report().errors.size(), 1u) << ext;
            const auto& e = (*src)->report().errors[0];
            EXPECT_NE(e.find(cut.filename().string()), std::string::npos) << e;
            EXPECT_NE(e.find("message " + std::to_string(n + 1) + ", cut off there, was not archived"), std::string::npos) << e;
        }
    }
    // Compression is recognised by content, not by the name.
    std::filesystem::copy_file(t / "b.mbox.zst", t / "plain-name");
    EXPECT_EQ(drain({t / "plain-name"}).size(), 200u);
}

// Regression: every `x -> .` link was followed again inside itself: two such links read one
// message 262,143 times (three never end; the e2e test has three).
TEST(LocalSource, SymlinkLoopsAreReadOnceAndLinksOutOfTheTreeOnlyWhenAsked) {
    test::TempDir t;
    auto root = t / "md";
    test::write_file(root / "cur" / "1:2,S", "Subject: inside\n\nx\n");
    test::write_file(root / ".Sub" / "cur" / "2:2,", "Subject: sub\n\nx\n");
    test::write_file(t / "elsewhere" / "cur" / "3:2,", "Subject: outside\n\nx\n");
    test::write_file(t / "loose.eml", "Subject: outside file\n\nx\n");
    for (const char* name : {"x", "y"}) std::filesystem::create_directory_symlink(".", root / name);
    std::filesystem::create_directory_symlink("..", root / ".Sub" / "up");
    std::filesystem::create_directory_symlink(t / "elsewhere", root / "away");
    std::filesystem::create_symlink(t / "loose.eml", root / "cur" / "4:2,");
    std::filesystem::create_directory_symlink(".Sub", root / "alias");
    test::write_file(t / "far" / "cur" / "5:2,", "Subject: far\n\nx\n");
    std::filesystem::create_directories(root / ".Linked");
    std::filesystem::create_directory_symlink(t / "far" / "cur", root / ".Linked" / "cur");

    auto src = make_local_import({root}, {});
    ASSERT_TRUE(src);
    std::multiset<std::string> subjects;
    while (auto m = (*src)->next()) subjects.insert(m->bytes.substr(9, m->bytes.find('\n') - 9));
    EXPECT_EQ(subjects, (std::multiset<std::string>{"inside", "sub"}));
    EXPECT_EQ((*src)->report().failed, 0u);
    EXPECT_EQ((*src)->report().skipped, 7u);  // x y up alias: read already; away, cur/4, .Linked/cur: outside
    bool named_outside = false;
    for (const auto& l : (*src)->report().skips)
        if (l.find("away") != std::string::npos && l.find("outside the tree") != std::string::npos) named_outside = true;
    EXPECT_TRUE(named_outside);

    LocalImportOptions o;
    o.symlinks = SymlinkPolicy::follow;
    std::multiset<std::string> followed;
    for (const auto& m : drain({root}, o)) followed.insert(m.bytes.substr(9, m.bytes.find('\n') - 9));
    EXPECT_EQ(followed, (std::multiset<std::string>{"inside", "sub", "outside", "outside file", "far"}));
}

// Regression: a directory of mbox files (a Thunderbird profile) was imported as one
// "message" per file, the .msf indexes included.
TEST(LocalSource, ThunderbirdTreeByContentWithSbdFolders) {
    test::TempDir t;
    auto lf = t / "Local Folders";
    auto entry = [](const std::string& subject) {
        return "From - Mon Jan  1 00:00:00 2024\nFrom: a@example.com\nSubject: " + subject + "\n\nbody of " + subject + "\n\n";
    };
    test::write_file(lf / "Inbox", entry("in1") + entry("in2"));
    test::write_file(lf / "Inbox.msf", "// <!-- <mdb:mork:z v=\"1.4\"/> -->\n< <(a=c)> // (f=iso-8859-1)\n");
    test::write_file(lf / "Inbox.sbd" / "Work", entry("work"));
    test::write_file(lf / "Inbox.sbd" / "Work.msf", "// <!-- <mdb:mork:z v=\"1.4\"/> -->\n");
    test::write_file(lf / "Inbox.sbd" / "Work.sbd" / "Deep", entry("deep"));
    test::write_file(lf / "archive2019.mbox", entry("arch1") + entry("arch2"));
    test::write_file(lf / "lists.mbx", entry("list"));
    test::write_file(lf / "Old", entry("old1") + entry("old2"));
    ASSERT_EQ(test::run_program({"gzip", (lf / "Old").string()}).exit_code, 0);  // Old.gz
    test::write_file(lf / "Trash", "");
    test::write_file(lf / "msgFilterRules.dat", "version=\"9\"\nlogging=\"no\"\n");
    test::write_file(lf / "popstate.dat", std::string("\x89PNG\r\n\x1a\n\0\0", 10));
    test::write_file(lf / "note.eml", "From: b@example.com\nSubject: loose\n\nx\n");

    auto src = make_local_import({lf}, {});
    ASSERT_TRUE(src);
    std::map<std::string, std::string> folder_of;
    while (auto m = (*src)->next()) {
        EXPECT_EQ(m->where.mailbox, "Local Folders");
        auto s = m->bytes.find("Subject: ") + 9;
        auto subject = m->bytes.substr(s, m->bytes.find('\n', s) - s);
        EXPECT_EQ(m->bytes, "From: " + std::string(subject == "loose" ? "b" : "a") + "@example.com\nSubject: " + subject +
                                (subject == "loose" ? "\n\nx\n" : "\n\nbody of " + subject + "\n"));
        EXPECT_TRUE(folder_of.emplace(subject, m->where.folder).second) << subject << " twice";
    }
    EXPECT_EQ(folder_of, (std::map<std::string, std::string>{{"in1", "Inbox"},
                                                             {"in2", "Inbox"},
                                                             {"work", "Inbox/Work"},
                                                             {"deep", "Inbox/Work/Deep"},
                                                             {"arch1", "archive2019"},
                                                             {"arch2", "archive2019"},
                                                             {"list", "lists"},
                                                             {"old1", "Old"},
                                                             {"old2", "Old"},
                                                             {"loose", "Inbox"}}));
    const auto& rep = (*src)->report();
    EXPECT_EQ(rep.failed, 0u);
    EXPECT_EQ(rep.skipped, 5u);  // two .msf, the empty Trash, msgFilterRules.dat, popstate.dat
    std::string all;
    for (const auto& l : rep.skips) all += l + "\n";
    EXPECT_NE(all.find("Inbox.msf: Thunderbird index"), std::string::npos) << all;
    EXPECT_NE(all.find("Trash: empty file"), std::string::npos) << all;
    EXPECT_NE(all.find("popstate.dat: binary data"), std::string::npos) << all;
    EXPECT_NE(all.find("msgFilterRules.dat: no mail header"), std::string::npos) << all;

    // Named on the command line, a file that is not mail is a failure, not a skip.
    auto named = make_local_import({lf / "Inbox.msf"}, {});
    ASSERT_TRUE(named);
    EXPECT_FALSE((*named)->next());
    EXPECT_EQ((*named)->report().failed, 1u);
    EXPECT_EQ(detect_local_kind(lf / "Inbox.msf"), LocalKind::not_mail);
    EXPECT_EQ(detect_local_kind(lf / "Inbox"), LocalKind::mbox);
    EXPECT_EQ(detect_local_kind(lf / "Old.gz"), LocalKind::mbox);
}

TEST(LocalSource, MaildirFilesThatAreNotMailAreSkipped) {
    test::TempDir t;
    test::write_file(t / "md" / "cur" / "1:2,S", "Subject: a\n\nx\n");
    test::write_file(t / "md" / "cur" / "2:2,S", std::string("\0\1\2binary", 9));
    test::write_file(t / "md" / "new" / "3", "");
    test::write_file(t / "md" / "dovecot-uidlist", "3 V1700000000 N4 G0123\n1 :1:2,S\n");
    auto src = make_local_import({t / "md"}, {});
    ASSERT_TRUE(src);
    std::size_t n = 0;
    while ((*src)->next()) ++n;
    EXPECT_EQ(n, 1u);
    EXPECT_EQ((*src)->report().skipped, 3u);
    EXPECT_EQ((*src)->report().failed, 0u);
}

std::string python_mbox_script() {
    // Writes argv[2:] (message files) into the mbox argv[1] with Python's mailbox module (mboxo),
    // then writes what Python itself reads back as argv[1].0, argv[1].1, ...
    return "import mailbox, sys\n"
           "box = mailbox.mbox(sys.argv[1])\n"
           "for f in sys.argv[2:]:\n"
           "    box.add(open(f, 'rb').read())\n"
           "box.flush(); box.close()\n"
           "for i, key in enumerate(mailbox.mbox(sys.argv[1]).keys()):\n"
           "    open(sys.argv[1] + '.' + str(i), 'wb').write(mailbox.mbox(sys.argv[1]).get_bytes(key))\n";
}

// Regression: every mbox was read as mboxrd, so a genuine ">From " line of a message in an
// mboxo file (Python's mailbox, mutt, Thunderbird) lost its '>': the stored "original" was
// not the message and did not dedupe with its Maildir copy.
TEST(LocalSource, MboxFlavoursNeverAlterWhatMboxoWritersWrote) {
    test::TempDir t;
    const std::string quoted_reply = "From: a@example.com\nSubject: reply\n\n>From the article you quoted\n> more\n";
    const std::string from_body = "From: b@example.com\nSubject: desk\n\nFrom the desk of B\n";
    test::write_file(t / "m1", quoted_reply);
    test::write_file(t / "m2", from_body);
    auto py = test::run_program({"python3", "-c", python_mbox_script(), (t / "py.mbox").string(), (t / "m1").string(),
                                 (t / "m2").string()});
    ASSERT_EQ(py.exit_code, 0) << py.err;
    ASSERT_EQ(test::read_file(t / "py.mbox.0"), quoted_reply);  // what Python reads back
    auto msgs = drain({t / "py.mbox"});
    ASSERT_EQ(msgs.size(), 2u);
    EXPECT_EQ(msgs[0].bytes, quoted_reply);  // byte-exact: dedupes with a Maildir copy
    EXPECT_EQ(msgs[0].bytes, test::read_file(t / "py.mbox.0"));
    EXPECT_EQ(msgs[1].bytes, test::read_file(t / "py.mbox.1"));  // ">From the desk", as every mboxo reader
    EXPECT_EQ(detect_mbox_format(t / "py.mbox").value(), MboxFormat::mboxo);

    // An mboxrd writer (ours): ">>From " shows the flavour, and both messages come back whole.
    std::string rd;
    query::append_mboxrd(rd, quoted_reply, 0);
    query::append_mboxrd(rd, from_body, 0);
    test::write_file(t / "rd.mbox", rd);
    EXPECT_EQ(detect_mbox_format(t / "rd.mbox").value(), MboxFormat::mboxrd);
    msgs = drain({t / "rd.mbox"});
    ASSERT_EQ(msgs.size(), 2u);
    EXPECT_EQ(msgs[0].bytes, quoted_reply);
    EXPECT_EQ(msgs[1].bytes, from_body);
    // ... also compressed, detected through the compression.
    ASSERT_EQ(test::run_program({"zstd", "-q", (t / "rd.mbox").string(), "-o", (t / "rd.zst").string()}).exit_code, 0);
    EXPECT_EQ(detect_mbox_format(t / "rd.zst").value(), MboxFormat::mboxrd);

    // Only ">From " lines: ambiguous, so nothing is unquoted unless mboxrd is asked for.
    std::string only_single;
    query::append_mboxrd(only_single, from_body, 0);
    test::write_file(t / "single.mbox", only_single);
    EXPECT_EQ(drain({t / "single.mbox"}).at(0).bytes, test::read_file(t / "py.mbox.1"));
    LocalImportOptions o;
    o.mbox_format = MboxFormat::mboxrd;
    EXPECT_EQ(drain({t / "single.mbox"}, o).at(0).bytes, from_body);
    o.mbox_format = MboxFormat::mboxo;
    std::string still_quoted = quoted_reply;
    still_quoted.insert(still_quoted.find(">From"), ">");
    EXPECT_EQ(drain({t / "rd.mbox"}, o).at(0).bytes, still_quoted);

    EXPECT_EQ(parse_mbox_format("mboxcl2").value(), MboxFormat::mboxcl2);
    EXPECT_FALSE(parse_mbox_format("mmdf"));
}

TEST(LocalSource, Mboxcl2UsesContentLength) {
    test::TempDir t;
    const std::string body1 = "first line\n\nFrom the start of a paragraph\n\n>From kept as is\n";
    const std::string m1 = "Subject: one\nContent-Length: " + std::to_string(body1.size()) + "\n\n" + body1;
    const std::string m2 = "Subject: two\n\nno length here\n";
    const std::string body3 = "last\n\nFrom again\n";
    const std::string m3 = "Subject: three\nContent-Length: " + std::to_string(body3.size()) + "\n\n" + body3;
    std::string cl2 = "From a Mon Jan  1 00:00:00 2024\n" + m1 + "\nFrom b Mon Jan  1 00:00:00 2024\n" + m2 +
                      "\nFrom c Mon Jan  1 00:00:00 2024\n" + m3;
    test::write_file(t / "cl2.mbox", cl2);
    LocalImportOptions o;
    o.mbox_format = MboxFormat::mboxcl2;
    auto msgs = drain({t / "cl2.mbox"}, o);
    ASSERT_EQ(msgs.size(), 3u);
    EXPECT_EQ(msgs[0].bytes, m1);
    EXPECT_EQ(msgs[1].bytes, m2);
    EXPECT_EQ(msgs[2].bytes, m3);

    // A Content-Length past the end of the file: that message is kept out, and said so.
    test::write_file(t / "short.mbox", "From a Mon Jan  1 00:00:00 2024\n" + m1 + "\nFrom b Mon Jan  1 00:00:00 2024\n" +
                                           "Subject: cut\nContent-Length: 500\n\nonly this\n");
    auto src = make_local_import({t / "short.mbox"}, o);
    ASSERT_TRUE(src);
    std::vector<std::string> got;
    while (auto m = (*src)->next()) got.push_back(m->bytes);
    EXPECT_EQ(got, std::vector<std::string>{m1});
    EXPECT_EQ((*src)->report().failed, 1u);
    ASSERT_EQ((*src)->report().errors.size(), 1u);
    EXPECT_NE((*src)->report().errors[0].find("Content-Length"), std::string::npos);
}


// An mbox holds no count: the total for the progress line is estimated from the messages per
// byte read so far, and becomes the count once every file is read.
std::string sized_mbox(int n) {
    std::string mbox;
    std::uint32_t r = 12345;
    for (int i = 0; i < n; ++i) {
        // Words of random letters: compresses about as well as mail does (a run of one
        // letter would compress a thousandfold and say nothing about real files).
        std::string body;
        while (body.size() < static_cast<std::size_t>(200 + (i * 37) % 900)) {
            r = r * 1103515245u + 12345u;
            body += static_cast<char>('a' + (r >> 16) % 26);
            if ((r >> 8) % 7 == 0) body += ' ';
        }
        mbox += "From sender@example.com Mon May  1 10:00:00 2023\nFrom: sender@example.com\nSubject: message " +
                std::to_string(i) + "\n\n" + body + "\n\n";
    }
    return mbox;
}

void check_estimate(const std::vector<std::filesystem::path>& paths, std::uint64_t counted, std::uint64_t in_mbox) {
    auto src = make_local_import(paths, {});
    ASSERT_TRUE(src) << src.error().message;
    std::uint64_t total = counted + in_mbox, seen = 0;
    while (auto m = (*src)->next()) {
        ++seen;
        if (seen == total / 2) {  // half-way: well past the first buffers, before the end
            EXPECT_TRUE((*src)->expected_is_estimate());
            double e = static_cast<double>((*src)->expected_total());
            EXPECT_GT(e, 0.85 * static_cast<double>(total)) << paths[0];
            EXPECT_LT(e, 1.15 * static_cast<double>(total)) << paths[0];
        }
    }
    EXPECT_EQ(seen, total);
    EXPECT_FALSE((*src)->expected_is_estimate());
    EXPECT_EQ((*src)->expected_total(), total) << paths[0];
}

TEST(LocalSource, MboxTotalIsEstimatedFromTheBytesRead) {
    test::TempDir t;
    const int n = 12000;  // ~9 MiB: many reads of the 1 MiB buffer
    std::string mbox = sized_mbox(n);
    test::write_file(t / "plain.mbox", mbox);
    check_estimate({t / "plain.mbox"}, 0, n);

    std::string z(ZSTD_compressBound(mbox.size()), '\0');
    z.resize(ZSTD_compress(z.data(), z.size(), mbox.data(), mbox.size(), 3));
    test::write_file(t / "packed.mbox.zst", z);
    check_estimate({t / "packed.mbox.zst"}, 0, n);

    gzFile gz = gzopen((t / "packed.mbox.gz").c_str(), "wb");
    ASSERT_NE(gz, nullptr);
    ASSERT_EQ(gzwrite(gz, mbox.data(), static_cast<unsigned>(mbox.size())), static_cast<int>(mbox.size()));
    gzclose(gz);
    check_estimate({t / "packed.mbox.gz"}, 0, n);

    // A Maildir counted up front plus two mbox files estimated together.
    for (int i = 0; i < 50; ++i) test::write_file(t / "md" / "cur" / (std::to_string(i) + ":2,S"), "Subject: m\n\nx\n");
    test::write_file(t / "second.mbox", sized_mbox(3000));
    check_estimate({t / "md", t / "plain.mbox", t / "second.mbox"}, 50, n + 3000);
}

TEST(LocalSource, MaildirTotalIsACount) {
    test::TempDir t;
    for (int i = 0; i < 7; ++i) test::write_file(t / "md" / "new" / std::to_string(i), "Subject: m\n\nx\n");
    auto src = make_local_import({t / "md"}, {});
    ASSERT_TRUE(src);
    EXPECT_EQ((*src)->expected_total(), 7u);
    EXPECT_FALSE((*src)->expected_is_estimate());
}

}  // namespace
}  // namespace mv::ingest
