#pragma once
// Shared test helpers: temp dirs, running the mailvault binary, locating data and corpus.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define MV_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MV_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define MV_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MV_TEST_TSAN 1
#endif
#endif

namespace mv::test {

// The sanitizer this build runs under (tools/test --sanitize). A test that cannot work under one
// skips itself there with GTEST_SKIP and the precise reason; README "Sanitizers" lists each.
#ifdef MV_TEST_ASAN
inline constexpr bool under_asan = true;
#else
inline constexpr bool under_asan = false;
#endif
#ifdef MV_TEST_TSAN
inline constexpr bool under_tsan = true;
#else
inline constexpr bool under_tsan = false;
#endif

// A fresh directory removed at scope exit.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& s) const { return path_ / s; }

  private:
    std::filesystem::path path_;
};

struct RunResult {
    int exit_code = -1;
    std::string out;  // stdout
    std::string err;  // stderr
};

// Runs the mailvault binary with `args` (no shell), optional stdin text and extra env "K=V".
RunResult run_mailvault(const std::vector<std::string>& args, const std::string& stdin_text = "",
                        const std::vector<std::string>& env = {});
// Runs any program the same way.
RunResult run_program(const std::vector<std::string>& argv, const std::string& stdin_text = "",
                      const std::vector<std::string>& env = {});
// Runs the mailvault binary on a pseudo-terminal (what a person at a terminal sees: the
// progress line); stdout and stderr both land in `out`.
RunResult run_mailvault_tty(const std::vector<std::string>& args, const std::vector<std::string>& env = {});

std::filesystem::path data_dir();    // $MV_DATA_DIR or <source>/data
std::filesystem::path corpus_dir();  // $MV_CORPUS_DIR or <source>/../shared/corpus
std::filesystem::path source_dir();
std::string mailvault_binary();

// Unpacks the first `count` messages (0: all) of a corpus mbox.zst into a Maildir at `dest`
// with the corpus's own unpack-maildir script. Returns false if the corpus is missing.
bool unpack_corpus(const std::string& mbox_name, const std::filesystem::path& dest, int count = 0);

std::string read_file(const std::filesystem::path& p);
void write_file(const std::filesystem::path& p, const std::string& bytes);

// True when MV_REQUIRE_SERVERS=1 (tools/test): a missing server is a failure, not a skip.
bool servers_required();

}  // namespace mv::test
