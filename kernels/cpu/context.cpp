// The CPU backend's threads: one OpenMP pool serves oneDNN (built on OpenMP)
// and our own loops, so the two never compete for the cores, and its size is
// the one setting cpu_set_threads() changes (core/device.hpp).
#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

#include "core/device.hpp"
#include "core/error.hpp"

namespace nst {
namespace {

std::atomic<int> g_threads{0};

int default_threads() {
    if (const char* text = std::getenv("NST_NUM_THREADS")) {
        char* end = nullptr;
        const long n = std::strtol(text, &end, 10);
        NST_CHECK(*text && *end == '\0' && n >= 1 && n <= 1024, "NST_NUM_THREADS: expected a whole number from 1 to ",
                  "1024, got '", text, "'");
        return int(n);
    }
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    const int available = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : omp_get_num_procs();
    return std::max(1, available);
}

}  // namespace

void cpu_set_threads(int threads) {
    NST_CHECK(threads >= 1 && threads <= 1024, "threads: expected a whole number from 1 to 1024, got ", threads);
    omp_set_num_threads(threads);
    g_threads = threads;
}

int cpu_threads() {
    if (g_threads == 0) cpu_set_threads(default_threads());
    return g_threads;
}

void cpu_serial_thread() { omp_set_num_threads(1); }

}  // namespace nst
