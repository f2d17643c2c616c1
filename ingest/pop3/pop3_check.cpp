// check_pop3_source: kept apart from the Archive so it links without the index.
#include "ingest/net/fetching_source.hpp"
#include "ingest/net/headers.hpp"
#include "ingest/pop3/pop3_client.hpp"
#include "ingest/pop3/pop3_source.hpp"

namespace mv::ingest {

Result<std::vector<std::string>> check_pop3_source(const SourceConfig& config) {
    auto login = net::log_in<pop3::Client>(config, "pop3");
    if (!login) return fail(login.error());
    auto& c = *login->client;
    std::vector<std::string> lines = net::check_header(login->account, c.tls());
    auto list = c.uidl();
    if (!list) return fail(list.error());
    lines.push_back("folder INBOX: " + std::to_string(list->size()) + " messages");
    if (list->empty()) {
        lines.push_back("newest message: none (no messages)");
    } else {
        auto head = c.top(list->back().first, 0);
        if (!head) return fail(head.error());
        lines.push_back("newest message: \"" + net::decode_subject(*head) + "\" (INBOX)");
    }
    c.quit();
    return lines;
}

}  // namespace mv::ingest
