// check_pop3_source: kept apart from the Archive so it links without the index.
#include "ingest/net/headers.hpp"
#include "ingest/pop3/pop3_client.hpp"
#include "ingest/pop3/pop3_source.hpp"

namespace mv::ingest {

Result<std::vector<std::string>> check_pop3_source(const SourceConfig& config) {
    auto account = net::read_account(config, "pop3");
    if (!account) return fail(account.error());
    auto client = pop3::Client::open(*account);
    if (!client) return fail(client.error());
    auto& c = **client;
    std::vector<std::string> lines;
    lines.push_back("source '" + config.name + "': connected to " + account->describe() +
                    (c.tls() ? (account->endpoint.tls.trust_all ? ", TLS (certificate NOT verified)" : ", TLS (certificate verified)")
                             : ", no TLS"));
    lines.push_back("account: " + account->username);
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
