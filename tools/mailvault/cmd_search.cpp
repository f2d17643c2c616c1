// search, show, link, export, stats, verify: thin wrappers over query/.
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <thread>
#include <fstream>
#include <iostream>

#include "query/export.hpp"
#include "query/inspect.hpp"
#include "query/prometheus.hpp"
#include "query/stats.hpp"
#include "query/search.hpp"
#include "tools/mailvault/cli.hpp"
#include "tools/mailvault/interrupt.hpp"
#include "tools/mailvault/verify_source.hpp"

namespace mv::cli {
namespace {

query::LinkConfig link_config(const Context& ctx) {
    query::LinkConfig c;
    c.base_url = ctx.config.links_base_url;
    c.templ = ctx.config.links_template;
    c.title_field = ctx.config.links_title_field;
    return c;
}

// Opens the archive read-only and checks [links]; nullptr with `code` set on failure.
std::unique_ptr<index::Archive> open_for_query(const Context& ctx, int& code) {
    if (auto v = query::validate_template(ctx.config.links_template); !v) {
        code = report(v.error());
        return nullptr;
    }
    return ctx.open_archive(index::OpenMode::read, code);
}

query::ParseOptions parse_options(const index::Archive& archive) {
    query::ParseOptions p;
    p.stemmer = archive.stemmer();
    p.zone = query::DateZone::local;  // date:2023-05-01 is that day where the user is (TZ)
    return p;
}

// Parses once to tell the user what the query means where it may surprise ("form:" is no
// field, ...); errors are left to the search itself.
void print_notices(const Context& ctx, const index::Archive& archive, const std::string& q, const query::ParseOptions& o) {
    if (ctx.quiet) return;
    try {
        auto p = query::parse(q, archive.database(), o);
        if (p)
            for (const auto& n : p->notices) log_line(ctx, "mailvault: note: " + n);
    } catch (const Xapian::Error&) {
    }
}

// After a search: a damaged index shard was left out. Says so on stderr; the run is partial (exit 1).
int incomplete_if_damaged(const index::Archive& archive, int code) {
    const auto damaged = archive.damaged_shards();
    if (damaged.empty()) return code;
    for (const auto& [shard, why] : damaged)
        std::cerr << "mailvault: warning: index " << archive.shard_location(shard).filename().string() << " is damaged (" << why
                  << "): its messages (docnos " << shard + 1 << ", " << shard + 1 + archive.shard_count() << ", ...) are left out\n";
    std::cerr << "mailvault: results are incomplete; `mailvault verify` names the damage, `mailvault reindex` rebuilds the "
                 "index from the originals\n";
    return code == k_ok ? k_partial : code;
}

struct SearchArgs {
    std::vector<std::string> words;
    std::uint64_t limit = 50;  // on a terminal; piped: every match, unless --limit
    std::uint64_t offset = 0;
    std::string sort = "newest";
    bool json = false;
    bool count = false;
    unsigned repeat = 0;  // benchmarking: run in-process this many times, timings to stderr
};

std::string join_query(const std::vector<std::string>& words) {
    std::string q;
    for (const auto& w : words) {
        if (!q.empty()) q += ' ';
        q += w;
    }
    return q;
}

bool parse_docno(const std::string& s, std::uint64_t& docno) {
    if (s.empty() || s.size() > 19) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    docno = std::stoull(s);
    return docno > 0;
}

int bad_docno(const std::string& s) {
    return report(make_error(Error::Kind::usage, "\"" + s + "\" is not a document number (a positive integer)"));
}

void register_search_cmd(CLI::App& app, Context& ctx) {
    auto args = std::make_shared<SearchArgs>();
    auto* sub = app.add_subcommand("search", "full-text search");
    sub->add_option("query", args->words, "query (words join into one query; -word negates)")->required();
    sub->add_option("--limit", args->limit,
                    "hits to show (default: 50 on a terminal, every match when piped; 0: every match)");
    sub->add_option("--offset", args->offset, "hits to skip");
    sub->add_option("--sort", args->sort, "newest | oldest | relevance (default newest)");
    sub->add_flag("--json", args->json, "one JSON object per line (dates in UTC)");
    sub->add_flag("--count", args->count, "print the number of matches only ({\"count\":N} with --json)");
    sub->add_option("--repeat", args->repeat, "benchmark: run N times in-process, p50/p95 on stderr")
        ->group("");  // hidden
    sub->footer(k_query_help);
    sub->allow_extras();  // "-word" arguments are negated query words, not options
    sub->callback([&ctx, args, sub] {
        const bool limit_given = sub->count("--limit") > 0;
        for (const auto& extra : sub->remaining()) {
            if (extra == "--") continue;
            // "--limt" and "-n" are options mistyped, not words: -x of one letter is an
            // option everywhere else, so a one-letter word is negated inside the query
            // ('kernel -n'), never as an argument of its own.
            const bool short_option = extra.size() == 2 && extra[0] == '-' && std::isalpha(static_cast<unsigned char>(extra[1]));
            if (extra.rfind("--", 0) == 0 || short_option) {
                ctx.run = [extra] {
                    return report(make_error(Error::Kind::usage,
                                             "search: unknown option " + extra +
                                                 " (options: --limit --offset --sort --json --count; to exclude a "
                                                 "one-letter word, quote it with the query: 'kernel " + extra + "')"));
                };
                return;
            }
            args->words.push_back(extra);
        }
        if (!limit_given && !isatty(STDOUT_FILENO)) args->limit = 0;  // piped: every match, as notmuch does
        ctx.run = [&ctx, args]() -> int {
            auto sort = query::parse_sort(args->sort);
            if (!sort) return report(sort.error());
            int code = 0;
            auto archive = open_for_query(ctx, code);
            if (!archive) return code;
            const std::string q = join_query(args->words);
            print_notices(ctx, *archive, q, parse_options(*archive));
            if (args->count) {
                auto n = query::count(*archive, q, parse_options(*archive));
                if (!n) return report(n.error());
                std::cout << (args->json ? "{\"count\":" + std::to_string(*n) + "}" : std::to_string(*n)) << "\n";
                return incomplete_if_damaged(*archive, std::cout.flush() ? k_ok : k_nothing);
            }
            query::SearchOptions o;
            o.sort = *sort;
            o.limit = args->limit ? args->limit : std::max<std::uint64_t>(1, archive->document_count());
            o.offset = args->offset;
            o.parse = parse_options(*archive);
            query::LinkBuilder links(link_config(ctx));
            auto format = [&](const query::SearchResult& r) {
                std::string out;
                for (const auto& h : r.hits) {
                    out += args->json ? query::hit_json(h) : query::hit_line(h);
                    out += '\n';
                }
                return out;
            };
            if (args->repeat) {
                // What a long-running process (the web server) pays per query: open the
                // archive, parse, match, read and format the hits.
                std::vector<double> ms, cpu;
                auto cpu_ms = [] {
                    timespec t{};
                    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
                    return double(t.tv_sec) * 1e3 + double(t.tv_nsec) / 1e6;
                };
                for (unsigned i = 0; i < args->repeat; ++i) {
                    const double c0 = cpu_ms();
                    auto t0 = std::chrono::steady_clock::now();
                    int c = 0;
                    auto a = ctx.open_archive(index::OpenMode::read, c);
                    if (!a) return c;
                    auto r = query::search(*a, q, o, links);
                    if (!r) return report(r.error());
                    std::string out = format(*r);
                    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
                    cpu.push_back(cpu_ms() - c0);
                }
                std::sort(ms.begin(), ms.end());
                std::sort(cpu.begin(), cpu.end());
                auto pct = [](const std::vector<double>& v, double p) {
                    return v[static_cast<std::size_t>(p * double(v.size() - 1) + 0.5)];
                };
                char buf[200];
                std::snprintf(buf, sizeof buf, "search: %u in-process runs: p50 %.2f ms, p95 %.2f ms (cpu p50 %.2f ms)",
                              args->repeat, pct(ms, 0.5), pct(ms, 0.95), pct(cpu, 0.5));
                std::cerr << buf << "\n";
            }
            auto r = query::search(*archive, q, o, links);
            if (!r) return report(r.error());
            std::string out = format(*r);
            std::cout << out << std::flush;
            if (!std::cout) return report_output("search: cannot write the results to stdout");
            if (!args->json && !ctx.quiet && isatty(STDOUT_FILENO)) {
                auto n = query::count(*archive, q, o.parse);
                const std::uint64_t total = n ? *n : r->total;
                std::cerr << r->hits.size() << " of " << total << " matches";
                if (args->offset + r->hits.size() < total) std::cerr << " (more with --limit N or --limit 0)";
                std::cerr << "\n";
            }
            return incomplete_if_damaged(*archive, k_ok);
        };
    });
}

void register_link_cmd(CLI::App& app, Context& ctx) {
    auto docno_s = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* sub = app.add_subcommand("link", "the direct link of a message and its title");
    sub->add_option("docno", *docno_s, "document number")->required();
    sub->add_flag("--json", *json, "as JSON");
    sub->callback([&ctx, docno_s, json] {
        ctx.run = [&ctx, docno_s, json]() -> int {
            std::uint64_t docno = 0;
            if (!parse_docno(*docno_s, docno)) return bad_docno(*docno_s);
            int code = 0;
            auto archive = open_for_query(ctx, code);
            if (!archive) return code;
            query::LinkBuilder links(link_config(ctx));
            auto hit = query::load_hit(*archive, docno, links);
            if (!hit) return report(hit.error());
            if (*json) std::cout << query::link_json(*hit) << "\n";
            else std::cout << hit->link << "\n" << hit->title << "\n";
            return k_ok;
        };
    });
}


bool write_stdout(std::string_view bytes) {
    std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    std::cout.flush();
    return static_cast<bool>(std::cout);
}

// "" or why not (errno text).
std::string write_file(const std::string& path, std::string_view bytes) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return std::strerror(errno);
    const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    const int err = errno;
    if (std::fclose(f) != 0 || !ok) return std::strerror(ok ? errno : err);
    return {};
}

struct ShowArgs {
    std::string docno;
    bool raw = false;
    bool json = false;
    bool thread = false;
    std::size_t attachment = 0;
    std::string output;
};

void register_show_cmd(CLI::App& app, Context& ctx) {
    auto args = std::make_shared<ShowArgs>();
    auto* sub = app.add_subcommand("show", "one message: headers, text, attachments");
    sub->add_option("docno", args->docno, "document number")->required();
    sub->add_flag("--raw", args->raw, "write the original bytes");
    sub->add_flag("--json", args->json, "as JSON (dates in UTC)");
    sub->add_flag("--thread", args->thread, "the conversation it belongs to, oldest first (one line or JSON object each)");
    auto* att = sub->add_option("--attachment", args->attachment, "write attachment N (1-based), decoded");
    sub->add_option("-o,--output", args->output, "write to FILE instead of stdout");
    sub->callback([&ctx, args, att] {
        const bool attachment = att->count() > 0;
        ctx.run = [&ctx, args, attachment]() -> int {
            std::uint64_t docno = 0;
            if (!parse_docno(args->docno, docno)) return bad_docno(args->docno);
            const int modes = int(args->raw) + int(attachment) + int(args->thread);
            if (modes > 1)
                return report(make_error(Error::Kind::usage, "show: --raw, --attachment and --thread exclude each other"));
            if (args->json && (args->raw || attachment))
                return report(make_error(Error::Kind::usage, std::string("show: --json cannot be combined with ") +
                                                                 (args->raw ? "--raw" : "--attachment") +
                                                                 " (the attachments are listed by show --json)"));
            if (attachment && args->attachment == 0)
                return report(make_error(Error::Kind::usage, "show: attachments are numbered from 1 (see show " +
                                                                 args->docno + ")"));
            int code = 0;
            auto archive = open_for_query(ctx, code);
            if (!archive) return code;
            auto emit = [&](std::string_view bytes) -> int {
                if (args->output.empty() || args->output == "-") {
                    if (!write_stdout(bytes)) return report_output("show: cannot write to stdout");
                    return k_ok;
                }
                if (auto err = write_file(args->output, bytes); !err.empty())
                    return report_output("show: cannot write " + args->output + ": " + err);
                return k_ok;
            };
            if (args->raw || attachment) {
                if (!archive->document(docno)) {
                    auto damaged = archive->read_original(docno);  // says so when its index shard is damaged
                    if (!damaged && damaged.error().kind == Error::Kind::corrupt) return report(damaged.error());
                    return report(make_error(Error::Kind::not_found, "no message " + std::to_string(docno) + " in the archive"));
                }
                auto raw = archive->read_original(docno);
                if (!raw) return report(raw.error());
                if (args->raw) return emit(*raw);
                auto part = query::extract_attachment(*raw, args->attachment);
                if (!part) return report(part.error());
                return emit(*part);
            }
            query::LinkBuilder links(link_config(ctx));
            if (args->thread) {
                auto hits = query::thread_hits(*archive, docno, links);
                if (!hits) return report(hits.error());
                std::string out;
                for (const auto& h : *hits)
                    out += (args->json ? query::hit_json(h) : (h.docno == docno ? "> " : "  ") + query::hit_line(h)) + "\n";
                return emit(out);
            }
            auto view = query::load_view(*archive, docno, links);
            if (!view) return report(view.error());
            return emit(args->json ? query::view_json(*view) + "\n" : query::view_text(*view));
        };
    });
}

struct ExportArgs {
    std::vector<std::string> words;
    std::string mbox, eml, attachments;
    std::vector<std::string> types, names;
    bool force = false;
};

std::string rate_line(const query::ExportProgress& p, double secs) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "export: %llu/%llu messages, %.1f MiB, %.0f msgs/s",
                  static_cast<unsigned long long>(p.done), static_cast<unsigned long long>(p.total), p.bytes / 1048576.0,
                  secs > 0 ? p.done / secs : 0.0);
    return buf;
}

std::string attachments_line(const query::AttachmentExportProgress& p, double secs) {
    char buf[240];
    std::snprintf(buf, sizeof buf,
                  "export: %llu/%llu messages, %llu attachments written, %llu already there, %.1f MiB, %.0f msgs/s",
                  static_cast<unsigned long long>(p.messages_done), static_cast<unsigned long long>(p.messages_total),
                  static_cast<unsigned long long>(p.written), static_cast<unsigned long long>(p.kept),
                  p.bytes / 1048576.0, secs > 0 ? p.messages_done / secs : 0.0);
    return buf;
}

// export QUERY --attachments DIR: the decoded attachments and a manifest (query/export.hpp).
int run_attachment_export(const Context& ctx, const ExportArgs& args) {
    int code = 0;
    auto archive = open_for_query(ctx, code);
    if (!archive) return code;
    auto docnos = query::all_matches(*archive, join_query(args.words), parse_options(*archive));
    if (!docnos) return report(docnos.error());
    query::AttachmentFilter filter{args.types, args.names};
    auto t0 = std::chrono::steady_clock::now();
    auto last = t0;
    auto secs = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    auto progress = [&](const query::AttachmentExportProgress& p) {
        if (!ctx.tty) return;
        auto now = std::chrono::steady_clock::now();
        if (now - last < std::chrono::milliseconds(200) && p.messages_done != p.messages_total) return;
        last = now;
        std::cerr << "\r" << attachments_line(p, secs()) << "\x1b[K" << std::flush;
    };
    InterruptGuard interrupt(ctx.quiet);
    auto r = query::export_attachments(*archive, *docnos, args.attachments, filter, progress,
                                       args.force ? query::ExistingFiles::replace : query::ExistingFiles::refuse,
                                       interrupt.flag());
    if (ctx.tty) std::cerr << "\n";
    if (!r && r.error().kind == Error::Kind::locked) return report(make_error(Error::Kind::locked, "export: " + r.error().message));
    if (!r) return report_output("export: cannot write " + r.error().message);  // nothing written
    for (const auto& err : r->errors) std::cerr << "mailvault: export: " << err << "\n";
    if (r->failed > r->errors.size())
        std::cerr << "mailvault: export: " << (r->failed - r->errors.size()) << " more failures not listed\n";
    std::string summary = attachments_line(*r, secs());
    if (r->failed) summary += ", " + std::to_string(r->failed) + " failed";
    log_line(ctx, summary);
    if (r->interrupted) {
        std::cerr << "mailvault: export interrupted; the manifest lists what was written, run it again to continue\n";
        return k_interrupted;
    }
    if (r->aborted) {
        std::cerr << "mailvault: export stopped: " << args.attachments
                  << " cannot be written; run it again when it can (what is there is kept)\n";
        return r->written + r->kept ? k_partial : k_nothing;
    }
    return r->failed ? k_partial : k_ok;
}

void register_export_cmd(CLI::App& app, Context& ctx) {
    auto args = std::make_shared<ExportArgs>();
    auto* sub = app.add_subcommand("export", "write the originals of all matches, or their attachments");
    sub->add_option("query", args->words, "query")->required();
    auto* m = sub->add_option("--mbox", args->mbox, "mboxrd file (- for stdout)");
    auto* e = sub->add_option("--eml", args->eml, "directory for DOCNO.eml files");
    auto* a = sub->add_option("--attachments", args->attachments,
                              "directory for the decoded attachments (DOCNO-N-NAME) and manifest.csv/.jsonl")
                 ->type_name("DIR");
    m->excludes(e);
    a->excludes(m);
    a->excludes(e);
    sub->add_option("--type", args->types,
                    "with --attachments: only attachments whose MIME type (GLOB with /: application/pdf, image/*) "
                    "or extension/subtype (pdf, xls*) matches; repeatable")
        ->type_name("GLOB")
        ->allow_extra_args(false);
    sub->add_option("--name", args->names, "with --attachments: only attachments whose file name matches GLOB "
                                           "(case-insensitive: '*.pdf', 'invoice*'); repeatable")
        ->type_name("GLOB")
        ->allow_extra_args(false);
    sub->add_flag("--force", args->force,
                  "overwrite an existing mbox file or .eml files; with --attachments: replace files whose content differs");
    sub->callback([&ctx, args] {
        ctx.run = [&ctx, args]() -> int {
            if (int(!args->mbox.empty()) + int(!args->eml.empty()) + int(!args->attachments.empty()) != 1)
                return report(make_error(Error::Kind::usage, "export: give --mbox FILE, --eml DIR or --attachments DIR"));
            if (args->attachments.empty() && (!args->types.empty() || !args->names.empty()))
                return report(make_error(Error::Kind::usage, "export: --type and --name select attachments; use them with --attachments DIR"));
            if (!args->attachments.empty()) return run_attachment_export(ctx, *args);
            int code = 0;
            auto archive = open_for_query(ctx, code);
            if (!archive) return code;
            auto docnos = query::all_matches(*archive, join_query(args->words), parse_options(*archive));
            if (!docnos) return report(docnos.error());
            auto t0 = std::chrono::steady_clock::now();
            auto last = t0;
            auto secs = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
            auto progress = [&](const query::ExportProgress& p) {
                if (!ctx.tty) return;
                auto now = std::chrono::steady_clock::now();
                if (now - last < std::chrono::milliseconds(200) && p.done != p.total) return;
                last = now;
                std::cerr << "\r" << rate_line(p, secs()) << "\x1b[K" << std::flush;
            };
            auto fmt = args->mbox.empty() ? query::ExportFormat::eml : query::ExportFormat::mbox;
            auto dest = args->mbox.empty() ? args->eml : args->mbox;
            auto r = query::export_messages(*archive, *docnos, fmt, dest, progress,
                                            args->force ? query::ExistingFiles::replace : query::ExistingFiles::refuse);
            if (ctx.tty) std::cerr << "\n";
            if (!r && r.error().kind == Error::Kind::io) return report_output("export: cannot write " + r.error().message);  // nothing written
            if (!r) return report(r.error());
            for (const auto& err : r->errors) std::cerr << "mailvault: export: " << err << "\n";
            log_line(ctx, rate_line(*r, secs()) + (r->errors.empty() ? "" : ", " + std::to_string(r->errors.size()) + " failed"));
            return r->errors.empty() ? k_ok : k_partial;
        };
    });
}

void register_stats_cmd(CLI::App& app, Context& ctx) {
    auto json = std::make_shared<bool>(false);
    auto* sub = app.add_subcommand("stats", "counts per source and mailbox, sizes, last sync per source");
    auto prometheus = std::make_shared<bool>(false);
    sub->add_flag("--json", *json, "as JSON");
    sub->add_flag("--prometheus", *prometheus, "node_exporter text-file format (for the textfile collector)");
    sub->callback([&ctx, json, prometheus] {
        ctx.run = [&ctx, json, prometheus]() -> int {
            int code = 0;
            auto archive = ctx.open_archive(index::OpenMode::read, code);
            if (!archive) return code;
            if (*prometheus) {  // issue 13 (ops): query/prometheus.*
                auto p = query::prometheus_text(*archive);
                if (!p) return report(p.error());
                std::cout << *p << std::flush;
                return k_ok;
            }
            auto s = query::compute_stats(*archive);
            if (!s) return report(s.error());
            std::cout << (*json ? query::stats_json(*s) + "\n" : query::stats_text(*s)) << std::flush;
            return k_ok;
        };
    });
}

void register_verify_cmd(CLI::App& app, Context& ctx) {
    auto* sub = app.add_subcommand("verify", "re-hash every original against the index; --source: compare a server with the archive");
    auto threads = std::make_shared<unsigned>(std::max(1u, std::thread::hardware_concurrency()));
    sub->add_option("--threads", *threads, "worker threads (default: all cores)");
    auto source = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    sub->add_option("--source", *source,
                    "list the server's messages of this configured source (IMAP, POP3, Graph) and name every one not archived");
    sub->add_flag("--json", *json, "with --source: one JSON object");
    sub->callback([&ctx, threads, source, json] {
        ctx.run = [&ctx, threads, source, json]() -> int {
            if (!source->empty()) return run_verify_source(ctx, *source, *json);
            if (*json) return report(make_error(Error::Kind::usage, "verify: --json goes with --source"));
            int code = 0;
            auto archive = ctx.open_archive(index::OpenMode::read, code);
            if (!archive) return code;
            auto progress = [&](std::uint64_t done, std::uint64_t total) {
                if (ctx.tty) std::cerr << "\rverify: " << done << "/" << total << "\x1b[K" << std::flush;
            };
            auto r = query::verify_archive(*archive, *threads, progress);
            if (ctx.tty) std::cerr << "\n";
            if (!r) return report(r.error());
            for (const auto& sh : r->shards) {
                std::cout << "damaged index " << sh.name << ": " << sh.what << "; it holds " << sh.docnos.size()
                          << " messages, not searchable until `mailvault reindex`:";
                for (auto d : sh.docnos) std::cout << " " << d;
                std::cout << "\n";
            }
            for (const auto& i : r->issues) std::cout << "damaged " << i.docno << ": " << i.what << "\n";
            char buf[200];
            std::snprintf(buf, sizeof buf, "verify: %llu originals, %.1f MiB in %.2f s (%.0f MiB/s), %zu damaged",
                          static_cast<unsigned long long>(r->checked), r->bytes / 1048576.0, r->seconds,
                          r->seconds > 0 ? r->bytes / 1048576.0 / r->seconds : 0.0, r->issues.size());
            std::cout << std::flush;
            std::cerr << buf << "\n";
            if (!r->shards.empty()) std::cerr << "verify: " << r->shards.size() << " damaged index shard(s)\n";
            return r->issues.empty() && r->shards.empty() ? k_ok : k_partial;
        };
    });
}

void register_inspect_cmds(CLI::App& app, Context& ctx) {
    register_show_cmd(app, ctx);
    register_export_cmd(app, ctx);
    register_stats_cmd(app, ctx);
    register_verify_cmd(app, ctx);
}

}  // namespace

void register_search(CLI::App& app, Context& ctx) {
    register_search_cmd(app, ctx);
    register_link_cmd(app, ctx);
    register_inspect_cmds(app, ctx);
}

}  // namespace mv::cli
