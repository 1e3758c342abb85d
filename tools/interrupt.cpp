#include "tools/interrupt.hpp"

#include <sys/wait.h>

#include <atomic>
#include <csignal>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/interrupt.hpp"
#include "video/subprocess.hpp"

namespace nst_run {
namespace {

// Lock-free, as the handler reads them; 0 is a free slot.
std::atomic<pid_t> g_children[16];
static_assert(std::atomic<pid_t>::is_always_lock_free, "the signal handler needs lock-free atomics");

void on_signal(int sig) {
    if (nst::interrupt_requested()) {
        // Async-signal-safe calls only: kill, waitpid, unlink (in remove_temporaries).
        for (std::atomic<pid_t>& child : g_children) {
            const pid_t pid = child.load();
            if (pid > 0 && ::kill(pid, SIGKILL) == 0) ::waitpid(pid, nullptr, 0);
        }
        nst::remove_temporaries();
        std::signal(sig, SIG_DFL);
        std::raise(sig);
    }
    nst::request_interrupt();
}

// A child process for the second signal to kill; the handle goes to
// forget_child() before the child is reaped. -1 (not listed) past 16.
int remember_child(pid_t pid) {
    for (int i = 0; i < 16; ++i) {
        pid_t free_slot = 0;
        if (g_children[i].compare_exchange_strong(free_slot, pid)) return i;
    }
    return -1;
}

void forget_child(int handle) {
    if (handle >= 0) g_children[handle].store(0);
}

}  // namespace

void install_interrupt_handlers() {
    // A signal the caller ignores stays ignored: `nohup nst-run ...` must
    // survive the hang-up, a background job of a script its Ctrl-C.
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        struct sigaction current;
        if (::sigaction(sig, nullptr, &current) == 0 && current.sa_handler != SIG_IGN) std::signal(sig, on_signal);
    }
    nst::set_child_process_hooks({remember_child, forget_child});
}

bool interrupted() { return nst::interrupt_requested(); }

void check_interrupted() { nst::check_interrupt(); }

}  // namespace nst_run
