#pragma once
// The graph source (see DESIGN.md [[source]] type = "graph").
#include "ingest/source.hpp"

namespace mv::ingest {

Result<std::unique_ptr<Source>> make_graph_source(const SourceConfig& config, const index::Archive& archive);
Result<std::vector<std::string>> check_graph_source(const SourceConfig& config);

struct ListedFolder;
// `verify --source` for Graph (see ingest/server_listing.hpp).
Result<std::vector<ListedFolder>> list_unarchived_graph(const SourceConfig& config,
                                                        const std::function<bool(const ListedFolder&, const std::string&)>& archived);

}  // namespace mv::ingest
