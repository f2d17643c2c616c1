// export QUERY --attachments DIR through the mailvault binary, on messages built here:
// hostile file names of every kind, duplicates, many attachments, the manifest field by
// field, --type/--name, planted symlinks, conflicting files, an unwritable DIR, and kill -9
// at every kind of point followed by a second run that completes without rewriting.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "index/archive.hpp"
#include "index/mime/parser.hpp"
#include "index/util/sha256.hpp"
#include "query/export.hpp"
#include "query/search.hpp"
#include "support/testutil.hpp"

namespace mv::test {
namespace {

namespace fs = std::filesystem;

std::string base64(std::string_view in) {
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
        out += t[v >> 18];
        out += t[(v >> 12) & 63];
        out += t[(v >> 6) & 63];
        out += t[v & 63];
        if (out.size() % 77 == 76) out += "\r\n";
    }
    if (i < in.size()) {
        unsigned v = (unsigned char)in[i] << 16 | (i + 1 < in.size() ? (unsigned char)in[i + 1] << 8 : 0);
        out += t[v >> 18];
        out += t[(v >> 12) & 63];
        out += i + 1 < in.size() ? t[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

struct Att {
    std::string disposition_params;  // as written after "attachment" ("; filename=..."), raw
    std::string type;
    std::string bytes;
};

std::string message(const std::string& msgid, const std::string& subject, const std::vector<Att>& atts,
                    const std::string& from = "Carol <carol@example.com>",
                    const std::string& date = "Tue, 25 Apr 2023 10:02:11 +0000") {
    std::string m = "From: " + from + "\r\nTo: alice@example.com\r\nSubject: " + subject + "\r\nDate: " + date +
                    "\r\nMessage-ID: <" + msgid + ">\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n"
                    "--=_b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the attachments.\r\n";
    for (const auto& a : atts)
        m += "--=_b\r\nContent-Type: " + a.type + "\r\nContent-Disposition: attachment" + a.disposition_params +
             "\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64(a.bytes) + "\r\n";
    m += "--=_b--\r\n";
    return m;
}

Att named(const std::string& filename, const std::string& bytes, const std::string& type = "application/octet-stream") {
    return {"; filename=\"" + filename + "\"", type, bytes};
}
Att rfc2231(const std::string& pct, const std::string& bytes, const std::string& type = "application/octet-stream") {
    return {"; filename*=UTF-8''" + pct, type, bytes};
}

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> v;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
}

// RFC 4180: records of fields; quoted fields may hold , " CR LF.
std::vector<std::vector<std::string>> parse_csv(const std::string& s) {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
    std::string field;
    bool quoted = false, any = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (quoted) {
            if (c == '"' && i + 1 < s.size() && s[i + 1] == '"') {
                field += '"';
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                field += c;
            }
            continue;
        }
        if (c == '"') {
            quoted = true;
            any = true;
        } else if (c == ',') {
            row.push_back(std::move(field));
            field.clear();
            any = true;
        } else if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') {
            row.push_back(std::move(field));
            field.clear();
            any = false;
            rows.push_back(std::move(row));
            row.clear();
            ++i;
        } else {
            EXPECT_NE(c, '\n') << "a bare LF outside quotes";
            field += c;
            any = true;
        }
    }
    if (any || !row.empty()) ADD_FAILURE() << "the CSV does not end with CRLF";
    return rows;
}

std::string sha_hex(const std::string& bytes) { return to_hex(sha256(bytes)); }

class ExportE2E : public ::testing::Test {
  protected:
    void SetUp() override { arc_ = dir_ / "arc"; }
    RunResult mv(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
        args.insert(args.begin(), {"--archive", arc_.string()});
        return run_mailvault(args, "", env);
    }
    void import(const std::vector<std::pair<std::string, std::string>>& msgs) {
        fs::path src = dir_ / (std::string("mail") + std::to_string(batch_++));
        for (const auto& [name, bytes] : msgs) write_file(src / name, bytes);
        auto r = mv({"--quiet", "import", src.string(), "--mailbox", "alice@example.com", "--folder", "Inbox"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    std::uint64_t docno_of(const std::string& msgid) {
        auto r = mv({"search", "--json", "msgid:" + msgid});
        auto l = lines_of(r.out);
        if (l.size() != 1) {
            ADD_FAILURE() << msgid << ": " << r.out << r.err;
            return 0;
        }
        return nlohmann::json::parse(l[0])["docno"].get<std::uint64_t>();
    }
    nlohmann::json hit_of(std::uint64_t docno) {
        auto r = mv({"show", "--json", std::to_string(docno)});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return nlohmann::json::parse(r.out);
    }
    std::string show_attachment(std::uint64_t docno, std::size_t n) {
        auto r = mv({"show", std::to_string(docno), "--attachment", std::to_string(n)});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return r.out;
    }
    // Regular files of `d` (name -> bytes); fails on anything else (directories, links).
    static std::map<std::string, std::string> files_of(const fs::path& d) {
        std::map<std::string, std::string> out;
        for (const auto& e : fs::directory_iterator(d)) {
            EXPECT_TRUE(e.is_regular_file() && !e.is_symlink()) << e.path();
            out[e.path().filename().string()] = read_file(e.path());
        }
        return out;
    }
    static std::vector<nlohmann::json> manifest_json(const fs::path& d) {
        std::vector<nlohmann::json> rows;
        for (const auto& l : lines_of(read_file(d / "manifest.jsonl"))) rows.push_back(nlohmann::json::parse(l));
        return rows;
    }

    TempDir dir_;
    fs::path arc_;
    int batch_ = 0;
};

TEST_F(ExportE2E, HostileNamesStayInsideTheDirectory) {
    std::string long_name;
    for (int i = 0; i < 300; ++i) long_name += "%C3%A4";  // ä, 600 bytes
    const std::vector<std::pair<Att, std::string>> cases = {  // attachment, the name it must get
        {named("../../etc/passwd", "p1"), "passwd"},
        {named("/etc/shadow", "p2"), "shadow"},
        {rfc2231("..%5C..%5Cwindows%5Csystem32%5Cevil.dll", "p3"), "evil.dll"},
        {rfc2231("C%3A%5CUsers%5Cx%5Creport.pdf", "p4"), "report.pdf"},
        {rfc2231("C%3Aevil.txt", "p5"), "evil.txt"},
        {named("CON", "p6"), "_CON"},
        {named("nul.txt", "p7"), "_nul.txt"},
        {named("COM1.log", "p8"), "_COM1.log"},
        {rfc2231("ctl%01%1B%5B31m%0D%0Ax.txt", "p9"), "ctl__[31m__x.txt"},
        {named("=?UTF-8?B?Li4vLi4vZXRjL2Nyb250YWI=?=", "p10"), "crontab"},  // encoded word: ../../etc/crontab
        {rfc2231("%2E%2E%2F%2E%2E%2F.ssh%2Fauthorized_keys", "p11"), "authorized_keys"},
        {rfc2231("%2E%2E", "p12", "application/pdf"), "attachment.pdf"},
        {rfc2231("invoice%E2%80%AEfdp.exe", "p13"), "invoice_fdp.exe"},
        {rfc2231(long_name + ".pdf", "p14", "application/pdf"), ""},  // checked below
        {{"", "application/pdf", "p15"}, "attachment.pdf"},             // no name at all
        {named("   ", "p16", "image/png"), "attachment.png"},
        {named(".bashrc", "p17"), "bashrc"},
        {rfc2231("x1%3Ab%7Cc%3Fd%2Ae%3Cf%3Eg", "p18"), "x1_b_c_d_e_f_g"},
    };
    std::vector<Att> atts;
    for (const auto& c : cases) atts.push_back(c.first);
    import({{"hostile.eml", message("hostile@example.com", "Hostile names", atts)}});
    const auto docno = docno_of("hostile@example.com");
    const fs::path out = dir_ / "deep" / "out";
    auto r = mv({"export", "*", "--attachments", out.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find(std::to_string(cases.size()) + " attachments written"), std::string::npos) << r.err;

    // Nothing appeared anywhere but in DIR: the test directory holds what it held.
    std::set<std::string> top;
    for (const auto& e : fs::recursive_directory_iterator(dir_.path())) {
        auto rel = fs::relative(e.path(), dir_.path()).string();
        if (rel.starts_with("arc") || rel.starts_with("mail")) continue;
        top.insert(rel);
    }
    std::set<std::string> want_paths = {"deep", "deep/out"};
    auto files = files_of(out);
    for (const auto& [name, bytes] : files) want_paths.insert("deep/out/" + name);
    EXPECT_EQ(top, want_paths);
    ASSERT_EQ(files.size(), cases.size() + 2);  // + manifest.csv, manifest.jsonl

    const std::string prefix = std::to_string(docno) + "-";
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const std::size_t n = i + 1;
        const std::string p = prefix + std::to_string(n) + "-";
        auto it = std::find_if(files.begin(), files.end(), [&](const auto& f) { return f.first.starts_with(p); });
        ASSERT_NE(it, files.end()) << "attachment " << n;
        const std::string& name = it->first;
        if (!cases[i].second.empty()) {
            EXPECT_EQ(name, p + cases[i].second) << "attachment " << n;
        }
        EXPECT_LE(name.size(), 255u);
        for (unsigned char c : name) EXPECT_TRUE(c >= 0x20 && c != 0x7f && c != '/' && c != '\\') << name;
        EXPECT_EQ(it->second, show_attachment(docno, n)) << name;
        EXPECT_EQ(it->second, cases[i].first.bytes) << name;
    }
    // The long name: cut on a character boundary, extension kept.
    auto long_it = std::find_if(files.begin(), files.end(), [&](const auto& f) { return f.first.starts_with(prefix + "14-"); });
    ASSERT_NE(long_it, files.end());
    EXPECT_TRUE(long_it->first.ends_with("\xc3\xa4.pdf")) << long_it->first;
    EXPECT_LE(long_it->first.size(), prefix.size() + 3 + 200);
    // The manifest keeps the names as the mail gave them.
    auto rows = manifest_json(out);
    ASSERT_EQ(rows.size(), cases.size());
    EXPECT_EQ(rows[0]["name"], "../../etc/passwd");
    EXPECT_EQ(rows[9]["name"], "../../etc/crontab");
    EXPECT_EQ(rows[8]["name"], "ctl\x01\x1b[31m\r\nx.txt");
    EXPECT_EQ(rows[14]["name"], "");
}

TEST_F(ExportE2E, DuplicateNamesAndManyAttachmentsAllArrive) {
    std::vector<Att> many;
    for (int i = 0; i < 300; ++i) many.push_back(named("data.csv", std::string("row,") + std::to_string(i) + "\n", "text/csv"));
    import({{"a.eml", message("dup-a@example.com", "Three reports",
                              {named("report.pdf", "first", "application/pdf"), named("report.pdf", "second", "application/pdf"),
                               named("REPORT.PDF", "third", "application/pdf")})},
            {"b.eml", message("dup-b@example.com", "One more report", {named("report.pdf", "fourth", "application/pdf")})},
            {"c.eml", message("many@example.com", "Daily data", many)}});
    const auto a = docno_of("dup-a@example.com"), b = docno_of("dup-b@example.com"), c = docno_of("many@example.com");
    const fs::path out = dir_ / "out";
    auto r = mv({"export", "*", "--attachments", out.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto files = files_of(out);
    EXPECT_EQ(files.size(), 3u + 1u + 300u + 2u);
    const std::string as = std::to_string(a) + "-", bs = std::to_string(b) + "-";
    EXPECT_EQ(files[as + "1-report.pdf"], "first");
    EXPECT_EQ(files[as + "2-report.pdf"], "second");
    EXPECT_EQ(files[as + "3-REPORT.PDF"], "third");  // distinct on a case-insensitive file system too
    EXPECT_EQ(files[bs + "1-report.pdf"], "fourth");
    for (std::size_t n = 1; n <= 3; ++n)
        EXPECT_EQ(show_attachment(a, n), std::vector<std::string>({"first", "second", "third"})[n - 1]);
    for (int i = 0; i < 300; ++i)
        EXPECT_EQ(files[std::to_string(c) + std::string("-") + std::to_string(i + 1) + "-data.csv"], std::string("row,") + std::to_string(i) + "\n") << i;
    EXPECT_EQ(show_attachment(c, 300), "row,299\n");
    auto rows = manifest_json(out);
    EXPECT_EQ(rows.size(), 304u);
    std::set<std::string> written;
    for (const auto& row : rows) EXPECT_TRUE(written.insert(row["file"].get<std::string>()).second) << row.dump();
}

TEST_F(ExportE2E, ManifestFieldByField) {
    import({{"m.eml", message("manifest@example.com", "Q1, \"final\" numbers",
                              {rfc2231("a%2Cb%20%22c%22.csv", "x,y\r\n1,2\r\n", "text/csv"),
                               rfc2231("line%0Abreak%C3%BC.pdf", "%PDF-1.4\n", "application/pdf"),
                               {"", "image/png", std::string("\x89PNG\r\n\x1a\n\0\0", 10)}},
                              "\"Doe, Jane\" <jane@example.com>", "Tue, 25 Apr 2023 12:02:11 +0200")}});
    const auto docno = docno_of("manifest@example.com");
    const auto hit = hit_of(docno);
    const fs::path out = dir_ / "out";
    auto r = mv({"export", "msgid:manifest@example.com", "--attachments", out.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;

    const std::string csv = read_file(out / "manifest.csv");
    auto rows = parse_csv(csv);
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(rows[0], (std::vector<std::string>{"docno", "n", "date", "from", "subject", "name", "file", "type", "size", "sha256"}));
    auto json = manifest_json(out);
    ASSERT_EQ(json.size(), 3u);
    const std::vector<std::string> names = {"a,b \"c\".csv", "line\nbreak\xc3\xbc.pdf", ""};
    const std::vector<std::string> types = {"text/csv", "application/pdf", "image/png"};
    const std::string d = std::to_string(docno);
    const std::vector<std::string> files = {d + "-1-a,b _c_.csv", d + "-2-line_break\xc3\xbc.pdf", d + "-3-attachment.png"};
    for (std::size_t i = 0; i < 3; ++i) {
        SCOPED_TRACE(i);
        const std::string bytes = show_attachment(docno, i + 1);
        EXPECT_EQ(read_file(out / files[i]), bytes);
        const auto& row = rows[i + 1];
        ASSERT_EQ(row.size(), 10u);
        EXPECT_EQ(row[0], d);
        EXPECT_EQ(row[1], std::to_string(i + 1));
        EXPECT_EQ(row[2], "2023-04-25T10:02:11Z");  // UTC
        EXPECT_EQ(row[3], hit["from"].get<std::string>());
        EXPECT_NE(row[3].find("jane@example.com"), std::string::npos);
        EXPECT_EQ(row[4], "Q1, \"final\" numbers");
        EXPECT_EQ(row[5], names[i]);
        EXPECT_EQ(row[6], files[i]);
        EXPECT_EQ(row[7], types[i]);
        EXPECT_EQ(row[8], std::to_string(bytes.size()));
        EXPECT_EQ(row[9], sha_hex(bytes));
        const auto& j = json[i];
        EXPECT_EQ(j["docno"], docno);
        EXPECT_EQ(j["n"], i + 1);
        EXPECT_EQ(j["date"], row[2]);
        EXPECT_EQ(j["from"], row[3]);
        EXPECT_EQ(j["subject"], row[4]);
        EXPECT_EQ(j["name"], row[5]);
        EXPECT_EQ(j["file"], row[6]);
        EXPECT_EQ(j["type"], row[7]);
        EXPECT_EQ(j["size"], bytes.size());
        EXPECT_EQ(j["sha256"], row[9]);
    }
}

TEST_F(ExportE2E, TypeAndNameFilters) {
    import({{"f.eml", message("filters@example.com", "Mixed",
                              {named("report.pdf", "pdf1", "application/pdf"), named("scan", "pdf2", "application/pdf"),
                               named("Prices.XLSX", "xlsx", "application/octet-stream"), named("photo.jpg", "jpg", "image/jpeg"),
                               named("notes.txt", "txt", "text/plain"), named("Rechnung_März.pdf", "pdf3", "application/octet-stream")})}});
    const std::string d = std::to_string(docno_of("filters@example.com"));
    auto run = [&](std::vector<std::string> opts) {
        const fs::path out = dir_ / (std::string("f") + std::to_string(batch_++));
        std::vector<std::string> args{"export", "*", "--attachments", out.string()};
        args.insert(args.end(), opts.begin(), opts.end());
        auto r = mv(args);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        std::set<std::string> got;
        for (const auto& [name, bytes] : files_of(out))
            if (!name.starts_with("manifest.")) got.insert(name.substr(d.size() + 1));
        EXPECT_EQ(manifest_json(out).size(), got.size());
        return got;
    };
    using S = std::set<std::string>;
    EXPECT_EQ(run({"--type", "pdf"}), (S{"1-report.pdf", "2-scan", "6-Rechnung_März.pdf"}));
    EXPECT_EQ(run({"--type", "application/pdf"}), (S{"1-report.pdf", "2-scan"}));
    EXPECT_EQ(run({"--type", "*/PDF"}), (S{"1-report.pdf", "2-scan"}));
    EXPECT_EQ(run({"--type", "image/*"}), (S{"4-photo.jpg"}));
    EXPECT_EQ(run({"--type", "xls*"}), (S{"3-Prices.XLSX"}));
    EXPECT_EQ(run({"--type", "jpg", "--type", "txt"}), (S{"4-photo.jpg", "5-notes.txt"}));
    EXPECT_EQ(run({"--name", "*.PDF"}), (S{"1-report.pdf", "6-Rechnung_März.pdf"}));
    EXPECT_EQ(run({"--name", "rechnung_marz*"}), (S{"6-Rechnung_März.pdf"}));
    EXPECT_EQ(run({"--name", "prices*"}), (S{"3-Prices.XLSX"}));
    EXPECT_EQ(run({"--type", "pdf", "--name", "rep*"}), (S{"1-report.pdf"}));
    EXPECT_EQ(run({"--name", "nothing-like-this"}), S{});
    // --type and --name belong to --attachments.
    auto bad = mv({"export", "*", "--eml", (dir_ / "eml").string(), "--type", "pdf"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("--attachments"), std::string::npos) << bad.err;
    EXPECT_EQ(mv({"export", "*", "--attachments", (dir_ / "x").string(), "--eml", (dir_ / "y").string()}).exit_code, 2);
}

TEST_F(ExportE2E, UnwritableDirectoryIsAClearErrorAndExit3) {
    import({{"u.eml", message("u@example.com", "U", {named("a.txt", "a", "text/plain")})}});
    write_file(dir_ / "plainfile", "not a directory");
    for (const fs::path& target : {dir_ / "plainfile", dir_ / "plainfile" / "sub"}) {
        auto r = mv({"export", "*", "--attachments", target.string()});
        EXPECT_EQ(r.exit_code, 3) << target;
        EXPECT_NE(r.err.find("cannot write " + target.string()), std::string::npos) << r.err;
        EXPECT_EQ(read_file(dir_ / "plainfile"), "not a directory");
    }
}

// A write that fails part way (here a file size limit: EFBIG, as a full disk gives ENOSPC):
// the export stops, says what failed and that it stopped, exits 1, keeps what it wrote and
// lists it in the manifest; a run without the limit completes.
TEST_F(ExportE2E, AWriteFailurePartWayStopsWithWhatFailed) {
    import({{"w1.eml", message("w1@example.com", "Small", {named("small.txt", "small", "text/plain")},
                               "Carol <carol@example.com>", "Mon, 24 Apr 2023 10:00:00 +0000")},
            {"w2.eml", message("w2@example.com", "Big", {named("big.bin", std::string(200000, 'b'))},
                               "Carol <carol@example.com>", "Tue, 25 Apr 2023 10:00:00 +0000")},
            {"w3.eml", message("w3@example.com", "Later", {named("later.txt", "later", "text/plain")},
                               "Carol <carol@example.com>", "Wed, 26 Apr 2023 10:00:00 +0000")}});
    const std::string w1 = std::to_string(docno_of("w1@example.com")), w2 = std::to_string(docno_of("w2@example.com"));
    const fs::path out = dir_ / "out";
    // SIGXFSZ ignored (it stays ignored across exec), so the write returns EFBIG.
    auto r = run_program({"/bin/sh", "-c",
                          "trap '' XFSZ; exec prlimit --fsize=100000 \"$0\" --archive \"$1\" export '*' --attachments \"$2\"",
                          mailvault_binary(), arc_.string(), out.string()});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("message " + w2 + " attachment 1: " + (out / (w2 + "-1-big.bin")).string() + ": File too large"),
              std::string::npos) << r.err;
    EXPECT_NE(r.err.find("export stopped: " + out.string() + " cannot be written"), std::string::npos) << r.err;
    auto files = files_of(out);
    EXPECT_EQ(files.size(), 1u + 2u) << "the small file and the manifests, no temporary file";
    EXPECT_EQ(files[w1 + "-1-small.txt"], "small");
    auto rows = manifest_json(out);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0]["file"], w1 + "-1-small.txt");
    r = mv({"export", "*", "--attachments", out.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(manifest_json(out).size(), 3u);
    EXPECT_EQ(read_file(out / (w2 + "-1-big.bin")), std::string(200000, 'b'));
}

// Two exports into one directory at once: the second is refused (exit 3) instead of removing
// the first one's temporary files.
TEST_F(ExportE2E, OneExportPerDirectoryAtATime) {
    import({{"l.eml", message("l@example.com", "L", {named("a.txt", "a", "text/plain")})}});
    const fs::path out = dir_ / "out";
    fs::create_directories(out);
    int fd = ::open(out.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // as a running export holds it
    auto r = mv({"export", "*", "--attachments", out.string()});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("another export is writing into it"), std::string::npos) << r.err;
    ::close(fd);
    r = mv({"export", "*", "--attachments", out.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(manifest_json(out).size(), 1u);
}

TEST_F(ExportE2E, PlantedSymlinksAreNotFollowed) {
    import({{"s.eml", message("s@example.com", "S", {named("report.pdf", "exported", "application/pdf"),
                                                     named("other.txt", "other", "text/plain")})}});
    const std::string d = std::to_string(docno_of("s@example.com"));
    const fs::path out = dir_ / "out";
    fs::create_directories(out);
    write_file(dir_ / "victim", "precious");
    write_file(dir_ / "victim2", "precious too");
    fs::create_symlink(dir_ / "victim", out / (d + "-1-report.pdf"));
    fs::create_symlink(dir_ / "victim2", out / "manifest.csv");
    auto r = mv({"export", "*", "--attachments", out.string()});
    EXPECT_EQ(r.exit_code, 1) << r.err;  // partial: one file failed, the rest exported
    EXPECT_NE(r.err.find(d + "-1-report.pdf: is a symbolic link"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("1 failed"), std::string::npos) << r.err;
    EXPECT_EQ(read_file(dir_ / "victim"), "precious");
    EXPECT_EQ(read_file(dir_ / "victim2"), "precious too");
    EXPECT_TRUE(fs::is_symlink(out / (d + "-1-report.pdf")));
    EXPECT_FALSE(fs::is_symlink(out / "manifest.csv"));  // replaced itself, not written through
    EXPECT_EQ(read_file(out / (d + "-2-other.txt")), "other");
    EXPECT_EQ(manifest_json(out).size(), 1u);  // lists what was written
    // --force replaces the link itself; the target stays untouched.
    r = mv({"export", "*", "--attachments", out.string(), "--force"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_FALSE(fs::is_symlink(out / (d + "-1-report.pdf")));
    EXPECT_EQ(read_file(out / (d + "-1-report.pdf")), "exported");
    EXPECT_EQ(read_file(dir_ / "victim"), "precious");
    EXPECT_EQ(manifest_json(out).size(), 2u);
}

TEST_F(ExportE2E, AFileWithOtherContentIsKeptUnlessForced) {
    import({{"c.eml", message("c@example.com", "C", {named("a.txt", "from the mail", "text/plain")})}});
    const std::string d = std::to_string(docno_of("c@example.com"));
    const fs::path out = dir_ / "out";
    write_file(out / (d + "-1-a.txt"), "edited by someone");
    auto r = mv({"export", "*", "--attachments", out.string()});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("exists with other content (--force replaces it)"), std::string::npos) << r.err;
    EXPECT_EQ(read_file(out / (d + "-1-a.txt")), "edited by someone");
    r = mv({"export", "*", "--attachments", out.string(), "--force"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_file(out / (d + "-1-a.txt")), "from the mail");
}

// kill -9 at points spread over a run (each rename, fsync and unlink is one: syscall_kill.so),
// then the same command again: it completes, keeps every file already in place (same inode,
// not rewritten), writes the rest once, leaves no temporary file and lists each file once.
TEST_F(ExportE2E, ResumesAfterKill9WithoutRewritingOrDuplicating) {
    std::vector<std::pair<std::string, std::string>> msgs;
    for (int m = 0; m < 30; ++m) {
        std::vector<Att> atts;
        for (int k = 0; k < 4; ++k)
            atts.push_back(named(std::string("part") + std::to_string(k) + ".bin", std::string(3000 + m * 10 + k, static_cast<char>('a' + k)) + std::to_string(m)));
        msgs.push_back({std::string("m") + std::to_string(m) + ".eml", message(std::string("k") + std::to_string(m) + "@example.com", std::string("Kill ") + std::to_string(m), atts)});
    }
    import(msgs);
    const std::size_t total_files = 120;

    // A clean run: the reference files and the number of kill points.
    const fs::path ref = dir_ / "ref";
    const fs::path log = dir_ / "points.log";
    auto clean = mv({"export", "*", "--attachments", ref.string()}, {"LD_PRELOAD=" MV_SYSCALL_KILL, "MV_SYSCALL_LOG=" + log.string()});
    ASSERT_EQ(clean.exit_code, 0) << clean.err;
    auto reference = files_of(ref);
    ASSERT_EQ(reference.size(), total_files + 2);
    const auto points = lines_of(read_file(log)).size();
    ASSERT_GT(points, total_files * 2);  // an fsync and a rename per file at least

    std::set<std::size_t> kill_at = {1, 2, 3, points / 5, points / 3, points / 2, points - 3, points - 2, points - 1, points};
    for (std::size_t at : kill_at) {
        SCOPED_TRACE(std::string("killed at point ") + std::to_string(at) + std::string(" of ") + std::to_string(points));
        const fs::path out = dir_ / (std::string("out") + std::to_string(at));
        auto killed = mv({"export", "*", "--attachments", out.string()},
                         {"LD_PRELOAD=" MV_SYSCALL_KILL, std::string("MV_SYSCALL_KILL_AT=") + std::to_string(at)});
        ASSERT_EQ(killed.exit_code, 128 + 9) << killed.err;
        std::map<std::string, std::pair<ino_t, std::int64_t>> before;  // final files: inode, mtime ns
        for (const auto& e : fs::directory_iterator(out)) {
            const auto name = e.path().filename().string();
            if (name.starts_with(".") || name.starts_with("manifest.")) continue;
            struct stat st{};
            ASSERT_EQ(::lstat(e.path().c_str(), &st), 0);
            ASSERT_TRUE(S_ISREG(st.st_mode));
            EXPECT_EQ(read_file(e.path()), reference[name]) << name;  // never a torn file under its final name
            before[name] = {st.st_ino, std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
        }
        auto again = mv({"export", "*", "--attachments", out.string()});
        ASSERT_EQ(again.exit_code, 0) << again.err;
        EXPECT_NE(again.err.find(std::to_string(total_files - before.size()) + " attachments written, " +
                                 std::to_string(before.size()) + " already there"),
                  std::string::npos)
            << again.err;
        EXPECT_EQ(files_of(out), reference);  // every file, the manifests too, and no temporary file
        for (const auto& [name, id] : before) {
            struct stat st{};
            ASSERT_EQ(::lstat((out / name).c_str(), &st), 0);
            EXPECT_EQ(st.st_ino, id.first) << name << " was rewritten";
            EXPECT_EQ(std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, id.second) << name;
        }
    }
}

// Ctrl-C (the CLI's stop flag) between messages: what was written is in the manifest, the
// run says it was interrupted, and the same export again completes it.
TEST_F(ExportE2E, InterruptedExportHasAManifestOfWhatWasWritten) {
    std::vector<std::pair<std::string, std::string>> msgs;
    for (int m = 0; m < 5; ++m)
        msgs.push_back({std::string("i") + std::to_string(m) + ".eml",
                        message(std::string("i") + std::to_string(m) + "@example.com", "Int",
                                {named("a.txt", std::string("a") + std::to_string(m), "text/plain"),
                                 named("b.txt", std::string("b") + std::to_string(m), "text/plain")})});
    import(msgs);
    index::init_mime();
    auto archive = index::Archive::open(arc_, index::OpenMode::read);
    ASSERT_TRUE(archive) << archive.error().message;
    query::ParseOptions po;
    po.stemmer = (*archive)->stemmer();
    auto docnos = query::all_matches(**archive, "*", po);
    ASSERT_TRUE(docnos);
    ASSERT_EQ(docnos->size(), 5u);
    const fs::path out = dir_ / "out";
    std::atomic<bool> stop{false};
    auto r = query::export_attachments(**archive, *docnos, out, {}, [&](const query::AttachmentExportProgress& p) {
        if (p.messages_done == 2) stop = true;  // as SIGINT would, after two messages
    }, query::ExistingFiles::refuse, &stop);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r->interrupted);
    EXPECT_EQ(r->messages_done, 2u);
    EXPECT_EQ(r->written, 4u);
    auto rows = manifest_json(out);
    ASSERT_EQ(rows.size(), 4u);
    for (const auto& row : rows) {
        const std::string bytes = read_file(out / row["file"].get<std::string>());
        EXPECT_EQ(bytes.substr(0, 1), row["name"].get<std::string>().substr(0, 1));
        EXPECT_EQ(row["sha256"], sha_hex(bytes));
    }
    EXPECT_EQ(files_of(out).size(), 4u + 2u);
    stop = false;
    r = query::export_attachments(**archive, *docnos, out, {}, {}, query::ExistingFiles::refuse, &stop);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->interrupted);
    EXPECT_EQ(r->written, 6u);
    EXPECT_EQ(r->kept, 4u);
    EXPECT_EQ(manifest_json(out).size(), 10u);
    EXPECT_EQ(files_of(out).size(), 10u + 2u);
}

}  // namespace
}  // namespace mv::test
