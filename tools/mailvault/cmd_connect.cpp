// `mailvault connect SOURCE`: delegated OAuth2 sign-in (device code flow) for an imap/pop3
// source with auth = "xoauth2", or for [smtp] (`connect smtp`); stores the refresh token.
#include <iostream>
#include <thread>

#include "ingest/oauth/delegated.hpp"
#include "tools/mailvault/mail.hpp"

namespace mv::cli {

namespace {

int run_connect(Context& ctx, const std::string& name) {
    const SourceConfig* sc = nullptr;
    std::string protocol;
    if (name == "smtp" && !ctx.config.source("smtp")) {
        if (!ctx.config.smtp) return report(make_error(Error::Kind::usage, "connect smtp: no [smtp] in the configuration"));
        sc = &*ctx.config.smtp;
        protocol = "smtp";
    } else {
        sc = ctx.config.source(name);
        if (!sc) return report(make_error(Error::Kind::usage, "no source named '" + name + "' in the configuration"));
        protocol = sc->type;
        if (protocol != "imap" && protocol != "pop3")
            return report(make_error(Error::Kind::usage, "source '" + name + "': connect signs in imap, pop3 and smtp accounts; a " +
                                                             protocol + " source needs no sign-in" +
                                                             (protocol == "graph" ? " (it uses the app's client credentials)" : "")));
    }
    const std::string who = protocol == "smtp" ? "[smtp]" : "source '" + name + "'";
    if (sc->get("auth") != "xoauth2")
        return report(make_error(Error::Kind::usage, who + ": auth is not \"xoauth2\", so there is nothing to sign in"));
    if (ingest::oauth::oauth_mode(*sc) == ingest::oauth::OAuthMode::app_only)
        return report(make_error(Error::Kind::usage, who + ": oauth = \"app\" signs in with the app's client credentials; connect is not needed"));
    if (ingest::oauth::oauth_mode(*sc) == ingest::oauth::OAuthMode::static_token)
        return report(make_error(Error::Kind::usage, who + ": token_env / token_file / token is set, which takes precedence over a stored sign-in; remove it first"));
    auto app = ingest::oauth::read_delegated_app(*sc, protocol);
    if (!app) return report(app.error());
    std::error_code ec;
    std::filesystem::create_directories(ctx.archive_dir, ec);
    if (ec) return report(make_error(Error::Kind::io, "cannot create archive " + ctx.archive_dir.string() + ": " + ec.message()));

    auto transport = ingest::oauth::default_transport();
    auto code = ingest::oauth::start_device_code(*app, transport);
    if (!code) return report(code.error());
    std::cout << "To sign in " << who << ", open " << code->verification_uri << " in a browser and enter the code "
              << code->user_code << "\n"
              << "(the code is valid for " << code->expires_in / 60 << " minutes; scopes: " << app->scope_param() << ")\n"
              << std::flush;
    auto sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
    auto status = [&ctx](const std::string& line) { log_line(ctx, "connect: " + line); };
    auto tokens = ingest::oauth::run_device_code_flow(*app, *code, transport, sleep, status);
    if (!tokens) return report(tokens.error());
    ingest::oauth::TokenStore store(ctx.archive_dir);
    auto grant = ingest::oauth::store_sign_in(*app, store, *tokens);
    if (!grant) return report(grant.error());
    std::cout << "connect " << name << ": signed in" << (grant->account.empty() ? "" : " as " + grant->account)
              << "; the refresh token is stored in " << store.file(app->source).string() << " (mode 0600)\n";
    return k_ok;
}

}  // namespace

void register_connect(CLI::App& app, Context& ctx) {
    auto name = std::make_shared<std::string>();
    auto* connect = app.add_subcommand("connect", "OAuth2 sign-in for delegated sources and [smtp] (device code flow)");
    connect->add_option("source", *name, "source name, or smtp")->required();
    connect->callback([&ctx, name] { ctx.run = [&ctx, name] { return run_connect(ctx, *name); }; });
}

}  // namespace mv::cli
