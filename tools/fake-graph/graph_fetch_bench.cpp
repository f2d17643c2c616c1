// graph-fetch-bench: drives the graph Source alone (no parsing, no index) and discards what it
// yields, to measure the fetch layer's throughput against fake-graph. Prints one JSON line.
// usage: graph-fetch-bench CONFIG.toml SOURCE ARCHIVE_DIR   (secret from the config's *_env)
#include <chrono>
#include <iostream>

#include "index/archive.hpp"
#include "index/config/config.hpp"
#include "ingest/source.hpp"

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: graph-fetch-bench CONFIG SOURCE ARCHIVE_DIR\n";
        return 2;
    }
    auto config = mv::load_config(argv[1]);
    if (!config) {
        std::cerr << config.error().message << "\n";
        return 2;
    }
    const mv::SourceConfig* sc = config->source(argv[2]);
    if (!sc) {
        std::cerr << "no source " << argv[2] << "\n";
        return 2;
    }
    auto archive = mv::index::Archive::open(argv[3], mv::index::OpenMode::write);
    if (!archive) {
        std::cerr << archive.error().message << "\n";
        return 3;
    }
    auto t0 = std::chrono::steady_clock::now();
    auto source = mv::ingest::make_source(*sc, **archive);
    if (!source) {
        std::cerr << source.error().message << "\n";
        return 3;
    }
    std::uint64_t n = 0, bytes = 0;
    while (auto m = (*source)->next()) {
        if (m->checkpoint_only) continue;
        ++n;
        bytes += m->bytes.size();
    }
    (*source)->finish();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "{\"messages\":" << n << ",\"bytes\":" << bytes << ",\"seconds\":" << s
              << ",\"errors\":" << (*source)->report().errors.size() << "}" << std::endl;
    return (*source)->report().errors.empty() ? 0 : 1;
}
