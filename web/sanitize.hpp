#pragma once
// The HTML view's cleaner: web/html_clean.hpp (gumbo allow-list rebuild) when it is part of
// the build, else an escape-everything stand-in that shows the HTML source as text.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace mv::web {

std::string sanitize_html(std::string_view html, std::function<std::string(std::string_view cid)> cid_url);
// True when the allow-list cleaner is built in.
bool have_html_cleaner();

// The cid_url of the HTML view: a cid: image of the message `raw` becomes a data: URL of its
// raster part (png, jpeg, gif, webp). Not a /m/N/cid/... URL: the sandboxed frame has an opaque
// origin, so the browser sends its requests as cross-site, without the SameSite=Strict session
// cookie, and such an image never loads. At most k_max_cid_images lookups and k_max_cid_bytes
// inlined per message; beyond, or for other types, the image is dropped (empty result).
class CidInliner {
  public:
    static constexpr std::size_t k_max_cid_images = 64;
    static constexpr std::size_t k_max_cid_bytes = 8 << 20;
    explicit CidInliner(std::string_view raw) : raw_(raw) {}
    std::string operator()(std::string_view cid);

  private:
    std::string_view raw_;
    std::size_t lookups_ = 0;
    std::size_t bytes_ = 0;
};

}  // namespace mv::web
