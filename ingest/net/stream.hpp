#pragma once
// A client TCP connection, plain or TLS (OpenSSL), with connect and read timeouts.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "index/util/result.hpp"

namespace mv::ingest::net {

enum class Security { none, automatic, starttls, tls };

struct TlsOptions {
    bool trust_all = false;  // accept any certificate (self-signed, wrong host)
    std::string ca_file;     // extra trust anchors; empty: the system store
};

struct Endpoint {
    std::string source;  // source name, for messages
    std::string host;
    int port = 0;
    TlsOptions tls;
    std::chrono::milliseconds connect_timeout{30000};
    std::chrono::milliseconds read_timeout{120000};
};

// Errors are Error::Kind::unreachable with a message naming the source and what failed.
class Stream {
  public:
    static Result<std::unique_ptr<Stream>> connect(const Endpoint& endpoint, Security security);
    ~Stream();
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    // TLS handshake over the open connection (implicit TLS or after STARTTLS/STLS).
    Result<void> start_tls();
    bool is_tls() const { return ssl_ != nullptr; }
    Result<void> write(std::string_view bytes);
    // One line without its CRLF (or bare LF); fails when longer than `max`. A read starts a
    // new progress window (see fill) unless it continues the same reply (`same_reply`: the
    // literal and rest of an IMAP response, the lines of a POP3 multi-line answer).
    Result<std::string> read_line(std::size_t max = 64u << 20, bool same_reply = false);
    // Appends exactly n bytes to `out`.
    Result<void> read_exact(std::size_t n, std::string& out, bool same_reply = false);
    const Endpoint& endpoint() const { return endpoint_; }
    // What the client is doing ("IMAP UID FETCH 1:200", "POP3 RETR 7"): errors name it.
    void set_step(std::string step) { step_ = std::move(step); }
    const std::string& step() const { return step_; }
    std::string where() const;  // "host:port"
    void close();

  private:
    explicit Stream(Endpoint e) : endpoint_(std::move(e)) {}
    // Reads more into buf_. A read (read_line, read_exact) must receive at least
    // k_min_progress bytes, or finish, within every read_timeout: a server that stops
    // answering, stalls mid-reply or trickles a byte a second ends with a timeout.
    Result<void> fill();
    void begin_read();
    std::chrono::milliseconds window_left() const;
    Error stalled() const;
    static constexpr std::size_t k_min_progress = 1024;
    Error io_error(const std::string& what) const;

    Endpoint endpoint_;
    int fd_ = -1;
    void* ctx_ = nullptr;  // SSL_CTX*
    void* ssl_ = nullptr;  // SSL*
    std::string buf_;
    std::size_t pos_ = 0;
    std::string step_;
    std::chrono::steady_clock::time_point window_start_{};
    std::size_t window_bytes_ = 0;  // received since window_start_
    std::size_t read_bytes_ = 0;    // received by the current read
};

}  // namespace mv::ingest::net
