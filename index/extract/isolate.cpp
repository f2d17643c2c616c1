// A forked helper for risky extractors: setrlimit(RLIMIT_AS, RLIMIT_CPU) in the child, a wall
// timeout and SIGKILL in the parent. The child only computes and writes its result to a pipe:
// status byte, reason length, reason, text length, text (lengths as 8 bytes), then _exit.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

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
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

void put_u64(std::string& s, std::uint64_t v) { s.append(reinterpret_cast<const char*>(&v), sizeof v); }

[[noreturn]] void child(int fd, const std::function<Extracted()>& work, const Limits& limits) {
    // Nothing of the parent's but the pipe: another thread's pipes must see their EOF.
    ::close_range(4, ~0u, 0);
    rlimit as{};
    as.rlim_cur = as.rlim_max = current_address_space() + limits.max_memory;
    ::setrlimit(RLIMIT_AS, &as);
    rlimit cpu{};
    cpu.rlim_cur = static_cast<rlim_t>(limits.timeout.count() / 1000 + 1);
    cpu.rlim_max = cpu.rlim_cur + 1;
    ::setrlimit(RLIMIT_CPU, &cpu);
    rlimit core{};
    ::setrlimit(RLIMIT_CORE, &core);
    Extracted r;
    try {
        r = work();
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

// Parses a complete message from the child, or returns false while it is incomplete.
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

Extracted run_isolated(const std::function<Extracted()>& work, const Limits& limits) {
    if (limits.isolation == Isolation::in_process) return work();
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return {Status::failed, std::string("pipe: ") + std::strerror(errno), {}};
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        return {Status::failed, std::string("fork: ") + std::strerror(errno), {}};
    }
    if (pid == 0) {
        ::close(fds[0]);
        if (fds[1] != 3) {
            ::dup2(fds[1], 3);
        }
        child(3, work, limits);
    }
    ::close(fds[1]);
    const auto deadline = Clock::now() + limits.timeout;
    std::string buf;
    Extracted out;
    bool complete = false, timed_out = false;
    char chunk[64 << 10];
    while (!complete) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        int pr = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        ssize_t n = ::read(fds[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // the child is gone
        buf.append(chunk, static_cast<std::size_t>(n));
        if (buf.size() > limits.max_text + 4096 + 16) break;  // not what the child writes
        complete = read_result(buf, out);
    }
    ::close(fds[0]);
    if (!complete) ::kill(pid, SIGKILL);
    int status = 0;
    pid_t w;
    do w = ::waitpid(pid, &status, 0);
    while (w < 0 && errno == EINTR);
    if (complete) return out;
    if (timed_out) return {Status::timed_out, "over " + std::to_string(limits.timeout.count()) + " ms", {}};
    if (w == pid && WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        if (sig == SIGXCPU || sig == SIGKILL) return {Status::timed_out, "CPU time limit", {}};
        return {Status::failed, std::string("extractor crashed (") + strsignal(sig) + "; memory limit " +
                                    std::to_string(limits.max_memory >> 20) + " MiB)", {}};
    }
    return {Status::failed, "extractor ended without a result", {}};
}

}  // namespace mv::index::extract
