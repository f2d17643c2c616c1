#pragma once
// `stats --prometheus`: the archive in the node_exporter text-file collector format, so an
// existing alerting set-up watches the nightly sync (see README "Running it unattended").
#include <string>

#include "index/archive.hpp"
#include "index/util/result.hpp"

namespace mv::query {

// HELP/TYPE lines and one sample per source, mailbox and last run; label values escaped.
Result<std::string> prometheus_text(const index::Archive& archive);

// A label value as the exposition format wants it: backslash, double quote and newline escaped.
std::string prometheus_escape(const std::string& value);

}  // namespace mv::query
