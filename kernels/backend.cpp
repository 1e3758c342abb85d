// The backend registry: picks the CPU reference or the CUDA backend of a
// device. It lives with the kernels so that core/ includes nothing from them.
#include "core/backend.hpp"

#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#ifdef NST_CUDA
#include "kernels/cuda/cuda_backend.hpp"
#endif

namespace nst {

Backend& backend(Device device) {
    if (device.is_cpu()) {
        static CpuBackend cpu;
        static const int threads = cpu_threads();  // NST_NUM_THREADS, else every core
        (void)threads;
        return cpu;
    }
    const int count = cuda_device_count();
    if (device.index < 0 || device.index >= count) {
#ifdef NST_CUDA
        fail("device " + device.str() + " is not available (" + std::to_string(count) +
             " CUDA device(s) found)");
#else
        fail("device " + device.str() + " is not available: nst was built without CUDA");
#endif
    }
#ifdef NST_CUDA
    return cuda_backend(device.index);
#else
    fail("unreachable: no CUDA devices in a CPU-only build");
#endif
}

}  // namespace nst
