#pragma once
// The IMAP source: a fetch thread walks the folders and feeds a bounded queue.
#include <map>
#include <optional>
#include <string_view>
#include <memory>
#include <string>
#include <vector>

#include "ingest/imap/imap_client.hpp"
#include "ingest/net/fetching_source.hpp"

namespace mv::ingest::imap {

// Checkpoint keys (under checkpoint_key(source, ...)).
std::string uidvalidity_key(const std::string& folder);  // "imap:<folder>:uidvalidity"
std::string last_uid_key(const std::string& folder);     // "imap:<folder>:last_uid"
// Cross-checks of last_uid against a server that renumbers (see renumbering_doubt).
std::string below_key(const std::string& folder);        // "imap:<folder>:below": messages with UID <= last_uid
std::string mark_key(const std::string& folder);         // "imap:<folder>:mark": header_mark of UID last_uid

// A short fingerprint of a message's header block (line ends normalised: CRs dropped), the same
// from BODY[] and BODY[HEADER].
std::string header_mark(std::string_view message);

// What the last checkpoint of a folder says, and what the server says now (same UIDVALIDITY).
struct ArchivedUpto {
    std::uint32_t last_uid = 0;
    std::optional<std::uint64_t> below;  // absent in checkpoints written before it existed
    std::string mark;                    // empty: unknown
};
struct FolderNow {
    std::uint32_t uidnext = 0;           // 0: the server did not say
    std::uint64_t exists = 0;
    std::uint64_t above = 0;             // messages with UID > last_uid
    std::optional<std::string> mark;     // of UID last_uid; nullopt: that message is gone (or not asked)
};
// Why the UIDs up to last_uid may no longer be the archived messages (a server that handed out
// the same numbers again: UIDNEXT not past last_uid, more messages at or below it than were
// archived, another message at last_uid); empty when they can be trusted.
std::string renumbering_doubt(const ArchivedUpto& archived, const FolderNow& now);

// Folders whose label matches `folders` and none of `exclude` (INBOX matched case-insensitively).
bool folder_selected(const std::string& path, const std::vector<std::string>& folders,
                     const std::vector<std::string>& exclude);

// Connects and logs in, then starts fetching; `checkpoints` are the committed values by full key.
Result<std::unique_ptr<Source>> open_imap_source(const SourceConfig& config,
                                                 std::map<std::string, std::string> checkpoints);

// Built by open_imap_source as net::Running<ImapSource>.
class ImapSource : public net::ClientSource<Client> {
  protected:
    using ClientSource::ClientSource;  // `client` is logged in

  private:
    struct FolderState {
        Folder folder;
        std::uint32_t validity = 0;           // UIDVALIDITY the UIDs below belong to
        std::uint32_t archived_upto = 0;      // committed last UID at the start (same UIDVALIDITY)
        std::vector<std::uint32_t> durable;  // acked UIDs, for delete_after_archive
    };
    void fetch() override;
    void keep_durable(const std::vector<std::uint64_t>& acks) override;
    void delete_durable() override;
    // Syncs one folder, reconnecting on a dropped connection. False when stopped.
    bool sync_folder(std::size_t index);

    std::uint64_t fetched_ = 0;  // fetch thread only
    std::vector<FolderState> folders_;  // durable lists under mu_
};

}  // namespace mv::ingest::imap
