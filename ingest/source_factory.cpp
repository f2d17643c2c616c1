#include "ingest/graph/graph_source.hpp"
#include "ingest/imap/imap_source.hpp"
#include "ingest/local/local_source.hpp"
#include "ingest/pop3/pop3_source.hpp"
#include "ingest/source.hpp"

namespace mv::ingest {

Result<std::unique_ptr<Source>> make_source(const SourceConfig& config, const index::Archive& archive) {
    if (config.type == "imap") return make_imap_source(config, archive);
    if (config.type == "pop3") return make_pop3_source(config, archive);
    if (config.type == "graph") return make_graph_source(config, archive);
    if (config.type == "maildir" || config.type == "mbox") return make_local_source(config, archive);
    return fail(Error::Kind::usage, "source '" + config.name + "': unknown type '" + config.type +
                                        "' (graph, imap, pop3, maildir or mbox)");
}

Result<std::vector<std::string>> check_source(const SourceConfig& config) {
    if (config.type == "imap") return check_imap_source(config);
    if (config.type == "pop3") return check_pop3_source(config);
    if (config.type == "graph") return check_graph_source(config);
    if (config.type == "maildir" || config.type == "mbox") return check_local_source(config);
    return fail(Error::Kind::usage, "source '" + config.name + "': unknown type '" + config.type + "'");
}

}  // namespace mv::ingest
