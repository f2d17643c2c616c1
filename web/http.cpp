#include "web/http.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace mv::web {

std::string Request::header(const std::string& n) const {
    auto it = headers.find(n);
    return it == headers.end() ? std::string{} : it->second;
}
std::string Request::arg(const std::string& n) const {
    auto it = query.find(n);
    return it == query.end() ? std::string{} : it->second;
}
std::string Request::field(const std::string& n) const {
    auto it = form.find(n);
    return it == form.end() ? std::string{} : it->second;
}
std::string Request::cookie(const std::string& n) const {
    auto it = cookies.find(n);
    return it == cookies.end() ? std::string{} : it->second;
}

std::string url_decode(std::string_view s, bool plus) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else if (c == '+' && plus) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

std::map<std::string, std::string> parse_form(std::string_view s) {
    std::map<std::string, std::string> out;
    std::size_t pos = 0;
    while (pos <= s.size()) {
        std::size_t amp = s.find('&', pos);
        if (amp == std::string_view::npos) amp = s.size();
        std::string_view pair = s.substr(pos, amp - pos);
        if (!pair.empty()) {
            std::size_t eq = pair.find('=');
            std::string k = url_decode(pair.substr(0, eq), true);
            std::string v = eq == std::string_view::npos ? std::string{} : url_decode(pair.substr(eq + 1), true);
            out.emplace(std::move(k), std::move(v));
        }
        pos = amp + 1;
    }
    return out;
}

Result<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view s) {
    std::string host;
    std::string_view port;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
            return fail(Error::Kind::usage, "listen address \"" + std::string(s) + "\": use HOST:PORT");
        host = std::string(s.substr(1, close - 1));
        port = s.substr(close + 2);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos)
            return fail(Error::Kind::usage, "listen address \"" + std::string(s) + "\": use HOST:PORT");
        host = std::string(s.substr(0, colon));
        port = s.substr(colon + 1);
    }
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoul(std::string(port)) > 65535)
        return fail(Error::Kind::usage, "listen address \"" + std::string(s) + "\": bad port");
    if (host.empty()) host = "127.0.0.1";
    return std::pair{host, static_cast<std::uint16_t>(std::stoul(std::string(port)))};
}

namespace {

// Per TCP connection: when the request being read started (for the deadline).
struct Conn {
    MHD_Connection* mhd = nullptr;
    int fd = -1;
    std::chrono::steady_clock::time_point reading_since;
    bool busy = false;     // the handler runs or the response is being sent
    bool killed = false;
    std::string raw_uri;   // from the URI log callback
};

struct ReqState {
    std::string raw_uri;
    std::string body;
    bool too_big = false;
    Conn* conn = nullptr;
};

}  // namespace

// Who a connection is, for the limits the acceptor enforces (per client address, in all).
struct Peer {
    std::size_t daemon = 0;
    std::string address;
};

struct HttpServer::Impl {
    // One libmicrohttpd daemon per worker thread, each with one polling thread, and one
    // acceptor that gives every new connection to the daemon with the fewest. (A pool of
    // libmicrohttpd's own shares the listening socket: whichever thread wakes first accepts
    // up to ten connections at once, so 16 connections opened together often all landed on
    // one of two workers, and one core stood idle while the other queued every request.)
    std::vector<MHD_Daemon*> daemons;
    int listen_fd = -1;
    int wake_fd = -1;  // eventfd: the acceptor stops
    std::thread acceptor;
    Limits limits;
    Handler handler;
    bool tls = false;
    std::string cert, key;  // must outlive the daemon

    std::mutex mu;  // conns, peers, per_daemon, per_address
    std::unordered_map<Conn*, std::unique_ptr<Conn>> conns;
    std::unordered_map<int, Peer> peers;  // by fd, from accept until libmicrohttpd closes it
    std::vector<unsigned> per_daemon;
    std::unordered_map<std::string, unsigned> per_address;
    std::thread reaper;
    std::condition_variable cv;
    bool stopping = false;

    void reap_loop() {
        std::unique_lock lock(mu);
        while (!stopping) {
            cv.wait_for(lock, std::chrono::milliseconds(250));
            const auto now = std::chrono::steady_clock::now();
            const auto deadline = std::chrono::seconds(limits.request_deadline_s);
            for (auto& [p, c] : conns) {
                // The fd is still open: MHD closes it only after notifying CLOSED, which
                // takes `mu` to remove the entry.
                if (!c->busy && !c->killed && c->fd >= 0 && now - c->reading_since > deadline) {
                    ::shutdown(c->fd, SHUT_RDWR);
                    c->killed = true;
                }
            }
        }
    }
};

namespace {

std::string address_of(const sockaddr* sa) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (sa->sa_family == AF_INET) inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
    else if (sa->sa_family == AF_INET6) inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
    return buf;
}

// Removes a connection from the acceptor's counts (under `mu`).
void forget_peer(HttpServer::Impl& impl, int fd) {
    auto it = impl.peers.find(fd);
    if (it == impl.peers.end()) return;
    --impl.per_daemon[it->second.daemon];
    auto a = impl.per_address.find(it->second.address);
    if (a != impl.per_address.end() && --a->second == 0) impl.per_address.erase(a);
    impl.peers.erase(it);
}

void accept_loop(HttpServer::Impl& impl) {
    pollfd fds[2] = {{impl.listen_fd, POLLIN, 0}, {impl.wake_fd, POLLIN, 0}};
    for (;;) {
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[1].revents) return;
        if (!(fds[0].revents & POLLIN)) continue;
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        const int fd = ::accept4(impl.listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            // Out of descriptors or memory: the pending connection waits; do not spin on it.
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            continue;
        }
        const std::string address = address_of(reinterpret_cast<const sockaddr*>(&ss));
        std::size_t target = 0;
        {
            std::lock_guard lock(impl.mu);
            unsigned total = 0;
            for (unsigned n : impl.per_daemon) total += n;
            auto a = impl.per_address.find(address);
            const unsigned from_address = a == impl.per_address.end() ? 0 : a->second;
            if ((impl.limits.max_connections > 0 && total >= impl.limits.max_connections) ||
                (impl.limits.per_ip_connections > 0 && from_address >= impl.limits.per_ip_connections)) {
                ::close(fd);  // as libmicrohttpd's own limits: closed at once, no answer
                continue;
            }
            target = static_cast<std::size_t>(
                std::min_element(impl.per_daemon.begin(), impl.per_daemon.end()) - impl.per_daemon.begin());
            ++impl.per_daemon[target];
            ++impl.per_address[address];
            impl.peers[fd] = Peer{target, address};
        }
        if (MHD_add_connection(impl.daemons[target], fd, reinterpret_cast<const sockaddr*>(&ss), len) != MHD_YES) {
            // libmicrohttpd closed it; no CLOSED notification follows one it never started.
            std::lock_guard lock(impl.mu);
            forget_peer(impl, fd);
        }
    }
}

void notify_connection(void* cls, MHD_Connection* connection, void** socket_context, MHD_ConnectionNotificationCode toe) {
    auto* impl = static_cast<HttpServer::Impl*>(cls);
    std::lock_guard lock(impl->mu);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        auto c = std::make_unique<Conn>();
        c->mhd = connection;
        if (const auto* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD)) c->fd = info->connect_fd;
        c->reading_since = std::chrono::steady_clock::now();
        *socket_context = c.get();
        impl->conns.emplace(c.get(), std::move(c));
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        // Still open here: libmicrohttpd closes the fd after this, so it is not reused yet.
        if (const auto* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD))
            forget_peer(*impl, info->connect_fd);
        if (*socket_context) impl->conns.erase(static_cast<Conn*>(*socket_context));
        *socket_context = nullptr;
    }
}

Conn* conn_of(MHD_Connection* connection) {
    const auto* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? static_cast<Conn*>(info->socket_context) : nullptr;
}

void* uri_log(void* cls, const char* uri, MHD_Connection* connection) {
    auto* impl = static_cast<HttpServer::Impl*>(cls);
    if (Conn* c = conn_of(connection)) {
        std::lock_guard lock(impl->mu);
        c->raw_uri = uri ? uri : "";
    }
    return nullptr;
}

void request_completed(void* cls, MHD_Connection* connection, void** con_cls, MHD_RequestTerminationCode) {
    auto* impl = static_cast<HttpServer::Impl*>(cls);
    delete static_cast<ReqState*>(*con_cls);
    *con_cls = nullptr;
    if (Conn* c = conn_of(connection)) {
        std::lock_guard lock(impl->mu);
        c->busy = false;
        c->reading_since = std::chrono::steady_clock::now();  // the next request on this connection
    }
}

MHD_Result collect(void* cls, MHD_ValueKind, const char* key, const char* value) {
    auto* m = static_cast<std::map<std::string, std::string>*>(cls);
    if (!key) return MHD_YES;
    std::string k = key;
    std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
    m->emplace(std::move(k), value ? value : "");
    return MHD_YES;
}

MHD_Result collect_cookie(void* cls, MHD_ValueKind, const char* key, const char* value) {
    auto* m = static_cast<std::map<std::string, std::string>*>(cls);
    if (key) m->emplace(key, value ? value : "");
    return MHD_YES;
}

MHD_Result send(MHD_Connection* connection, const Response& r) {
    MHD_Response* resp =
        MHD_create_response_from_buffer(r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    for (const auto& [k, v] : r.headers) MHD_add_response_header(resp, k.c_str(), v.c_str());
    MHD_Result ret = MHD_queue_response(connection, static_cast<unsigned>(r.status), resp);
    MHD_destroy_response(resp);
    return ret;
}

Response too_large() {
    Response r;
    r.status = 413;
    r.body = "request body too large\n";
    r.header("Content-Type", "text/plain; charset=utf-8").header("Connection", "close");
    return r;
}

MHD_Result access(void* cls, MHD_Connection* connection, const char* url, const char* method, const char*,
                  const char* upload_data, size_t* upload_data_size, void** con_cls) {
    auto* impl = static_cast<HttpServer::Impl*>(cls);
    auto* st = static_cast<ReqState*>(*con_cls);
    if (!st) {
        st = new ReqState;
        *con_cls = st;
        st->conn = conn_of(connection);
        if (st->conn) {
            std::lock_guard lock(impl->mu);
            st->raw_uri = st->conn->raw_uri;
        }
        if (st->raw_uri.empty()) st->raw_uri = url ? url : "/";
        if (const char* cl = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
            char* end = nullptr;
            unsigned long long n = std::strtoull(cl, &end, 10);
            if (n > impl->limits.max_body) return send(connection, too_large());  // body never read
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!st->too_big) {
            if (st->body.size() + *upload_data_size > impl->limits.max_body) {
                st->too_big = true;
                st->body.clear();
                st->body.shrink_to_fit();
            } else {
                st->body.append(upload_data, *upload_data_size);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (st->conn) {
        std::lock_guard lock(impl->mu);
        st->conn->busy = true;
    }
    if (st->too_big) return send(connection, too_large());

    Request req;
    req.method = method ? method : "";
    req.tls = impl->tls;
    std::string_view uri = st->raw_uri;
    auto qpos = uri.find('?');
    req.raw_path = std::string(uri.substr(0, qpos));
    if (qpos != std::string_view::npos) req.query = parse_form(uri.substr(qpos + 1));
    {
        std::string_view p = req.raw_path;
        std::size_t pos = 1;
        if (p.empty() || p[0] != '/') pos = 0;
        while (pos <= p.size()) {
            auto slash = p.find('/', pos);
            if (slash == std::string_view::npos) slash = p.size();
            req.segments.push_back(url_decode(p.substr(pos, slash - pos), false));
            pos = slash + 1;
        }
    }
    MHD_get_connection_values(connection, MHD_HEADER_KIND, collect, &req.headers);
    MHD_get_connection_values(connection, MHD_COOKIE_KIND, collect_cookie, &req.cookies);
    req.body = std::move(st->body);
    if (req.header("content-type").rfind("application/x-www-form-urlencoded", 0) == 0) req.form = parse_form(req.body);
    if (const auto* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS))
        req.client = address_of(info->client_addr);
    Response r;
    try {
        r = impl->handler(req);
    } catch (...) {  // std::exception, and Xapian::Error, which is not one: never into libmicrohttpd
        r = Response{};
        r.status = 500;
        r.body = "internal error\n";
        r.header("Content-Type", "text/plain; charset=utf-8");
    }
    return send(connection, r);
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& host, std::uint16_t port, const Limits& limits,
                                                      Handler handler, const TlsFiles& tls) {
    std::unique_ptr<HttpServer> s(new HttpServer);
    s->impl_ = std::make_unique<Impl>();
    Impl& impl = *s->impl_;
    impl.limits = limits;
    impl.handler = std::move(handler);
    impl.tls = !tls.cert_pem.empty() && !tls.key_pem.empty();
    impl.cert = tls.cert_pem;
    impl.key = tls.key_pem;

    sockaddr_storage ss{};
    socklen_t len = 0;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
    if (inet_pton(AF_INET, host.c_str(), &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        len = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, host.c_str(), &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr) == 1) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        len = sizeof(sockaddr_in6);
        flags |= MHD_USE_IPv6;
    } else {
        return fail(Error::Kind::usage, "listen address \"" + host + "\": use a numeric IPv4 or IPv6 address");
    }
    const std::string cannot_listen = "cannot listen on " + host + ":" + std::to_string(port);
    impl.listen_fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (impl.listen_fd < 0) return fail(Error::Kind::unreachable, cannot_listen + ": " + std::strerror(errno));
    const int on = 1;
    ::setsockopt(impl.listen_fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (ss.ss_family == AF_INET6) ::setsockopt(impl.listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (::bind(impl.listen_fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(impl.listen_fd, SOMAXCONN) != 0)
        return fail(Error::Kind::unreachable, cannot_listen + " (address in use?): " + std::strerror(errno));
    sockaddr_storage bound{};
    socklen_t bound_len = sizeof bound;
    if (::getsockname(impl.listen_fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) == 0)
        s->port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                     : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    if (impl.tls) flags |= MHD_USE_TLS;
    // The acceptor enforces the connection limits over all daemons (see accept_loop).
    std::vector<MHD_OptionItem> opts = {
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(limits.connection_memory), nullptr},
        {MHD_OPTION_CONNECTION_TIMEOUT, static_cast<intptr_t>(limits.idle_timeout_s), nullptr},
        {MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(limits.max_connections), nullptr},
        {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&notify_connection), &impl},
        {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&request_completed), &impl},
        {MHD_OPTION_URI_LOG_CALLBACK, reinterpret_cast<intptr_t>(&uri_log), &impl},
    };
    if (impl.tls) {
        opts.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(impl.cert.c_str())});
        opts.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(impl.key.c_str())});
    }
    opts.push_back({MHD_OPTION_END, 0, nullptr});
    const unsigned workers = std::max(1u, limits.threads);
    for (unsigned i = 0; i < workers; ++i) {
        MHD_Daemon* d = MHD_start_daemon(flags, 0, nullptr, nullptr, &access, &impl, MHD_OPTION_ARRAY, opts.data(),
                                         MHD_OPTION_END);
        if (!d) return fail(Error::Kind::unreachable, cannot_listen + (impl.tls ? " (check [serve] cert and key)" : ""));
        impl.daemons.push_back(d);
    }
    impl.per_daemon.assign(impl.daemons.size(), 0);
    impl.wake_fd = ::eventfd(0, EFD_CLOEXEC);
    if (impl.wake_fd < 0) return fail(Error::Kind::io, cannot_listen + ": eventfd: " + std::strerror(errno));
    impl.acceptor = std::thread([&impl] { accept_loop(impl); });
    impl.reaper = std::thread([&impl] { impl.reap_loop(); });
    return s;
}

HttpServer::~HttpServer() {
    if (!impl_) return;
    if (impl_->acceptor.joinable()) {
        const std::uint64_t one = 1;
        (void)!::write(impl_->wake_fd, &one, sizeof one);
        impl_->acceptor.join();
    }
    if (impl_->listen_fd >= 0) ::close(impl_->listen_fd);
    {
        std::lock_guard lock(impl_->mu);
        impl_->stopping = true;
    }
    impl_->cv.notify_all();
    if (impl_->reaper.joinable()) impl_->reaper.join();
    for (MHD_Daemon* d : impl_->daemons) MHD_stop_daemon(d);
    if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

}  // namespace mv::web
