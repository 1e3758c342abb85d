#include "tools/interrupt.hpp"

#include <atomic>
#include <csignal>

namespace nst_run {
namespace {

std::atomic<bool> g_interrupted{false};

void on_signal(int sig) {
    if (g_interrupted) {
        std::signal(sig, SIG_DFL);
        std::raise(sig);
    }
    g_interrupted = true;
}

}  // namespace

void install_interrupt_handlers() {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
}

bool interrupted() { return g_interrupted; }

}  // namespace nst_run
