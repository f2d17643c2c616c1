#include "ingest/net/headers.hpp"

#include <gmime/gmime.h>
#include <strings.h>

#include <ctime>

namespace mv::ingest::net {

std::string decode_subject(const std::string& header_block) {
    // header_block: "Subject: ...\r\n (folded)\r\n\r\n"
    std::string value;
    std::size_t pos = 0;
    bool in_subject = false;
    while (pos < header_block.size()) {
        auto eol = header_block.find('\n', pos);
        std::string line = header_block.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
        while (!line.empty() && line.back() == '\r') line.pop_back();  // Courier sends CR CR LF for CRLF files
        pos = eol == std::string::npos ? header_block.size() : eol + 1;
        if (line.empty()) break;
        if (line[0] == ' ' || line[0] == '\t') {
            if (in_subject) value += line;
            continue;
        }
        in_subject = line.size() >= 8 && strncasecmp(line.c_str(), "subject:", 8) == 0;
        if (in_subject) value = line.substr(8);
    }
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    static const bool inited = [] {
        g_mime_init();
        return true;
    }();
    (void)inited;
    char* decoded = g_mime_utils_header_decode_text(nullptr, value.c_str());
    std::string out = decoded ? decoded : value;
    g_free(decoded);
    return out;
}

std::string format_date(std::int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    return buf;
}


}  // namespace mv::ingest::net
