// Link and title building, the `search --json` schema, `show` of one message.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "query/inspect.hpp"
#include "query/links.hpp"
#include "query/search.hpp"
#include "unit/query/fixture_archive.hpp"

namespace mv::query {
namespace {

class Links : public test::FixtureArchiveTest {
  protected:
    static Hit hit(std::uint64_t docno, const LinkConfig& c) {
        auto h = load_hit(*archive_, docno, LinkBuilder(c));
        EXPECT_TRUE(h) << h.error().message;
        return h ? *h : Hit{};
    }
};

TEST_F(Links, DefaultLinkAndTitle) {
    Hit h = hit(1, LinkConfig{});
    EXPECT_EQ(h.link, "http://127.0.0.1:8025/m/1");
    EXPECT_EQ(h.title, "1: Quarterly report");
}

TEST_F(Links, TemplatePlaceholdersAreUrlEscaped) {
    LinkConfig c;
    c.base_url = "https://archive.example.com/mail/";  // trailing slash is dropped
    c.templ = "{base_url}/m/{docno}?id={msgid}&box={mailbox}&f={folder}&s={source}";
    Hit h = hit(1, c);
    EXPECT_EQ(h.link,
              "https://archive.example.com/mail/m/1?id=q01%40fixture.example&box=alice%40example.com&f=Inbox&s=import");
    c.templ = "{base_url}/by-sha/{sha256}";
    h = hit(2, c);
    EXPECT_EQ(h.link.rfind("https://archive.example.com/mail/by-sha/", 0), 0u);
    EXPECT_EQ(h.link.size(), std::string("https://archive.example.com/mail/by-sha/").size() + 64);
}

TEST_F(Links, TitleFieldNamesAnyHeader) {
    LinkConfig c;
    c.title_field = "from";
    EXPECT_EQ(hit(1, c).title, "Alice Müller <alice@example.com>");
    c.title_field = "X-Customer-Id";
    EXPECT_EQ(hit(1, c).title, "C-1001");
    c.title_field = "x-customer-id";
    EXPECT_EQ(hit(1, c).title, "C-1001");
    EXPECT_EQ(hit(2, c).title, "2: Re: Quarterly report");  // header absent: default title
    c.title_field = "subject";
    EXPECT_EQ(hit(6, c).title, "项目进度报告");  // RFC 2047 decoded
}

TEST_F(Links, TemplateValidation) {
    EXPECT_TRUE(validate_template("{base_url}/m/{docno}"));
    EXPECT_TRUE(validate_template("https://x/{msgid}"));
    auto bad = validate_template("{base_url}/m/{doc}");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("{doc}"), std::string::npos);
    EXPECT_FALSE(validate_template("{base_url/m"));
    EXPECT_FALSE(validate_template("x}"));
}

TEST(UrlEscape, ReservedCharacters) {
    EXPECT_EQ(url_escape("a b/c?d&e=f@g<h>"), "a%20b%2Fc%3Fd%26e%3Df%40g%3Ch%3E");
    EXPECT_EQ(url_escape("Az09-._~"), "Az09-._~");
    EXPECT_EQ(url_escape("ü"), "%C3%BC");
}

TEST(HeaderValue, UnfoldsAndDecodes) {
    index::init_mime();
    std::string raw = "From: a@b\nX-Long: first\n  second\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\n\nX-Long: body\n";
    EXPECT_EQ(header_value(raw, "x-long"), "first second");
    EXPECT_EQ(header_value(raw, "Subject"), "Grüße");
    EXPECT_EQ(header_value(raw, "missing"), "");
}

TEST_F(Links, SearchJsonHasTheDesignSchema) {
    SearchOptions o;
    o.limit = 1;
    auto r = search(*archive_, "msgid:q01@fixture.example", o, LinkBuilder(LinkConfig{}));
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->hits.size(), 1u);
    std::string line = hit_json(r->hits[0]);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    auto j = nlohmann::ordered_json::parse(line);
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
    // DESIGN.md's keys in its order, then those issue 10 added (thread, message_id, cc, flags, broken).
    EXPECT_EQ(keys, (std::vector<std::string>{"docno", "date", "from", "to", "subject", "mailboxes", "folders", "size",
                                              "attachments", "title", "link", "cc", "message_id", "thread", "flags",
                                              "broken"}));
    EXPECT_EQ(j["thread"], "q01@fixture.example");
    EXPECT_EQ(j["message_id"], "q01@fixture.example");
    EXPECT_EQ(j["docno"], 1);
    EXPECT_EQ(j["date"], "2023-04-25T10:02:11Z");
    EXPECT_EQ(j["from"], "Alice Müller <alice@example.com>");
    ASSERT_TRUE(j["to"].is_array());
    EXPECT_EQ(j["to"][0], "Bob Builder <bob@example.org>");
    EXPECT_EQ(j["subject"], "Quarterly report");
    EXPECT_EQ(j["mailboxes"], nlohmann::ordered_json::array({"alice@example.com", "bob@example.org"}));
    EXPECT_EQ(j["folders"], nlohmann::ordered_json::array({"Inbox", "Sent Items"}));
    EXPECT_EQ(j["size"], test::read_file(test::query_fixture_dir() / "q01.eml").size());
    EXPECT_EQ(j["attachments"], nlohmann::ordered_json::array({"report.pdf"}));
    EXPECT_EQ(j["title"], "1: Quarterly report");
    EXPECT_EQ(j["link"], "http://127.0.0.1:8025/m/1");
}

TEST_F(Links, ShowViewAndAttachments) {
    auto v = load_view(*archive_, 1, LinkBuilder(LinkConfig{}));
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_NE(v->body.find("quarterly report attached"), std::string::npos);
    ASSERT_EQ(v->attachments.size(), 1u);
    EXPECT_EQ(v->attachments[0].filename, "report.pdf");
    EXPECT_EQ(v->attachments[0].content_type, "application/pdf");
    std::string text = view_text(*v);
    EXPECT_NE(text.find("Subject: Quarterly report"), std::string::npos);
    EXPECT_NE(text.find("1. report.pdf (application/pdf"), std::string::npos);
    auto j = nlohmann::json::parse(view_json(*v));
    EXPECT_EQ(j["attachments"][0]["filename"], "report.pdf");
    EXPECT_EQ(j["docno"], 1);
    EXPECT_TRUE(j["headers"].is_array());

    auto raw = archive_->read_original(1);
    ASSERT_TRUE(raw);
    EXPECT_EQ(*raw, test::read_file(test::query_fixture_dir() / "q01.eml"));
    auto pdf = extract_attachment(*raw, 1);
    ASSERT_TRUE(pdf) << pdf.error().message;
    EXPECT_EQ(pdf->rfind("%PDF-1.4\n", 0), 0u);
    EXPECT_EQ(pdf->size(), v->attachments[0].size);
    auto none = extract_attachment(*raw, 2);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().kind, Error::Kind::usage);

    auto xls = load_view(*archive_, 13, LinkBuilder(LinkConfig{}));
    ASSERT_TRUE(xls);
    ASSERT_EQ(xls->attachments.size(), 1u);
    EXPECT_EQ(xls->attachments[0].filename, "Übersicht.xls");
    auto missing = load_view(*archive_, 999, LinkBuilder(LinkConfig{}));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().kind, Error::Kind::not_found);
}

}  // namespace
}  // namespace mv::query
