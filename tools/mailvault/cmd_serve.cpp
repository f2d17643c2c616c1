// `mailvault serve [--listen HOST:PORT]`: the web side (web/), until SIGINT or SIGTERM.
#include <signal.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "tools/mailvault/cli.hpp"
#include "web/app.hpp"
#include "web/http.hpp"

namespace mv::cli {
namespace {

Result<std::string> read_file(const std::string& path, const char* key) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(Error::Kind::usage, std::string("[serve] ") + key + ": cannot read " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

int serve(Context& ctx, const std::string& listen_flag) {
    const Config& c = ctx.config;
    auto listen = web::parse_listen(listen_flag.empty() ? c.serve_listen : listen_flag);
    if (!listen) return report(listen.error());
    if (c.users.empty())
        return report(make_error(Error::Kind::usage, "serve: no [users.NAME] in the configuration; nobody could log in "
                                                     "(create a hash with `mailvault passwd`)"));
    web::AppConfig ac;
    ac.archive_dir = ctx.archive_dir;
    ac.links.base_url = c.links_base_url;
    ac.links.templ = c.links_template;
    ac.links.title_field = c.links_title_field;
    ac.connect.sources = c.sources;
    ac.connect.smtp = c.smtp;
    auto idle = web::parse_duration(c.serve_session_idle);
    auto max = web::parse_duration(c.serve_session_max);
    auto req_timeout = web::parse_duration(c.serve_request_timeout);
    auto idle_timeout = web::parse_duration(c.serve_idle_timeout);
    for (const auto* r : {&idle, &max, &req_timeout, &idle_timeout})
        if (!*r) return report(make_error(Error::Kind::usage, "[serve]: " + r->error().message));
    ac.session_idle = *idle;
    ac.result_cache = static_cast<std::size_t>(c.serve_result_cache);
    ac.block_cache = static_cast<std::size_t>(c.serve_block_cache) << 20;
    ac.session_max = *max;
    web::TlsFiles tls;
    if (!c.serve_cert.empty() || !c.serve_key.empty()) {
        if (c.serve_cert.empty() || c.serve_key.empty())
            return report(make_error(Error::Kind::usage, "[serve]: TLS needs both cert and key"));
        auto cert = read_file(c.serve_cert, "cert");
        if (!cert) return report(cert.error());
        auto key = read_file(c.serve_key, "key");
        if (!key) return report(key.error());
        tls.cert_pem = std::move(*cert);
        tls.key_pem = std::move(*key);
        ac.tls = true;
    }
    auto app = web::App::create(ac, std::make_unique<web::LocalAuthenticator>(c.users));
    if (!app) return report(app.error());
    web::Limits limits;
    limits.threads = static_cast<unsigned>(c.serve_threads);
    limits.request_deadline_s = static_cast<unsigned>(std::max<long long>(1, req_timeout->count()));
    limits.idle_timeout_s = static_cast<unsigned>(std::max<long long>(1, idle_timeout->count()));
    limits.per_ip_connections = static_cast<unsigned>(c.serve_per_ip_connections);

    // Block the stop signals before the server's threads start, so only sigwait sees them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);
    web::App* a = app->get();
    auto server = web::HttpServer::start(listen->first, listen->second, limits,
                                         [a](const web::Request& r) { return a->handle(r); }, tls);
    if (!server) return report(server.error());
    const std::string host = listen->first.find(':') != std::string::npos ? "[" + listen->first + "]" : listen->first;
    std::cerr << "serve: listening on " << (ac.tls ? "https://" : "http://") << host << ":" << (*server)->port()
              << " (" << c.users.size() << " user(s), archive " << ctx.archive_dir.string() << ")" << std::endl;
    int sig = 0;
    sigwait(&set, &sig);
    std::cerr << "serve: stopping" << std::endl;
    server->reset();
    return k_ok;
}

}  // namespace

void register_serve(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("serve", "web search, message view and direct links behind a login");
    auto listen = std::make_shared<std::string>();
    cmd->add_option("--listen", *listen, "HOST:PORT (default [serve] listen, else 127.0.0.1:8025; port 0: any)");
    cmd->callback([&ctx, listen] { ctx.run = [&ctx, listen] { return serve(ctx, *listen); }; });
}

}  // namespace mv::cli
