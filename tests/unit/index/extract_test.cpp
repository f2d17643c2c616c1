// index/extract: each format family on the fixtures of tests/fixtures/attachments, every limit
// (size, time, memory, zip bomb, nesting) and every status.
#include "index/extract/extract.hpp"
#include "support/testutil.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "index/extract/formats.hpp"
#include "index/mime/parser.hpp"
#include "support/testutil.hpp"

namespace mv::index::extract {
namespace {

std::string fixture(const std::string& name) {
    return test::read_file(std::filesystem::path(MV_SOURCE_DIR) / "tests/fixtures/attachments" / name);
}

Hooks hooks() {
    Hooks h;
    h.html_to_text = [](std::string_view html) { return index::html_to_text(html); };
    h.message_text = [](std::string_view raw, int) {
        auto p = index::parse_message(raw, index::ParseLimits{}, 0);
        return p ? p->subject + "\n" + p->body_text : std::string();
    };
    return h;
}

Extracted run(const std::string& name, const std::string& type = "application/octet-stream", Limits limits = {}) {
    return extract(fixture(name), type, name, {}, limits, hooks());
}

bool has(const Extracted& e, std::string_view word) { return e.text.find(word) != std::string::npos; }

struct Golden {
    const char* file;
    const char* type;  // as a mail client would label it ("" = application/octet-stream)
    const char* word;
};

class EveryFormat : public ::testing::TestWithParam<Golden> {};

TEST_P(EveryFormat, FindsItsWord) {
    const Golden g = GetParam();
    Extracted e = run(g.file, *g.type ? g.type : "application/octet-stream");
    EXPECT_EQ(e.status, Status::indexed) << g.file << ": " << e.reason;
    EXPECT_TRUE(has(e, g.word)) << g.file << " gave: " << e.text;
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, EveryFormat,
    ::testing::Values(Golden{"invoice.pdf", "application/pdf", "aardvarkpdf"},
                      Golden{"contract.docx", "", "bisondocx"},  // words split over runs join
                      Golden{"prices.xlsx", "", "camelxlsx"}, Golden{"slides.pptx", "", "dingopptx"},
                      Golden{"letter.odt", "application/vnd.oasis.opendocument.text", "emuodt"},
                      Golden{"budget.ods", "", "ferretods"}, Golden{"talk.odp", "", "gazelleodp"},
                      Golden{"memo.rtf", "application/rtf", "hyenartf"}, Golden{"meter.mscons", "", "ibexmscons"},
                      Golden{"table.csv", "text/csv", "jackalcsv"}, Golden{"meeting.ics", "text/calendar", "koalaics"},
                      Golden{"contact.vcf", "text/vcard", "lemurvcf"}, Golden{"page.html", "text/html", "pumahtml"},
                      Golden{"data.xml", "application/xml", "quailxml"},
                      Golden{"data.json", "application/json", "ravenjson"},
                      Golden{"forwarded.eml", "message/rfc822", "marmoteml"},
                      Golden{"bundle.zip", "application/zip", "narwhalzip"}),
    [](const auto& info) {
        std::string n = info.param.file;
        for (auto& c : n)
            if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
        return n;
    });

TEST(Extract, KindsByTypeExtensionAndBytes) {
    EXPECT_EQ(kind_of("application/pdf", ""), "pdf");
    EXPECT_EQ(kind_of("application/octet-stream", "Report.PDF"), "pdf");
    EXPECT_EQ(kind_of("application/octet-stream", "x.bin", "%PDF-1.7"), "pdf");
    EXPECT_EQ(kind_of("text/plain", "MSCONS_20240101.edi"), "edifact");
    EXPECT_EQ(kind_of("text/plain", "notes.txt"), "text");
    EXPECT_EQ(kind_of("text/csv", ""), "text");
    EXPECT_EQ(kind_of("image/png", "x.png"), "");
    EXPECT_EQ(kind_of("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ""), "xlsx");
    EXPECT_EQ(extension_of("../a/b.tar.GZ"), "gz");
    EXPECT_EQ(extension_of("noext"), "");
}

TEST(Extract, MarkupIsNotText) {
    EXPECT_FALSE(has(run("page.html", "text/html"), "scriptwordnotindexed"));
    EXPECT_FALSE(has(run("data.xml", "application/xml"), "tagwordnotindexed"));
    Extracted rtf = run("memo.rtf", "application/rtf");
    EXPECT_FALSE(has(rtf, "fontwordnotindexed"));
    EXPECT_FALSE(has(rtf, "Times"));
    EXPECT_TRUE(has(rtf, "Café crème")) << rtf.text;  // \'e9 in cp1252, \u232 with its fallback skipped
}

TEST(Extract, SpreadsheetSharedStringIndexesAreNotValues) {
    Extracted e = run("prices.xlsx");
    EXPECT_TRUE(has(e, "987654"));
    EXPECT_TRUE(has(e, "inlinecell"));
    EXPECT_TRUE(has(e, "Article"));
    EXPECT_EQ(e.text.find(" 0 "), std::string::npos) << e.text;
}

TEST(Extract, EdifactSeparatorsBreakWords) {
    Extracted e = run("meter.mscons");
    EXPECT_TRUE(has(e, "NAD MS 9900000000003")) << e.text;
    EXPECT_TRUE(has(e, "\nQTY 220 1234.5")) << e.text;
    EXPECT_EQ(e.text.find('\''), std::string::npos);
}

TEST(Extract, Encrypted) {
    EXPECT_EQ(run("locked.pdf", "application/pdf").status, Status::encrypted);
    EXPECT_EQ(run("locked.docx").status, Status::encrypted);
}

TEST(Extract, BrokenPdfFailsWithAReason) {
    Extracted e = run("broken.pdf", "application/pdf");
    EXPECT_EQ(e.status, Status::failed);
    EXPECT_FALSE(e.reason.empty());
    EXPECT_EQ(status_text(e.status, e.reason), "failed: " + e.reason);
}

TEST(Extract, PdfObjectLoopEndsWithinTheLimit) {
    Limits l;
    l.timeout = std::chrono::seconds(20);
    const auto t0 = std::chrono::steady_clock::now();
    Extracted e = run("loop.pdf", "application/pdf", l);
    // Poppler notices the loop (failed, or a page without text) or the helper is stopped; the
    // caller always gets an answer.
    EXPECT_TRUE(e.status == Status::indexed || e.status == Status::failed || e.status == Status::timed_out)
        << status_text(e.status, e.reason);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(25));
}

TEST(Extract, TooLarge) {
    Limits l;
    l.max_bytes = 100;
    Extracted e = run("invoice.pdf", "application/pdf", l);
    EXPECT_EQ(e.status, Status::too_large);
    EXPECT_TRUE(e.text.empty());
}

TEST(Extract, UnsupportedType) {
    EXPECT_EQ(extract("\x89PNG....", "image/png", "x.png", {}, {}, hooks()).status, Status::unsupported);
    EXPECT_EQ(status_text(Status::unsupported, {}), "unsupported type");
}

TEST(Extract, TextCapPerAttachment) {
    Limits l;
    l.max_text = 10;
    std::string big(1000, 'a');
    Extracted e = extract(big, "text/plain", "a.txt", {}, l, hooks());
    EXPECT_EQ(e.status, Status::indexed);
    EXPECT_LE(e.text.size(), 10u);
}

TEST(Extract, ZipBombMemberIsSkippedTheRestIndexed) {
    Extracted e = run("bomb.zip", "application/zip");
    EXPECT_EQ(e.status, Status::indexed);
    EXPECT_TRUE(has(e, "salamanderzip"));
    EXPECT_TRUE(has(e, "bomb.txt"));  // its name is still listed
    EXPECT_NE(e.reason.find("1 member"), std::string::npos) << e.reason;
    EXPECT_LT(e.text.size(), 4096u);
}

TEST(Extract, ZipUnpackedBytesAreBoundedEvenWithoutRatio) {
    Limits l;
    l.max_ratio = 1u << 30;      // the ratio test out of the way:
    l.max_unpacked = 1u << 20;   // the total cap alone stops the bomb
    const auto t0 = std::chrono::steady_clock::now();
    Extracted e = run("bomb.zip", "application/zip", l);
    EXPECT_EQ(e.status, Status::indexed);
    EXPECT_TRUE(has(e, "salamanderzip"));
    EXPECT_LT(e.text.size(), 4096u);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

TEST(Extract, ZipMemberCountLimit) {
    Limits l;
    l.max_members = 1;
    Extracted e = run("bundle.zip", "application/zip", l);
    EXPECT_EQ(e.status, Status::indexed);
    EXPECT_TRUE(has(e, "narwhalzip.txt"));
    EXPECT_FALSE(has(e, "ocelotname"));
}

TEST(Extract, ZipNamesAreOnlyText) {
    Extracted e = run("traversal.zip", "application/zip");
    EXPECT_EQ(e.status, Status::indexed);
    EXPECT_TRUE(has(e, "../../etc/pantherpath.txt"));
    EXPECT_TRUE(has(e, "text of pantherpath member"));
    EXPECT_FALSE(std::filesystem::exists("../../etc/pantherpath.txt"));
}

TEST(Extract, ZipWithOfficeMemberAndNestingLimit) {
    Extracted e = run("bundle.zip", "application/zip");
    EXPECT_TRUE(has(e, "bisondocx"));  // inner.docx, one container down
    EXPECT_TRUE(has(e, "ocelotname.bin"));
    Limits l;
    l.max_depth = 0;
    EXPECT_EQ(run("bundle.zip", "application/zip", l).status, Status::failed);
}

TEST(Isolation, TimeoutStopsAnEndlessExtractor) {
    Limits l;
    l.timeout = std::chrono::milliseconds(300);
    const auto t0 = std::chrono::steady_clock::now();
    Extracted e = run_isolated(
        [](std::string_view, const Limits&) {
            std::atomic<unsigned long> spin{0};
            for (;;) spin.fetch_add(1, std::memory_order_relaxed);
            return Extracted{};
        },
        {}, l);
    EXPECT_EQ(e.status, Status::timed_out);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(Isolation, SleepingExtractorTimesOutByWallClock) {
    Limits l;
    l.timeout = std::chrono::milliseconds(200);
    Extracted e = run_isolated(
        [](std::string_view, const Limits&) {
            std::this_thread::sleep_for(std::chrono::hours(1));
            return Extracted{};
        },
        {}, l);
    EXPECT_EQ(e.status, Status::timed_out);
}

TEST(Isolation, MemoryLimitStopsAnAllocator) {
    if (test::under_asan || test::under_tsan)
        GTEST_SKIP() << "under ASan or TSan an allocation refused by RLIMIT_AS ends the helper in the sanitizer's "
                        "out-of-memory report (its operator new never throws std::bad_alloc), not in our 'memory "
                        "limit' failure";
    Limits l;
    l.max_memory = 64ull << 20;
    Extracted e = run_isolated(
        [](std::string_view, const Limits&) {
            std::vector<std::vector<char>> hog;
            for (;;) hog.emplace_back(std::size_t(8) << 20, 'x');  // touches every byte
            return Extracted{};
        },
        {}, l);
    EXPECT_EQ(e.status, Status::failed);
    EXPECT_NE(e.reason.find("memory"), std::string::npos) << e.reason;
}

TEST(Isolation, CrashIsAFailureNotOurs) {
    Extracted e = run_isolated(
        [](std::string_view, const Limits&) {
            ::signal(SIGSEGV, SIG_DFL);  // killed by the signal itself, also where a sanitizer handles SIGSEGV
            ::raise(SIGSEGV);
            return Extracted{};
        },
        {}, Limits{});
    EXPECT_EQ(e.status, Status::failed);
    EXPECT_NE(e.reason.find("crashed"), std::string::npos) << e.reason;
}

TEST(Isolation, ResultComesBackWhole) {
    std::string big(700000, 'w');
    Extracted e = run_isolated(
        [](std::string_view input, const Limits&) { return Extracted{Status::indexed, "r", std::string(input)}; }, big,
        Limits{});
    EXPECT_EQ(e.status, Status::indexed);
    EXPECT_EQ(e.reason, "r");
    EXPECT_EQ(e.text, big);
}

TEST(Isolation, ParallelHelpersDoNotHoldEachOthersPipes) {
    // One helper sleeps long; the other finishes at once and must not wait for the first.
    Limits slow;
    slow.timeout = std::chrono::seconds(3);
    std::thread t([&] {
        run_isolated(
            [](std::string_view, const Limits&) {
                std::this_thread::sleep_for(std::chrono::seconds(10));
                return Extracted{};
            },
            {}, slow);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto t0 = std::chrono::steady_clock::now();
    Extracted e = run("invoice.pdf", "application/pdf");
    const auto took = std::chrono::steady_clock::now() - t0;
    t.join();
    EXPECT_EQ(e.status, Status::indexed);
    EXPECT_LT(took, std::chrono::seconds(2));
}

TEST(Status, NamesRoundTrip) {
    for (Status s : {Status::indexed, Status::too_large, Status::encrypted, Status::unsupported, Status::failed,
                     Status::timed_out, Status::skipped})
        EXPECT_EQ(status_from_name(status_name(s)), s);
    EXPECT_EQ(status_from_name("nonsense"), Status::none);
}

}  // namespace
}  // namespace mv::index::extract

// Parsing with extraction: statuses on ParsedMessage::attachments, text in attachment_text.
namespace mv::index {
namespace {

std::string mime_with(const std::string& type, const std::string& name, const std::string& body,
                      const std::string& encoding = "8bit") {
    return "From: a@example.com\nSubject: s\nDate: Mon, 01 Jan 2024 10:00:00 +0000\nMIME-Version: 1.0\n"
           "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nbody words\n--b\n"
           "Content-Type: " + type + "\nContent-Disposition: attachment; filename=\"" + name +
           "\"\nContent-Transfer-Encoding: " + encoding + "\n\n" + body + "\n--b--\n";
}

TEST(ParseExtract, TextAttachmentIsAttachmentTextNotBody) {
    auto m = parse_message(mime_with("text/csv", "t.csv", "jackal;1"), ParseLimits{}, 0);
    ASSERT_TRUE(m);
    ASSERT_EQ(m->attachments.size(), 1u);
    EXPECT_EQ(m->attachments[0].status, extract::Status::indexed);
    EXPECT_NE(m->attachment_text.find("jackal"), std::string::npos);
    EXPECT_EQ(m->body_text.find("jackal"), std::string::npos);
}

TEST(ParseExtract, OversizedAttachmentIsListedWithItsSizeAndTooLarge) {
    ParseLimits l;
    l.extract.max_bytes = 1000;
    auto m = parse_message(mime_with("application/pdf", "big.pdf", "%PDF-1.4\n" + std::string(5000, 'x')), l, 0);
    ASSERT_TRUE(m);
    ASSERT_EQ(m->attachments.size(), 1u);
    EXPECT_EQ(m->attachments[0].status, extract::Status::too_large);
    EXPECT_GE(m->attachments[0].size, 5000u);
    EXPECT_TRUE(m->attachment_text.empty());
}

TEST(ParseExtract, LongTextAttachmentIsIndexedFromItsStart) {
    ParseLimits l;
    l.extract.max_text = 1000;
    auto m = parse_message(mime_with("text/plain", "big.log", "firstword " + std::string(50000, 'x') + " lastword"), l, 0);
    ASSERT_TRUE(m);
    ASSERT_EQ(m->attachments.size(), 1u);
    EXPECT_EQ(m->attachments[0].status, extract::Status::indexed);
    EXPECT_EQ(m->attachments[0].status_reason, "the first 2000 bytes");
    EXPECT_GE(m->attachments[0].size, 50000u);
    EXPECT_NE(m->attachment_text.find("firstword"), std::string::npos);
    EXPECT_EQ(m->attachment_text.find("lastword"), std::string::npos);
}

TEST(ParseExtract, DisabledListsSkipped) {
    ParseLimits l;
    l.attachment_text = false;
    auto m = parse_message(mime_with("text/plain", "a.txt", "jackal"), l, 0);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->attachments.at(0).status, extract::Status::skipped);
    EXPECT_TRUE(m->attachment_text.empty());
}

TEST(ParseExtract, ImagesAreUnsupportedWithoutReadingThem) {
    auto m = parse_message(mime_with("image/png", "p.png", "iVBORw0KGgo=", "base64"), ParseLimits{}, 0);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->attachments.at(0).status, extract::Status::unsupported);
    EXPECT_GT(m->attachments.at(0).size, 0u);
}

TEST(ParseExtract, AttachedMessageIsAttachmentTextAndStaysBody) {
    const std::string raw =
        "From: a@example.com\nSubject: outer\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
        "--b\nContent-Type: text/plain\n\nouter body\n--b\nContent-Type: message/rfc822\n\n"
        "From: Inner Person <inner@example.org>\nSubject: inner subject walrus\n\ninner body tapir\n--b--\n";
    auto m = parse_message(raw, ParseLimits{}, 0);
    ASSERT_TRUE(m);
    EXPECT_NE(m->attachment_text.find("tapir"), std::string::npos);
    EXPECT_NE(m->attachment_text.find("walrus"), std::string::npos);
    EXPECT_NE(m->attachment_text.find("inner@example.org"), std::string::npos);
    EXPECT_NE(m->body_text.find("tapir"), std::string::npos);
    EXPECT_EQ(m->attachment_text.find("outer body"), std::string::npos);
}

TEST(ParseExtract, MessageBudgetSkipsTheRest) {
    ParseLimits l;
    l.max_attachment_text = 10;
    std::string raw =
        "From: a@example.com\nSubject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
        "--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=\"1.txt\"\n\n0123456789abcdef\n"
        "--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=\"2.txt\"\n\nsecond\n--b--\n";
    auto m = parse_message(raw, l, 0);
    ASSERT_TRUE(m);
    ASSERT_EQ(m->attachments.size(), 2u);
    EXPECT_EQ(m->attachments[0].status, extract::Status::indexed);
    EXPECT_EQ(m->attachments[1].status, extract::Status::skipped);
    EXPECT_LE(m->attachment_text.size(), 10u);
}

}  // namespace
}  // namespace mv::index

// Not a test: the cost of the forked helper, for README "Attachment contents". Run with
// --gtest_also_run_disabled_tests --gtest_filter='*IsolationCost*'. The parent first touches
// 300 MiB (an import's resident size on the bulk corpus) since fork copies its page tables;
// MV_MEASURE_LATE_START=1 starts the fork server only after that (as if it forked from a big process).
namespace mv::index::extract {
namespace {

TEST(Measure, DISABLED_IsolationCost) {
    if (!std::getenv("MV_MEASURE_LATE_START")) start_helper();  // as parse_message() does, before the import grows
    const char* mib = std::getenv("MV_MEASURE_RESIDENT_MIB");
    std::vector<char> resident((mib ? std::strtoul(mib, nullptr, 10) : 300u) << 20, 1);
    resident.push_back(1);
    const std::string pdf_bytes = fixture("invoice.pdf");
    for (Isolation iso : {Isolation::in_process, Isolation::process}) {
        Limits l;
        l.isolation = iso;
        const int n = 200;
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i) ASSERT_EQ(extract(pdf_bytes, "application/pdf", "a.pdf", {}, l, hooks()).status, Status::indexed);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / n;
        std::printf("%s: %.2f ms per PDF\n", iso == Isolation::process ? "forked helper" : "in process", ms);
    }
    EXPECT_EQ(resident.back(), 1);
}

}  // namespace
}  // namespace mv::index::extract
