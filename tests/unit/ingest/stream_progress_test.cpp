// net::Stream's progress rule (issue 13): a read must receive 1 KiB, or its end, within the
// read timeout. A server that trickles a byte at a time or stalls mid-reply ends with an error
// naming the source and the step; a slow but moving transfer completes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "ingest/net/stream.hpp"

namespace mv::ingest::net {
namespace {

// One connection on a loopback port; `serve` writes to it, then it stays open until the end.
class Server {
  public:
    explicit Server(std::function<void(int fd, const std::atomic<bool>& stop)> serve) {
        lfd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(lfd_, 1);
        socklen_t len = sizeof a;
        ::getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
        thread_ = std::thread([this, serve] {
            int fd = ::accept(lfd_, nullptr, nullptr);
            if (fd < 0) return;
            serve(fd, stop_);
            while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            ::close(fd);
        });
    }
    ~Server() {
        stop_ = true;
        ::shutdown(lfd_, SHUT_RDWR);
        thread_.join();
        ::close(lfd_);
    }
    int port = 0;

  private:
    int lfd_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

void send_slowly(int fd, const std::string& bytes, std::size_t chunk, int pause_ms, const std::atomic<bool>& stop) {
    for (std::size_t i = 0; i < bytes.size() && !stop; i += chunk) {
        ::send(fd, bytes.data() + i, std::min(chunk, bytes.size() - i), MSG_NOSIGNAL);
        std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    }
}

std::unique_ptr<Stream> open(int port) {
    Endpoint e;
    e.source = "work";
    e.host = "127.0.0.1";
    e.port = port;
    e.read_timeout = std::chrono::seconds(1);
    auto s = Stream::connect(e, Security::none);
    EXPECT_TRUE(s) << (s ? "" : s.error().message);
    return s ? std::move(*s) : nullptr;
}

TEST(StreamProgress, SilentServerIsNoAnswerNamingTheStep) {
    Server srv([](int, const std::atomic<bool>&) {});
    auto s = open(srv.port);
    ASSERT_TRUE(s);
    s->set_step("IMAP greeting");
    auto line = s->read_line();
    ASSERT_FALSE(line);
    EXPECT_NE(line.error().message.find("source 'work': IMAP greeting: timeout: no answer from 127.0.0.1:"), std::string::npos)
        << line.error().message;
}

TEST(StreamProgress, TrickleEndsTheRead) {
    // A byte every 100 ms: each poll succeeds, but 10 bytes a second is no answer.
    Server srv([](int fd, const std::atomic<bool>& stop) { send_slowly(fd, std::string(200, 'x') + "\r\n", 1, 100, stop); });
    auto s = open(srv.port);
    ASSERT_TRUE(s);
    s->set_step("POP3 RETR 7");
    auto line = s->read_line();
    ASSERT_FALSE(line);
    EXPECT_NE(line.error().message.find("source 'work': POP3 RETR 7: timeout: server 127.0.0.1:"), std::string::npos)
        << line.error().message;
    EXPECT_NE(line.error().message.find("sent only"), std::string::npos) << line.error().message;
}

TEST(StreamProgress, StallMidLiteralEndsTheRead) {
    Server srv([](int fd, const std::atomic<bool>&) {
        std::string head(5000, 'y');
        ::send(fd, head.data(), head.size(), MSG_NOSIGNAL);  // then nothing, connection open
    });
    auto s = open(srv.port);
    ASSERT_TRUE(s);
    std::string out;
    auto r = s->read_exact(10000, out);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("timeout"), std::string::npos) << r.error().message;
}

TEST(StreamProgress, SlowButMovingTransferCompletes) {
    // 2 KiB every 200 ms for 2 s: longer than the timeout in all, but never stalled.
    std::string body(10 * 2048, 'z');
    Server srv([&body](int fd, const std::atomic<bool>& stop) { send_slowly(fd, body, 2048, 200, stop); });
    auto s = open(srv.port);
    ASSERT_TRUE(s);
    std::string out;
    auto r = s->read_exact(body.size(), out);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(out, body);
}

TEST(StreamProgress, ShortRepliesWithPausesBetweenReadsAreFine) {
    // The time between two reads (the client busy elsewhere) does not count against the next.
    Server srv([](int fd, const std::atomic<bool>&) {
        ::send(fd, "+OK one\r\n", 9, MSG_NOSIGNAL);
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        ::send(fd, "+OK two\r\n", 9, MSG_NOSIGNAL);
    });
    auto s = open(srv.port);
    ASSERT_TRUE(s);
    auto a = s->read_line();
    ASSERT_TRUE(a);
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));
    auto b = s->read_line();
    ASSERT_TRUE(b) << b.error().message;
    EXPECT_EQ(*b, "+OK two");
}

}  // namespace
}  // namespace mv::ingest::net
