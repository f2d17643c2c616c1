#pragma once
// IMAP and POP3 fuzzing: the fuzz input is everything a server says on each connection (the
// real client reads it through net::Stream): `check`, then a whole sync of the source.
#include "ingest/net/account.hpp"
#include "ingest/source.hpp"
#include "tests/fuzz/fuzz_util.hpp"

namespace mv::fuzz {

template <typename Check, typename Open>
int run_session(std::string_view input, const char* type, Check check, Open open) {
    static ScriptedServer server;
    static const bool quiet = [] {  // the sources' log lines would cost more than the parsing
        ingest::net::set_log_sink([](const std::string&) {});
        return true;
    }();
    (void)quiet;
    std::string script(input);
    server.start([&script](int fd) { write_all(fd, script); });
    SourceConfig c;
    c.name = "fz";
    c.type = type;
    c.strings = {{"host", "127.0.0.1"}, {"port", std::to_string(server.port())}, {"security", "none"},
                 {"username", "alice"}, {"password", "pw-alice"}, {"timeout", "2"}, {"connect_timeout", "2"},
                 {"fetch_batch", "3"}};
    (void)check(c);
    if (auto s = open(c, std::map<std::string, std::string>{}); s) {
        for (int i = 0; i < 100000; ++i) {
            auto m = (*s)->next();
            if (!m) break;
            if (m->ack) (*s)->on_durable({m->ack});
        }
        (*s)->finish();
    }
    server.stop();
    return 0;
}

}  // namespace mv::fuzz
