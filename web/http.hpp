#pragma once
// The HTTP layer of `serve`: GNU libmicrohttpd behind a small request/response interface.
// Bounds: header memory per connection, body size, idle timeout, a deadline for a whole
// request to arrive (slow-loris), connections per client address and in total.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "index/util/result.hpp"

namespace mv::web {

struct Request {
    std::string method;
    std::string raw_path;                              // as sent, still %-encoded, without the query
    std::vector<std::string> segments;                 // raw_path split on '/', each %-decoded
    std::map<std::string, std::string> query;          // decoded; first value of a name wins
    std::map<std::string, std::string> headers;        // names lower-case
    std::map<std::string, std::string> cookies;
    std::map<std::string, std::string> form;           // application/x-www-form-urlencoded body
    std::string body;
    std::string client;                                // client address, text
    bool tls = false;

    std::string header(const std::string& lower_name) const;
    std::string arg(const std::string& name) const;    // query argument or ""
    std::string field(const std::string& name) const;  // form field or ""
    std::string cookie(const std::string& name) const;
};

struct Response {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    Response& header(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
};

using Handler = std::function<Response(const Request&)>;

struct Limits {
    std::size_t max_body = 64 * 1024;          // larger bodies: 413, connection closed
    std::size_t connection_memory = 32 * 1024; // request line + headers (libmicrohttpd answers 431/413 beyond)
    unsigned idle_timeout_s = 30;              // no byte for this long: connection closed
    unsigned request_deadline_s = 10;          // a request (headers + body) must arrive within this
    unsigned per_ip_connections = 16;
    unsigned max_connections = 512;
    unsigned threads = 4;
};

struct TlsFiles {
    std::string cert_pem, key_pem;  // PEM text; TLS when both are set
};

class HttpServer {
  public:
    // Listens on host:port (port 0: any free port; see port()). Runs until destroyed.
    static Result<std::unique_ptr<HttpServer>> start(const std::string& host, std::uint16_t port, const Limits& limits,
                                                     Handler handler, const TlsFiles& tls = {});
    ~HttpServer();
    std::uint16_t port() const { return port_; }

    struct Impl;

  private:
    HttpServer() = default;
    std::unique_ptr<Impl> impl_;
    std::uint16_t port_ = 0;
};

// %-decoding ('+' as space when `plus`); invalid escapes are kept as they are.
std::string url_decode(std::string_view s, bool plus);
// application/x-www-form-urlencoded (also a query string).
std::map<std::string, std::string> parse_form(std::string_view s);
// "host:port" (host may be [v6]); port 0 allowed.
Result<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view s);

}  // namespace mv::web
