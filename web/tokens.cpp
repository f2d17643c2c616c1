#include "web/tokens.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "web/auth.hpp"

namespace mv::web {

std::filesystem::path tokens_path(const std::filesystem::path& archive_dir) { return archive_dir / "web" / "tokens.json"; }

Result<std::vector<ApiToken>> load_tokens(const std::filesystem::path& archive_dir) {
    std::vector<ApiToken> out;
    const auto p = tokens_path(archive_dir);
    std::ifstream in(p, std::ios::binary);
    if (!in) return out;
    std::stringstream ss;
    ss << in.rdbuf();
    auto j = nlohmann::json::parse(ss.str(), nullptr, false);
    if (j.is_discarded() || !j.is_array()) return fail(Error::Kind::corrupt, p.string() + ": not a token list");
    for (const auto& e : j)
        out.push_back({e.value("id", ""), e.value("user", ""), e.value("hash", ""), e.value("created", std::int64_t{0})});
    return out;
}

namespace {
Result<void> save(const std::filesystem::path& archive_dir, const std::vector<ApiToken>& tokens) {
    const auto p = tokens_path(archive_dir);
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
    ::chmod(p.parent_path().c_str(), 0700);
    nlohmann::json j = nlohmann::json::array();
    for (const auto& t : tokens) j.push_back({{"id", t.id}, {"user", t.user}, {"hash", t.hash}, {"created", t.created}});
    const std::string text = j.dump(1) + "\n";
    const auto tmp = p.string() + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return fail(Error::Kind::io, tmp + ": " + std::strerror(errno));
    bool good = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!good || ::rename(tmp.c_str(), p.c_str()) != 0) return fail(Error::Kind::io, p.string() + ": " + std::strerror(errno));
    return ok();
}
}  // namespace

Result<std::pair<ApiToken, std::string>> create_token(const std::filesystem::path& archive_dir, const std::string& user) {
    init_crypto();
    auto tokens = load_tokens(archive_dir);
    if (!tokens) return fail(tokens.error());
    ApiToken t;
    t.id = random_hex(4);
    t.user = user;
    std::string text = "mv_" + random_hex(32);
    t.hash = sha256_hex(text);
    t.created = static_cast<std::int64_t>(std::time(nullptr));
    tokens->push_back(t);
    if (auto r = save(archive_dir, *tokens); !r) return fail(r.error());
    return std::pair{t, text};
}

Result<void> revoke_token(const std::filesystem::path& archive_dir, const std::string& id) {
    auto tokens = load_tokens(archive_dir);
    if (!tokens) return fail(tokens.error());
    auto n = std::erase_if(*tokens, [&](const ApiToken& t) { return t.id == id; });
    if (n == 0) return fail(Error::Kind::not_found, "no token with id " + id);
    return save(archive_dir, *tokens);
}

std::optional<std::string> TokenIndex::user_of(const std::string& token) {
    if (token.size() < 10) return std::nullopt;
    const auto p = tokens_path(dir_);
    std::error_code ec;
    auto mtime = std::filesystem::last_write_time(p, ec);
    std::uintmax_t size = ec ? 0 : std::filesystem::file_size(p, ec);
    std::lock_guard lock(mu_);
    if (!loaded_ || mtime != mtime_ || size != size_) {
        auto t = load_tokens(dir_);
        tokens_ = t ? std::move(*t) : std::vector<ApiToken>{};
        mtime_ = mtime;
        size_ = size;
        loaded_ = true;
    }
    const std::string h = sha256_hex(token);
    for (const auto& t : tokens_)
        if (equal_constant_time(t.hash, h)) return t.user;
    return std::nullopt;
}

}  // namespace mv::web
