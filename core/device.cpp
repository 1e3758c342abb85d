#include "core/device.hpp"

#include <atomic>

#include "core/error.hpp"

namespace nst {

Device Device::parse(const std::string& name) {
    if (name == "cpu") return cpu();
    if (name == "cuda") return cuda(0);
    if (name.rfind("cuda:", 0) == 0) {
        const std::string digits = name.substr(5);
        bool ok = !digits.empty() && digits.size() < 4;
        for (char c : digits) ok = ok && c >= '0' && c <= '9';
        if (ok) return cuda(std::stoi(digits));
    }
    fail("unknown device '" + name + "' (expected cpu, cuda or cuda:N)");
}

std::string Device::str() const {
    return is_cpu() ? "cpu" : "cuda:" + std::to_string(index);
}

bool cuda_available() { return cuda_device_count() > 0; }

Device default_device() { return cuda_available() ? Device::cuda(0) : Device::cpu(); }

Device usable_device(const std::string& name) {
    const Device device = name.empty() ? default_device() : Device::parse(name);
    if (device.is_cuda())
        NST_CHECK(device.index < cuda_device_count(), "device ", device.str(), " is not available (",
                  cuda_device_count(), " usable GPUs",
                  cuda_device_count() == 0 ? "; this build or machine has no CUDA" : "", ")");
    return device;
}

static std::atomic<bool> g_allow_tf32{false};
void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }

#ifndef NST_CUDA
// CPU-only build: no GPU, and the memory functions describe an empty device.
int cuda_device_count() { return 0; }
MemoryStats cuda_memory_stats(int) { return {}; }
void cuda_reset_peak_memory(int) {}
void cuda_empty_cache(int) {}
void cuda_synchronize(int) {}
#endif

}  // namespace nst
