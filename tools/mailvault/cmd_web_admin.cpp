// `mailvault passwd`, `token create|list|revoke`, `audit`: administration of the web side.
#include <termios.h>
#include <unistd.h>

#include <ctime>
#include <iostream>

#include "index/util/iso_date.hpp"
#include "query/parser.hpp"
#include "tools/mailvault/cli.hpp"
#include "web/audit.hpp"
#include "web/auth.hpp"
#include "web/tokens.hpp"

namespace mv::cli {
namespace {

int passwd() {
    const bool tty = isatty(STDIN_FILENO);
    termios saved{};
    if (tty) {
        std::cerr << "Password: " << std::flush;
        tcgetattr(STDIN_FILENO, &saved);
        termios quiet = saved;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::string pw;
    std::getline(std::cin, pw);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        std::cerr << "\n";
    }
    if (!pw.empty() && pw.back() == '\r') pw.pop_back();
    if (pw.empty()) return report(make_error(Error::Kind::usage, "passwd: empty password"));
    auto h = web::hash_password(pw);
    if (!h) return report(h.error());
    std::cout << *h << "\n";
    return k_ok;
}

int token_create(Context& ctx, const std::string& user) {
    bool known = false;
    for (const auto& u : ctx.config.users) known = known || u.name == user;
    if (!known) return report(make_error(Error::Kind::usage, "token create: no [users." + user + "] in the configuration"));
    if (!std::filesystem::exists(ctx.archive_dir / "FORMAT"))
        return report(make_error(Error::Kind::not_found, "token create: no archive at " + ctx.archive_dir.string()));
    auto t = web::create_token(ctx.archive_dir, user);
    if (!t) return report(t.error());
    std::cout << t->second << "\n";
    log_line(ctx, "token " + t->first.id + " created for " + user + " (shown once; stored hashed)");
    return k_ok;
}

int token_list(Context& ctx) {
    auto ts = web::load_tokens(ctx.archive_dir);
    if (!ts) return report(ts.error());
    for (const auto& t : *ts) std::cout << t.id << "  " << t.user << "  " << index::iso_date(t.created) << "\n";
    return k_ok;
}

int token_revoke(Context& ctx, const std::string& id) {
    auto r = web::revoke_token(ctx.archive_dir, id);
    if (!r) return report(r.error());
    log_line(ctx, "token " + id + " revoked");
    return k_ok;
}

int audit(Context& ctx, const std::string& since, const std::string& user, bool json) {
    std::int64_t from = 0;
    if (!since.empty()) {
        auto r = query::parse_date_range(since, static_cast<std::int64_t>(std::time(nullptr)));
        if (!r) return report(make_error(Error::Kind::usage, "audit --since: " + r.error().message));
        from = r->lo.value_or(0);
    }
    auto log = web::read_audit(ctx.archive_dir);
    if (!log) return report(log.error());
    for (const auto& rec : log->records) {
        if (rec.time < from) continue;
        if (!user.empty() && rec.json.value("user", std::string{}) != user) continue;
        if (json) {
            std::cout << rec.json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
            continue;
        }
        std::string detail;
        for (const auto& [k, v] : rec.json.items()) {
            if (k == "time" || k == "action" || k == "user" || k == "client" || k == "prev") continue;
            detail += " " + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
        }
        std::cout << rec.json.value("time", "") << "  " << rec.json.value("user", "") << "  "
                  << rec.json.value("client", "") << "  " << rec.json.value("action", "") << detail << "\n";
    }
    if (log->broken_at) {
        std::cerr << "mailvault: audit log chain broken at line " << *log->broken_at
                  << ": the log was changed after it was written\n";
        return k_partial;
    }
    return k_ok;
}

}  // namespace

void register_web_admin(CLI::App& app, Context& ctx) {
    auto* pw = app.add_subcommand("passwd", "read a password on stdin, print its Argon2id hash for [users.NAME] password_hash");
    pw->callback([&ctx] { ctx.run = [] { return passwd(); }; });

    auto* token = app.add_subcommand("token", "API tokens for the JSON API (Authorization: Bearer)");
    token->require_subcommand(1);
    auto user = std::make_shared<std::string>();
    auto* create = token->add_subcommand("create", "print a new API token for USER (stored hashed in the archive)");
    create->add_option("USER", *user, "user name ([users.NAME])")->required();
    create->callback([&ctx, user] { ctx.run = [&ctx, user] { return token_create(ctx, *user); }; });
    auto* list = token->add_subcommand("list", "list tokens: id, user, created");
    list->callback([&ctx] { ctx.run = [&ctx] { return token_list(ctx); }; });
    auto id = std::make_shared<std::string>();
    auto* revoke = token->add_subcommand("revoke", "revoke token ID");
    revoke->add_option("ID", *id, "token id (from token list)")->required();
    revoke->callback([&ctx, id] { ctx.run = [&ctx, id] { return token_revoke(ctx, *id); }; });

    auto* au = app.add_subcommand("audit", "who logged in, searched, viewed or downloaded what, and when");
    auto since = std::make_shared<std::string>();
    auto who = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    au->add_option("--since", *since, "from this date (as date: in queries, e.g. 2026-01-01 or 7d)");
    au->add_option("--user", *who, "only this user");
    au->add_flag("--json", *json, "JSON lines as stored");
    au->callback([&ctx, since, who, json] { ctx.run = [&ctx, since, who, json] { return audit(ctx, *since, *who, *json); }; });
}

}  // namespace mv::cli
