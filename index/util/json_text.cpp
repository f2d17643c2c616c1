#include "index/util/json_text.hpp"

#include <simdjson.h>

#include <charconv>

namespace mv::index {

void append_json_string(std::string_view s, std::string& out) {
    if (!simdjson::validate_utf8(s.data(), s.size())) {
        // Invalid UTF-8: nlohmann's replacement rules, exactly.
        out += nlohmann::ordered_json(std::string(s)).dump(-1, ' ', false,
                                                          nlohmann::ordered_json::error_handler_t::replace);
        return;
    }
    static constexpr char k_hex[] = "0123456789abcdef";
    out += '"';
    std::size_t run = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                out += "\\u00";
                out += k_hex[c >> 4];
                out += k_hex[c & 0xF];
        }
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

namespace {

template <typename T>
void append_integer(T v, std::string& out) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<std::size_t>(end - buf));
}

}  // namespace

void append_json_text(const nlohmann::ordered_json& j, std::string& out) {
    using V = nlohmann::ordered_json::value_t;
    switch (j.type()) {
        case V::object: {
            out += '{';
            bool first = true;
            for (const auto& [k, v] : j.items()) {
                if (!first) out += ',';
                first = false;
                append_json_string(k, out);
                out += ':';
                append_json_text(v, out);
            }
            out += '}';
            return;
        }
        case V::array: {
            out += '[';
            bool first = true;
            for (const auto& v : j) {
                if (!first) out += ',';
                first = false;
                append_json_text(v, out);
            }
            out += ']';
            return;
        }
        case V::string:
            append_json_string(j.get_ref<const std::string&>(), out);
            return;
        case V::boolean:
            out += j.get<bool>() ? "true" : "false";
            return;
        case V::null:
            out += "null";
            return;
        case V::number_integer:
            append_integer(j.get<std::int64_t>(), out);
            return;
        case V::number_unsigned:
            append_integer(j.get<std::uint64_t>(), out);
            return;
        default:  // floats (nlohmann's own shortest form), binary, discarded
            out += j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
            return;
    }
}

std::string json_text(const nlohmann::ordered_json& j) {
    std::string out;
    out.reserve(256);
    append_json_text(j, out);
    return out;
}

}  // namespace mv::index
