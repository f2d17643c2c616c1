// mv_fetch_bench: drains an IMAP or POP3 source without archiving, to measure the network side
// alone (tools/bench.d/imap). usage: mv_fetch_bench imap|pop3 HOST PORT SECURITY CA_FILE USER PASSWORD [FETCH_BATCH]
#include <chrono>
#include <cstdio>

#include "ingest/imap/imap_sync.hpp"
#include "ingest/pop3/pop3_sync.hpp"

int main(int argc, char** argv) {
    if (argc < 8) {
        std::fprintf(stderr, "usage: mv_fetch_bench imap|pop3 HOST PORT SECURITY CA_FILE USER PASSWORD [FETCH_BATCH]\n");
        return 2;
    }
    mv::SourceConfig c;
    c.name = "bench";
    c.type = argv[1];
    c.strings = {{"host", argv[2]}, {"port", argv[3]}, {"security", argv[4]}, {"ca_file", argv[5]},
                 {"username", argv[6]}, {"password", argv[7]}, {"folders", "INBOX"}};
    if (argc > 8) c.strings["fetch_batch"] = argv[8];
    auto t0 = std::chrono::steady_clock::now();
    auto s = c.type == "imap" ? mv::ingest::imap::open_imap_source(c, {}) : mv::ingest::pop3::open_pop3_source(c, {});
    if (!s) {
        std::fprintf(stderr, "%s\n", s.error().message.c_str());
        return 3;
    }
    std::size_t n = 0, bytes = 0;
    while (auto m = (*s)->next()) {
        ++n;
        bytes += m->bytes.size();
    }
    (*s)->finish();
    double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%zu %zu %.3f\n", n, bytes, t);
    return (*s)->report().errors.empty() ? 0 : 1;
}
