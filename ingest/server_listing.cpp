#include "ingest/server_listing.hpp"

#include <algorithm>

#include "index/util/iso_date.hpp"
#include "ingest/graph/graph_source.hpp"
#include "ingest/imap/imap_client.hpp"
#include "ingest/imap/imap_sync.hpp"
#include "ingest/net/fetching_source.hpp"
#include "ingest/net/headers.hpp"
#include "ingest/pop3/pop3_client.hpp"

namespace mv::ingest {
namespace {

// The unfolded value of the first `name:` field of a header block, or "".
std::string header_value(const std::string& block, const std::string& name) {
    std::size_t pos = 0;
    while (pos < block.size()) {
        std::size_t eol = block.find('\n', pos);
        if (eol == std::string::npos) eol = block.size();
        std::string line = block.substr(pos, eol - pos);
        pos = eol + 1;
        if (line.size() > name.size() && line[name.size()] == ':' &&
            std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
            std::string v = line.substr(name.size() + 1);
            while (pos < block.size() && (block[pos] == ' ' || block[pos] == '\t')) {  // folded
                std::size_t e = block.find('\n', pos);
                if (e == std::string::npos) e = block.size();
                v += " " + block.substr(pos, e - pos);
                pos = e + 1;
            }
            std::erase(v, '\r');
            auto b = v.find_first_not_of(" \t");
            auto e = v.find_last_not_of(" \t");
            return b == std::string::npos ? std::string() : v.substr(b, e - b + 1);
        }
    }
    return {};
}

Result<std::vector<ListedFolder>> list_imap(const SourceConfig& config, const ArchivedFn& archived) {
    auto login = net::log_in<imap::Client>(config, "imap");
    if (!login) return fail(login.error());
    const net::Account& account = login->account;
    auto& c = *login->client;
    auto folders = c.list();
    if (!folders) return fail(folders.error());
    std::vector<ListedFolder> out;
    for (const auto& f : *folders) {
        if (!f.selectable || !imap::folder_selected(f.path, account.folders, account.exclude)) continue;
        ListedFolder lf;
        lf.mailbox = account.username;
        lf.folder = f.path;
        auto info = c.select(f.raw, imap::Client::Access::read_only);
        if (!info) {
            lf.error = info.error().message;
            out.push_back(std::move(lf));
            if (info.error().kind == Error::Kind::unreachable) return fail(info.error());
            continue;
        }
        lf.validity = std::to_string(info->uidvalidity);
        std::vector<std::uint32_t> uids;
        if (info->exists > 0) {
            auto all = c.uids_from(1);
            if (!all) return fail(all.error());
            uids = std::move(*all);
        }
        lf.listed = uids.size();
        std::vector<std::uint32_t> missing;
        for (auto uid : uids)
            if (!archived(lf, std::to_string(uid))) missing.push_back(uid);
        for (auto uid : missing) lf.missing.push_back({std::to_string(uid), {}, {}});
        if (!missing.empty()) {
            auto r = c.fetch(missing, 500, 1, "(UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT DATE)])", [&](imap::Fetched&& m) {
                auto it = std::find_if(lf.missing.begin(), lf.missing.end(),
                                       [&](const ListedMessage& x) { return x.id == std::to_string(m.uid); });
                if (it == lf.missing.end()) return true;
                const std::string head = m.body.value_or("");
                it->subject = net::decode_subject(head);
                it->date = header_value(head, "Date");
                if (it->date.empty() && m.internal_date) it->date = index::iso_date(m.internal_date);
                return true;
            });
            if (!r && r.error().kind == Error::Kind::unreachable) return fail(r.error());
        }
        out.push_back(std::move(lf));
    }
    c.logout();
    return out;
}

Result<std::vector<ListedFolder>> list_pop3(const SourceConfig& config, const ArchivedFn& archived) {
    auto login = net::log_in<pop3::Client>(config, "pop3");
    if (!login) return fail(login.error());
    auto& c = *login->client;
    auto list = c.uidl();
    if (!list) return fail(list.error());
    ListedFolder lf;
    lf.mailbox = login->account.username;
    lf.folder = "INBOX";  // what the POP3 source records
    lf.listed = list->size();
    for (const auto& [n, id] : *list) {
        if (archived(lf, id)) continue;
        ListedMessage m{id, {}, {}};
        if (auto head = c.top(n, 0)) {
            m.subject = net::decode_subject(*head);
            m.date = header_value(*head, "Date");
        }
        lf.missing.push_back(std::move(m));
    }
    c.quit();
    return std::vector<ListedFolder>{std::move(lf)};
}

}  // namespace

Result<std::vector<ListedFolder>> list_unarchived(const SourceConfig& config, const ArchivedFn& archived) {
    if (config.type == "imap") return list_imap(config, archived);
    if (config.type == "pop3") return list_pop3(config, archived);
    if (config.type == "graph") return list_unarchived_graph(config, archived);
    return fail(Error::Kind::usage, "source '" + config.name + "': verify --source compares a server's list with the archive; "
                                    "type '" + config.type + "' has no server (graph, imap or pop3)");
}

}  // namespace mv::ingest
