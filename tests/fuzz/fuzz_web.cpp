// The web layer's request parsing: raw bytes sent to the real HTTP server (libmicrohttpd and
// web/http.cpp: path segments, query string, headers, cookies, form body), and the string
// functions on their own (url_decode, parse_form, parse_listen, parse_duration).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/fuzz/fuzz_util.hpp"
#include "web/auth.hpp"
#include "web/http.hpp"

namespace {
mv::web::HttpServer& server() {
    static std::unique_ptr<mv::web::HttpServer> s = [] {
        mv::web::Limits l;
        l.request_deadline_s = 2;
        l.idle_timeout_s = 2;
        l.threads = 1;
        l.per_ip_connections = 1000;  // fuzzed connections may linger until their idle timeout
        l.max_connections = 2000;
        auto r = mv::web::HttpServer::start("127.0.0.1", 0, l, [](const mv::web::Request& q) {
            mv::web::Response resp;
            std::string b = q.method + " " + q.raw_path + "\n";
            for (auto& s : q.segments) b += "seg " + s + "\n";
            for (auto& [k, v] : q.query) b += "q " + k + "=" + v + "\n";
            for (auto& [k, v] : q.cookies) b += "c " + k + "=" + v + "\n";
            for (auto& [k, v] : q.form) b += "f " + k + "=" + v + "\n";
            b += q.header("host") + q.arg("q") + q.field("user") + q.cookie("mv_session");
            resp.body = b;
            return resp;
        });
        if (!r) std::abort();
        return std::move(*r);
    }();
    return *s;
}

int connect_server() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(server().port());
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// Reads what the server answers until it closes, or `quiet_ms` pass without a byte.
std::string read_answer(int fd, int quiet_ms) {
    std::string got;
    char buf[8192];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, quiet_ms) <= 0) break;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
}

// The fuzz bytes as one connection's request; the answer is read until the server goes quiet
// (a keep-alive connection stays open until its idle timeout, which is not a finding).
void send_request(std::string_view bytes) {
    int fd = connect_server();
    if (fd < 0) return;
    mv::fuzz::write_all(fd, bytes);
    shutdown(fd, SHUT_WR);
    (void)read_answer(fd, 200);
    close(fd);
}

// After every input the server must still answer a plain request: a hung or dead server is
// a finding (the fuzzed connection itself may legitimately be kept open).
void check_alive() {
    int fd = connect_server();
    if (fd < 0) std::abort();
    mv::fuzz::write_all(fd, "GET /alive HTTP/1.0\r\nHost: x\r\n\r\n");
    std::string got = read_answer(fd, 30000);  // generous: the shared test machine is slow under load
    close(fd);
    if (got.rfind("HTTP/1.", 0) != 0) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in = mv::fuzz::as_view(data, size);
    (void)mv::web::url_decode(in, true);
    (void)mv::web::parse_form(in);
    (void)mv::web::parse_listen(in);
    (void)mv::web::parse_duration(in);
    send_request(in);
    check_alive();
    return 0;
}
