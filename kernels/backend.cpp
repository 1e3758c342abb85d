// The backend registry: picks the CPU reference or the CUDA backend of a
// device, and makes each on first use, under the environment's memory limit
// (device_environment(), read before anything is made). It lives with the
// kernels so that core/ includes nothing from them.
#include "core/backend.hpp"

#include <algorithm>
#include <array>
#include <mutex>
#include <string>

#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#ifdef NST_CUDA
#include "kernels/cuda/cuda_backend.hpp"
#endif

namespace nst {

namespace {

constexpr int kMaxGpus = 64;

// Never destroyed: tensors in statics still free their memory through their
// backend during exit. A bad environment throws before anything is made.
template <class Made, class... Arguments>
Made* make_backend(Arguments... arguments) {
    const size_t limit = device_environment().memory_limit;
    Made* made = new Made(arguments...);
    made->set_memory_limit(limit);
    return made;
}

}  // namespace

int device_count(DeviceType type) {
    if (type == DeviceType::CPU) return 1;
#ifdef NST_CUDA
    return std::min(cuda_runtime_device_count(), kMaxGpus);
#else
    return 0;
#endif
}

Backend& backend(Device device) {
    if (device.is_cpu()) {
        // A throw (a bad environment) leaves the static unmade, to try again.
        static CpuBackend* const cpu = make_backend<CpuBackend>();
        cpu->size_pool_for_calling_thread();  // OpenMP keeps its thread count per thread
        return *cpu;
    }
    const int count = device_count(DeviceType::CUDA);
    if (device.index < 0 || device.index >= count) {
#ifdef NST_CUDA
        fail("device " + device.str() + " is not available (" + std::to_string(count) +
             " CUDA device(s) found)");
#else
        fail("device " + device.str() + " is not available: nst was built without CUDA");
#endif
    }
#ifdef NST_CUDA
    static std::array<std::once_flag, kMaxGpus> once;
    static std::array<CudaBackend*, kMaxGpus> gpus{};
    const int i = device.index;
    std::call_once(once[size_t(i)], [i] { gpus[size_t(i)] = make_backend<CudaBackend>(i); });
    return *gpus[size_t(i)];
#else
    fail("unreachable: no CUDA devices in a CPU-only build");
#endif
}

}  // namespace nst
