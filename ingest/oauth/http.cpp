#include "ingest/oauth/http.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <mutex>

namespace mv::ingest::oauth {

namespace {

std::once_flag g_curl_init;

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
    static_cast<std::string*>(user)->append(data, size * n);
    return size * n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
    auto* resp = static_cast<HttpResponse*>(user);
    std::string line(data, size * n);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = line.substr(colon + 1);
        auto b = value.find_first_not_of(" \t");
        auto e = value.find_last_not_of(" \t\r\n");
        value = b == std::string::npos ? "" : value.substr(b, e - b + 1);
        if (name == "retry-after") resp->retry_after = value;
        else if (name == "content-type") resp->content_type = value;
    } else if (line.rfind("HTTP/", 0) == 0) {
        resp->retry_after.clear();  // a new response (after 100-continue or redirect)
        resp->content_type.clear();
    }
    return size * n;
}

}  // namespace

HttpClient::HttpClient() {
    std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_ = curl_easy_init();
}

HttpClient::~HttpClient() {
    if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<HttpResponse> HttpClient::get(const std::string& url, const std::vector<std::string>& headers) {
    return perform(url, headers, nullptr);
}

Result<HttpResponse> HttpClient::post_form(const std::string& url, const std::string& body,
                                           const std::vector<std::string>& headers) {
    return perform(url, headers, &body);
}

Result<HttpResponse> HttpClient::perform(const std::string& url, const std::vector<std::string>& headers,
                                         const std::string* post_body) {
    CURL* c = static_cast<CURL*>(curl_);
    if (!c) return fail(Error::Kind::failed, "cannot initialise libcurl");
    HttpResponse resp;
    curl_slist* list = nullptr;
    for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
    if (post_body) list = curl_slist_append(list, "Content-Type: application/x-www-form-urlencoded");
    list = curl_slist_append(list, "Expect:");
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, connect_s_);
    // No total timeout: a 60 MB message may take long; give up only on a stalled transfer:
    // one that does not answer, stops mid-body or trickles (under 1 KiB per stall_s_).
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, std::max(1L, 1024L / std::max(1L, stall_s_)));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall_s_);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mailvault/0.1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp);
    if (post_body) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body->data());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(post_body->size()));
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(list);
    if (rc != CURLE_OK) {
        std::string where = url.substr(0, url.find('?'));
        return fail(Error::Kind::unreachable, "cannot reach " + where + ": " + curl_easy_strerror(rc));
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
    return resp;
}

std::string url_encode(const std::string& s) {
    std::string out;
    out.reserve(s.size() * 3);
    for (unsigned char ch : s) {
        if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out.push_back(static_cast<char>(ch));
        } else {
            char b[4];
            std::snprintf(b, sizeof b, "%%%02X", ch);
            out += b;
        }
    }
    return out;
}

}  // namespace mv::ingest::oauth
