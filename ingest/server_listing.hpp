#pragma once
// `verify --source`: the messages a server holds now, folder by folder, against what the
// archive recorded at fetch time (source, mailbox, folder, server id: IMAP UID with the
// folder's UIDVALIDITY, POP3 UIDL, Graph id).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "index/config/config.hpp"
#include "index/util/result.hpp"

namespace mv::ingest {

struct ListedMessage {
    std::string id;       // UID, UIDL or Graph id
    std::string subject;  // decoded; empty when the server did not say
    std::string date;     // as the server or the Date header says; may be empty
};

struct ListedFolder {
    std::string mailbox, folder;  // as the source records them in a message's location
    std::string validity;         // IMAP UIDVALIDITY the UIDs belong to; empty for POP3 and Graph
    std::uint64_t listed = 0;     // messages the server listed
    std::vector<ListedMessage> missing;  // listed, not archived (by `archived` below)
    std::string error;            // the folder could not be listed (then listed and missing are 0)
};

// Whether the archive holds message `id` of `folder` (its mailbox, name and validity).
using ArchivedFn = std::function<bool(const ListedFolder& folder, const std::string& id)>;

// Connects and lists every selected folder of the source (IMAP, POP3, Graph); the messages not
// archived get their subject and date from the server. An error: nothing could be listed.
Result<std::vector<ListedFolder>> list_unarchived(const SourceConfig& config, const ArchivedFn& archived);

}  // namespace mv::ingest
