#include "ingest/pop3/pop3_source.hpp"

#include "ingest/pop3/pop3_sync.hpp"

namespace mv::ingest {

Result<std::unique_ptr<Source>> make_pop3_source(const SourceConfig& config, const index::Archive& archive) {
    std::map<std::string, std::string> checkpoints;
    for (auto& [k, v] : archive.metadata_with_prefix(checkpoint_key(config.name, "pop3:uidl:"))) checkpoints[k] = v;
    return pop3::open_pop3_source(config, std::move(checkpoints));
}

}  // namespace mv::ingest
