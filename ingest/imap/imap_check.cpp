// check_imap_source: kept apart from the Archive so it links without the index.
#include "ingest/imap/imap_source.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <ctime>

#include "ingest/imap/imap_client.hpp"
#include "ingest/imap/imap_sync.hpp"

namespace mv::ingest {
namespace {

std::string decode_subject(const std::string& header_block) {
    // header_block: "Subject: ...\r\n (folded)\r\n\r\n"
    std::string value;
    std::size_t pos = 0;
    bool in_subject = false;
    while (pos < header_block.size()) {
        auto eol = header_block.find('\n', pos);
        std::string line = header_block.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
        if (!line.empty() && line.back() == '\r') line.pop_back();
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

}  // namespace

Result<std::vector<std::string>> check_imap_source(const SourceConfig& config) {
    auto account = net::read_account(config, "imap");
    if (!account) return fail(account.error());
    auto client = imap::Client::open(*account);
    if (!client) return fail(client.error());
    auto& c = **client;
    std::vector<std::string> lines;
    lines.push_back("source '" + config.name + "': connected to " + account->describe() +
                    (c.tls() ? (account->endpoint.tls.trust_all ? ", TLS (certificate NOT verified)" : ", TLS (certificate verified)")
                             : ", no TLS"));
    lines.push_back("account: " + account->username);
    auto folders = c.list();
    if (!folders) return fail(folders.error());
    std::string newest_subject, newest_folder;
    std::int64_t newest_date = -1;
    std::size_t shown = 0;
    for (auto& f : *folders) {
        if (!f.selectable || !imap::folder_selected(f.path, account->folders, account->exclude)) continue;
        auto info = c.select(f.raw, true);
        if (!info) {
            lines.push_back("folder " + f.path + ": cannot open (" + info.error().message + ")");
            continue;
        }
        lines.push_back("folder " + f.path + ": " + std::to_string(info->exists) + " messages");
        ++shown;
        if (info->exists == 0) continue;
        auto last = c.uids_from(info->uidnext > 1 ? info->uidnext - 1 : 1);
        if (!last || last->empty()) last = c.uids_from(1);
        if (!last || last->empty()) continue;
        std::vector<std::uint32_t> one{last->back()};
        auto r = c.fetch(one, 1, 1, "(UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])", [&](imap::Fetched&& m) {
            if (m.internal_date > newest_date) {
                newest_date = m.internal_date;
                newest_subject = decode_subject(m.body.value_or(""));
                newest_folder = f.path;
            }
            return true;
        });
        if (!r) return fail(r.error());
    }
    lines.push_back(std::to_string(shown) + " folders selected");
    if (newest_date >= 0)
        lines.push_back("newest message: \"" + newest_subject + "\" (" + newest_folder + ", " + format_date(newest_date) + ")");
    else
        lines.push_back("newest message: none (no messages)");
    c.logout();
    return lines;
}

}  // namespace mv::ingest
