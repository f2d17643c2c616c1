#pragma once
// The imap source (see DESIGN.md [[source]] type = "imap").
#include "ingest/source.hpp"

namespace mv::ingest {

Result<std::unique_ptr<Source>> make_imap_source(const SourceConfig& config, const index::Archive& archive);
Result<std::vector<std::string>> check_imap_source(const SourceConfig& config);

}  // namespace mv::ingest
