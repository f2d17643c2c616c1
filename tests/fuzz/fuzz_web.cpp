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

void send_request(std::string_view bytes) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(server().port());
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        mv::fuzz::write_all(fd, bytes);
        shutdown(fd, SHUT_WR);
        char buf[8192];
        for (;;) {  // the answer, until the server closes (its own deadline bounds this)
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, 5000) <= 0) std::abort();  // a hang of the server: a finding
            if (read(fd, buf, sizeof buf) <= 0) break;
        }
    }
    close(fd);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in = mv::fuzz::as_view(data, size);
    (void)mv::web::url_decode(in, true);
    (void)mv::web::parse_form(in);
    (void)mv::web::parse_listen(in);
    (void)mv::web::parse_duration(in);
    send_request(in);
    return 0;
}
