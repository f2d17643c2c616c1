// export --attachments, the parts without an archive: safe file names, the filter, the
// manifest lines, the attachment walk (issue 14).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "index/mime/parser.hpp"
#include "query/export.hpp"
#include "query/inspect.hpp"

namespace mv::query {
namespace {

bool valid_utf8(const std::string& s) {
    std::size_t i = 0;
    while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || i + static_cast<std::size_t>(len) > s.size()) return false;
        for (int k = 1; k < len; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
        i += static_cast<std::size_t>(len);
    }
    return true;
}

// Whatever the input, a name that stays in its directory.
void expect_safe(const std::string& out, const std::string& in) {
    SCOPED_TRACE("input: " + in);
    EXPECT_FALSE(out.empty());
    EXPECT_NE(out, ".");
    EXPECT_NE(out, "..");
    EXPECT_EQ(out.find('/'), std::string::npos) << out;
    EXPECT_EQ(out.find('\\'), std::string::npos) << out;
    EXPECT_EQ(out.find(':'), std::string::npos) << out;
    EXPECT_NE(out.front(), '.') << out;
    EXPECT_NE(out.front(), ' ') << out;
    EXPECT_NE(out.back(), '.') << out;
    EXPECT_NE(out.back(), ' ') << out;
    for (unsigned char c : out) EXPECT_TRUE(c >= 0x20 && c != 0x7f) << out;
    EXPECT_EQ(out.find("\xe2\x80\xae"), std::string::npos) << out;  // RLO
    EXPECT_TRUE(valid_utf8(out)) << out;
    EXPECT_LE(out.size(), k_max_safe_name);
}

TEST(SafeFileName, Table) {
    struct Case {
        std::string in, type, want;
    };
    const std::vector<Case> cases = {
        {"report.pdf", "application/pdf", "report.pdf"},
        {"Grüße März.xlsx", "application/octet-stream", "Grüße März.xlsx"},
        {"../../etc/passwd", "text/plain", "passwd"},
        {"/etc/shadow", "text/plain", "shadow"},
        {"..\\..\\windows\\system32\\evil.dll", "application/octet-stream", "evil.dll"},
        {"C:\\Users\\x\\report.pdf", "application/pdf", "report.pdf"},
        {"C:evil.txt", "text/plain", "evil.txt"},
        {"\\\\server\\share\\x.doc", "application/msword", "x.doc"},
        {"CON", "text/plain", "_CON"},
        {"con.txt", "text/plain", "_con.txt"},
        {"NUL.tar.gz", "application/gzip", "_NUL.tar.gz"},
        {"COM1.log", "text/plain", "_COM1.log"},
        {"lpt9", "text/plain", "_lpt9"},
        {"aux .txt", "text/plain", "_aux .txt"},
        {"CONSOLE.txt", "text/plain", "CONSOLE.txt"},
        {"a\x01" "b\x1f" "c\x7f.txt", "text/plain", "a_b_c_.txt"},
        {"tab\there\r\n.txt", "text/plain", "tab_here__.txt"},
        {"x1:b|c?d*e<f>g\"h", "text/plain", "x1_b_c_d_e_f_g_h"},
        {"invoice\xe2\x80\xae" "fdp.exe", "application/octet-stream", "invoice_fdp.exe"},
        {"c1\xc2\x85.txt", "text/plain", "c1_.txt"},
        {".hidden", "text/plain", "hidden"},
        {"trailing. . ", "text/plain", "trailing"},
        {"", "application/pdf", "attachment.pdf"},
        {".", "application/pdf", "attachment.pdf"},
        {"..", "application/pdf", "attachment.pdf"},
        {"...", "image/png", "attachment.png"},
        {"   ", "message/rfc822", "attachment.eml"},
        {"../", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "attachment.xlsx"},
        {"", "application/x-weird+thing", "attachment.bin"},
        {"", "image/webp", "attachment.webp"},
        {"\x01\x02", "text/csv", "attachment.csv"},
        {"bad\xff\xfeutf8.txt", "text/plain", "bad\xef\xbf\xbd\xef\xbf\xbdutf8.txt"},
    };
    for (const auto& c : cases) {
        auto out = safe_file_name(c.in, c.type);
        EXPECT_EQ(out, c.want) << "input: " << c.in;
        expect_safe(out, c.in);
    }
}

TEST(SafeFileName, LongNamesAreCutOnACharacterBoundaryKeepingTheExtension) {
    std::string umlauts;
    for (int i = 0; i < 300; ++i) umlauts += "\xc3\xa4";  // ä: 2 bytes
    for (const std::string& stem : {std::string(1000, 'a'), umlauts, "b" + umlauts, std::string(250, 'x') + "\xe2\x82\xac"}) {
        auto out = safe_file_name(stem + ".pdf", "application/pdf");
        expect_safe(out, stem);
        EXPECT_TRUE(out.ends_with(".pdf")) << out;
        EXPECT_GE(out.size(), k_max_safe_name - 3);  // cut at most one character short
        auto full = attachment_file_name(18446744073709551615ull, 1000, stem + ".pdf", "application/pdf");
        EXPECT_LE(full.size(), 255u);  // NAME_MAX
    }
    // No usable extension (too long): the name is cut, and stays a name.
    auto out = safe_file_name(std::string(300, 'y') + "." + std::string(40, 'z'), "text/plain");
    EXPECT_EQ(out.size(), k_max_safe_name);
    expect_safe(out, "long extension");
    // Cut right after dots or spaces: those go too.
    out = safe_file_name(std::string(195, 'q') + std::string(20, '.') + ".txt", "text/plain", 200);
    expect_safe(out, "dots");
    EXPECT_TRUE(out.ends_with("q.txt")) << out;
}

TEST(SafeFileName, HostileNamesNeverEscape) {
    const std::vector<std::string> hostile = {
        "..", "../..", "/", "//", "\\", "C:", "C:\\", "c:..\\..\\x", "....//....//etc/passwd", "..\\/..\\/x",
        "%2e%2e%2fx", "\xc0\xae\xc0\xae/x", "\0../x", "a/../../b", ".../...", " .. ", "\u202e..", "CON:", "nul:stream",
    };
    for (const auto& h : hostile) expect_safe(safe_file_name(h, "text/plain"), h);
}

TEST(AttachmentFileName, ThePrefixMakesEqualNamesDistinct) {
    EXPECT_EQ(attachment_file_name(12, 1, "report.pdf", "application/pdf"), "12-1-report.pdf");
    EXPECT_EQ(attachment_file_name(12, 2, "report.pdf", "application/pdf"), "12-2-report.pdf");
    EXPECT_EQ(attachment_file_name(13, 1, "report.pdf", "application/pdf"), "13-1-report.pdf");
    EXPECT_EQ(attachment_file_name(7, 3, "../CON", "text/plain"), "7-3-_CON");
    EXPECT_EQ(attachment_file_name(7, 4, "", "application/pdf"), "7-4-attachment.pdf");
}

TEST(AttachmentFilter, TypeAndNameGlobs) {
    struct Case {
        std::vector<std::string> types, names;
        std::string filename, type;
        bool want;
    };
    const std::vector<Case> cases = {
        {{}, {}, "x.bin", "application/octet-stream", true},
        {{"application/pdf"}, {}, "report.pdf", "application/pdf", true},
        {{"application/pdf"}, {}, "report.pdf", "application/octet-stream", false},  // with '/': the MIME type only
        {{"*/pdf"}, {}, "scan", "application/pdf", true},
        {{"image/*"}, {}, "a.png", "image/png", true},
        {{"IMAGE/*"}, {}, "a.png", "image/png", true},
        {{"image/*"}, {}, "a.png", "application/octet-stream", false},
        {{"pdf"}, {}, "report.PDF", "application/octet-stream", true},  // extension
        {{"pdf"}, {}, "scan", "application/pdf", true},                 // subtype
        {{"pdf"}, {}, "report.pdf.exe", "application/x-msdownload", false},
        {{"xls*"}, {}, "prices.xlsx", "application/octet-stream", true},
        {{"xls*"}, {}, "prices.xls", "application/vnd.ms-excel", true},
        {{"csv", "edi"}, {}, "MSCONS_1.edi", "application/edifact", true},
        {{"csv", "edi"}, {}, "a.txt", "text/plain", false},
        {{}, {"*.pdf"}, "Report.PDF", "application/pdf", true},
        {{}, {"invoice*"}, "INVOICE-2023.pdf", "application/pdf", true},
        {{}, {"invoice*"}, "credit-note.pdf", "application/pdf", false},
        {{}, {"rechnung_m?rz*"}, "Rechnung_März.pdf", "application/pdf", true},  // folded: accents ignored
        {{}, {"*.pdf", "*.xlsx"}, "a.xlsx", "application/octet-stream", true},
        {{}, {"*"}, "", "image/png", true},
        {{}, {"?*"}, "", "image/png", false},
        {{"pdf"}, {"invoice*"}, "invoice.pdf", "application/pdf", true},
        {{"pdf"}, {"invoice*"}, "invoice.xlsx", "application/octet-stream", false},  // both must match
        {{"pdf"}, {"invoice*"}, "report.pdf", "application/pdf", false},
    };
    for (const auto& c : cases) {
        AttachmentFilter f{c.types, c.names};
        EXPECT_EQ(f.matches(c.filename, c.type), c.want) << c.filename << " " << c.type;
    }
}

TEST(Manifest, CsvQuotesPerRfc4180AndJsonHasEveryField) {
    ManifestRow r;
    r.docno = 42;
    r.n = 3;
    r.date = 1682416931;  // 2023-04-25T10:02:11Z
    r.from = "\"Doe, Jane\" <jane@example.com>";
    r.subject = "Q1, \"final\"";
    r.name = "../evil\nname.pdf";
    r.file = "42-3-evil_name.pdf";
    r.type = "application/pdf";
    r.size = 1234;
    r.sha256 = std::string(64, 'a');
    EXPECT_EQ(manifest_csv_header(), "docno,n,date,from,subject,name,file,type,size,sha256\r\n");
    EXPECT_EQ(manifest_csv_line(r), "42,3,2023-04-25T10:02:11Z,\"\"\"Doe, Jane\"\" <jane@example.com>\",\"Q1, \"\"final\"\"\","
                                    "\"../evil\nname.pdf\",42-3-evil_name.pdf,application/pdf,1234," + std::string(64, 'a') + "\r\n");
    auto j = nlohmann::json::parse(manifest_json_line(r));
    EXPECT_EQ(j["docno"], 42);
    EXPECT_EQ(j["n"], 3);
    EXPECT_EQ(j["date"], "2023-04-25T10:02:11Z");
    EXPECT_EQ(j["from"], r.from);
    EXPECT_EQ(j["subject"], r.subject);
    EXPECT_EQ(j["name"], r.name);
    EXPECT_EQ(j["file"], r.file);
    EXPECT_EQ(j["type"], r.type);
    EXPECT_EQ(j["size"], 1234);
    EXPECT_EQ(j["sha256"], r.sha256);
    EXPECT_EQ(manifest_json_line(r).find('\n'), manifest_json_line(r).size() - 1);  // one line
    // Invalid UTF-8 from a mail cannot break either format.
    r.subject = "bad \xff byte";
    EXPECT_NE(manifest_csv_line(r).find("bad \xef\xbf\xbd byte"), std::string::npos);
    auto bad = nlohmann::json::parse(manifest_json_line(r), nullptr, false);
    ASSERT_FALSE(bad.is_discarded());
    EXPECT_EQ(bad["subject"], "bad \xef\xbf\xbd byte");
}

TEST(ForEachAttachment, NumbersAndBytesAreShows) {
    index::init_mime();
    const std::string raw =
        "From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        "--b\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
        "--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@example.com\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"c\"\r\n\r\n--c\r\nContent-Type: text/plain\r\n\r\ninner body\r\n"
        "--c\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename*=UTF-8''M%C3%A4rz.csv\r\n\r\na,b\r\n--c--\r\n"
        "--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n";
    auto listed = list_attachments(raw);
    std::vector<AttachmentFile> seen;
    for_each_attachment(raw, [&](AttachmentFile& a) { seen.push_back(a); });
    ASSERT_EQ(seen.size(), listed.size());
    ASSERT_EQ(seen.size(), 3u);
    for (std::size_t i = 0; i < seen.size(); ++i) {
        EXPECT_EQ(seen[i].n, i + 1);
        EXPECT_EQ(seen[i].filename, listed[i].filename);
        EXPECT_EQ(seen[i].content_type, listed[i].content_type);
        EXPECT_EQ(seen[i].bytes, *extract_attachment(raw, i + 1));
    }
    EXPECT_EQ(seen[0].bytes, "%PDF-1.4\n");
    EXPECT_EQ(seen[1].filename, "März.csv");
}

}  // namespace
}  // namespace mv::query
