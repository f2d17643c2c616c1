// hit_json writes a search hit field by field: the same bytes as the nlohmann object it
// replaced (the `search --json` and /api/search contract), for every kind of hit.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "query/search.hpp"
#include "query/thread.hpp"
#include "unit/query/fixture_archive.hpp"

namespace mv::query {
namespace {

// The object hit_json built before it wrote the text itself.
std::string reference_json(const Hit& h) {
    nlohmann::ordered_json j;
    j["docno"] = h.docno;
    j["date"] = iso_date(h.data.date);
    j["from"] = h.data.from;
    j["to"] = h.data.to;
    j["subject"] = h.data.subject;
    j["mailboxes"] = mailboxes_of(h.data);
    j["folders"] = folders_of(h.data);
    j["size"] = h.data.size;
    auto atts = nlohmann::ordered_json::array();
    for (const auto& a : h.data.attachments) atts.push_back(a.filename);
    j["attachments"] = std::move(atts);
    j["title"] = h.title;
    j["link"] = h.link;
    j["cc"] = h.data.cc;
    j["message_id"] = h.data.message_id;
    j["thread"] = thread_id(h.docno, h.data);
    j["flags"] = flags_of(h.data);
    j["broken"] = h.data.broken;
    if (auto removed = removed_json(h.data); !removed.empty()) j["removed"] = std::move(removed);
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

class HitJson : public test::FixtureArchiveTest {};

TEST_F(HitJson, SameBytesAsTheObjectForEveryFixtureMessage) {
    SearchOptions o;
    o.limit = 100;
    LinkBuilder links(LinkConfig{});
    auto r = search(*archive_, "*", o, links);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->hits.size(), 16u);
    for (const auto& h : r->hits) EXPECT_EQ(hit_json(h), reference_json(h)) << h.docno;
}

TEST(HitJsonStrings, SameBytesAsTheObjectForHostileAndRandomValues) {
    const std::vector<std::string> hostile = {
        "", "plain", "quote \" and backslash \\", "controls \x01\x02\x1f\x7f tab\t cr\r lf\n ff\f bs\b",
        "utf-8 M\xc3\xbcller \xe6\x97\xa5\xe6\x9c\xac", "invalid \xff\xfe utf-8", "truncated \xe6\x97",
        "surrogate \xed\xa0\x80", "</script><img src=x onerror=alert(1)>", std::string("nul \0 inside", 12)};
    std::mt19937 rng(20261201);
    auto pick = [&] { return hostile[rng() % hostile.size()]; };
    auto random_bytes = [&] {
        std::string s(rng() % 40, '\0');
        for (auto& c : s) c = static_cast<char>(rng() % 256);
        return s;
    };
    for (int round = 0; round < 2000; ++round) {
        Hit h;
        h.docno = rng() % 3 == 0 ? 0 : static_cast<std::uint64_t>(rng()) * 4096 + rng();
        h.data.date = static_cast<std::int64_t>(rng() % 4000000000u) - 1000000000;
        h.data.from = round % 2 ? pick() : random_bytes();
        for (unsigned i = rng() % 4; i > 0; --i) h.data.to.push_back(pick());
        for (unsigned i = rng() % 3; i > 0; --i) h.data.cc.push_back(random_bytes());
        h.data.subject = round % 3 ? pick() : random_bytes();
        h.data.size = static_cast<std::uint64_t>(rng()) << (rng() % 32);
        h.data.message_id = pick();
        for (unsigned i = rng() % 3; i > 0; --i) h.data.references.push_back(pick());
        for (unsigned i = rng() % 3; i > 0; --i) h.data.attachments.push_back({pick(), "text/plain", 3, {}, {}});
        for (unsigned i = rng() % 4; i > 0; --i) {
            index::Location l{pick(), pick(), pick(), pick()};
            if (rng() % 3 == 0) {
                l.removed = pick();
                l.removed_at = rng();
            }
            for (unsigned f = rng() % 3; f > 0; --f) l.flags.push_back(rng() % 2 ? "\\Seen" : pick());
            h.data.locations.push_back(l);
        }
        h.data.broken = rng() % 2;
        h.title = pick();
        h.link = random_bytes();
        ASSERT_EQ(hit_json(h), reference_json(h)) << "round " << round;
    }
}

}  // namespace
}  // namespace mv::query
