#pragma once
// A blocking HTTP/1.1 client on one libcurl easy handle: keep-alive, one thread at a time.
#include <memory>
#include <string>
#include <vector>

#include "index/util/result.hpp"

namespace mv::ingest::oauth {

struct HttpResponse {
    long status = 0;
    std::string body;
    std::string retry_after;   // Retry-After header, as sent
    std::string content_type;
};

class HttpClient {
  public:
    HttpClient();
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // Transport failures (no HTTP status at all) are Error::Kind::unreachable; the URL is named,
    // never a header or body.
    Result<HttpResponse> get(const std::string& url, const std::vector<std::string>& headers);
    Result<HttpResponse> post_form(const std::string& url, const std::string& body,
                                   const std::vector<std::string>& headers = {});

    // Connect timeout, and the stall timeout: a transfer (waiting for the answer included)
    // that receives less than 1 KiB in `stall_s` seconds fails. Defaults 30 s and 120 s.
    void set_timeouts(long connect_s, long stall_s) {
        connect_s_ = connect_s;
        stall_s_ = stall_s;
    }

  private:
    long connect_s_ = 30, stall_s_ = 120;
    Result<HttpResponse> perform(const std::string& url, const std::vector<std::string>& headers,
                                 const std::string* post_body);
    void* curl_;
};

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string url_encode(const std::string& s);

}  // namespace mv::ingest::oauth
