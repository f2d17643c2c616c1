#pragma once
// `mailvault verify --source NAME [--json]` (cmd_verify_source.cpp).
#include <string>

#include "tools/mailvault/cli.hpp"

namespace mv::cli {

// Lists the server's messages per folder and names every one the archive has not recorded;
// exit 0 when all are archived, 1 when any is not (or a folder could not be listed), 3 when
// the server could not be listed at all, 2 for an unknown source.
int run_verify_source(Context& ctx, const std::string& name, bool json);

}  // namespace mv::cli
