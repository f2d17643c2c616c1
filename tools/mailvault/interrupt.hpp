#pragma once
// Ctrl-C (SIGINT) and SIGTERM during import and sync. The first signal asks the pipeline to stop
// at its next safe point (nothing more is read; what was read is archived and committed, the
// summary printed, exit 130); a second one ends the process at once, which is crash-safe too.
#include <atomic>

namespace mv::cli {

inline constexpr int k_interrupted = 130;  // exit code after SIGINT or SIGTERM, as shells report ^C

// Installs the handlers for its lifetime (one at a time); `quiet` drops the notice on stderr.
class InterruptGuard {
  public:
    explicit InterruptGuard(bool quiet);
    ~InterruptGuard();
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;
    // For ingest::PipelineOptions::stop.
    const std::atomic<bool>* flag() const;
    bool interrupted() const;
};

}  // namespace mv::cli
