// The device facade: device names, and the settings and books of each
// device, which go to its backend (core/backend.hpp; the registry in
// kernels/backend.cpp knows which backends this build has). The CPU thread
// count is a setting kept here; the CPU backend gives it to every thread
// that calls it (kernels/cpu/context.cpp). The environment is read here too,
// once.
#include "core/device.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "core/backend.hpp"
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

int cuda_device_count() { return device_count(DeviceType::CUDA); }

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

MemoryStats memory_stats(Device device) { return backend(device).memory_stats(); }
void reset_peak_memory(Device device) { backend(device).reset_peak_memory(); }
void empty_cache(Device device) { backend(device).empty_cache(); }
void set_memory_limit(Device device, size_t bytes) { backend(device).set_memory_limit(bytes); }
size_t memory_capacity(Device device) { return backend(device).memory_capacity(); }
void synchronize(Device device) { backend(device).synchronize(); }

namespace {

std::atomic<int> g_threads{0};     // 0: not set, the environment's
thread_local bool t_serial = false;

void check_threads(int threads) {
    NST_CHECK(threads >= 1 && threads <= 1024, "threads: expected a whole number from 1 to 1024, got ", threads);
}

// NST_NUM_THREADS, else the cores this process may run on (its affinity
// mask: a container or taskset may allow fewer than the machine has).
int threads_from_environment() {
    if (const char* text = std::getenv("NST_NUM_THREADS")) {
        char* end = nullptr;
        const long n = std::strtol(text, &end, 10);
        NST_CHECK(*text && *end == '\0' && n >= 1 && n <= 1024, "NST_NUM_THREADS: expected a whole number from 1 to ",
                  "1024, got '", text, "'");
        return int(n);
    }
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    const int available = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus)
                                                                        : int(std::thread::hardware_concurrency());
    return std::max(1, available);
}

size_t memory_limit_from_environment() {
    const char* text = std::getenv("NST_MEMORY_LIMIT");
    if (!text) return 0;
    try {
        return parse_byte_size(text);
    } catch (const Error& e) {
        throw Error(std::string("NST_MEMORY_LIMIT: ") + e.what());
    }
}

}  // namespace

// A static initialised by a throw is tried again on the next call, so a bad
// value is reported every time, never half read.
const DeviceEnvironment& device_environment() {
    static const DeviceEnvironment environment{threads_from_environment(), memory_limit_from_environment()};
    return environment;
}

// Setting the count asks the CPU backend, which gives it to the calling
// thread at once (its own OpenMP loops outside the backend see it too).
void cpu_set_threads(int threads) {
    check_threads(threads);
    g_threads = threads;
    backend(Device::cpu());
}

int cpu_threads() {
    const int threads = g_threads;
    return threads ? threads : device_environment().threads;
}

void cpu_adopt_threads() { backend(Device::cpu()); }  // the registry sizes the calling thread's pool

void cpu_serial_thread() {
    t_serial = true;
    backend(Device::cpu());
}

int cpu_threads_of_calling_thread() { return t_serial ? 1 : cpu_threads(); }

ScopedThreads::ScopedThreads(int threads) : previous_(cpu_threads()) { cpu_set_threads(threads); }
ScopedThreads::~ScopedThreads() { cpu_set_threads(previous_); }

}  // namespace nst
