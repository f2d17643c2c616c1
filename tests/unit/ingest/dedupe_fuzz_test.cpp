// Mutation fuzz of dedupe: 300 damaged variants of corpus messages (truncations, header
// deletions, byte flips, identity stripped) must never collapse unless DESIGN.md's definition of
// "the same message" says so, must all count as mail, and import as exactly that many documents.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "index/mime/dedupe.hpp"
#include "ingest/pipeline.hpp"
#include "support/testutil.hpp"

namespace mv::ingest {
namespace {

// DESIGN.md's definition restated independently of index::dedupe_key: the canonical form of a
// message, equal for two messages exactly when they are the same message.
std::string canonical(const std::string& raw) {
    std::vector<std::string> lines;
    std::size_t pos = 0;
    std::optional<std::size_t> body_at;
    while (pos < raw.size()) {
        std::size_t nl = raw.find('\n', pos);
        std::string line = raw.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        std::size_t next = nl == std::string::npos ? raw.size() : nl + 1;
        if (line.find_first_not_of('\r') == std::string::npos) {
            body_at = next;
            break;
        }
        if (!lines.empty() && (line[0] == ' ' || line[0] == '\t')) lines.back() += "\n" + line;
        else lines.push_back(line);
        pos = next;
    }
    std::map<std::string, std::string> first;
    for (const auto& l : lines) {
        auto colon = l.find(':');
        if (colon == std::string::npos) continue;
        std::string name = l.substr(0, colon);
        while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value;
        for (char c : l.substr(colon + 1))
            if (c != '\r' && c != '\n') value += c;
        value.erase(0, value.find_first_not_of(" \t") == std::string::npos ? value.size() : value.find_first_not_of(" \t"));
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
        first.emplace(name, value);
    }
    auto has = [&](const char* n) { return first.count(n) && !first[n].empty(); };
    if (!has("message-id") && !has("from") && !has("subject")) return "bytes:" + raw;
    std::string out = "fields:";
    for (const char* n : {"message-id", "date", "from", "to", "cc", "subject"}) {
        if (first.count(n)) out += std::string(n) + "=" + std::to_string(first[n].size()) + ":" + first[n] + "\n";
        else out += std::string(n) + " absent\n";
    }
    std::string body = body_at ? raw.substr(*body_at) : "";
    out += "body:";
    for (std::size_t i = 0; i < body.size(); ++i) {
        if (body[i] == '\r') {
            std::size_t j = body.find_first_not_of('\r', i);
            if (j != std::string::npos && body[j] == '\n') {
                i = j - 1;
                continue;
            }
        }
        out += body[i];
    }
    return out;
}

// Header fields of a message as [begin, end) byte ranges (with continuation lines), and where
// the header block ends.
struct Fields {
    std::vector<std::pair<std::size_t, std::size_t>> ranges;
    std::size_t end = 0;
};
Fields fields_of(const std::string& raw) {
    Fields f;
    std::size_t pos = 0;
    while (pos < raw.size()) {
        std::size_t nl = raw.find('\n', pos);
        std::size_t next = nl == std::string::npos ? raw.size() : nl + 1;
        if (raw.substr(pos, next - pos).find_first_not_of("\r\n") == std::string::npos) break;
        if ((raw[pos] == ' ' || raw[pos] == '\t') && !f.ranges.empty()) f.ranges.back().second = next;
        else f.ranges.push_back({pos, next});
        pos = next;
    }
    f.end = pos;
    return f;
}

bool is_identity(const std::string& raw, std::pair<std::size_t, std::size_t> r) {
    std::string head = raw.substr(r.first, std::min<std::size_t>(12, r.second - r.first));
    for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char* n : {"message-id:", "date:", "from:", "to:", "cc:", "subject:"})
        if (head.starts_with(n)) return true;
    return false;
}

std::string remove_fields(const std::string& raw, const std::vector<std::pair<std::size_t, std::size_t>>& drop) {
    std::string out;
    std::size_t at = 0;
    for (const auto& [b, e] : drop) {
        out += raw.substr(at, b - at);
        at = e;
    }
    return out + raw.substr(at);
}

// One damaged variant of `raw`; kinds as in the fuzz run.
std::string mutate(const std::string& raw, std::mt19937& rng, int kind) {
    auto pick = [&](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };
    Fields f = fields_of(raw);
    const std::size_t first_line = raw.find('\n') + 1;
    switch (kind) {
        case 0:  // truncation anywhere after the first line
            return raw.substr(0, pick(first_line, raw.size() - 1));
        case 1: {  // up to half of the header fields deleted (the first one kept)
            if (f.ranges.size() < 2) return raw;
            std::vector<std::pair<std::size_t, std::size_t>> drop;
            std::size_t n = pick(1, std::max<std::size_t>(1, f.ranges.size() / 2));
            std::set<std::size_t> chosen;
            while (chosen.size() < n) chosen.insert(pick(1, f.ranges.size() - 1));
            for (auto i : chosen) drop.push_back(f.ranges[i]);
            return remove_fields(raw, drop);
        }
        case 2: {  // 1 to 8 bytes set to random values
            std::string s = raw;
            for (std::size_t i = pick(1, 8); i > 0; --i) s[pick(0, s.size() - 1)] = static_cast<char>(pick(0, 255));
            return s;
        }
        default: {  // every identity header gone and cut at the end of the header block, as a
                    // truncated message holding only Received/Return-Path headers
            std::vector<std::pair<std::size_t, std::size_t>> drop;
            for (const auto& r : f.ranges)
                if (is_identity(raw, r)) drop.push_back(r);
            std::string head = remove_fields(raw.substr(0, f.end), drop);
            return head.empty() ? "Received: from nowhere\n" : head;
        }
    }
}

class ListSource final : public Source {
  public:
    explicit ListSource(std::vector<RawMessage> items) : items_(std::move(items)) {}
    std::string name() const override { return "fuzz"; }
    std::optional<RawMessage> next() override {
        if (next_ == items_.size()) return std::nullopt;
        return std::move(items_[next_++]);
    }

  private:
    std::vector<RawMessage> items_;
    std::size_t next_ = 0;
};

TEST(DedupeFuzz, DamagedCorpusMessagesCollapseOnlyWhenTheContractSaysSame) {
    test::TempDir dir;
    if (!test::unpack_corpus("varied.mbox.zst", dir.path() / "md", 120)) {
        if (test::servers_required()) FAIL() << "corpus not found";
        GTEST_SKIP() << "corpus not found";
    }
    std::vector<std::string> originals;
    for (const auto& e : std::filesystem::directory_iterator(dir.path() / "md" / "cur"))
        originals.push_back(test::read_file(e.path()));
    std::sort(originals.begin(), originals.end());
    ASSERT_EQ(originals.size(), 120u);

    std::mt19937 rng(20261130);
    std::vector<std::string> variants;
    for (int i = 0; i < 300; ++i) {
        const std::string& raw = originals[i % originals.size()];
        variants.push_back(mutate(raw, rng, (i + i / static_cast<int>(originals.size())) % 4));
    }

    // Every pair among the variants and the originals: one key exactly when one message. The
    // originals are in so that damage the contract ignores (a deleted Received header) shows.
    std::map<std::string, std::set<Digest>> keys_of_message;
    std::map<Digest, std::set<std::string>> messages_of_key;
    std::size_t without_identity = 0;
    auto check = [&](const std::string& v) {
        std::string c = canonical(v);
        Digest k = index::dedupe_key(v);
        keys_of_message[c].insert(k);
        messages_of_key[k].insert(c);
        return c;
    };
    for (const auto& o : originals) check(o);
    for (const auto& v : variants) {
        EXPECT_EQ(index::not_mail_reason(v), "") << "a damaged message is still mail:\n" << v.substr(0, 300);
        if (check(v).starts_with("bytes:")) ++without_identity;
    }
    std::size_t merged_wrongly = 0, split_wrongly = 0;
    for (const auto& [k, ms] : messages_of_key) merged_wrongly += ms.size() - 1;
    for (const auto& [c, ks] : keys_of_message) split_wrongly += ks.size() - 1;
    EXPECT_EQ(merged_wrongly, 0u) << "different messages with one dedupe key";
    EXPECT_EQ(split_wrongly, 0u) << "one message with several dedupe keys";
    EXPECT_GE(without_identity, 75u) << "the fuzz covers messages without Message-ID, From and Subject";
    const std::size_t same_as_an_original = originals.size() + variants.size() - keys_of_message.size();
    EXPECT_GT(same_as_an_original, 0u) << "the fuzz covers damage the contract ignores";
    std::set<std::string> variant_messages;
    for (const auto& v : variants) variant_messages.insert(canonical(v));

    // Through the pipeline: one document per distinct message, nothing rejected.
    std::vector<RawMessage> items;
    for (std::size_t i = 0; i < variants.size(); ++i) {
        RawMessage m;
        m.bytes = variants[i];
        m.where = {"fuzz", "mb", "Inbox", "v" + std::to_string(i)};
        items.push_back(std::move(m));
    }
    auto a = index::Archive::open(dir.path() / "archive", index::OpenMode::write);
    ASSERT_TRUE(a);
    ListSource src(std::move(items));
    PipelineOptions o;
    o.threads = 2;
    auto s = run_pipeline(**a, src, o);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->rejected, 0u);
    EXPECT_EQ(s->failed, 0u);
    EXPECT_EQ(s->added, variant_messages.size());
    EXPECT_EQ(s->duplicates, variants.size() - variant_messages.size());
    EXPECT_EQ((*a)->document_count(), variant_messages.size());
    std::cout << "fuzz: " << variants.size() << " variants, " << variant_messages.size() << " distinct messages, "
              << without_identity << " without Message-ID/From/Subject, " << same_as_an_original
              << " the same message as their original\n";
}

// The rule for what is mail accepts every message of the varied corpus (real mail, spam included).
TEST(DedupeFuzz, EveryCorpusMessageIsMail) {
    test::TempDir dir;
    if (!test::unpack_corpus("varied.mbox.zst", dir.path() / "md")) {
        if (test::servers_required()) FAIL() << "corpus not found";
        GTEST_SKIP() << "corpus not found";
    }
    int count = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path() / "md" / "cur")) {
        std::string raw = test::read_file(e.path());
        EXPECT_EQ(index::not_mail_reason(raw), "") << e.path();
        ++count;
    }
    EXPECT_EQ(count, 2500);
}

// The three files: only Received headers, only Return-Path, and a binary file.
TEST(DedupeFuzz, IdentitylessFilesAreKeptApartAndBinaryIsRejected) {
    test::TempDir dir;
    std::vector<RawMessage> items;
    auto add = [&](std::string bytes, std::string id) {
        RawMessage m;
        m.bytes = std::move(bytes);
        m.where = {"t", "mb", "Inbox", std::move(id)};
        m.ack = items.size() + 1;
        items.push_back(std::move(m));
    };
    add("Received: from a.example by b.example; Tue, 25 Apr 2023 10:02:15 +0000\n", "received");
    add("Return-Path: <bounce@example.com>\n", "return-path");
    std::mt19937 rng(1);
    std::string junk(4096, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    add(junk, "junk.bin");
    items.back().checkpoint = {{"cp:t:last", "junk"}};  // reading it again would reject it again
    add("Received: from a.example by b.example; Tue, 25 Apr 2023 10:02:15 +0000\n", "received-again");

    class AckSource final : public Source {
      public:
        explicit AckSource(std::vector<RawMessage> items) : list_(std::move(items)) {}
        std::string name() const override { return "t"; }
        std::optional<RawMessage> next() override { return list_.next(); }
        void on_durable(const std::vector<std::uint64_t>& acks) override { acked.insert(acks.begin(), acks.end()); }
        std::set<std::uint64_t> acked;

      private:
        ListSource list_;
    } src(std::move(items));
    auto a = index::Archive::open(dir.path(), index::OpenMode::write);
    ASSERT_TRUE(a);
    auto s = run_pipeline(**a, src, PipelineOptions{});
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->added, 2u);
    EXPECT_EQ(s->duplicates, 1u);
    EXPECT_EQ(s->rejected, 1u);
    EXPECT_EQ(s->failed, 0u);
    ASSERT_EQ(s->errors.size(), 1u);
    EXPECT_NE(s->errors[0].find("junk.bin: not mail"), std::string::npos) << s->errors[0];
    EXPECT_EQ((*a)->document_count(), 2u);
    EXPECT_EQ(src.acked, (std::set<std::uint64_t>{1, 2, 4})) << "what was not archived is never acknowledged";
    EXPECT_EQ((*a)->metadata("cp:t:last"), "junk") << "the checkpoint moves past what is not mail";
}

}  // namespace
}  // namespace mv::ingest
