// The CPU backend's threads: one OpenMP pool serves oneDNN (built on OpenMP)
// and our own loops, so the two never compete for the cores. Its size is
// the thread count of core/device.hpp, one setting for the process; OpenMP
// keeps a count per thread, so each thread that asks for the backend gets
// the setting here first (the registry calls this on every lookup: a
// thread-local compare, and an OpenMP call only when the count changed).
#include <omp.h>

#include "kernels/cpu/cpu_backend.hpp"

namespace nst {

void CpuBackend::size_pool_for_calling_thread() {
    thread_local int pool = 0;  // what this thread's OpenMP count was set to, 0: never
    const int wanted = cpu_threads_of_calling_thread();
    if (wanted == pool) return;
    omp_set_num_threads(wanted);
    pool = wanted;
}

// Each method runs its work to the end before it returns: nothing is queued.
void CpuBackend::synchronize() {}

}  // namespace nst
