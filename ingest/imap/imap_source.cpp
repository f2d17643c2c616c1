#include "ingest/imap/imap_source.hpp"

#include "ingest/imap/imap_sync.hpp"

namespace mv::ingest {

Result<std::unique_ptr<Source>> make_imap_source(const SourceConfig& config, const index::Archive& archive) {
    std::map<std::string, std::string> checkpoints;
    for (auto& [k, v] : archive.metadata_with_prefix(checkpoint_key(config.name, "imap:"))) checkpoints[k] = v;
    return imap::open_imap_source(config, std::move(checkpoints));
}

}  // namespace mv::ingest
