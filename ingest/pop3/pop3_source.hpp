#pragma once
// The pop3 source (see DESIGN.md [[source]] type = "pop3").
#include "ingest/source.hpp"

namespace mv::ingest {

Result<std::unique_ptr<Source>> make_pop3_source(const SourceConfig& config, const index::Archive& archive);
Result<std::vector<std::string>> check_pop3_source(const SourceConfig& config);

}  // namespace mv::ingest
