// search, show, link, export, stats, verify: thin wrappers over query/.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "query/inspect.hpp"
#include "query/search.hpp"
#include "tools/mailvault/cli.hpp"

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
    return p;
}

struct SearchArgs {
    std::vector<std::string> words;
    std::uint64_t limit = 50;
    std::uint64_t offset = 0;
    std::string sort = "newest";
    bool json = false;
    bool count = false;
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
    auto* sub = app.add_subcommand("search", "full-text search (query language: see DESIGN.md)");
    sub->add_option("query", args->words, "query")->required();
    sub->add_option("--limit", args->limit, "hits to show (default 50)");
    sub->add_option("--offset", args->offset, "hits to skip");
    sub->add_option("--sort", args->sort, "newest | oldest | relevance (default newest)");
    sub->add_flag("--json", args->json, "one JSON object per line");
    sub->add_flag("--count", args->count, "print the number of matches only");
    sub->callback([&ctx, args] {
        ctx.run = [&ctx, args]() -> int {
            auto sort = query::parse_sort(args->sort);
            if (!sort) return report(sort.error());
            int code = 0;
            auto archive = open_for_query(ctx, code);
            if (!archive) return code;
            const std::string q = join_query(args->words);
            if (args->count) {
                auto n = query::count(*archive, q, parse_options(*archive));
                if (!n) return report(n.error());
                std::cout << *n << "\n";
                return k_ok;
            }
            query::SearchOptions o;
            o.sort = *sort;
            o.limit = args->limit;
            o.offset = args->offset;
            o.parse = parse_options(*archive);
            query::LinkBuilder links(link_config(ctx));
            auto r = query::search(*archive, q, o, links);
            if (!r) return report(r.error());
            std::string out;
            for (const auto& h : r->hits) {
                out += args->json ? query::hit_json(h) : query::hit_line(h);
                out += '\n';
            }
            std::cout << out << std::flush;
            if (!args->json && !ctx.quiet && isatty(STDOUT_FILENO))
                std::cerr << r->hits.size() << " of " << r->total << " matches\n";
            return k_ok;
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

void register_inspect_cmds(CLI::App&, Context&) {}

}  // namespace

void register_search(CLI::App& app, Context& ctx) {
    register_search_cmd(app, ctx);
    register_link_cmd(app, ctx);
    register_inspect_cmds(app, ctx);
}

}  // namespace mv::cli
