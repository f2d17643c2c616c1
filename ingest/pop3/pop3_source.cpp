#include "ingest/pop3/pop3_source.hpp"

namespace mv::ingest {

Result<std::unique_ptr<Source>> make_pop3_source(const SourceConfig& config, const index::Archive&) {
    return fail(Error::Kind::usage, "source '" + config.name + "': type pop3 is not available in this build yet");
}

Result<std::vector<std::string>> check_pop3_source(const SourceConfig& config) {
    return fail(Error::Kind::usage, "source '" + config.name + "': type pop3 is not available in this build yet");
}

}  // namespace mv::ingest
