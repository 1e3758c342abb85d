#include "core/interrupt.hpp"

#include <atomic>

namespace nst {
namespace {

std::atomic<bool> g_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "request_interrupt() must be async-signal-safe");

}  // namespace

void request_interrupt() noexcept { g_requested.store(true); }
bool interrupt_requested() noexcept { return g_requested.load(std::memory_order_relaxed); }
void clear_interrupt() noexcept { g_requested.store(false); }

void check_interrupt() {
    if (interrupt_requested()) throw Interrupted();
}

}  // namespace nst
