// SMTP client pieces without a server: [smtp] settings, dot-stuffing, the GMime message.
#include <gmime/gmime.h>
#include <gtest/gtest.h>

#include "ingest/smtp/mail_message.hpp"
#include "ingest/smtp/smtp_client.hpp"

namespace mv::ingest::smtp {
namespace {

SourceConfig smtp_config(std::map<std::string, std::string> s) {
    SourceConfig c;
    c.name = "smtp";
    c.type = "smtp";
    c.strings = std::move(s);
    return c;
}

TEST(SmtpSettings, DefaultsAndErrorsNameTheKey) {
    auto s = read_settings(smtp_config({{"host", "mx.test"}, {"sender", "a@x.test"}, {"password", "pw"}}));
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->endpoint.port, 587);
    EXPECT_EQ(s->security, net::Security::starttls);
    EXPECT_TRUE(s->auth_required);
    EXPECT_EQ(s->username, "a@x.test");
    auto tls = read_settings(smtp_config({{"host", "mx.test"}, {"sender", "a@x.test"}, {"security", "tls"}, {"auth_required", "false"}}));
    ASSERT_TRUE(tls) << tls.error().message;
    EXPECT_EQ(tls->endpoint.port, 465);
    EXPECT_TRUE(tls->secret.empty());

    auto bad = read_settings(smtp_config({{"host", "mx.test"}, {"sender", "a@x.test"}, {"security", "ssl"}}));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().kind, Error::Kind::usage);
    EXPECT_NE(bad.error().message.find("'security'"), std::string::npos);
    auto nosender = read_settings(smtp_config({{"host", "mx.test"}}));
    ASSERT_FALSE(nosender);
    EXPECT_NE(nosender.error().message.find("'sender'"), std::string::npos);
    auto nopw = read_settings(smtp_config({{"host", "mx.test"}, {"sender", "a@x.test"}}));
    ASSERT_FALSE(nopw);
    EXPECT_NE(nopw.error().message.find("password"), std::string::npos);
}

TEST(SmtpDotStuff, CrlfAndLeadingDots) {
    EXPECT_EQ(dot_stuff("a\n.b\n..c\r\nd"), "a\r\n..b\r\n...c\r\nd\r\n.\r\n");
    EXPECT_EQ(dot_stuff(".\n"), "..\r\n.\r\n");
    EXPECT_EQ(dot_stuff("x\r\n"), "x\r\n.\r\n");
    EXPECT_EQ(dot_stuff("a\rb"), "a\r\nb\r\n.\r\n");
}

TEST(SmtpMessage, MultipartAlternativeWithUtf8Subject) {
    MailMessage m;
    m.from = "archive@x.test";
    m.to = {"admin@x.test", "ops@x.test"};
    m.subject = "[mailvault] OK: sync – Zürich";
    m.text = "plain body äöü\n.leading dot\n";
    m.html = "<p>html <b>body</b></p>";
    std::string bytes = build_message(m);
    EXPECT_NE(bytes.find("Auto-Submitted: auto-generated"), std::string::npos);
    EXPECT_NE(bytes.find("MIME-Version: 1.0"), std::string::npos);
    EXPECT_NE(bytes.find("Message-Id: <"), std::string::npos) << bytes.substr(0, 600);

    g_mime_init();
    GMimeStream* st = g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size());
    GMimeParser* p = g_mime_parser_new_with_stream(st);
    GMimeMessage* msg = g_mime_parser_construct_message(p, nullptr);
    ASSERT_NE(msg, nullptr);
    EXPECT_STREQ(g_mime_message_get_subject(msg), m.subject.c_str());
    InternetAddressList* to = g_mime_message_get_to(msg);
    ASSERT_EQ(internet_address_list_length(to), 2);
    GMimeObject* body = g_mime_message_get_mime_part(msg);
    ASSERT_TRUE(GMIME_IS_MULTIPART(body));
    EXPECT_STREQ(g_mime_content_type_get_media_subtype(g_mime_object_get_content_type(body)), "alternative");
    GMimeMultipart* mp = GMIME_MULTIPART(body);
    ASSERT_EQ(g_mime_multipart_get_count(mp), 2);
    GMimeObject* plain = g_mime_multipart_get_part(mp, 0);
    GMimeObject* html = g_mime_multipart_get_part(mp, 1);
    EXPECT_STREQ(g_mime_content_type_get_media_subtype(g_mime_object_get_content_type(plain)), "plain");
    EXPECT_STREQ(g_mime_content_type_get_media_subtype(g_mime_object_get_content_type(html)), "html");
    char* text = g_mime_text_part_get_text(GMIME_TEXT_PART(plain));
    EXPECT_STREQ(text, m.text.c_str());
    g_free(text);
    g_object_unref(msg);
    g_object_unref(p);
    g_object_unref(st);
}

TEST(SmtpMessage, HtmlEscape) { EXPECT_EQ(html_escape("<a href=\"x\">&</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"); }

}  // namespace
}  // namespace mv::ingest::smtp
