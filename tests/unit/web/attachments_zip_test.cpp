// web/attachments_zip: the zip writer read back by an independent reader (Python's zipfile)
// and the attachments of a message as a zip (issue 14).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>

#include "index/mime/parser.hpp"
#include "query/export.hpp"
#include "query/inspect.hpp"
#include "support/testutil.hpp"
#include "web/attachments_zip.hpp"

namespace mv::test {
namespace {

// Every member of the zip at `path`: name, bytes (hex), method, date_time; "bad" is
// zipfile.testzip() (the first member whose CRC fails, or null).
nlohmann::json read_zip(const std::filesystem::path& path) {
    const std::string script =
        "import json, sys, zipfile\n"
        "z = zipfile.ZipFile(sys.argv[1])\n"
        "out = {'bad': z.testzip(), 'members': []}\n"
        "for i in z.infolist():\n"
        "    out['members'].append({'name': i.filename, 'hex': z.read(i).hex(), 'method': i.compress_type,\n"
        "                           'date_time': list(i.date_time), 'utf8': bool(i.flag_bits & 0x800)})\n"
        "print(json.dumps(out))\n";
    auto r = run_program({"/usr/bin/python3", "-c", script, path.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

std::string hex(const std::string& s) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out += d[c >> 4];
        out += d[c & 15];
    }
    return out;
}

TEST(ZipWriter, MembersReadBackByteForByte) {
    TempDir dir;
    std::mt19937 rng(7);
    std::string random(100000, '\0');
    for (auto& c : random) c = static_cast<char>(rng());
    const std::string text(200000, 'a');
    web::ZipWriter zip;
    ASSERT_TRUE(zip.add("1-1-empty.txt", "", 1682416931));
    ASSERT_TRUE(zip.add("1-2-random.bin", random, 1682416931));
    ASSERT_TRUE(zip.add("1-3-Grüße.txt", text, 0));  // before 1980: DOS time's first day
    auto bytes = zip.finish();
    ASSERT_TRUE(bytes);
    EXPECT_LT(bytes->size(), random.size() + 2000);  // the text was deflated
    write_file(dir / "a.zip", *bytes);
    auto z = read_zip(dir / "a.zip");
    EXPECT_TRUE(z["bad"].is_null());
    ASSERT_EQ(z["members"].size(), 3u);
    EXPECT_EQ(z["members"][0]["name"], "1-1-empty.txt");
    EXPECT_EQ(z["members"][0]["hex"], "");
    EXPECT_EQ(z["members"][1]["hex"], hex(random));
    EXPECT_EQ(z["members"][1]["method"], 0);  // incompressible: stored
    EXPECT_EQ(z["members"][2]["name"], "1-3-Grüße.txt");
    EXPECT_TRUE(z["members"][2]["utf8"].get<bool>());
    EXPECT_EQ(z["members"][2]["hex"], hex(text));
    EXPECT_EQ(z["members"][2]["method"], 8);
    EXPECT_EQ(z["members"][0]["date_time"], nlohmann::json({2023, 4, 25, 10, 2, 10}));  // 2-second resolution
    EXPECT_EQ(z["members"][2]["date_time"], nlohmann::json({1980, 1, 1, 0, 0, 0}));
}

TEST(ZipWriter, AnEmptyZipIsValid) {
    TempDir dir;
    web::ZipWriter zip;
    auto bytes = zip.finish();
    ASSERT_TRUE(bytes);
    EXPECT_EQ(bytes->size(), 22u);
    write_file(dir / "e.zip", *bytes);
    EXPECT_EQ(read_zip(dir / "e.zip")["members"].size(), 0u);
}

TEST(AttachmentsZip, SafeUniqueNamesAndShowsBytes) {
    index::init_mime();
    std::string raw =
        "From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n";
    const std::vector<std::string> names = {"report.pdf", "report.pdf", "../../etc/passwd", "x/CON", ""};
    for (std::size_t i = 0; i < names.size(); ++i)
        raw += "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"" + names[i] +
               "\"\r\n\r\ncontent " + std::to_string(i) + "\r\n";
    raw += "--b--\r\n";
    auto zip = web::attachments_zip(raw, 9, 1682416931);
    ASSERT_TRUE(zip) << zip.error().message;
    EXPECT_EQ(zip->files, names.size());
    TempDir dir;
    write_file(dir / "z.zip", zip->bytes);
    auto z = read_zip(dir / "z.zip");
    EXPECT_TRUE(z["bad"].is_null());
    ASSERT_EQ(z["members"].size(), names.size());
    const std::vector<std::string> want = {"9-1-report.pdf", "9-2-report.pdf", "9-3-passwd", "9-4-_CON", "9-5-attachment.pdf"};
    for (std::size_t i = 0; i < names.size(); ++i) {
        EXPECT_EQ(z["members"][i]["name"], want[i]);
        EXPECT_EQ(z["members"][i]["hex"], hex(*query::extract_attachment(raw, i + 1)));
    }
    // No attachments: not found (the route answers 404).
    auto none = web::attachments_zip("From: a@example.com\r\nSubject: y\r\n\r\nbody\r\n", 3, 0);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().kind, Error::Kind::not_found);
}

}  // namespace
}  // namespace mv::test
