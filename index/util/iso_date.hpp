#pragma once
// UTC seconds as ISO 8601 ("2023-04-25T10:02:11Z"): search --json, show, stats, removal notes.
#include <cstdint>
#include <ctime>
#include <string>

namespace mv::index {

inline std::string iso_date(std::int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace mv::index
