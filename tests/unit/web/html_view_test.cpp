// The HTML view's inputs: which part is the HTML body, and cid: images as data: URLs.
#include <gtest/gtest.h>

#include <string>

#include "index/mime/parser.hpp"
#include "query/html_part.hpp"
#include "web/sanitize.hpp"

namespace {

// 1x1 PNG, base64 as it appears both in the mail and in the data: URL.
const std::string k_png_b64 =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

std::string alternative_mail() {
    return "From: a@example.org\r\nTo: b@example.org\r\nSubject: alt\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/related; boundary=rel\r\n\r\n"
           "--rel\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n"
           "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain words\r\n"
           "--alt\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n<p><b>bold</b> caf\xE9</p>\r\n"
           "--alt--\r\n"
           "--rel\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
           k_png_b64 +
           "\r\n"
           "--rel\r\nContent-Type: image/svg+xml\r\nContent-ID: <vector@x>\r\n\r\n<svg onload=\"alert(1)\"/>\r\n"
           "--rel--\r\n";
}

class HtmlView : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { mv::index::init_mime(); }
};

TEST_F(HtmlView, HtmlBesideTextPlainInAlternativeIsTheHtmlBody) {
    auto html = mv::query::html_body(alternative_mail());
    ASSERT_TRUE(html.has_value());
    EXPECT_NE(html->find("<b>bold</b> caf\xC3\xA9"), std::string::npos) << *html;  // converted to UTF-8
}

TEST_F(HtmlView, AnHtmlAttachmentIsNotTheBody) {
    const std::string raw =
        "From: a@example.org\r\nSubject: att\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n"
        "--m\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        "--m\r\nContent-Type: text/html\r\nContent-Disposition: attachment; filename=page.html\r\n\r\n<p>x</p>\r\n"
        "--m--\r\n";
    EXPECT_FALSE(mv::query::html_body(raw).has_value());
}

TEST_F(HtmlView, CidImagesBecomeDataUrlsOfRasterPartsOnly) {
    const std::string raw = alternative_mail();
    mv::web::CidInliner inline_cid(raw);
    EXPECT_EQ(inline_cid("logo@x"), "data:image/png;base64," + k_png_b64);
    EXPECT_EQ(inline_cid("vector@x"), "");   // SVG is not inlined
    EXPECT_EQ(inline_cid("missing@x"), "");  // no such part
}

TEST_F(HtmlView, CidLookupsPerMessageAreBounded) {
    const std::string raw = alternative_mail();
    mv::web::CidInliner inline_cid(raw);
    for (std::size_t i = 0; i < mv::web::CidInliner::k_max_cid_images; ++i) EXPECT_FALSE(inline_cid("logo@x").empty());
    EXPECT_EQ(inline_cid("logo@x"), "");
}

TEST_F(HtmlView, TheViewShowsCleanedHtmlWithTheInlinedImage) {
    const std::string raw = alternative_mail();
    mv::web::CidInliner inline_cid(raw);
    const std::string html = "<p>hi<img src=\"cid:logo@x\"><img src=\"cid:vector@x\" alt=v><script>x()</script></p>";
    const std::string out = mv::web::sanitize_html(html, [&](std::string_view cid) { return inline_cid(cid); });
    EXPECT_NE(out.find("<img src=\"data:image/png;base64," + k_png_b64 + "\">"), std::string::npos) << out;
    EXPECT_EQ(out.find("svg"), std::string::npos) << out;
    EXPECT_EQ(out.find("<script"), std::string::npos) << out;
}

}  // namespace
