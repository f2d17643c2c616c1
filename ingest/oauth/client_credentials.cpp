#include "ingest/oauth/client_credentials.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <thread>

namespace mv::ingest::oauth {

namespace {

std::string advice_for(long code, const std::string& error) {
    switch (code) {
        case 7000215: return "the client secret is wrong: use the secret's Value (not its Secret ID) in client_secret";
        case 7000222: return "the client secret has expired: create a new one in the app registration and update client_secret";
        case 700016: return "client_id is not registered in this tenant: check client_id and tenant (and that the app was consented there)";
        case 90002: return "the tenant does not exist: check the tenant key (a tenant GUID or a verified domain)";
        case 90023: return "the tenant key is malformed: use a tenant GUID or a verified domain";
        case 70011: return "the scope is invalid: check graph_url (the scope is {graph_url}/.default)";
        case 1002012: return "the scope is invalid: check graph_url";
        case 900144: return "the token request lacks a parameter: check client_id and the client secret";
        case 65001:
        case 650057: return "the app lacks admin consent: grant admin consent for Mail.Read (application) in Entra ID";
        case 7000112: return "the application is disabled in the tenant: enable it under Enterprise applications";
        case 700027: return "the client assertion is invalid: check the credentials";
        default: break;
    }
    if (error == "invalid_client") return "the client credentials were refused: check client_id and the client secret";
    if (error == "unauthorized_client") return "the application is not allowed in this tenant: check client_id and tenant";
    return "check tenant, client_id and the client secret";
}

}  // namespace

Error describe_token_error(const std::string& source, long status, const std::string& body) {
    std::string error, first_line;
    long code = 0;
    try {
        auto j = nlohmann::json::parse(body);
        error = j.value("error", "");
        std::string desc = j.value("error_description", "");
        first_line = desc.substr(0, desc.find_first_of("\r\n"));
        if (j.contains("error_codes") && j["error_codes"].is_array() && !j["error_codes"].empty())
            code = j["error_codes"][0].get<long>();
    } catch (const std::exception&) {
    }
    std::string msg = "source '" + source + "': sign-in refused";
    if (code) msg += " (AADSTS" + std::to_string(code) + (error.empty() ? "" : " " + error) + ")";
    else msg += " (HTTP " + std::to_string(status) + (error.empty() ? "" : " " + error) + ")";
    msg += ": " + advice_for(code, error);
    if (!first_line.empty()) msg += " [" + first_line + "]";
    return make_error(status >= 500 ? Error::Kind::unreachable : Error::Kind::auth, msg);
}

TokenCache::TokenCache(ClientCredentials creds, TokenTransport transport, NowFn now)
    : creds_(std::move(creds)), transport_(std::move(transport)), now_(std::move(now)) {
    if (!now_) now_ = [] { return std::chrono::steady_clock::now(); };
    if (!transport_) {
        transport_ = [](const std::string& url, const std::string& form) -> Result<HttpResponse> {
            HttpClient http;
            return http.post_form(url, form);
        };
    }
}

std::uint64_t TokenCache::fetches() const {
    std::lock_guard lk(mu_);
    return fetches_;
}

Result<std::string> TokenCache::token() {
    std::lock_guard lk(mu_);
    if (!token_.empty() && now_() < renew_at_) return token_;
    return fetch_locked();
}

Result<std::string> TokenCache::renew(const std::string& rejected) {
    std::lock_guard lk(mu_);
    if (!token_.empty() && token_ != rejected && now_() < renew_at_) return token_;  // someone renewed already
    return fetch_locked();
}

Result<std::string> TokenCache::fetch_locked() {
    std::string url = creds_.authority_url;
    while (!url.empty() && url.back() == '/') url.pop_back();
    url += "/" + url_encode(creds_.tenant) + "/oauth2/v2.0/token";
    std::string form = "grant_type=client_credentials&client_id=" + url_encode(creds_.client_id) +
                       "&client_secret=" + url_encode(creds_.client_secret) + "&scope=" + url_encode(creds_.scope);
    Result<HttpResponse> resp = fail(Error::Kind::failed, "");
    // Transient failures of the identity platform are retried a few times.
    for (int attempt = 0; attempt < 4; ++attempt) {
        resp = transport_(url, form);
        ++fetches_;
        if (resp && resp->status != 429 && resp->status < 500) break;
        if (attempt < 3) std::this_thread::sleep_for(std::chrono::milliseconds(250 << attempt));
    }
    if (!resp) {
        return fail(resp.error().kind, "source '" + creds_.source + "': token endpoint: " + resp.error().message);
    }
    if (resp->status != 200) return fail(describe_token_error(creds_.source, resp->status, resp->body));
    try {
        auto j = nlohmann::json::parse(resp->body);
        std::string tok = j.at("access_token").get<std::string>();
        long expires = 3599;
        if (j.contains("expires_in")) {
            // Some endpoints send it as a string.
            expires = j["expires_in"].is_string() ? std::stol(j["expires_in"].get<std::string>()) : j["expires_in"].get<long>();
        }
        long margin = std::min<long>(300, expires / 5);
        token_ = tok;
        renew_at_ = now_() + std::chrono::seconds(std::max<long>(1, expires - margin));
        return token_;
    } catch (const std::exception&) {
        return fail(Error::Kind::auth, "source '" + creds_.source + "': token endpoint answered without a usable access_token");
    }
}

}  // namespace mv::ingest::oauth
