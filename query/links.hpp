#pragma once
// Direct links and titles of archived messages ([links] of DESIGN.md).
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "index/document/builder.hpp"
#include "index/util/result.hpp"

namespace mv::query {

struct LinkConfig {
    std::string base_url = "http://127.0.0.1:8025";
    std::string templ = "{base_url}/m/{docno}";
    std::string title_field;  // header name; empty: "{docno}: {subject}"
};

// Placeholders: {base_url} {docno} {msgid} {sha256} {mailbox} {folder} {source} (all but
// {base_url} URL-escaped). An unknown placeholder or unbalanced brace is a config error.
Result<void> validate_template(std::string_view templ);

std::string url_escape(std::string_view s);

// Reads a header value of the original (RFC 2047 decoded, unfolded); "" if absent.
using HeaderLookup = std::function<std::string(std::string_view name)>;

class LinkBuilder {
  public:
    explicit LinkBuilder(LinkConfig config);
    // A template with {msgid} falls back to {base_url}/m/{docno} for a message without one.
    std::string link(std::uint64_t docno, const index::DocData& data) const;
    // title_field's value, else "{docno}: {subject}", an empty subject reading "(no subject)".
    // `headers` is called only when title_field names a header DocData does not hold.
    std::string title(std::uint64_t docno, const index::DocData& data, const HeaderLookup& headers) const;
    // True when titles need the original's headers.
    bool needs_headers() const;

  private:
    LinkConfig config_;
    std::string field_;  // lowercased title_field
};

// Header `name` (case-insensitive) of raw RFC 822 bytes: unfolded, trimmed, RFC 2047 decoded.
std::string header_value(std::string_view raw, std::string_view name);

}  // namespace mv::query
