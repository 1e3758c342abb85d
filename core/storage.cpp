#include "core/storage.hpp"

#include <atomic>

#include "core/backend.hpp"
#include "core/error.hpp"

namespace nst {
namespace {

// What CPU tensors hold (the CUDA allocator keeps its own books), so peak
// memory can be measured on machines without a GPU too.
std::atomic<size_t> cpu_current{0}, cpu_peak{0}, cpu_limit{0};

// Books `bytes` against the limit before the allocation (a refused one
// leaves the books as they were); returns what is now in use.
size_t reserve_cpu(size_t bytes) {
    const size_t now = cpu_current.fetch_add(bytes) + bytes;
    const size_t limit = cpu_limit.load();
    if (limit && now > limit) {
        cpu_current.fetch_sub(bytes);
        throw OutOfMemoryError("out of memory allocating " + format_bytes(bytes) + " on cpu (" +
                               format_bytes(now - bytes) + " in use, limit " + format_bytes(limit) + ")");
    }
    return now;
}

void note_peak(size_t now) {
    size_t peak = cpu_peak.load();
    while (now > peak && !cpu_peak.compare_exchange_weak(peak, now)) {
    }
}

}  // namespace

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
    if (!device.is_cpu()) {
        data_ = backend(device).allocate(bytes);
        return;
    }
    const size_t now = reserve_cpu(bytes);
    try {
        data_ = backend(device).allocate(bytes);
    } catch (...) {
        cpu_current.fetch_sub(bytes);
        throw;
    }
    note_peak(now);
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

void cpu_set_memory_limit(size_t bytes) { cpu_limit.store(bytes); }

}  // namespace nst
