// text::fold and text::valid_utf8 (index/text/fold.cpp): what query and index both rely on.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace mv::text
