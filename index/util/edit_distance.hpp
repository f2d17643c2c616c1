#pragma once
// Optimal string alignment distance (insertions, deletions, substitutions, adjacent
// transpositions), for "did you mean" hints on command and field names.
#include <algorithm>
#include <string_view>
#include <vector>

namespace mv {

inline std::size_t edit_distance(std::string_view a, std::string_view b) {
    const std::size_t n = a.size(), m = b.size();
    std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
    for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= n; ++i)
        for (std::size_t j = 1; j <= m; ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[n][m];
}

// A name close enough to `candidate` to suggest it: one edit for short names, two otherwise.
inline bool close_to(std::string_view name, std::string_view candidate) {
    const std::size_t limit = candidate.size() <= 4 ? 1 : 2;
    return name != candidate && edit_distance(name, candidate) <= limit;
}

}  // namespace mv
