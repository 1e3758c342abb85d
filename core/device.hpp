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

// CUDA caching-allocator statistics for one device, in bytes. `current` is
// what live tensors hold, `peak` its high-water mark since the last reset,
// `reserved` what the cache holds from the driver (in use + free blocks).
struct MemoryStats {
    size_t current = 0;
    size_t peak = 0;
    size_t reserved = 0;
};
MemoryStats cuda_memory_stats(int device = 0);
void cuda_reset_peak_memory(int device = 0);
// Returns the cache's free blocks to the driver.
void cuda_empty_cache(int device = 0);
// The same books for the CPU: what tensors, convolution scratchpads and
// reorders hold; `reserved` adds the freed large blocks the CPU allocator
// keeps for reuse, which cpu_empty_cache() gives back.
MemoryStats cpu_memory_stats();
void cpu_reset_peak_memory();
void cpu_empty_cache();
// A cap on what tensors may hold on a device (0: none, the default): an
// allocation past it fails with OutOfMemoryError as if the memory were
// physically gone, so nst shares a GPU politely (like PyTorch's
// set_per_process_memory_fraction) and the out-of-memory paths (tiles,
// smaller L-BFGS histories, the error messages) can be exercised anywhere.
// nst-run reads it from NST_MEMORY_LIMIT.
void cuda_set_memory_limit(int device, size_t bytes);
void cpu_set_memory_limit(size_t bytes);
// The most that tensors may hold on a device, for memory plans: the limit
// when one is set, else what the device has free plus what nst already
// holds there (on the CPU: the kernel's MemAvailable, at most the physical
// memory).
size_t memory_capacity(Device device);
// The books, the peak reset and the cache of whichever device it is.
MemoryStats memory_stats(Device device);
void reset_peak_memory(Device device);
void empty_cache(Device device);
size_t cpu_memory_capacity();
size_t cuda_memory_capacity(int device = 0);
// "512M", "6G", "6GB", "1.5GiB", "100000" (bytes) -> bytes; K, M, G, T are
// powers of 1024, any case. Throws nst::Error otherwise (hex, exponents).
size_t parse_byte_size(const std::string& text);
// "812 bytes", "12.5 KiB", "3072.0 MiB": sizes in messages.
std::string format_bytes(size_t bytes);
// Waits for all work queued on the device's stream.
void cuda_synchronize(int device = 0);

// The threads of the CPU backend: oneDNN's and our own loops alike run on one
// OpenMP pool of this many (never more). Default: NST_NUM_THREADS when set,
// else every core the process may run on. Set it from the thread that runs
// the work (OpenMP keeps the setting per thread). cpu_serial_thread() makes
// the CPU ops that the calling thread runs serial: for worker threads that
// already run beside others (the training data loader).
void cpu_set_threads(int threads);
int cpu_threads();
void cpu_serial_thread();

}  // namespace nst
