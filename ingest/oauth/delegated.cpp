#include "ingest/oauth/delegated.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>

#include "index/util/sha256.hpp"
#include "ingest/net/sasl.hpp"

namespace mv::ingest::oauth {

namespace {

using json = nlohmann::json;

std::string base64url(std::string_view bytes) {
    std::string s = net::base64_encode(bytes);
    for (auto& c : s) {
        if (c == '+') c = '-';
        else if (c == '/') c = '_';
    }
    while (!s.empty() && s.back() == '=') s.pop_back();
    return s;
}

std::string random_bytes_url(std::size_t n) {
    std::string buf(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(buf.data()), static_cast<int>(n)) != 1)
        throw std::runtime_error("RAND_bytes failed");  // a broken RNG is a bug, not a foreseeable failure
    return base64url(buf);
}

std::string src(const std::string& source) { return "source '" + source + "': "; }

std::string reconnect_hint(const std::string& source) { return "run `mailvault connect " + source + "` again"; }

struct TokenError {
    std::string error;
    std::string first_line;
    long code = 0;
};

TokenError parse_token_error(const std::string& body) {
    TokenError e;
    try {
        auto j = json::parse(body);
        e.error = j.value("error", "");
        std::string desc = j.value("error_description", "");
        e.first_line = desc.substr(0, desc.find_first_of("\r\n"));
        if (j.contains("error_codes") && j["error_codes"].is_array() && !j["error_codes"].empty() &&
            j["error_codes"][0].is_number())
            e.code = j["error_codes"][0].get<long>();
    } catch (const std::exception&) {
    }
    return e;
}

std::string code_text(const TokenError& e) {
    std::string s = e.code ? "AADSTS" + std::to_string(e.code) : std::string();
    if (!e.error.empty()) s += (s.empty() ? "" : " ") + e.error;
    return s;
}

// The JWT payload's preferred_username (or upn / email); the id_token is not verified: it only
// labels the stored grant for people.
std::string account_from_id_token(const std::string& id_token) {
    auto a = id_token.find('.');
    auto b = a == std::string::npos ? a : id_token.find('.', a + 1);
    if (b == std::string::npos) return {};
    std::string payload = id_token.substr(a + 1, b - a - 1);
    for (auto& c : payload) {
        if (c == '-') c = '+';
        else if (c == '_') c = '/';
    }
    try {
        auto j = json::parse(net::base64_decode(payload));
        for (const char* k : {"preferred_username", "upn", "email"})
            if (j.contains(k) && j[k].is_string()) return j[k].get<std::string>();
    } catch (const std::exception&) {
    }
    return {};
}

Result<Tokens> parse_tokens(const std::string& source, const std::string& body) {
    try {
        auto j = json::parse(body);
        Tokens t;
        t.access_token = j.at("access_token").get<std::string>();
        t.refresh_token = j.value("refresh_token", "");
        t.scope = j.value("scope", "");
        if (j.contains("expires_in"))
            t.expires_in = j["expires_in"].is_string() ? std::stol(j["expires_in"].get<std::string>()) : j["expires_in"].get<long>();
        if (j.contains("id_token") && j["id_token"].is_string()) t.account = account_from_id_token(j["id_token"].get<std::string>());
        if (t.access_token.empty()) throw std::runtime_error("empty");
        return t;
    } catch (const std::exception&) {
        return fail(Error::Kind::auth, src(source) + "the token endpoint answered without a usable access_token");
    }
}

Result<HttpResponse> post(const DelegatedApp& app, const TokenTransport& transport, const std::string& what,
                          const std::string& form) {
    Result<HttpResponse> r = fail(Error::Kind::failed, "");
    for (int attempt = 0; attempt < 4; ++attempt) {
        r = transport(app.endpoint(what), form);
        if (r && r->status != 429 && r->status < 500) break;
        if (attempt < 3) std::this_thread::sleep_for(std::chrono::milliseconds(250 << attempt));
    }
    if (!r) return fail(r.error().kind, src(app.source) + "identity platform: " + r.error().message);
    return r;
}

std::string with_secret(const DelegatedApp& app, std::string form) {
    if (!app.client_secret.empty()) form += "&client_secret=" + url_encode(app.client_secret);
    return form;
}

void fsync_dir(const std::filesystem::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

std::string file_key(const std::string& source) {
    std::string out;
    for (unsigned char c : source) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.') out += static_cast<char>(c);
        else {
            char b[4];
            std::snprintf(b, sizeof b, "%%%02X", c);
            out += b;
        }
    }
    if (out.empty() || out[0] == '.') out = "%" + out;
    return out;
}

}  // namespace

std::string DelegatedApp::scope_param() const {
    std::string s = "offline_access openid";
    for (const auto& sc : scopes) s += " " + sc;
    return s;
}

std::string DelegatedApp::endpoint(const std::string& what) const {
    std::string url = authority_url;
    while (!url.empty() && url.back() == '/') url.pop_back();
    return url + "/" + url_encode(tenant) + "/oauth2/v2.0/" + what;
}

std::vector<std::string> default_scopes(const std::string& protocol) {
    if (protocol == "imap") return {"https://outlook.office.com/IMAP.AccessAsUser.All"};
    if (protocol == "pop3") return {"https://outlook.office.com/POP.AccessAsUser.All"};
    if (protocol == "smtp") return {"https://outlook.office.com/SMTP.Send"};
    return {};
}

Result<DelegatedApp> read_delegated_app(const SourceConfig& config, const std::string& protocol) {
    DelegatedApp app;
    app.source = config.name;
    app.authority_url = config.get("authority_url", k_default_authority);
    app.tenant = config.get("tenant", "organizations");
    app.client_id = config.get("client_id");
    if (app.client_id.empty())
        return fail(Error::Kind::usage, src(config.name) + "'client_id' is required for OAuth sign-in (auth = \"xoauth2\")");
    if (config.strings.count("client_secret_env") || config.strings.count("client_secret_file") ||
        config.strings.count("client_secret")) {
        auto s = config.secret("client_secret");
        if (!s) return fail(s.error());
        app.client_secret = *s;
    }
    app.scopes = config.get_list("scopes", default_scopes(protocol));
    if (app.scopes.empty())
        return fail(Error::Kind::usage, src(config.name) + "no OAuth scopes for type '" + protocol + "' (set 'scopes')");
    return app;
}

// ---------------------------------------------------------------- device code

Result<DeviceCode> start_device_code(const DelegatedApp& app, const TokenTransport& transport) {
    std::string form = "client_id=" + url_encode(app.client_id) + "&scope=" + url_encode(app.scope_param());
    auto r = post(app, transport, "devicecode", form);
    if (!r) return fail(r.error());
    if (r->status != 200) return fail(describe_token_error(app.source, r->status, r->body));
    try {
        auto j = json::parse(r->body);
        DeviceCode d;
        d.device_code = j.at("device_code").get<std::string>();
        d.user_code = j.at("user_code").get<std::string>();
        d.verification_uri = j.value("verification_uri", j.value("verification_url", ""));
        d.message = j.value("message", "");
        if (j.contains("expires_in")) d.expires_in = j["expires_in"].get<long>();
        if (j.contains("interval")) d.interval = std::max<long>(1, j["interval"].get<long>());
        return d;
    } catch (const std::exception&) {
        return fail(Error::Kind::auth, src(app.source) + "the device code endpoint answered without device_code/user_code");
    }
}

Result<PollResult> poll_device_code(const DelegatedApp& app, const DeviceCode& code, const TokenTransport& transport) {
    std::string form = with_secret(app, "grant_type=" + url_encode("urn:ietf:params:oauth:grant-type:device_code") +
                                            "&client_id=" + url_encode(app.client_id) +
                                            "&device_code=" + url_encode(code.device_code));
    auto r = post(app, transport, "token", form);
    if (!r) return fail(r.error());
    PollResult out;
    if (r->status == 200) {
        auto t = parse_tokens(app.source, r->body);
        if (!t) return fail(t.error());
        out.state = PollState::granted;
        out.tokens = std::move(*t);
        return out;
    }
    TokenError e = parse_token_error(r->body);
    const std::string s = src(app.source);
    if (e.error == "authorization_pending") return out;
    if (e.error == "slow_down") {
        out.state = PollState::slow_down;
        return out;
    }
    if (e.error == "authorization_declined")
        return fail(Error::Kind::auth, s + "the sign-in was declined (authorization_declined): nothing stored; run `mailvault connect " +
                                           app.source + "` again to retry");
    if (e.error == "expired_token")
        return fail(Error::Kind::auth, s + "the code expired before the sign-in was completed (expired_token): run `mailvault connect " +
                                           app.source + "` again and sign in within " +
                                           std::to_string(code.expires_in / 60) + " minutes");
    if (e.error == "bad_verification_code")
        return fail(Error::Kind::auth, s + "the identity platform does not know this device code (bad_verification_code): run `mailvault connect " +
                                           app.source + "` again");
    return fail(describe_token_error(app.source, r->status, r->body));
}

Result<Tokens> run_device_code_flow(const DelegatedApp& app, const DeviceCode& code, const TokenTransport& transport,
                                    const SleepFn& sleep, const std::function<void(const std::string&)>& status) {
    long interval = code.interval;
    long waited = 0;
    bool announced = false;
    for (;;) {
        sleep(std::chrono::seconds(interval));
        waited += interval;
        auto r = poll_device_code(app, code, transport);
        if (!r) return fail(r.error());
        if (r->state == PollState::granted) return std::move(r->tokens);
        if (r->state == PollState::slow_down) {
            interval += 5;
            if (status) status("the identity platform asks to poll more slowly (slow_down): now every " + std::to_string(interval) + " s");
        } else if (!announced) {
            announced = true;
            if (status) status("waiting for the sign-in to be completed in the browser (authorization_pending) ...");
        }
        // The platform answers expired_token itself; this guards against one that never does.
        if (waited > code.expires_in + 60)
            return fail(Error::Kind::auth, src(app.source) + "the code expired before the sign-in was completed: run `mailvault connect " +
                                               app.source + "` again");
    }
}

// ---------------------------------------------------------------- authorization code + PKCE

std::string pkce_challenge(const std::string& verifier) {
    Digest d = sha256(verifier);
    return base64url(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

Pkce make_pkce() {
    Pkce p;
    p.verifier = random_bytes_url(48);  // 64 characters
    p.challenge = pkce_challenge(p.verifier);
    return p;
}

std::string random_state() { return random_bytes_url(24); }

std::string authorize_url(const DelegatedApp& app, const std::string& redirect_uri, const std::string& state,
                          const Pkce& pkce) {
    return app.endpoint("authorize") + "?client_id=" + url_encode(app.client_id) + "&response_type=code" +
           "&redirect_uri=" + url_encode(redirect_uri) + "&response_mode=query&scope=" + url_encode(app.scope_param()) +
           "&state=" + url_encode(state) + "&code_challenge=" + url_encode(pkce.challenge) + "&code_challenge_method=S256";
}

Result<Tokens> redeem_authorization_code(const DelegatedApp& app, const std::string& code, const std::string& redirect_uri,
                                         const std::string& verifier, const TokenTransport& transport) {
    std::string form = with_secret(app, "grant_type=authorization_code&client_id=" + url_encode(app.client_id) +
                                            "&code=" + url_encode(code) + "&redirect_uri=" + url_encode(redirect_uri) +
                                            "&scope=" + url_encode(app.scope_param()) +
                                            "&code_verifier=" + url_encode(verifier));
    auto r = post(app, transport, "token", form);
    if (!r) return fail(r.error());
    if (r->status == 200) return parse_tokens(app.source, r->body);
    TokenError e = parse_token_error(r->body);
    if (e.error == "invalid_grant")
        return fail(Error::Kind::auth, src(app.source) + "the authorization code was refused (" + code_text(e) +
                                           "): it expired, was used already or the PKCE verifier does not match; start the sign-in again");
    return fail(describe_token_error(app.source, r->status, r->body));
}

// ---------------------------------------------------------------- refresh

Result<Tokens> refresh_tokens(const DelegatedApp& app, const std::string& refresh_token, const TokenTransport& transport) {
    std::string form = with_secret(app, "grant_type=refresh_token&client_id=" + url_encode(app.client_id) +
                                            "&refresh_token=" + url_encode(refresh_token) +
                                            "&scope=" + url_encode(app.scope_param()));
    auto r = post(app, transport, "token", form);
    if (!r) return fail(r.error());
    if (r->status == 200) return parse_tokens(app.source, r->body);
    TokenError e = parse_token_error(r->body);
    if (e.error == "invalid_grant" || e.error == "interaction_required")
        return fail(Error::Kind::auth, src(app.source) + "the stored sign-in is no longer valid (" + code_text(e) +
                                           ": expired, revoked or the password changed): " + reconnect_hint(app.source));
    return fail(describe_token_error(app.source, r->status, r->body));
}

// ---------------------------------------------------------------- store

std::filesystem::path TokenStore::file(const std::string& source) const { return dir_ / (file_key(source) + ".json"); }

Result<std::optional<Grant>> TokenStore::load(const std::string& source) const {
    std::error_code ec;
    auto path = file(source);
    if (!std::filesystem::exists(path, ec)) return std::optional<Grant>{};
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(Error::Kind::io, src(source) + "cannot read the token store " + path.string() + ": " + std::strerror(errno));
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    try {
        auto j = json::parse(text);
        Grant g;
        g.refresh_token = j.at("refresh_token").get<std::string>();
        g.account = j.value("account", "");
        g.client_id = j.value("client_id", "");
        g.tenant = j.value("tenant", "");
        g.scope = j.value("scope", "");
        g.obtained = j.value("obtained", std::int64_t{0});
        g.rotated = j.value("rotated", std::int64_t{0});
        return std::optional<Grant>(std::move(g));
    } catch (const std::exception&) {
        return fail(Error::Kind::corrupt, src(source) + "the token store " + path.string() + " is damaged: " + reconnect_hint(source));
    }
}

Result<void> TokenStore::save(const std::string& source, const Grant& g) const {
    std::error_code ec;
    if (!std::filesystem::exists(dir_, ec)) {
        std::filesystem::create_directories(dir_.parent_path(), ec);  // the archive itself
        if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
            return fail(Error::Kind::io, src(source) + "cannot create " + dir_.string() + ": " + std::strerror(errno));
    }
    json j{{"refresh_token", g.refresh_token}, {"account", g.account}, {"client_id", g.client_id},
           {"tenant", g.tenant},               {"scope", g.scope},     {"obtained", g.obtained},
           {"rotated", g.rotated}};
    std::string text = j.dump(2) + "\n";
    auto final_path = file(source);
    std::string tmp_name = ".";
    tmp_name += file_key(source);
    tmp_name += ".json.tmp.";
    tmp_name += std::to_string(::getpid());
    auto tmp = dir_ / tmp_name;
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return fail(Error::Kind::io, src(source) + "cannot write " + tmp.string() + ": " + std::strerror(errno));
    ::fchmod(fd, 0600);  // whatever the umask
    bool good = true;
    for (std::size_t off = 0; good && off < text.size();) {
        ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) good = false;
        else off += static_cast<std::size_t>(n);
    }
    int err = good ? 0 : errno;
    if (good && ::fsync(fd) != 0) {
        good = false;
        err = errno;
    }
    ::close(fd);
    if (good && ::rename(tmp.c_str(), final_path.c_str()) != 0) {
        good = false;
        err = errno;
    }
    if (!good) {
        ::unlink(tmp.c_str());
        return fail(Error::Kind::io, src(source) + "cannot store the sign-in in " + final_path.string() + ": " + std::strerror(err));
    }
    fsync_dir(dir_);
    return ok();
}

Result<Grant> store_sign_in(const DelegatedApp& app, const TokenStore& store, const Tokens& tokens) {
    if (tokens.refresh_token.empty())
        return fail(Error::Kind::auth, src(app.source) + "the identity platform sent no refresh token (is offline_access allowed for the app?)");
    Grant g;
    g.refresh_token = tokens.refresh_token;
    g.account = tokens.account;
    g.client_id = app.client_id;
    g.tenant = app.tenant;
    g.scope = tokens.scope.empty() ? app.scope_param() : tokens.scope;
    g.obtained = g.rotated = static_cast<std::int64_t>(std::time(nullptr));
    if (auto r = store.save(app.source, g); !r) return fail(r.error());
    return g;
}

Result<Tokens> delegated_access_token(const DelegatedApp& app, const TokenStore& store, const TokenTransport& transport) {
    auto grant = store.load(app.source);
    if (!grant) return fail(grant.error());
    if (!*grant)
        return fail(Error::Kind::auth, src(app.source) + "not signed in (auth = \"xoauth2\" without a stored sign-in): run `mailvault connect " +
                                           app.source + "` first");
    Grant g = **grant;
    if (!g.client_id.empty() && g.client_id != app.client_id)
        return fail(Error::Kind::auth, src(app.source) + "the stored sign-in belongs to another client_id: " + reconnect_hint(app.source));
    auto t = refresh_tokens(app, g.refresh_token, transport);
    if (!t) return fail(t.error());
    if (!t->refresh_token.empty() && t->refresh_token != g.refresh_token) {
        g.refresh_token = t->refresh_token;
        g.rotated = static_cast<std::int64_t>(std::time(nullptr));
        if (!t->account.empty()) g.account = t->account;
        if (auto r = store.save(app.source, g); !r) return fail(r.error());
    }
    if (t->account.empty()) t->account = g.account;
    return t;
}

// ---------------------------------------------------------------- the xoauth2 account

OAuthMode oauth_mode(const SourceConfig& c) {
    if (c.strings.count("token_env") || c.strings.count("token_file") || c.strings.count("token")) return OAuthMode::static_token;
    if (c.get("oauth") == "app") return OAuthMode::app_only;
    return OAuthMode::delegated;
}

TokenTransport default_transport() {
    return [](const std::string& url, const std::string& form) -> Result<HttpResponse> {
        HttpClient http;
        return http.post_form(url, form);
    };
}

Result<SourceConfig> with_access_token(const SourceConfig& config, const std::string& protocol,
                                       const std::filesystem::path& archive_dir, const TokenTransport& transport) {
    if (config.get("auth") != "xoauth2" || (protocol != "imap" && protocol != "pop3" && protocol != "smtp")) return config;
    if (protocol == "smtp" && config.get("auth_required", "true") == "false") return config;  // no AUTH, no token
    OAuthMode mode = oauth_mode(config);
    if (mode == OAuthMode::static_token) return config;
    std::string oauth = config.get("oauth", "delegated");
    if (oauth != "delegated" && oauth != "app")
        return fail(Error::Kind::usage, src(config.name) + "'oauth' must be delegated or app, not '" + oauth + "'");
    TokenTransport tr = transport ? transport : default_transport();
    SourceConfig out = config;
    if (mode == OAuthMode::app_only) {
        ClientCredentials cc;
        cc.source = config.name;
        cc.authority_url = config.get("authority_url", k_default_authority);
        cc.tenant = config.get("tenant");
        cc.client_id = config.get("client_id");
        if (cc.tenant.empty() || cc.client_id.empty())
            return fail(Error::Kind::usage, src(config.name) + "oauth = \"app\" needs 'tenant' and 'client_id'");
        auto secret = config.secret("client_secret");
        if (!secret) return fail(secret.error());
        cc.client_secret = *secret;
        cc.scope = config.get("scope", k_app_only_scope);
        TokenCache cache(std::move(cc), tr);
        auto tok = cache.token();
        if (!tok) return fail(tok.error());
        out.strings["token"] = *tok;
        return out;
    }
    auto app = read_delegated_app(config, protocol);
    if (!app) return fail(app.error());
    auto t = delegated_access_token(*app, TokenStore(archive_dir), tr);
    if (!t) return fail(t.error());
    out.strings["token"] = t->access_token;
    return out;
}

}  // namespace mv::ingest::oauth
