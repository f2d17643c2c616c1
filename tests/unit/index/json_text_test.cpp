// index::json_text writes what nlohmann's dump(-1, ' ', false, replace) writes, byte for byte:
// every escape, invalid UTF-8 replaced as nlohmann replaces it, numbers, nesting, key order.
#include <gtest/gtest.h>

#include <random>

#include "index/util/json_text.hpp"

namespace mv::index {
namespace {

std::string reference(const nlohmann::ordered_json& j) {
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

TEST(JsonText, SameBytesAsNlohmannForEveryKindOfValue) {
    nlohmann::ordered_json j;
    j["docno"] = 82847;
    j["negative"] = -12;
    j["big"] = std::uint64_t(18446744073709551615ull);
    j["min"] = std::numeric_limits<std::int64_t>::min();
    j["ratio"] = 0.1;
    j["whole"] = 3.0;
    j["yes"] = true;
    j["no"] = false;
    j["nothing"] = nullptr;
    j["subject"] = "Re: \"quoted\" \\ back\tslash\nnew line\r\b\f\x01\x1f\x7f end";
    j["utf8"] = "Grüße, 日本語, emoji 😀";
    j["invalid"] = std::string("bad \xff\xfe byte, cut \xe6\x97 off, overlong \xc0\xaf, surrogate \xed\xa0\x80.");
    j["empty"] = "";
    j["list"] = {1, "two", nlohmann::ordered_json::array(), nlohmann::ordered_json::object(), {{"z", 1}, {"a", 2}}};
    j["k\"ey\n\xff"] = "key escaped too";
    EXPECT_EQ(json_text(j), reference(j));
    EXPECT_EQ(json_text(nlohmann::ordered_json::array()), "[]");
    EXPECT_EQ(json_text(nlohmann::ordered_json("x")), "\"x\"");
}

// Random bytes, random nesting: never a difference.
TEST(JsonText, SameBytesAsNlohmannForRandomStrings) {
    std::mt19937 rng(20261201);
    std::uniform_int_distribution<int> byte(0, 255), len(0, 40), pick(0, 9);
    const std::string pieces[] = {"ü", "日", "😀", "\"", "\\", "\n", "\x7f", "a", "\xc3", "\xf0\x9f"};
    for (int round = 0; round < 2000; ++round) {
        nlohmann::ordered_json j = nlohmann::ordered_json::object();
        for (int field = 0; field < 4; ++field) {
            std::string s;
            for (int n = len(rng); n > 0; --n) {
                if (pick(rng) < 5) s += static_cast<char>(byte(rng));
                else s += pieces[pick(rng)];
            }
            j["f" + std::to_string(field)] = field % 2 ? nlohmann::ordered_json(s) : nlohmann::ordered_json::array({s, round});
        }
        ASSERT_EQ(json_text(j), reference(j)) << round;
    }
}

}  // namespace
}  // namespace mv::index
