// Risky extractors run in a helper process that limits can stop: setrlimit(RLIMIT_AS,
// RLIMIT_CPU) and alarm() in the helper, a wall timeout and SIGKILL from the caller.
//
// Helpers are forked by a small fork server, itself forked once while this process is still
// small (start_helper()): fork copies the page tables of the process it forks, and from an
// importer holding 300 MiB that took about 80 ms per PDF against about 7 ms from a small one
// (README "Attachment contents"). Without the server (it could not start, or died), helpers are
// forked from this process directly.
//
// One job = one socket pair. Caller -> helper: input length (8 bytes), input. Helper -> caller:
// its pid (4 bytes), then status byte, reason length, reason, text length, text (lengths as 8
// bytes). The work is a plain function pointer: the server is a fork of this process, so the
// pointer means the same there.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <thread>

#include "index/extract/formats.hpp"

namespace mv::index::extract {
namespace {

std::uint64_t current_address_space() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long pages = 0;
    if (std::fscanf(f, "%lu", &pages) != 1) pages = 0;
    std::fclose(f);
    return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

bool write_all(int fd, const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

bool read_all(int fd, void* data, std::size_t n) {
    char* p = static_cast<char*>(data);
    while (n > 0) {
        ssize_t r = ::read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

void put_u64(std::string& s, std::uint64_t v) { s.append(reinterpret_cast<const char*>(&v), sizeof v); }

// The helper: job socket on fd 3, nothing else of its parent's.
[[noreturn]] void helper(int fd, Work work, const Limits& limits) {
    if (fd != 3) {
        ::dup2(fd, 3);
        fd = 3;
    }
    ::close_range(4, ~0u, 0);
    ::signal(SIGCHLD, SIG_DFL);
    const std::uint32_t pid = static_cast<std::uint32_t>(::getpid());
    std::uint64_t len = 0;
    if (!write_all(fd, &pid, sizeof pid) || !read_all(fd, &len, sizeof len) || len > (std::uint64_t{1} << 32)) _exit(2);
    std::string input(len, '\0');
    if (!read_all(fd, input.data(), len)) _exit(2);
    rlimit as{};
    as.rlim_cur = as.rlim_max = current_address_space() + limits.max_memory;
    ::setrlimit(RLIMIT_AS, &as);
    rlimit cpu{};
    cpu.rlim_cur = static_cast<rlim_t>(limits.timeout.count() / 1000 + 1);
    cpu.rlim_max = cpu.rlim_cur + 1;
    ::setrlimit(RLIMIT_CPU, &cpu);
    rlimit core{};
    ::setrlimit(RLIMIT_CORE, &core);
    ::alarm(static_cast<unsigned>(limits.timeout.count() / 1000 + 2));  // ends it should its caller be gone
    Extracted r;
    try {
        r = work(input, limits);
    } catch (const std::bad_alloc&) {
        r = Extracted{Status::failed, "memory limit of " + std::to_string(limits.max_memory >> 20) + " MiB reached", {}};
    } catch (...) {
        r = Extracted{Status::failed, "extractor error", {}};
    }
    std::string msg;
    msg.push_back(static_cast<char>(r.status));
    put_u64(msg, r.reason.size());
    msg += r.reason;
    put_u64(msg, r.text.size());
    msg += r.text;
    _exit(write_all(fd, msg.data(), msg.size()) ? 0 : 1);
}

struct JobHeader {
    Work work;
    Limits limits;
};

// The fork server's loop: one helper per job it is sent; ends when its caller is gone.
[[noreturn]] void server(int ctl) {
    if (ctl != 3) {
        ::dup2(ctl, 3);
        ctl = 3;
    }
    ::close_range(4, ~0u, 0);
    ::signal(SIGCHLD, SIG_IGN);  // helpers are reaped by the kernel
    ::signal(SIGINT, SIG_IGN);   // Ctrl-C is for the importer; its end closes ctl
    ::signal(SIGTERM, SIG_IGN);
    for (;;) {
        JobHeader h;
        iovec iov{&h, sizeof h};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = control;
        m.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(ctl, &m, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n != static_cast<ssize_t>(sizeof h)) _exit(0);
        cmsghdr* c = CMSG_FIRSTHDR(&m);
        if (!c || c->cmsg_type != SCM_RIGHTS) continue;
        int fd;
        std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
        if (::fork() == 0) {
            ::close(ctl);
            helper(fd, h.work, h.limits);
        }
        ::close(fd);
    }
}

class ForkServer {
  public:
    static ForkServer& get() {
        static ForkServer s;
        return s;
    }
    // Hands `fd` (the helper's end of a job) to the server; false when there is no server.
    bool submit(int fd, Work work, const Limits& limits) {
        std::lock_guard lock(mu_);
        if (ctl_ < 0) return false;
        JobHeader h{work, limits};
        iovec iov{&h, sizeof h};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
        std::memset(control, 0, sizeof control);
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = control;
        m.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
        ssize_t n;
        do n = ::sendmsg(ctl_, &m, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n == static_cast<ssize_t>(sizeof h)) return true;
        ::close(ctl_);  // the server is gone: fork directly from now on
        ctl_ = -1;
        return false;
    }

  private:
    ForkServer() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::close(sv[0]);
            server(sv[1]);
        }
        ::close(sv[1]);
        if (pid < 0) {
            ::close(sv[0]);
            return;
        }
        ctl_ = sv[0];
        // The server is not waited for: it ends when ctl_ closes with this process. Reap it
        // should it end earlier, so that it does not stay a zombie.
        std::thread([pid] {
            int st;
            while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
        }).detach();
    }
    std::mutex mu_;
    int ctl_ = -1;
};

// Parses a complete result, or returns false while it is incomplete.
bool read_result(const std::string& buf, Extracted& out) {
    std::size_t at = 1;
    auto get_u64 = [&](std::uint64_t& v) {
        if (buf.size() < at + sizeof v) return false;
        std::memcpy(&v, buf.data() + at, sizeof v);
        at += sizeof v;
        return true;
    };
    if (buf.empty()) return false;
    std::uint64_t n = 0;
    if (!get_u64(n) || buf.size() < at + n) return false;
    std::string reason = buf.substr(at, n);
    at += n;
    if (!get_u64(n) || buf.size() < at + n) return false;
    out.status = static_cast<Status>(buf[0]);
    out.reason = std::move(reason);
    out.text = buf.substr(at, n);
    return true;
}

}  // namespace

void start_helper() {
    static const bool started = (prepare_pdf(), ForkServer::get(), true);
    (void)started;
}

Extracted run_isolated(Work work, std::string_view input, const Limits& limits) {
    if (limits.isolation == Isolation::in_process) return work(input, limits);
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return {Status::failed, std::string("socketpair: ") + std::strerror(errno), {}};
    pid_t direct = 0;  // a helper forked here (no server): this process waits for it
    if (!ForkServer::get().submit(sv[1], work, limits)) {
        direct = ::fork();
        if (direct == 0) {
            ::close(sv[0]);
            helper(sv[1], work, limits);
        }
        if (direct < 0) {
            ::close(sv[0]);
            ::close(sv[1]);
            return {Status::failed, std::string("fork: ") + std::strerror(errno), {}};
        }
    }
    ::close(sv[1]);
    const int fd = sv[0];
    const auto deadline = Clock::now() + limits.timeout;
    std::string out_buf;
    put_u64(out_buf, input.size());
    std::size_t header_sent = 0, input_sent = 0;
    std::string buf;
    std::uint32_t pid = 0;
    Extracted out;
    bool complete = false, timed_out = false;
    char chunk[64 << 10];
    while (!complete) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        const bool sending = input_sent < input.size() || header_sent < out_buf.size();
        pollfd p{fd, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
        int pr = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        if (sending && (p.revents & POLLOUT)) {
            std::string_view rest = header_sent < out_buf.size() ? std::string_view(out_buf).substr(header_sent)
                                                                 : input.substr(input_sent);
            ssize_t w = ::send(fd, rest.data(), std::min<std::size_t>(rest.size(), 1 << 20), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) (header_sent < out_buf.size() ? header_sent : input_sent) += static_cast<std::size_t>(w);
            else if (w < 0 && errno != EAGAIN && errno != EINTR) break;
        }
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) break;  // the helper is gone
        buf.append(chunk, static_cast<std::size_t>(n));
        if (!pid && buf.size() >= sizeof pid) {
            std::memcpy(&pid, buf.data(), sizeof pid);
            buf.erase(0, sizeof pid);
        }
        if (buf.size() > limits.max_text + 4096 + 16) break;  // not what a helper writes
        if (pid) complete = read_result(buf, out);
    }
    ::close(fd);
    if (!complete && pid) ::kill(static_cast<pid_t>(pid), SIGKILL);
    int status = 0;
    if (direct > 0) {
        if (!complete) ::kill(direct, SIGKILL);
        while (::waitpid(direct, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (complete) return out;
    if (timed_out) return {Status::timed_out, "over " + std::to_string(limits.timeout.count()) + " ms", {}};
    if (direct > 0 && WIFSIGNALED(status) && (WTERMSIG(status) == SIGXCPU || WTERMSIG(status) == SIGALRM))
        return {Status::timed_out, "CPU time limit", {}};
    return {Status::failed, "extractor crashed or ran out of memory (limit " + std::to_string(limits.max_memory >> 20) +
                                " MiB) without a result", {}};
}

}  // namespace mv::index::extract
