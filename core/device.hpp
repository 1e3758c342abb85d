// Where a tensor lives: "cpu" or "cuda:N". A build without CUDA still knows
// the name "cuda" so that asking for it gives a clear error, not a parse error.
#pragma once
#include <string>

namespace nst {

enum class DeviceType { CPU, CUDA };

struct Device {
    DeviceType type = DeviceType::CPU;
    int index = 0;

    static Device cpu() { return {DeviceType::CPU, 0}; }
    static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
    // "cpu", "cuda", "cuda:1"; throws nst::Error on anything else.
    static Device parse(const std::string& name);

    bool is_cpu() const { return type == DeviceType::CPU; }
    bool is_cuda() const { return type == DeviceType::CUDA; }
    std::string str() const;
    bool operator==(const Device& o) const { return type == o.type && index == o.index; }
    bool operator!=(const Device& o) const { return !(*this == o); }
};

// Number of usable GPUs: 0 in a CPU-only build, and 0 when the CUDA runtime
// reports any error (no driver, no device), so callers can fall back to CPU.
int cuda_device_count();
bool cuda_available();
// The first GPU when there is one, else the CPU.
Device default_device();
// A device a user named ("cpu", "cuda", "cuda:1"; empty: default_device()),
// checked to exist: a missing GPU is an nst::Error saying how many there are.
Device usable_device(const std::string& name);

// Whether CUDA matrix math (cuBLAS GEMMs, cuDNN convolutions) may use TF32
// tensor cores. Off by default: full fp32 unless the caller opts in.
void set_allow_tf32(bool allow);
bool allow_tf32();

// The device facade (core/device.cpp): the functions below go to the
// device's backend (core/backend.hpp), which keeps the books; a device that
// is not there is an nst::Error, as for its tensors.
//
// Allocator statistics for one device, in bytes. `current` is what live
// tensors hold (on the CPU with convolution scratchpads and reorders),
// `peak` its high-water mark since the last reset, `reserved` that plus the
// freed blocks the allocator keeps for reuse, which empty_cache() gives back
// (to the CUDA driver, or to the system).
struct MemoryStats {
    size_t current = 0;
    size_t peak = 0;
    size_t reserved = 0;
};
MemoryStats memory_stats(Device device);
void reset_peak_memory(Device device);
void empty_cache(Device device);
// A cap on what tensors may hold on a device (0: none): an allocation past
// it fails with OutOfMemoryError as if the memory were physically gone, so
// nst shares a GPU politely (like PyTorch's set_per_process_memory_fraction)
// and the out-of-memory paths (tiles, smaller L-BFGS histories, the error
// messages) can be exercised anywhere. Every device starts with
// NST_MEMORY_LIMIT's (device_environment()).
void set_memory_limit(Device device, size_t bytes);
// The most that tensors may hold on a device, for memory plans: the limit
// when one is set, else what the device has free plus what nst already
// holds there (on the CPU: the kernel's MemAvailable, at most the physical
// memory).
size_t memory_capacity(Device device);
// Waits for all work queued on the device (a CPU op is done when it returns).
void synchronize(Device device);
// The same, by device kind, as the engine and the tests mostly ask.
inline MemoryStats cpu_memory_stats() { return memory_stats(Device::cpu()); }
inline void cpu_reset_peak_memory() { reset_peak_memory(Device::cpu()); }
inline void cpu_empty_cache() { empty_cache(Device::cpu()); }
inline void cpu_set_memory_limit(size_t bytes) { set_memory_limit(Device::cpu(), bytes); }
inline size_t cpu_memory_capacity() { return memory_capacity(Device::cpu()); }
inline MemoryStats cuda_memory_stats(int device = 0) { return memory_stats(Device::cuda(device)); }
inline void cuda_reset_peak_memory(int device = 0) { reset_peak_memory(Device::cuda(device)); }
inline void cuda_empty_cache(int device = 0) { empty_cache(Device::cuda(device)); }
inline void cuda_set_memory_limit(int device, size_t bytes) { set_memory_limit(Device::cuda(device), bytes); }
inline size_t cuda_memory_capacity(int device = 0) { return memory_capacity(Device::cuda(device)); }
inline void cuda_synchronize(int device = 0) { synchronize(Device::cuda(device)); }

// "512M", "6G", "6GB", "1.5GiB", "100000" (bytes) -> bytes; K, M, G, T are
// powers of 1024, any case. Throws nst::Error otherwise (hex, exponents).
size_t parse_byte_size(const std::string& text);
// "812 bytes", "12.5 KiB", "3072.0 MiB": sizes in messages.
std::string format_bytes(size_t bytes);

// The threads of the CPU backend: oneDNN's and our own loops alike run on one
// OpenMP pool of this many (never more), on whichever thread calls the
// backend: the count is one setting for the process, which the backend gives
// every calling thread (OpenMP keeps it per thread) before it runs work there.
// Default: NST_NUM_THREADS (device_environment()). Results are the same bits
// whatever the count, but for the sums oneDNN splits across threads, which
// agree to fp32 rounding (tests/test_threads.cpp says which).
void cpu_set_threads(int threads);
int cpu_threads();
// Gives the calling thread's own OpenMP loops, run outside the backend (the
// video stabilizer's), the backend's count, as the backend's ops get it.
void cpu_adopt_threads();
// Makes the CPU ops that the calling thread runs serial, whatever the count:
// for worker threads that already run beside others (the training data
// loader). Also applies at once to the calling thread's own OpenMP loops.
void cpu_serial_thread();

// cpu_set_threads(threads) for a scope, and the previous count back at its end.
class ScopedThreads {
public:
    explicit ScopedThreads(int threads);
    ~ScopedThreads();
    ScopedThreads(const ScopedThreads&) = delete;
    ScopedThreads& operator=(const ScopedThreads&) = delete;

private:
    int previous_;
};

// The environment's device settings, read by the library once, when the
// first backend is made (or when a program asks first: nst-run does, so that
// a bad value is its first error). A bad value throws nst::Error naming the
// variable and what it expects, at every call.
//  * NST_NUM_THREADS=N (1 to 1024): the CPU thread count; unset, every core
//    the process may run on.
//  * NST_MEMORY_LIMIT=SIZE (parse_byte_size; 0: none): every device's
//    starting memory limit; unset, none.
struct DeviceEnvironment {
    int threads = 1;
    size_t memory_limit = 0;
};
const DeviceEnvironment& device_environment();

}  // namespace nst
