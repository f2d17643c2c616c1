// The config loader (index/config): any bytes as mailvault.toml, then what commands do with
// it (secrets resolved, typed keys read, durations parsed).
#include <fcntl.h>
#include <unistd.h>

#include "index/config/config.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::filesystem::path file = mv::fuzz::temp_dir() / "mailvault.toml";
    int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return 0;
    mv::fuzz::write_all(fd, mv::fuzz::as_view(data, size));  // a regular file: write() like send()
    close(fd);
    auto c = mv::load_config(file);
    if (!c) return 0;
    (void)mv::parse_duration_seconds(c->sync_deadline);
    for (const auto& s : c->sources) {
        (void)s.check_secrets();
        (void)s.get_int("port", 0);
        (void)s.get_bool("include_hidden_folders", false);
        (void)s.get_list("folders", {"*"});
    }
    return 0;
}
