#pragma once
// Delegated OAuth 2.0 for Exchange Online IMAP/POP3/SMTP: device code flow, authorization code
// with PKCE, refresh with rotation, the refresh-token store inside the archive, and the
// app-only (client credentials) mode. Tokens never appear in errors or logs.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "index/config/config.hpp"
#include "index/util/result.hpp"
#include "ingest/oauth/client_credentials.hpp"

namespace mv::ingest::oauth {

inline constexpr const char* k_default_authority = "https://login.microsoftonline.com";
inline constexpr const char* k_app_only_scope = "https://outlook.office365.com/.default";

// The app registration a delegated source (or [smtp]) signs in with.
struct DelegatedApp {
    std::string source;          // source name ("smtp" for [smtp]), for messages and the store
    std::string authority_url = k_default_authority;
    std::string tenant = "organizations";
    std::string client_id;
    std::string client_secret;   // optional: device code works as a public client
    std::vector<std::string> scopes;  // resource scopes; offline_access and openid are added

    // "offline_access openid <scopes...>", space-separated.
    std::string scope_param() const;
    std::string endpoint(const std::string& what) const;  // {authority}/{tenant}/oauth2/v2.0/{what}
};

// The resource scopes a protocol needs: imap, pop3, smtp.
std::vector<std::string> default_scopes(const std::string& protocol);

// tenant, client_id, client_secret_*, authority_url, scopes from a [[source]] or [smtp].
Result<DelegatedApp> read_delegated_app(const SourceConfig& config, const std::string& protocol);

struct Tokens {
    std::string access_token;
    std::string refresh_token;   // empty when the platform did not send one
    std::string scope;
    std::string account;         // preferred_username from the id_token, if any
    long expires_in = 3599;
};

// ---- device code flow
struct DeviceCode {
    std::string device_code;  // secret-ish: never printed
    std::string user_code;
    std::string verification_uri;
    std::string message;
    long expires_in = 900;
    long interval = 5;
};

Result<DeviceCode> start_device_code(const DelegatedApp& app, const TokenTransport& transport);

enum class PollState { pending, slow_down, granted };
struct PollResult {
    PollState state = PollState::pending;
    Tokens tokens;  // when granted
};
// One poll of the token endpoint. authorization_declined, expired_token, bad_verification_code
// and other errors are Error::Kind::auth, each with its own line.
Result<PollResult> poll_device_code(const DelegatedApp& app, const DeviceCode& code, const TokenTransport& transport);

using SleepFn = std::function<void(std::chrono::milliseconds)>;
// Polls every `interval` s (5 s more after each slow_down) until granted, refused or expired.
// `status` gets one line per state change ("waiting for the sign-in ...", "slow_down: ...").
Result<Tokens> run_device_code_flow(const DelegatedApp& app, const DeviceCode& code, const TokenTransport& transport,
                                    const SleepFn& sleep, const std::function<void(const std::string&)>& status);

// ---- authorization code with PKCE (driven by the web "Connect account" page)
struct Pkce {
    std::string verifier;   // 43..128 unreserved characters
    std::string challenge;  // BASE64URL(SHA256(verifier)), method S256
};
Pkce make_pkce();
std::string pkce_challenge(const std::string& verifier);
std::string random_state();  // unguessable, URL-safe
std::string authorize_url(const DelegatedApp& app, const std::string& redirect_uri, const std::string& state,
                          const Pkce& pkce);
Result<Tokens> redeem_authorization_code(const DelegatedApp& app, const std::string& code, const std::string& redirect_uri,
                                         const std::string& verifier, const TokenTransport& transport);

// ---- refresh
// invalid_grant (expired, revoked, password changed) is Error::Kind::auth with the line
// "source 'NAME': ... run `mailvault connect NAME` again".
Result<Tokens> refresh_tokens(const DelegatedApp& app, const std::string& refresh_token, const TokenTransport& transport);

// ---- the store: ARCHIVE/oauth/<source>.json, mode 0600, replaced atomically
struct Grant {
    std::string refresh_token;
    std::string account;
    std::string client_id;
    std::string tenant;
    std::string scope;
    std::int64_t obtained = 0;  // unix time of the sign-in
    std::int64_t rotated = 0;   // unix time the refresh token was last replaced
};

class TokenStore {
  public:
    explicit TokenStore(std::filesystem::path archive_dir) : dir_(std::move(archive_dir) / "oauth") {}
    std::filesystem::path file(const std::string& source) const;
    // nullopt when `source` never signed in.
    Result<std::optional<Grant>> load(const std::string& source) const;
    // temp file (0600) + fsync + rename + directory fsync.
    Result<void> save(const std::string& source, const Grant& grant) const;

  private:
    std::filesystem::path dir_;
};

// Trades the stored refresh token of `app.source` for an access token of its scopes and stores
// a rotated refresh token. Not signed in / invalid_grant: Error::Kind::auth naming `connect`.
Result<Tokens> delegated_access_token(const DelegatedApp& app, const TokenStore& store, const TokenTransport& transport);

// Stores the grant a sign-in produced (device code or authorization code).
Result<Grant> store_sign_in(const DelegatedApp& app, const TokenStore& store, const Tokens& tokens);

// How an `auth = "xoauth2"` account gets its access token.
enum class OAuthMode { static_token, delegated, app_only };
OAuthMode oauth_mode(const SourceConfig& config);

// For `auth = "xoauth2"` without token_env/token_file/token: a copy of `config` whose "token" is
// a fresh access token (delegated: from the stored grant; oauth = "app": client credentials with
// https://outlook.office365.com/.default). Other configs come back unchanged.
Result<SourceConfig> with_access_token(const SourceConfig& config, const std::string& protocol,
                                       const std::filesystem::path& archive_dir, const TokenTransport& transport = {});

// The default transport: one HttpClient POST.
TokenTransport default_transport();

}  // namespace mv::ingest::oauth
