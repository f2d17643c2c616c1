// check_imap_source: kept apart from the Archive so it links without the index.
#include "ingest/imap/imap_source.hpp"

#include <algorithm>
#include <ctime>

#include "ingest/imap/imap_client.hpp"
#include "ingest/imap/imap_sync.hpp"
#include "ingest/net/fetching_source.hpp"
#include "ingest/net/headers.hpp"

namespace mv::ingest {

Result<std::vector<std::string>> check_imap_source(const SourceConfig& config) {
    auto login = net::log_in<imap::Client>(config, "imap");
    if (!login) return fail(login.error());
    const net::Account& account = login->account;
    auto& c = *login->client;
    std::vector<std::string> lines = net::check_header(account, c.tls());
    auto folders = c.list();
    if (!folders) return fail(folders.error());
    std::string newest_subject, newest_folder;
    std::int64_t newest_date = -1;
    std::size_t shown = 0;
    for (auto& f : *folders) {
        if (!f.selectable || !imap::folder_selected(f.path, account.folders, account.exclude)) continue;
        auto info = c.select(f.raw, imap::Client::Access::read_only);
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
                newest_subject = net::decode_subject(m.body.value_or(""));
                newest_folder = f.path;
            }
            return true;
        });
        if (!r) return fail(r.error());
    }
    lines.push_back(std::to_string(shown) + " folders selected");
    if (newest_date >= 0)
        lines.push_back("newest message: \"" + newest_subject + "\" (" + newest_folder + ", " + net::format_date(newest_date) + ")");
    else
        lines.push_back("newest message: none (no messages)");
    c.logout();
    return lines;
}

}  // namespace mv::ingest
