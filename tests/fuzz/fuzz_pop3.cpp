// The POP3 client's parsing (ingest/pop3): greeting, CAPA, STLS/UTF8/AUTH answers, STAT, UIDL,
// TOP and pipelined RETR with dot-stuffing.
#include "ingest/pop3/pop3_client.hpp"
#include "ingest/pop3/pop3_source.hpp"
#include "ingest/pop3/pop3_sync.hpp"
#include "tests/fuzz/net_session.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return mv::fuzz::run_session(mv::fuzz::as_view(data, size), "pop3", mv::ingest::check_pop3_source,
                                 mv::ingest::pop3::open_pop3_source);
}
