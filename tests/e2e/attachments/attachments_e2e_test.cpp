// Issue 14 end to end: every fixture attached to its own message, imported, then searched by a
// word found only inside it (plain and atext:), narrowed with type:, its status shown by
// `show` and `show --json`, and an archive imported without extraction reindexed.
#include <glib.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>

#include "support/testutil.hpp"

namespace mv::test {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) {
    return read_file(fs::path(MV_SOURCE_DIR) / "tests/fixtures/attachments" / name);
}

std::string base64_lines(const std::string& bytes) {
    gchar* b = g_base64_encode(reinterpret_cast<const guchar*>(bytes.data()), bytes.size());
    std::string s(b), out;
    g_free(b);
    for (std::size_t i = 0; i < s.size(); i += 76) out += s.substr(i, 76) + "\n";
    return out;
}

// A message about nothing in particular with `file` attached as `type`.
std::string with_attachment(int n, const std::string& file, const std::string& type) {
    return "From: Sender <sender@example.com>\nTo: rcpt@example.org\nSubject: fixture number " + std::to_string(n) +
           "\nDate: Mon, 01 Jan 2024 10:00:00 +0000\nMessage-ID: <fixture-" + std::to_string(n) +
           "@example.com>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\n"
           "Content-Type: text/plain\n\nSee the attachment.\n--b\nContent-Type: " + type + "; name=\"" + file +
           "\"\nContent-Disposition: attachment; filename=\"" + file + "\"\nContent-Transfer-Encoding: base64\n\n" +
           base64_lines(fixture(file)) + "--b--\n";
}

struct Fixture {
    const char* file;
    const char* type;
    const char* word;  // "" for fixtures without text
};

const Fixture k_fixtures[] = {
    {"invoice.pdf", "application/pdf", "aardvarkpdf"},
    {"contract.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "bisondocx"},
    {"prices.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "camelxlsx"},
    {"slides.pptx", "application/octet-stream", "dingopptx"},
    {"letter.odt", "application/vnd.oasis.opendocument.text", "emuodt"},
    {"budget.ods", "application/vnd.oasis.opendocument.spreadsheet", "ferretods"},
    {"talk.odp", "application/octet-stream", "gazelleodp"},
    {"memo.rtf", "application/rtf", "hyenartf"},
    {"meter.mscons", "application/octet-stream", "ibexmscons"},
    {"table.csv", "text/csv", "jackalcsv"},
    {"meeting.ics", "text/calendar", "koalaics"},
    {"contact.vcf", "text/vcard", "lemurvcf"},
    {"page.html", "text/html", "pumahtml"},
    {"data.xml", "application/xml", "quailxml"},
    {"data.json", "application/json", "ravenjson"},
    {"forwarded.eml", "application/octet-stream", "marmoteml"},
    {"bundle.zip", "application/zip", "narwhalzip"},
    {"bomb.zip", "application/zip", "salamanderzip"},
    {"traversal.zip", "application/zip", "pantherpath"},
    {"locked.pdf", "application/pdf", ""},
    {"locked.docx", "application/octet-stream", ""},
    {"broken.pdf", "application/pdf", ""},
    {"loop.pdf", "application/pdf", ""},
};

class Attachments : public ::testing::Test {
  protected:
    RunResult mv(std::vector<std::string> args) {
        args.insert(args.begin(), {"--archive", arc_.string()});
        if (!config_.empty()) args.insert(args.begin(), {"--config", config_.string()});
        return run_mailvault(args);
    }
    void import_all() {
        fs::path in = dir_ / "in";
        fs::create_directories(in);
        int n = 0;
        for (const auto& f : k_fixtures) {
            ++n;
            write_file(in / (std::to_string(n) + ".eml"), with_attachment(n, f.file, f.type));
            docno_[f.file] = n;
        }
        auto r = mv({"--quiet", "import", in.string()});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        for (auto& [file, n] : docno_) {  // files are not read in name order: docnos by Message-ID
            auto s = mv({"search", "--json", "msgid:fixture-" + std::to_string(n) + "@example.com"});
            auto j = nlohmann::json::parse(s.out, nullptr, false);
            ASSERT_TRUE(j.is_object()) << s.out << s.err;
            n = j["docno"].get<int>();
        }
    }
    long count(const std::string& q) {
        auto r = mv({"search", "--count", q});
        EXPECT_EQ(r.exit_code, 0) << q << ": " << r.err;
        return std::strtol(r.out.c_str(), nullptr, 10);
    }
    nlohmann::json attachment_json(const std::string& file) {
        auto r = mv({"show", "--json", std::to_string(docno_.at(file))});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        auto j = nlohmann::json::parse(r.out, nullptr, false);
        return j.is_object() && !j["attachments"].empty() ? j["attachments"][0] : nlohmann::json{};
    }
    TempDir dir_;
    fs::path arc_ = dir_ / "arc";
    fs::path config_;
    std::map<std::string, int> docno_;
};

TEST_F(Attachments, GoldenSearchesFindEveryKindByPlainWordsAndAtext) {
    import_all();
    for (const auto& f : k_fixtures) {
        if (!*f.word) continue;
        const long want = std::string(f.word) == "bisondocx" ? 2 : 1;  // also inner.docx in bundle.zip
        EXPECT_EQ(count(f.word), want) << f.file;
        EXPECT_EQ(count(std::string("atext:") + f.word), want) << f.file;
        EXPECT_EQ(count(std::string("body:") + f.word), 0) << f.file;
        EXPECT_EQ(count(std::string("attachment:") + f.word), 0) << f.file << ": attachment: is the file name";
    }
    EXPECT_EQ(count("walrusinner"), 1);    // the body of the attached .eml
    EXPECT_EQ(count("ocelotname"), 1);     // a zip member's name
    EXPECT_EQ(count("attachment:invoice"), 1);
    EXPECT_EQ(count("atext:\"payable to aardvarkpdf\""), 1);  // phrases inside a PDF
    EXPECT_EQ(count("lockedpdfword"), 0);                       // encrypted: no text
    EXPECT_EQ(count("scriptwordnotindexed"), 0);
}

TEST_F(Attachments, TypeFiltersByMimeTypeKindAndExtension) {
    import_all();
    EXPECT_EQ(count("type:pdf"), 4);  // invoice, locked, broken, loop
    EXPECT_EQ(count("type:pdf aardvarkpdf"), 1);
    EXPECT_EQ(count("type:pdf camelxlsx"), 0);
    EXPECT_EQ(count("type:xlsx"), 1);
    EXPECT_EQ(count("type:xlsx camelxlsx"), 1);
    EXPECT_EQ(count("type:text/csv"), 1);
    EXPECT_EQ(count("type:application/pdf"), 4);
    EXPECT_EQ(count("type:mscons"), 1);    // by extension (sent as application/octet-stream)
    EXPECT_EQ(count("type:edifact"), 1);   // by kind
    EXPECT_EQ(count("type:pptx"), 1);      // octet-stream named .pptx
    EXPECT_EQ(count("type:zip"), 3);
    EXPECT_EQ(count("type:zip -narwhalzip"), 2);
}

TEST_F(Attachments, StatusesInShowAndShowJson) {
    import_all();
    EXPECT_EQ(attachment_json("invoice.pdf")["text_status"], "indexed");
    EXPECT_EQ(attachment_json("locked.pdf")["text_status"], "encrypted");
    EXPECT_EQ(attachment_json("locked.docx")["text_status"], "encrypted");
    auto broken = attachment_json("broken.pdf");
    EXPECT_EQ(broken["text_status"], "failed");
    EXPECT_FALSE(broken.value("text_status_reason", "").empty());
    auto bomb = attachment_json("bomb.zip");
    EXPECT_EQ(bomb["text_status"], "indexed");
    EXPECT_NE(bomb.value("text_status_reason", "").find("member"), std::string::npos) << bomb.dump();
    auto text = mv({"show", std::to_string(docno_.at("locked.pdf"))});
    EXPECT_NE(text.out.find("locked.pdf (application/pdf, 1910 bytes, text: encrypted)"), std::string::npos) << text.out;
    auto failed = mv({"show", std::to_string(docno_.at("broken.pdf"))});
    EXPECT_NE(failed.out.find("text: failed: "), std::string::npos) << failed.out;
}

TEST_F(Attachments, AFailedAttachmentIsArchivedExactly) {
    import_all();
    for (const char* file : {"broken.pdf", "loop.pdf", "bomb.zip", "locked.pdf"}) {
        int k = 0;
        while (std::string(k_fixtures[k].file) != file) ++k;
        auto raw = mv({"show", "--raw", std::to_string(docno_.at(file))});
        ASSERT_EQ(raw.exit_code, 0) << raw.err;
        EXPECT_EQ(raw.out, read_file(dir_ / "in" / (std::to_string(k + 1) + ".eml"))) << file;
    }
    auto verify = mv({"verify"});
    EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

TEST_F(Attachments, OffByConfigThenReindexExtracts) {
    config_ = dir_ / "mailvault.toml";
    write_file(config_, "[index]\nattachment_text = false\n");
    import_all();
    EXPECT_EQ(count("aardvarkpdf"), 0);
    EXPECT_EQ(count("attachment:invoice"), 1);
    EXPECT_EQ(attachment_json("invoice.pdf")["text_status"], "skipped");
    auto shown = mv({"show", std::to_string(docno_.at("invoice.pdf"))});
    EXPECT_NE(shown.out.find("text: not extracted: [index] attachment_text = false"), std::string::npos) << shown.out;
    config_.clear();  // default: attachment_text = true
    auto r = mv({"--quiet", "reindex"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count("aardvarkpdf"), 1);
    EXPECT_EQ(count("atext:camelxlsx"), 1);
    EXPECT_EQ(attachment_json("invoice.pdf")["text_status"], "indexed");
}

TEST_F(Attachments, UnknownConfigKeyInIndexTableIsNamed) {
    config_ = dir_ / "mailvault.toml";
    write_file(config_, "[index]\nattachment_txt = true\n");
    auto r = mv({"search", "x"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("attachment_text"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace mv::test
