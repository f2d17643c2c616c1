#pragma once
// The IMAP source: a fetch thread walks the folders and feeds a bounded queue.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ingest/imap/imap_client.hpp"
#include "ingest/net/account.hpp"
#include "ingest/net/message_queue.hpp"
#include "ingest/source.hpp"

namespace mv::ingest::imap {

// Checkpoint keys (under checkpoint_key(source, ...)).
std::string uidvalidity_key(const std::string& folder);  // "imap:<folder>:uidvalidity"
std::string last_uid_key(const std::string& folder);     // "imap:<folder>:last_uid"

// Folders whose label matches `folders` and none of `exclude` (INBOX matched case-insensitively).
bool folder_selected(const std::string& path, const std::vector<std::string>& folders,
                     const std::vector<std::string>& exclude);

// Connects and logs in, then starts fetching; `checkpoints` are the committed values by full key.
Result<std::unique_ptr<Source>> open_imap_source(const SourceConfig& config,
                                                 std::map<std::string, std::string> checkpoints);

class ImapSource : public Source {
  public:
    // `checkpoints`: committed values by full key (checkpoint_key(...)). `client` is logged in.
    ImapSource(net::Account account, std::map<std::string, std::string> checkpoints, std::unique_ptr<Client> client);
    ~ImapSource() override;

    std::string name() const override { return account_.source; }
    std::optional<RawMessage> next() override;
    std::uint64_t expected_total() const override { return expected_.load(); }
    void on_durable(const std::vector<std::uint64_t>& acks) override;
    void finish() override;
    const SourceReport& report() const override;

  private:
    struct FolderState {
        Folder folder;
        std::uint32_t validity = 0;           // UIDVALIDITY the UIDs below belong to
        std::uint32_t archived_upto = 0;      // committed last UID at the start (same UIDVALIDITY)
        std::vector<std::uint32_t> durable;  // acked UIDs, for delete_after_archive
    };
    void run();
    // Syncs one folder, reconnecting on a dropped connection. False when stopped.
    bool sync_folder(std::size_t index);
    Result<void> reconnect();
    // Logs and reports `line`; `failed` messages could not be fetched.
    void add_error(const std::string& line, std::uint64_t failed = 0, bool unreachable = false);

    net::Account account_;
    std::map<std::string, std::string> checkpoints_;
    std::unique_ptr<Client> client_;
    net::MessageQueue queue_;
    std::atomic<std::uint64_t> expected_{0};
    std::uint64_t fetched_ = 0;  // fetch thread only
    mutable std::mutex mu_;  // folders_ durable lists, report_
    std::vector<FolderState> folders_;
    std::thread thread_;
    bool finished_ = false;
};

}  // namespace mv::ingest::imap
