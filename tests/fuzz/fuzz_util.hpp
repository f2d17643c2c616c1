#pragma once
// Shared helpers of the libFuzzer targets (tests/fuzz, README "Hostile input").
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace mv::fuzz {

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// A private temp dir for the process (removed at exit).
inline const std::filesystem::path& temp_dir() {
    static const std::filesystem::path dir = [] {
        std::string tmpl = (std::filesystem::temp_directory_path() / "mv-fuzz-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) std::abort();
        std::atexit([] { std::error_code ec; std::filesystem::remove_all(temp_dir(), ec); });
        return std::filesystem::path(tmpl);
    }();
    return dir;
}

// A TCP server on 127.0.0.1 (random port) that plays a script to one client at a time: for
// each connection, `script(fd)` writes the server's side (the fuzz input), then the server
// half-closes and reads until the client goes, so every byte the client sends is taken.
class ScriptedServer {
  public:
    ScriptedServer() {
        fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 16) != 0) std::abort();
        socklen_t len = sizeof a;
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
    }
    ~ScriptedServer() { close(fd_); }
    int port() const { return port_; }

    // Serves connections with `script` (one thread each) until stop(); `script` gets the
    // connection and, when it returns, the server half-closes and drains until the client goes.
    void start(std::function<void(int fd)> script) {
        stop_ = false;
        thread_ = std::thread([this, script = std::move(script)] {
            std::vector<std::thread> conns;
            while (!stop_) {
                pollfd p{fd_, POLLIN, 0};
                if (poll(&p, 1, 20) <= 0) continue;
                int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (c < 0) continue;
                conns.emplace_back([this, c, &script] {
                    script(c);
                    shutdown(c, SHUT_WR);
                    char buf[4096];
                    for (;;) {
                        pollfd q{c, POLLIN, 0};
                        if (poll(&q, 1, 50) <= 0) {
                            if (stop_) break;
                            continue;
                        }
                        if (read(c, buf, sizeof buf) <= 0) break;
                    }
                    close(c);
                });
            }
            for (auto& t : conns) t.join();
        });
    }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }

  private:
    int fd_ = -1;
    int port_ = 0;
    std::thread thread_;
    std::atomic<bool> stop_{false};
};

inline void write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n <= 0) return;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace mv::fuzz
