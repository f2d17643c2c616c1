#include "web/audit.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>

#include "index/util/iso_date.hpp"
#include "index/util/json_text.hpp"
#include "web/auth.hpp"

namespace mv::web {
namespace {
const std::string k_genesis(64, '0');

std::int64_t parse_iso(const std::string& s) {
    std::tm tm{};
    if (!strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) return 0;
    return static_cast<std::int64_t>(timegm(&tm));
}
}  // namespace

std::filesystem::path audit_path(const std::filesystem::path& archive_dir) { return archive_dir / "audit" / "audit.log"; }

Result<std::unique_ptr<AuditLog>> AuditLog::open(const std::filesystem::path& archive_dir) {
    init_crypto();
    const auto path = audit_path(archive_dir);
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) return fail(Error::Kind::io, "audit log: " + path.parent_path().string() + ": " + ec.message());
    ::chmod(path.parent_path().c_str(), 0700);
    std::unique_ptr<AuditLog> log(new AuditLog);
    // The previous line's hash: read the tail of the file (the chain goes on from it).
    log->prev_ = k_genesis;
    {
        std::ifstream in(path, std::ios::binary);
        if (in) {
            in.seekg(0, std::ios::end);
            const std::streamoff size = std::max<std::streamoff>(0, in.tellg());
            const std::streamoff tail = std::min<std::streamoff>(size, 1 << 20);
            std::string buf(static_cast<std::size_t>(tail), '\0');
            in.seekg(size - tail);
            in.read(buf.data(), tail);
            while (!buf.empty() && buf.back() == '\n') buf.pop_back();
            if (!buf.empty()) {
                auto nl = buf.rfind('\n');
                log->prev_ = sha256_hex(nl == std::string::npos ? buf : buf.substr(nl + 1));
            }
        }
    }
    log->fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (log->fd_ < 0) return fail(Error::Kind::io, "audit log: " + path.string() + ": " + std::strerror(errno));
    log->syncer_ = std::thread([l = log.get()] { l->run_syncer(); });
    return log;
}

AuditLog::~AuditLog() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (syncer_.joinable()) syncer_.join();
    if (fd_ >= 0) ::close(fd_);
}

void AuditLog::run_syncer() {
    std::unique_lock lock(mu_);
    auto last = std::chrono::steady_clock::now() - k_sync_interval;
    for (;;) {
        cv_.wait(lock, [&] { return stop_ || (written_ > synced_ && failed_.empty()); });
        if (written_ > synced_ && failed_.empty()) {
            // The lines of the next moment join this fdatasync, unless someone waits for it.
            cv_.wait_until(lock, last + k_sync_interval, [&] { return stop_ || waiting_ > 0; });
            // One fdatasync for every line written so far; lines written meanwhile wait for
            // the next one.
            const std::uint64_t upto = written_;
            lock.unlock();
            const int rc = ::fdatasync(fd_);
            const int err = errno;
            lock.lock();
            last = std::chrono::steady_clock::now();
            ++syncs_;
            if (rc == 0) {
                synced_ = upto;
            } else {
                failed_ = std::string("audit log: fsync: ") + std::strerror(err);
                std::fprintf(stderr, "serve: %s\n", failed_.c_str());
            }
            cv_.notify_all();
            continue;
        }
        if (stop_) return;
    }
}

std::uint64_t AuditLog::syncs() {
    std::lock_guard lock(mu_);
    return syncs_;
}

Result<void> AuditLog::sync() {
    std::unique_lock lock(mu_);
    const std::uint64_t mine = written_;
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return synced_ >= mine || !failed_.empty(); });
    --waiting_;
    if (synced_ >= mine) return ok();
    return fail(Error::Kind::io, failed_);
}

Result<void> AuditLog::append(const std::string& action, const std::string& user, const std::string& client,
                              const nlohmann::ordered_json& fields) {
    nlohmann::ordered_json j;
    j["time"] = index::iso_date(static_cast<std::int64_t>(std::time(nullptr)));
    j["action"] = action;
    j["user"] = user;
    j["client"] = client;
    for (const auto& [k, v] : fields.items()) j[k] = v;
    {
        std::lock_guard lock(mu_);
        if (!failed_.empty()) return fail(Error::Kind::io, failed_);
        j["prev"] = prev_;
        std::string line = index::json_text(j);
        std::string out = line + "\n";
        std::size_t done = 0;
        while (done < out.size()) {
            ssize_t n = ::write(fd_, out.data() + done, out.size() - done);
            if (n < 0) {
                if (errno == EINTR) continue;
                const std::string why = std::string("audit log: write: ") + std::strerror(errno);
                // A part of the line in the file breaks the chain: no later record may claim
                // to follow it. Nothing written (a full disk): the next record may succeed.
                if (done > 0) failed_ = why;
                return fail(Error::Kind::io, why);
            }
            done += static_cast<std::size_t>(n);
        }
        prev_ = sha256_hex(line);
        ++written_;
    }
    cv_.notify_all();
    return ok();
}

Result<AuditRead> read_audit(const std::filesystem::path& archive_dir) {
    init_crypto();
    const auto path = audit_path(archive_dir);
    AuditRead out;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (!std::filesystem::exists(path)) return out;
        return fail(Error::Kind::io, "audit log: cannot read " + path.string());
    }
    std::string line, prev = k_genesis;
    std::size_t n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.empty()) continue;
        AuditRecord r;
        r.line = n;
        r.json = nlohmann::ordered_json::parse(line, nullptr, false);
        if (r.json.is_discarded() || !r.json.is_object()) {
            if (!out.broken_at) out.broken_at = n;
            prev = sha256_hex(line);
            continue;
        }
        if (!out.broken_at && r.json.value("prev", std::string{}) != prev) out.broken_at = n;
        r.time = parse_iso(r.json.value("time", std::string{}));
        prev = sha256_hex(line);
        out.records.push_back(std::move(r));
    }
    return out;
}

}  // namespace mv::web
