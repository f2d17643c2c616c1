#include "query/block_cache.hpp"

#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace mv::query::blocks {
namespace {

// The definitions these replace: the C library's, or a sanitizer's in front of it (which
// must see every close to follow descriptors). The system call itself if there is none.
using PreadFn = ssize_t (*)(int, void*, std::size_t, off_t);
using CloseFn = int (*)(int);

// Looked up when the program starts (close() must stay async-signal-safe: no dlsym in it);
// a call before that, from another file's static initialisation, is the system call.
const PreadFn g_next_pread = reinterpret_cast<PreadFn>(::dlsym(RTLD_NEXT, "pread"));
const CloseFn g_next_close = reinterpret_cast<CloseFn>(::dlsym(RTLD_NEXT, "close"));

ssize_t system_pread(int fd, void* buf, std::size_t n, off_t off) {
    if (g_next_pread) return g_next_pread(fd, buf, n, off);
    return static_cast<ssize_t>(::syscall(SYS_pread64, fd, buf, n, off));
}

int system_close(int fd) {
    if (g_next_close) return g_next_close(fd);
    return static_cast<int>(::syscall(SYS_close, fd));
}

// Descriptors above this are never cached (a server has a few dozen open).
constexpr int k_max_fd = 1 << 16;
// Moved on by close(): a descriptor number handed out again is another file.
std::atomic<std::uint32_t> g_fd_generation[k_max_fd];

struct Key {
    std::uint64_t fd_and_generation;  // fd << 32 | generation
    std::uint64_t block;
    bool operator==(const Key&) const = default;
};
struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept {
        std::uint64_t h = k.fd_and_generation * 0x9E3779B97F4A7C15ull ^ (k.block + 0x632BE59BD9B4E019ull);
        return static_cast<std::size_t>(h ^ (h >> 29));
    }
};

class Cache {
  public:
    explicit Cache(std::size_t slots)
        : data_(new char[slots * k_block_size]), keys_(slots), used_(slots, 0), filled_(slots, 0) {
        map_.reserve(slots * 2);
    }

    std::size_t capacity() const { return keys_.size(); }

    ssize_t read(int fd, void* buf, std::size_t n, off_t off) {
        if (bypass_ || n != k_block_size || off < 0 || off % static_cast<off_t>(k_block_size) != 0 || fd < 0 ||
            fd >= k_max_fd)
            return system_pread(fd, buf, n, off);
        const std::uint32_t generation = g_fd_generation[fd].load(std::memory_order_acquire);
        if (!is_table(fd, generation)) return system_pread(fd, buf, n, off);
        const Key key{static_cast<std::uint64_t>(fd) << 32 | generation, static_cast<std::uint64_t>(off) / k_block_size};
        if (auto it = map_.find(key); it != map_.end()) {
            ++stats_.hits;
            used_[it->second] = 1;
            std::memcpy(buf, data_.get() + it->second * k_block_size, k_block_size);
            return static_cast<ssize_t>(k_block_size);
        }
        ssize_t r = system_pread(fd, buf, n, off);
        if (r != static_cast<ssize_t>(k_block_size)) return r;  // an error or a short read: not kept
        ++stats_.misses;
        std::size_t slot = victim();
        if (filled_[slot]) map_.erase(keys_[slot]);
        keys_[slot] = key;
        filled_[slot] = 1;
        used_[slot] = 1;
        map_.emplace(key, slot);
        std::memcpy(data_.get() + slot * k_block_size, buf, k_block_size);
        return r;
    }

    void forget() {
        map_.clear();
        std::fill(filled_.begin(), filled_.end(), 0);
        std::fill(used_.begin(), used_.end(), 0);
        kinds_.clear();
    }

    Stats stats() const {
        Stats s = stats_;
        s.blocks = map_.size();
        s.capacity = capacity();
        return s;
    }

    bool bypass_ = false;

  private:
    // Whether `fd` (at `generation`) is a Xapian table file: asked of /proc once per
    // descriptor and generation.
    bool is_table(int fd, std::uint32_t generation) {
        if (static_cast<std::size_t>(fd) >= kinds_.size()) kinds_.resize(static_cast<std::size_t>(fd) + 1);
        Kind& k = kinds_[static_cast<std::size_t>(fd)];
        if (!k.known || k.generation != generation) {
            char path[4096];
            std::string link = "/proc/self/fd/" + std::to_string(fd);
            ssize_t len = ::readlink(link.c_str(), path, sizeof path - 1);
            static constexpr std::string_view suffix = ".glass";
            k.table = len > static_cast<ssize_t>(suffix.size()) &&
                      std::string_view(path, static_cast<std::size_t>(len)).ends_with(suffix);
            k.known = true;
            k.generation = generation;
        }
        return k.table;
    }

    // CLOCK: the next slot not used since the hand last passed it.
    std::size_t victim() {
        for (;;) {
            std::size_t s = hand_;
            hand_ = (hand_ + 1) % keys_.size();
            if (!filled_[s] || !used_[s]) return s;
            used_[s] = 0;
        }
    }

    struct Kind {
        std::uint32_t generation = 0;
        bool known = false;
        bool table = false;
    };

    std::unique_ptr<char[]> data_;
    std::vector<Key> keys_;
    std::vector<std::uint8_t> used_, filled_;
    std::unordered_map<Key, std::size_t, KeyHash> map_;
    std::vector<Kind> kinds_;
    std::size_t hand_ = 0;
    Stats stats_;
};

// The calling thread's cache (null: off). A plain pointer, so that pread() on any thread,
// also one being started or ended, costs one thread-local load.
thread_local Cache* t_cache = nullptr;

struct Owner {
    ~Owner() {
        Cache* c = t_cache;
        t_cache = nullptr;
        delete c;
    }
};
thread_local Owner t_owner;

}  // namespace

void enable_for_this_thread(std::size_t bytes) {
    (void)t_owner;  // constructed, so the cache is freed when the thread ends
    const std::size_t slots = bytes / k_block_size;
    if (t_cache && t_cache->capacity() == slots) return;
    Cache* old = t_cache;
    t_cache = nullptr;
    delete old;
    if (slots > 0) t_cache = new Cache(slots);
}

void forget() {
    if (t_cache) t_cache->forget();
}

bool reopen(Xapian::Database& db) {
    Cache* c = t_cache;
    if (!c) return db.reopen();
    struct Past {
        Cache* c;
        ~Past() { c->bypass_ = false; }
    } past{c};
    c->bypass_ = true;  // the new revision's blocks are read from the files
    const bool changed = db.reopen();
    if (changed) c->forget();
    return changed;
}

Stats stats() { return t_cache ? t_cache->stats() : Stats{}; }

}  // namespace mv::query::blocks

// The functions libxapian binds to (see the header). Both are the system call itself unless
// the calling thread's cache is on.
extern "C" ssize_t pread(int fd, void* buf, size_t n, off_t off) {
    if (mv::query::blocks::Cache* c = mv::query::blocks::t_cache) return c->read(fd, buf, n, off);
    return mv::query::blocks::system_pread(fd, buf, n, off);
}

extern "C" int close(int fd) {
    int r = mv::query::blocks::system_close(fd);
    // After the close: until then the number still names the old file.
    if (fd >= 0 && fd < mv::query::blocks::k_max_fd)
        mv::query::blocks::g_fd_generation[fd].fetch_add(1, std::memory_order_release);
    return r;
}
