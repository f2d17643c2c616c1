#include "tools/mailvault/interrupt.hpp"

#include <unistd.h>

#include <csignal>

namespace mv::cli {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_quiet{false};
struct sigaction g_old_int, g_old_term;

void on_signal(int sig) {
    if (g_stop.exchange(true)) {  // the second one: stop now
        std::signal(sig, SIG_DFL);
        std::raise(sig);
        return;
    }
    if (!g_quiet.load()) {
        static const char k_notice[] =
            "\nmailvault: interrupted: archiving the messages already read, then stopping (again to stop at once)\n";
        ssize_t ignored = ::write(STDERR_FILENO, k_notice, sizeof k_notice - 1);
        (void)ignored;
    }
}

}  // namespace

static_assert(std::atomic<bool>::is_always_lock_free, "used from a signal handler");

InterruptGuard::InterruptGuard(bool quiet) {
    g_stop.store(false);
    g_quiet.store(quiet);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // reads and writes in progress go on; the flag is polled between messages
    sigaction(SIGINT, &sa, &g_old_int);
    sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptGuard::~InterruptGuard() {
    sigaction(SIGINT, &g_old_int, nullptr);
    sigaction(SIGTERM, &g_old_term, nullptr);
}

const std::atomic<bool>* InterruptGuard::flag() const { return &g_stop; }
bool InterruptGuard::interrupted() const { return g_stop.load(); }

}  // namespace mv::cli
