#include "core/device.hpp"

#include <atomic>
#include <cctype>
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
    // Digits with an optional fraction, then an optional unit: strtod alone
    // would also take hex ("0x10": 16 bytes), exponents and "inf".
    size_t i = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    const size_t whole = i;
    if (i < text.size() && text[i] == '.') {
        ++i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    }
    std::string unit = text.substr(i);
    for (char& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
    // K, M, G, T are powers of 1024, with or without B or iB ("6G", "6GB", "6GiB").
    double scale = -1;
    const std::string prefixes = "KMGT";
    if (unit.empty() || unit == "B") {
        scale = 1;
    } else if (const size_t p = prefixes.find(unit[0]); p != std::string::npos &&
                                                      (unit.size() == 1 || unit.substr(1) == "B" || unit.substr(1) == "IB")) {
        scale = std::pow(1024.0, double(p + 1));
    }
    const double v = whole > 0 ? std::strtod(text.substr(0, i).c_str(), nullptr) : -1;
    NST_CHECK(v >= 0 && scale > 0 && v * scale < 1.8e19, "'", text,
              "' is not a size: give bytes, or a number with K, M, G or T (powers of 1024): 512M, 6G, 6GB, 1.5GiB");
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
