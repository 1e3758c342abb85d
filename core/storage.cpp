#include "core/storage.hpp"

#include <atomic>

#include "core/backend.hpp"

namespace nst {
namespace {

// What CPU tensors hold (the CUDA allocator keeps its own books), so peak
// memory can be measured on machines without a GPU too.
std::atomic<size_t> cpu_current{0}, cpu_peak{0};

void count_cpu(size_t bytes) {
    const size_t now = cpu_current.fetch_add(bytes) + bytes;
    size_t peak = cpu_peak.load();
    while (now > peak && !cpu_peak.compare_exchange_weak(peak, now)) {
    }
}

}  // namespace

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
    data_ = backend(device).allocate(bytes);
    if (device.is_cpu()) count_cpu(bytes);
}

Storage::~Storage() {
    backend(device_).deallocate(data_, bytes_);
    if (device_.is_cpu()) cpu_current.fetch_sub(bytes_);
}

MemoryStats cpu_memory_stats() {
    MemoryStats s;
    s.current = s.reserved = cpu_current.load();
    s.peak = cpu_peak.load();
    return s;
}

void cpu_reset_peak_memory() { cpu_peak.store(cpu_current.load()); }

}  // namespace nst
