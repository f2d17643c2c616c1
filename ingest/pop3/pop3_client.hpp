#pragma once
// A POP3 client (RFC 1939, CAPA, STLS, UTF8, AUTH, PIPELINING): enough to archive a maildrop.
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "index/util/result.hpp"
#include "ingest/net/account.hpp"
#include "ingest/net/stream.hpp"

namespace mv::ingest::pop3 {

class Client {
  public:
    // Connects, applies `security`, reads CAPA and logs in. Errors: unreachable or auth.
    static Result<std::unique_ptr<Client>> open(const net::Account& account);
    ~Client();

    bool has(const std::string& capability) const { return caps_.count(capability) > 0; }
    bool tls() const { return stream_->is_tls(); }
    // (message number, UIDL) of every message.
    Result<std::vector<std::pair<unsigned, std::string>>> uidl();
    Result<std::string> top(unsigned msgno, unsigned lines);  // headers (+ lines)
    // RETR of every number, pipelined up to `window` when the server offers PIPELINING.
    // The sink returns false to stop (the connection is then unusable).
    Result<void> retr(const std::vector<unsigned>& msgnos, std::size_t window,
                      const std::function<bool(unsigned, std::string&&)>& sink);
    // DELE of every number (pipelined), then QUIT, which is when the server removes them.
    Result<void> dele_and_quit(const std::vector<unsigned>& msgnos);
    void quit();

  private:
    explicit Client(const net::Account& a) : account_(a) {}
    Result<std::string> command(const std::string& line);  // single-line reply, "+OK ..." text
    Result<std::string> status_line(const std::string& what);
    Result<void> multiline(std::string& out);  // up to ".", dot-unstuffed, CRLF line ends
    Result<void> capa();
    Result<void> enable_utf8();  // UTF8 (RFC 6856) when CAPA offers it
    Result<void> authenticate();
    Error fail_msg(Error::Kind k, const std::string& what) const;

    net::Account account_;
    std::unique_ptr<net::Stream> stream_;
    std::set<std::string> caps_;  // "STLS", "PIPELINING", "SASL PLAIN", ...
};

}  // namespace mv::ingest::pop3
