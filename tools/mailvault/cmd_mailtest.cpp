// `mailvault mail-test [--to ADDR]...`: sends a test message through [smtp] and prints the
// server's final reply, or the step that failed.
#include <unistd.h>

#include <ctime>
#include <iostream>

#include "ingest/oauth/delegated.hpp"
#include "ingest/smtp/smtp_client.hpp"
#include "tools/mailvault/mail.hpp"

namespace mv::cli {

namespace {

struct MailTestArgs {
    std::vector<std::string> to;
    bool verbose = false;
};

int run_mail_test(Context& ctx, const MailTestArgs& args) {
    if (!ctx.config.smtp)
        return report(make_error(Error::Kind::usage, "mail-test: no [smtp] in the configuration" +
                                                         (ctx.config.file.empty() ? std::string(" (no config file; use --config)") : "")));
    auto cfg = ingest::oauth::with_access_token(*ctx.config.smtp, "smtp", ctx.archive_dir);
    if (!cfg) {
        std::cerr << "mailvault: mail-test: nothing sent: " << cfg.error().message << "\n";
        return cfg.error().kind == Error::Kind::usage ? k_usage : k_nothing;
    }
    auto settings = ingest::smtp::read_settings(*cfg);
    if (!settings) return report(settings.error());
    std::vector<std::string> to = args.to.empty() ? settings->test_recipients : args.to;
    if (to.empty()) return report(make_error(Error::Kind::usage, "mail-test: no recipients (set smtp.test_recipients or use --to ADDR)"));

    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) std::snprintf(host, sizeof host, "localhost");
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    ingest::smtp::MailMessage m;
    m.from = settings->sender;
    m.to = to;
    m.subject = "mailvault test message from " + std::string(host);
    m.text = "This is a test message from mailvault on " + std::string(host) + ", sent " + when + " through " +
             settings->describe() + ".\n\nIf you can read this, run reports will reach you too.\n";
    ingest::smtp::Transcript transcript;
    if (args.verbose) transcript = [](const std::string& l) { std::cerr << "smtp: " << l << "\n"; };
    ingest::smtp::Failure failure;
    auto out = ingest::smtp::send(*settings, to, ingest::smtp::build_message(m), &failure, transcript);
    if (!out) {
        std::cerr << "mailvault: mail-test: nothing sent: " << out.error().message << "\n";
        return out.error().kind == Error::Kind::usage ? k_usage : k_nothing;
    }
    for (const auto& [rcpt, why] : out->refused) std::cerr << "mailvault: mail-test: recipient <" << rcpt << "> refused: " << why << "\n";
    std::cout << "mail-test: sent to " << out->accepted.size() << " of " << to.size() << " recipient(s) via "
              << settings->endpoint.host << ":" << settings->endpoint.port << " (" << (out->tls ? "TLS" : "no TLS")
              << (out->auth_mechanism.empty() ? ", no AUTH" : ", AUTH " + out->auth_mechanism) << "): " << out->final_reply << "\n";
    return out->refused.empty() ? k_ok : k_partial;
}

}  // namespace

void register_mail_test(CLI::App& app, Context& ctx) {
    auto args = std::make_shared<MailTestArgs>();
    auto* cmd = app.add_subcommand("mail-test", "send a test message to smtp.test_recipients (or --to)");
    cmd->add_option("--to", args->to, "recipient (repeatable); default smtp.test_recipients");
    cmd->add_flag("--verbose", args->verbose, "print the SMTP exchange (credentials masked)");
    cmd->callback([&ctx, args] { ctx.run = [&ctx, args] { return run_mail_test(ctx, *args); }; });
}

}  // namespace mv::cli
