// LD_PRELOAD shim for crash injection: counts every call that makes or unmakes durable
// state (rename, fsync, unlink, truncate and their relatives), in all threads together, and
// kills the process with SIGKILL just before the Nth one runs.
//
//   MV_SYSCALL_KILL_AT=N   kill before call N (1-based); unset or 0: never
//   MV_SYSCALL_LOG=FILE    append "N call path" for every call (a clean run lists the points)
//   MV_SYSCALL_TEAR_AT=N   the Nth pwritev (a record appended to the originals) writes only
//                          half its bytes, then the process is killed: a torn record
//
// strace's -e inject=...:when=N counts per thread, so with several writer threads it cannot
// reach every point; one counter for the whole process can.
#include <dlfcn.h>
#include <atomic>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

namespace {

long kill_at = 0, tear_at = 0;
int log_fd = -1;
std::atomic<long> calls{0}, writes{0};

__attribute__((constructor)) void init() {
    const char* k = getenv("MV_SYSCALL_KILL_AT");
    const char* t = getenv("MV_SYSCALL_TEAR_AT");
    const char* l = getenv("MV_SYSCALL_LOG");
    if (k) kill_at = atol(k);
    if (t) tear_at = atol(t);
    if (l && *l) log_fd = open(l, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

[[noreturn]] void die() {
    kill(getpid(), SIGKILL);
    for (;;) pause();
}

void fd_path(int fd, char* out, size_t n) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t r = readlink(link, out, n - 1);
    out[r < 0 ? 0 : r] = '\0';
}

void point(const char* call, const char* path) {
    long n = ++calls;
    if (log_fd >= 0) {
        char line[PATH_MAX + 64];
        int len = snprintf(line, sizeof line, "%ld %s %s\n", n, call, path ? path : "");
        if (len > 0) (void)!write(log_fd, line, static_cast<size_t>(len) < sizeof line ? static_cast<size_t>(len) : sizeof line - 1);
    }
    if (n == kill_at) die();
}

void fd_point(const char* call, int fd) {
    char path[PATH_MAX];
    fd_path(fd, path, sizeof path);
    point(call, path);
}

#define REAL(name, type) static const auto real_##name = reinterpret_cast<type>(dlsym(RTLD_NEXT, #name))

}  // namespace

extern "C" {

int rename(const char* from, const char* to) noexcept {
    REAL(rename, int (*)(const char*, const char*));
    point("rename", to);
    return real_rename(from, to);
}
int renameat(int fd1, const char* from, int fd2, const char* to) noexcept {
    REAL(renameat, int (*)(int, const char*, int, const char*));
    point("renameat", to);
    return real_renameat(fd1, from, fd2, to);
}
int renameat2(int fd1, const char* from, int fd2, const char* to, unsigned flags) noexcept {
    REAL(renameat2, int (*)(int, const char*, int, const char*, unsigned));
    point("renameat2", to);
    return real_renameat2(fd1, from, fd2, to, flags);
}
int unlink(const char* path) noexcept {
    REAL(unlink, int (*)(const char*));
    point("unlink", path);
    return real_unlink(path);
}
int unlinkat(int dirfd, const char* path, int flags) noexcept {
    REAL(unlinkat, int (*)(int, const char*, int));
    point("unlinkat", path);
    return real_unlinkat(dirfd, path, flags);
}
int rmdir(const char* path) noexcept {
    REAL(rmdir, int (*)(const char*));
    point("rmdir", path);
    return real_rmdir(path);
}
int remove(const char* path) noexcept {
    REAL(remove, int (*)(const char*));
    point("remove", path);
    return real_remove(path);
}
int fsync(int fd) {
    REAL(fsync, int (*)(int));
    fd_point("fsync", fd);
    return real_fsync(fd);
}
int fdatasync(int fd) {
    REAL(fdatasync, int (*)(int));
    fd_point("fdatasync", fd);
    return real_fdatasync(fd);
}
int ftruncate(int fd, off_t len) noexcept {
    REAL(ftruncate, int (*)(int, off_t));
    fd_point("ftruncate", fd);
    return real_ftruncate(fd, len);
}
int ftruncate64(int fd, off_t len) noexcept {
    REAL(ftruncate64, int (*)(int, off_t));
    fd_point("ftruncate", fd);
    return real_ftruncate64(fd, len);
}
int truncate(const char* path, off_t len) noexcept {
    REAL(truncate, int (*)(const char*, off_t));
    point("truncate", path);
    return real_truncate(path, len);
}

ssize_t pwritev(int fd, const struct iovec* iov, int n, off_t off) {
    REAL(pwritev, ssize_t (*)(int, const struct iovec*, int, off_t));
    if (tear_at > 0 && ++writes == tear_at) {
        size_t total = 0;
        for (int i = 0; i < n; ++i) total += iov[i].iov_len;
        size_t half = total / 2, done = 0;
        for (int i = 0; i < n && done < half; ++i) {
            size_t len = iov[i].iov_len < half - done ? iov[i].iov_len : half - done;
            if (pwrite(fd, iov[i].iov_base, len, off + static_cast<off_t>(done)) != static_cast<ssize_t>(len)) break;
            done += len;
        }
        die();
    }
    return real_pwritev(fd, iov, n, off);
}

}  // extern "C"
