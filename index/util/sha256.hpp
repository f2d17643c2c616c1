#pragma once
// SHA-256 through OpenSSL EVP with the digest fetched once.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace mv {

using Digest = std::array<std::uint8_t, 32>;

// Incremental hasher; cheap to construct, reusable after final().
class Sha256 {
  public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void update(std::string_view bytes);
    Digest final();

  private:
    void* ctx_;
};

Digest sha256(std::string_view bytes);
std::string to_hex(const Digest& d);
std::string to_hex(std::string_view bytes);

}  // namespace mv
