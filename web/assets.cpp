#include "web/assets.hpp"

#include <cstddef>
#include <map>
#include <mutex>

#include "web/auth.hpp"

namespace mv::web {
namespace generated {
struct Embedded {
    const char* name;
    const char* data;
    std::size_t size;
};
extern const Embedded k_embedded[];
}  // namespace generated

namespace {

std::string_view type_of(std::string_view name) {
    auto dot = name.rfind('.');
    std::string_view ext = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
    if (ext == "css") return "text/css; charset=utf-8";
    if (ext == "js") return "text/javascript; charset=utf-8";
    if (ext == "svg") return "image/svg+xml";
    if (ext == "png") return "image/png";
    if (ext == "ico") return "image/x-icon";
    if (ext == "woff2") return "font/woff2";
    if (ext == "json") return "application/json";
    if (ext == "txt") return "text/plain; charset=utf-8";
    return "application/octet-stream";
}

const std::map<std::string_view, Asset>& table() {
    static const std::map<std::string_view, Asset> t = [] {
        std::map<std::string_view, Asset> m;
        for (const auto* e = generated::k_embedded; e->name; ++e) {
            Asset a;
            a.name = e->name;
            a.content_type = type_of(a.name);
            a.bytes = std::string_view(e->data, e->size);
            a.etag = "\"" + sha256_hex(a.bytes).substr(0, 16) + "\"";
            m.emplace(a.name, std::move(a));
        }
        return m;
    }();
    return t;
}

}  // namespace

const Asset* find_asset(std::string_view name) {
    init_crypto();
    const auto& t = table();
    auto it = t.find(name);
    return it == t.end() ? nullptr : &it->second;
}

}  // namespace mv::web
