#include "ingest/imap/imap_source.hpp"

namespace mv::ingest {

Result<std::unique_ptr<Source>> make_imap_source(const SourceConfig& config, const index::Archive&) {
    return fail(Error::Kind::usage, "source '" + config.name + "': type imap is not available in this build yet");
}

Result<std::vector<std::string>> check_imap_source(const SourceConfig& config) {
    return fail(Error::Kind::usage, "source '" + config.name + "': type imap is not available in this build yet");
}

}  // namespace mv::ingest
