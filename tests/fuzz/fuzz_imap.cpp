// The IMAP client's response parsing (ingest/imap): greeting, CAPABILITY, LOGIN/AUTHENTICATE,
// NAMESPACE, LIST, SELECT/EXAMINE, STATUS, UID SEARCH, pipelined UID FETCH with literals.
#include "ingest/imap/imap_client.hpp"
#include "ingest/imap/imap_source.hpp"
#include "ingest/imap/imap_sync.hpp"
#include "tests/fuzz/net_session.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return mv::fuzz::run_session(mv::fuzz::as_view(data, size), "imap", mv::ingest::check_imap_source,
                                 mv::ingest::imap::open_imap_source);
}
