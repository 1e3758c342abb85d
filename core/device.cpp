#include "core/device.hpp"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>

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

size_t parse_byte_size(const std::string& text) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    const std::string unit = end ? std::string(end) : "";
    const double scale = unit.empty() ? 1 : unit == "K" ? 1024.0 : unit == "M" ? 1024.0 * 1024
                       : unit == "G" ? 1024.0 * 1024 * 1024 : -1;
    NST_CHECK(!text.empty() && std::isfinite(v) && v >= 0 && scale > 0 && v * scale < 1.8e19,
              "'", text, "' is not a size (bytes, or a number followed by K, M or G)");
    return size_t(v * scale);
}

std::string format_bytes(size_t bytes) {
    char text[48];
    if (bytes >= (size_t(1) << 20))
        std::snprintf(text, sizeof text, "%.1f MiB", double(bytes) / double(1 << 20));
    else if (bytes >= 1024)
        std::snprintf(text, sizeof text, "%.1f KiB", double(bytes) / 1024);
    else
        std::snprintf(text, sizeof text, "%zu bytes", bytes);
    return text;
}

static std::atomic<bool> g_allow_tf32{false};
void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }

size_t memory_capacity(Device device) {
    return device.is_cuda() ? cuda_memory_capacity(device.index) : cpu_memory_capacity();
}
MemoryStats memory_stats(Device device) {
    return device.is_cuda() ? cuda_memory_stats(device.index) : cpu_memory_stats();
}
void reset_peak_memory(Device device) { device.is_cuda() ? cuda_reset_peak_memory(device.index) : cpu_reset_peak_memory(); }
void empty_cache(Device device) { device.is_cuda() ? cuda_empty_cache(device.index) : cpu_empty_cache(); }

#ifndef NST_CUDA
// CPU-only build: no GPU, and the memory functions describe an empty device.
size_t cuda_memory_capacity(int) { return 0; }
int cuda_device_count() { return 0; }
MemoryStats cuda_memory_stats(int) { return {}; }
void cuda_set_memory_limit(int, size_t) {}
void cuda_reset_peak_memory(int) {}
void cuda_empty_cache(int) {}
void cuda_synchronize(int) {}
#endif

}  // namespace nst
