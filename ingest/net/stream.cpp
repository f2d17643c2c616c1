#include "ingest/net/stream.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <mutex>
#include <cstring>

namespace mv::ingest::net {
namespace {

SSL* as_ssl(void* p) { return static_cast<SSL*>(p); }
SSL_CTX* as_ctx(void* p) { return static_cast<SSL_CTX*>(p); }

std::string ssl_errors() {
    std::string out;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out;
}

// The DNS names (subjectAltName, else the common name) of a certificate, "\"a\", \"b\"".
std::string certificate_names(X509* cert) {
    if (!cert) return {};
    std::string out;
    auto add = [&](std::string n) {
        if (!n.empty()) out += (out.empty() ? "" : ", ") + ("\"" + n + "\"");
    };
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (sans) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
            const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
            if (n->type == GEN_DNS) {
                const auto* s = n->d.dNSName;
                add(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s)));
            } else if (n->type == GEN_IPADD && n->d.iPAddress->length == 4) {
                const unsigned char* a = ASN1_STRING_get0_data(n->d.iPAddress);
                add(std::to_string(a[0]) + "." + std::to_string(a[1]) + "." + std::to_string(a[2]) + "." + std::to_string(a[3]));
            }
        }
        GENERAL_NAMES_free(sans);
    }
    if (out.empty()) {
        char cn[256] = {0};
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) add(cn);
    }
    return out;
}

// The names of the server's certificate, noted during verification (a failed handshake
// keeps no peer certificate): SSL_connect verifies on the calling thread.
thread_local std::string t_peer_names;

int note_peer_names(int preverify_ok, X509_STORE_CTX* store) {
    if (X509_STORE_CTX_get_error_depth(store) == 0) t_peer_names = certificate_names(X509_STORE_CTX_get_current_cert(store));
    return preverify_ok;
}

bool is_ip_literal(const std::string& host) {
    unsigned char tmp[16];
    return inet_pton(AF_INET, host.c_str(), tmp) == 1 || inet_pton(AF_INET6, host.c_str(), tmp) == 1;
}

// Waits until fd is readable/writable; false on timeout.
bool wait_fd(int fd, short events, std::chrono::milliseconds timeout) {
    pollfd p{fd, events, 0};
    for (;;) {
        int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
        if (r < 0 && errno == EINTR) continue;
        return r > 0;
    }
}

}  // namespace

std::string Stream::where() const { return endpoint_.host + ":" + std::to_string(endpoint_.port); }

Error Stream::io_error(const std::string& what) const {
    return make_error(Error::Kind::unreachable,
                      "source '" + endpoint_.source + "': " + (step_.empty() ? "" : step_ + ": ") + what);
}

void Stream::begin_read() {
    window_start_ = std::chrono::steady_clock::now();
    window_bytes_ = 0;
    read_bytes_ = 0;
}

Result<std::unique_ptr<Stream>> Stream::connect(const Endpoint& endpoint, Security security) {
    // A peer that drops the connection must give an error, not end the process: plain writes
    // pass MSG_NOSIGNAL, but OpenSSL writes through write(2), which raises SIGPIPE.
    static std::once_flag no_sigpipe;
    std::call_once(no_sigpipe, [] { std::signal(SIGPIPE, SIG_IGN); });
    std::unique_ptr<Stream> s(new Stream(endpoint));
    const std::string src = "source '" + endpoint.source + "': ";
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string port = std::to_string(endpoint.port);
    int gai = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &res);
    if (gai != 0)
        return fail(Error::Kind::unreachable,
                    src + "unknown host '" + endpoint.host + "' (" + gai_strerror(gai) + ")");
    std::string last_error = "no address";
    bool timed_out = false;
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            last_error = std::strerror(errno);
            continue;
        }
        int r = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            if (!wait_fd(fd, POLLOUT, endpoint.connect_timeout)) {
                timed_out = true;
                ::close(fd);
                continue;
            }
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            r = err == 0 ? 0 : -1;
            errno = err;
        }
        if (r != 0) {
            last_error = errno == ECONNREFUSED ? "connection refused (wrong port, or server not running?)"
                                               : std::strerror(errno);
            ::close(fd);
            continue;
        }
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        s->fd_ = fd;
        break;
    }
    ::freeaddrinfo(res);
    if (s->fd_ < 0) {
        if (timed_out && last_error == "no address")
            return fail(Error::Kind::unreachable, src + "timeout: no connection to " + s->where() + " after " +
                                                      std::to_string(endpoint.connect_timeout.count() / 1000) + " s");
        return fail(Error::Kind::unreachable, src + "cannot connect to " + s->where() + ": " + last_error);
    }
    if (security == Security::tls) {
        auto r = s->start_tls();
        if (!r) return fail(r.error());
    }
    return s;
}

Result<void> Stream::start_tls() {
    const std::string src = "source '" + endpoint_.source + "': ";
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return fail(io_error("cannot create TLS context: " + ssl_errors()));
    ctx_ = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (!endpoint_.tls.trust_all) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, note_peer_names);
        if (!endpoint_.tls.ca_file.empty()) {
            if (SSL_CTX_load_verify_locations(ctx, endpoint_.tls.ca_file.c_str(), nullptr) != 1)
                return fail(Error::Kind::usage, "source '" + endpoint_.source + "': cannot read ca_file '" +
                                                    endpoint_.tls.ca_file + "': " + ssl_errors());
        }
        SSL_CTX_set_default_verify_paths(ctx);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    }
    SSL* ssl = SSL_new(ctx);
    ssl_ = ssl;
    SSL_set_fd(ssl, fd_);
    const std::string& host = endpoint_.host;
    if (!is_ip_literal(host)) SSL_set_tlsext_host_name(ssl, host.c_str());
    if (!endpoint_.tls.trust_all) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        if (is_ip_literal(host))
            X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
        else
            X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    }
    t_peer_names.clear();
    // Anything buffered before the handshake would be a protocol violation (STARTTLS injection).
    buf_.clear();
    pos_ = 0;
    begin_read();
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(ssl);
        if (r == 1) break;
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            // One deadline for the whole handshake: a server trickling its certificate ends too.
            if (!wait_fd(fd_, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, window_left()))
                return fail(io_error("timeout: no TLS handshake from " + where() + " within " +
                                         std::to_string(endpoint_.read_timeout.count() / 1000) + " s"));
            continue;
        }
        long vr = SSL_get_verify_result(ssl);
        std::string detail;
        if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
            std::string names = t_peer_names;
            detail = "certificate verification failed: the certificate is for " +
                     (names.empty() ? std::string("other names") : names) +
                     ", not for the configured host \"" + host + "\" (set host to one of its names" +
                     (endpoint_.tls.ca_file.empty() ? "" : "; ca_file is fine, the chain was trusted") + ")";
        } else if (vr != X509_V_OK) {
            detail = std::string("certificate verification failed: ") + X509_verify_cert_error_string(vr);
            if (endpoint_.tls.ca_file.empty())
                detail += " (set ca_file to the CA that issued it, or trust_all_certificates = true for a self-signed server)";
            else
                detail += " (the certificate is not issued by a CA in ca_file '" + endpoint_.tls.ca_file + "')";
        } else {
            detail = ssl_errors();
            if (detail.find("wrong version number") != std::string::npos ||
                detail.find("packet length too long") != std::string::npos)
                detail = "it answered in plain text, not TLS: use security = \"starttls\" on this port, or the TLS "
                         "port of the service (IMAP 993, POP3 995, SMTP 465) with security = \"tls\" "
                         "(OpenSSL: " + detail + ")";
            if (detail.empty()) detail = "connection closed during handshake (is this port TLS?)";
        }
        return fail(io_error("TLS failure with " + where() + ": " + detail));
    }
    return ok();
}

Stream::~Stream() { close(); }

void Stream::close() {
    if (ssl_) {
        SSL_free(as_ssl(ssl_));
        ssl_ = nullptr;
    }
    if (ctx_) {
        SSL_CTX_free(as_ctx(ctx_));
        ctx_ = nullptr;
    }
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

Result<void> Stream::write(std::string_view bytes) {
    if (fd_ < 0) return fail(io_error("connection to " + where() + " is closed"));
    while (!bytes.empty()) {
        long n;
        if (ssl_) {
            ERR_clear_error();
            int r = SSL_write(as_ssl(ssl_), bytes.data(), static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 20)));
            if (r <= 0) {
                int e = SSL_get_error(as_ssl(ssl_), r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    if (!wait_fd(fd_, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, endpoint_.read_timeout))
                        return fail(io_error("timeout: server " + where() + " stopped reading"));
                    continue;
                }
                return fail(io_error("connection to " + where() + " lost while writing"));
            }
            n = r;
        } else {
            n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    if (!wait_fd(fd_, POLLOUT, endpoint_.read_timeout))
                        return fail(io_error("timeout: server " + where() + " stopped reading"));
                    continue;
                }
                return fail(io_error("connection to " + where() + " lost while writing: " + std::strerror(errno)));
            }
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return ok();
}

std::chrono::milliseconds Stream::window_left() const {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(window_start_ + endpoint_.read_timeout -
                                                                      std::chrono::steady_clock::now());
    return std::max(left, std::chrono::milliseconds(0));
}

Error Stream::stalled() const {
    const long s = static_cast<long>(endpoint_.read_timeout.count() / 1000);
    if (read_bytes_ == 0) return io_error("timeout: no answer from " + where() + " for " + std::to_string(s) + " s");
    if (window_bytes_ == 0)
        return io_error("timeout: server " + where() + " stalled mid-reply: nothing for " + std::to_string(s) + " s after " +
                        std::to_string(read_bytes_) + " bytes of it");
    return io_error("timeout: server " + where() + " sent only " + std::to_string(window_bytes_) + " bytes in " +
                    std::to_string(s) + " s (trickling mid-reply, after " + std::to_string(read_bytes_) + " bytes of it)");
}

Result<void> Stream::fill() {
    if (fd_ < 0) return fail(io_error("connection to " + where() + " is closed"));
    if (window_start_ == std::chrono::steady_clock::time_point{}) begin_read();
    if (pos_ > 0 && pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    } else if (pos_ > (1u << 20)) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    constexpr std::size_t k_chunk = 256 * 1024;
    std::size_t old = buf_.size();
    buf_.resize(old + k_chunk);
    for (;;) {
        long n;
        if (ssl_) {
            ERR_clear_error();
            int r = SSL_read(as_ssl(ssl_), buf_.data() + old, static_cast<int>(k_chunk));
            if (r <= 0) {
                int e = SSL_get_error(as_ssl(ssl_), r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    if (!wait_fd(fd_, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, window_left())) {
                        buf_.resize(old);
                        return fail(stalled());
                    }
                    continue;
                }
                buf_.resize(old);
                return fail(io_error("connection to " + where() + " closed by the server"));
            }
            n = r;
        } else {
            n = ::recv(fd_, buf_.data() + old, k_chunk, 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    if (!wait_fd(fd_, POLLIN, window_left())) {
                        buf_.resize(old);
                        return fail(stalled());
                    }
                    continue;
                }
                buf_.resize(old);
                return fail(io_error("connection to " + where() + " lost: " + std::strerror(errno)));
            }
            if (n == 0) {
                buf_.resize(old);
                return fail(io_error("connection to " + where() + " closed by the server"));
            }
        }
        buf_.resize(old + static_cast<std::size_t>(n));
        read_bytes_ += static_cast<std::size_t>(n);
        window_bytes_ += static_cast<std::size_t>(n);
        if (window_bytes_ >= k_min_progress) {
            window_start_ = std::chrono::steady_clock::now();
            window_bytes_ = 0;
        } else if (std::chrono::steady_clock::now() - window_start_ >= endpoint_.read_timeout) {
            return fail(stalled());  // a byte now and then is not an answer
        }
        return ok();
    }
}

Result<std::string> Stream::read_line(std::size_t max, bool same_reply) {
    if (!same_reply) begin_read();
    std::size_t scan = pos_;
    for (;;) {
        auto nl = buf_.find('\n', scan);
        if (nl != std::string::npos) {
            std::size_t end = nl;
            if (end > pos_ && buf_[end - 1] == '\r') --end;
            std::string line = buf_.substr(pos_, end - pos_);
            pos_ = nl + 1;
            return line;
        }
        if (buf_.size() - pos_ > max) return fail(io_error("line from " + where() + " longer than " + std::to_string(max) + " bytes"));
        std::size_t scanned = buf_.size() - pos_;  // fill() may compact, so keep the offset relative
        auto r = fill();
        if (!r) return fail(r.error());
        scan = pos_ + scanned;
    }
}

Result<void> Stream::read_exact(std::size_t n, std::string& out, bool same_reply) {
    if (!same_reply) begin_read();
    // Reserved as announced only up to 64 MiB: a server's "{999999999999}" must not allocate
    // before a byte arrived (the string grows as the bytes do).
    out.reserve(out.size() + std::min<std::size_t>(n, 64u << 20));
    while (n > 0) {
        if (pos_ == buf_.size()) {
            auto r = fill();
            if (!r) return fail(r.error());
        }
        std::size_t take = std::min(n, buf_.size() - pos_);
        out.append(buf_, pos_, take);
        pos_ += take;
        n -= take;
    }
    return ok();
}

}  // namespace mv::ingest::net
