// text::fold and text::valid_utf8 (index/text/fold.cpp), which query and index both rely on.
// Named text_fold_test so that a future tests/unit/index/fold_test.cpp does not collide.
#include <gtest/gtest.h>

#include <glib.h>

#include "index/text/fold.hpp"

namespace mv::text {
namespace {

TEST(Fold, CaseAndAccents) {
    struct {
        const char* in;
        const char* out;
    } cases[] = {
        {"Hello World", "hello world"},
        {"Müller", "muller"},
        {"MÜLLER", "muller"},
        {"Crème Brûlée", "creme brulee"},
        {"e\xcc\x81t\xc3\xa9", "ete"},  // decomposed and precomposed é
        {"Straße", "strasse"},
        {"ＡＢＣ１", "abc1"},          // full width
        {"Ωμέγα", "ωμεγα"},
        {"中文 テスト が 한국어", "中文 テスト が 한국어"},  // CJK unchanged, Hangul recomposed
        {"", ""},
        {"a\0b", "a\0b"},
    };
    for (const auto& c : cases) EXPECT_EQ(fold(c.in), std::string(c.out)) << c.in;
    EXPECT_EQ(fold(std::string_view("A\0B", 3)), std::string("a\0b", 3));
}

TEST(Fold, InvalidUtf8IsReplacedNotDropped) {
    EXPECT_EQ(fold("Bad\xff\xfeZ"), "bad\xef\xbf\xbd\xef\xbf\xbdz");
    EXPECT_EQ(fold("caf\xc3"), "caf\xef\xbf\xbd");  // truncated sequence
}

TEST(ValidUtf8, KeepsValidReplacesInvalid) {
    EXPECT_EQ(valid_utf8("plain"), "plain");
    EXPECT_EQ(valid_utf8("Grüße"), "Grüße");
    EXPECT_EQ(valid_utf8("a\x80z"), "a\xef\xbf\xbdz");
    EXPECT_EQ(valid_utf8("\xe4\xb8"), "\xef\xbf\xbd");
    EXPECT_EQ(valid_utf8(std::string_view("x\0y\xff", 4)), std::string("x\0y\xef\xbf\xbd", 6));
}

// The whole text through GLib in one piece: what fold() must equal, fast paths or not.
std::string reference_fold(const std::string& text) {
    gchar* cf = g_utf8_casefold(text.c_str(), -1);
    gchar* nfkd = g_utf8_normalize(cf, -1, G_NORMALIZE_NFKD);
    std::string stripped;
    for (const gchar* p = nfkd; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        bool accent = (c >= 0x0300 && c <= 0x036F) || (c >= 0x1AB0 && c <= 0x1AFF) || (c >= 0x1DC0 && c <= 0x1DFF) ||
                      (c >= 0x20D0 && c <= 0x20FF) || (c >= 0xFE20 && c <= 0xFE2F);
        if (!accent) stripped.append(p, static_cast<std::size_t>(g_utf8_next_char(p) - p));
    }
    gchar* nfc = g_utf8_normalize(stripped.c_str(), -1, G_NORMALIZE_NFC);
    std::string out(nfc);
    for (auto& ch : out)
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch + 32);
    g_free(cf);
    g_free(nfkd);
    g_free(nfc);
    return out;
}

TEST(Fold, FastPathsEqualWholeTextFolding) {
    const char* texts[] = {
        "Die Häuser werden gebaut. Wir treffen uns morgen im Büro.",
        "我们的项目进度很好。数据库迁移已经完成, ok 东京",
        "本日の会議の議事録を送ります。か\xe3\x82\x99ぱ ガ ｶﾞ ﾃｽﾄ",  // kana + combining voiced mark, half width
        "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab \xea\xb0\x80\xe1\x86\xa8 한국어",  // conjoining jamo, LV + T
        "İstanbul ΣΊΣΥΦΟΣ ﬁnance Ⅻ ① ｆｕｌｌ\xc2\xa0width",
        "e\xcc\x81 n\xcc\x83 a\xcc\x8a\xcc\xa3 Ñandú Ærøskøbing Łódź",
        "Привет, МИР! Ελληνικά καλημέρα",
        "मानक हिन्दी ไทย العربية עברית",
    };
    for (const char* t : texts) {
        std::string in = t;
        EXPECT_EQ(fold(in), reference_fold(in)) << in;
    }
}

}  // namespace
}  // namespace mv::text
