// CPU memory: host allocations, 64-byte aligned (one cache line, the widest
// AVX-512 load) so that vectorised loops and oneDNN never split a line on the
// first element, and booked: what tensors, convolution scratchpads and
// reorders hold is counted (memory_stats), capped (set_memory_limit,
// NST_MEMORY_LIMIT) and reported in out-of-memory errors.
//
// Blocks of 1 MiB and more are kept when freed and handed out again, as the
// CUDA allocator does: a fresh large block comes from mmap, and its first
// touch costs a page fault per 4 KiB page, which was a sixth of a CPU
// optimization step before this cache. Sizes are rounded up to eighths of a
// power of two; a request takes a cached block at most a quarter larger
// (larger ones would make the peak depend on what happened to be cached).
// The cache never holds more than the peak of what was in use, and gives
// everything back when an allocation fails. Small blocks go straight to
// malloc, which reuses them without page faults itself.
//
// Copies are memcpy: CPU tensors share one address space, so host<->device
// and device<->device are the same thing.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

#include <unistd.h>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/cpu/storage16.hpp"

namespace nst {

namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kCachedFrom = size_t(1) << 20;

struct Books {
    std::mutex mutex;
    size_t current = 0, peak = 0, limit = 0;   // live bytes, their peak since a reset, the cap (0: none)
    size_t high_water = 0;                     // the peak of live bytes ever: what the cache may hold
    size_t cached = 0;                         // bytes of free blocks kept
    std::multimap<size_t, void*> free_blocks;  // size -> block
    std::unordered_map<void*, size_t> large;   // live cached-size blocks -> their size
};

Books& books() {
    static Books* b = new Books;  // never destroyed: tensors in statics are freed at exit
    return *b;
}

// Eighths of a power of two for large blocks (at most 12.5% more), the
// alignment for small ones.
size_t rounded_size(size_t bytes) {
    if (bytes < kCachedFrom) return bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
    size_t step = kCachedFrom / 8;
    while (step <= bytes / 16) step *= 2;
    if (bytes > SIZE_MAX - step) throw OutOfMemoryError("out of memory allocating " + format_bytes(bytes) + " on cpu");
    return (bytes + step - 1) / step * step;
}

void release_cache(Books& b) {
    for (auto& [size, ptr] : b.free_blocks) std::free(ptr);
    b.free_blocks.clear();
    b.cached = 0;
}

}  // namespace

Device CpuBackend::device() const { return Device::cpu(); }

void* CpuBackend::allocate(size_t bytes) {
    const size_t size = rounded_size(bytes);
    Books& b = books();
    std::lock_guard<std::mutex> lock(b.mutex);
    if (b.limit && b.current + size > b.limit)
        throw OutOfMemoryError("out of memory allocating " + format_bytes(bytes) + " on cpu (" +
                               format_bytes(b.current) + " in use, limit " + format_bytes(b.limit) + ")");
    void* ptr = nullptr;
    size_t got = size;
    if (size >= kCachedFrom) {
        const auto it = b.free_blocks.lower_bound(size);
        if (it != b.free_blocks.end() && it->first - size <= size / 4 &&
            (!b.limit || b.current + it->first <= b.limit)) {
            ptr = it->second, got = it->first;
            b.free_blocks.erase(it);
            b.cached -= got;
        }
    }
    if (!ptr) {
        ptr = std::aligned_alloc(kAlignment, size);
        if (!ptr && b.cached) {
            release_cache(b);
            ptr = std::aligned_alloc(kAlignment, size);
        }
        if (!ptr) throw OutOfMemoryError("out of memory allocating " + format_bytes(bytes) + " on cpu");
    }
    if (got >= kCachedFrom) b.large.emplace(ptr, got);
    b.current += got;
    b.peak = std::max(b.peak, b.current);
    b.high_water = std::max(b.high_water, b.current);
    return ptr;
}

void CpuBackend::deallocate(void* ptr, size_t bytes) {
    if (!ptr) return;
    Books& b = books();
    std::lock_guard<std::mutex> lock(b.mutex);
    const auto it = b.large.find(ptr);
    if (it == b.large.end()) {
        b.current -= rounded_size(bytes);
        std::free(ptr);
        return;
    }
    const size_t size = it->second;
    b.large.erase(it);
    b.current -= size;
    if (b.cached + size <= b.high_water) {
        b.free_blocks.emplace(size, ptr);
        b.cached += size;
    } else {
        std::free(ptr);
    }
}

MemoryStats CpuBackend::memory_stats() {
    Books& b = books();
    std::lock_guard<std::mutex> lock(b.mutex);
    return {b.current, b.peak, b.current + b.cached};
}

void CpuBackend::reset_peak_memory() {
    Books& b = books();
    std::lock_guard<std::mutex> lock(b.mutex);
    b.peak = b.current;
}

void CpuBackend::set_memory_limit(size_t bytes) {
    Books& b = books();
    std::lock_guard<std::mutex> lock(b.mutex);
    b.limit = bytes;
}

// As on a GPU, what is free plus what nst already holds: the kernel's
// MemAvailable (free memory and the caches it can drop) plus the tensors'
// and the cache's bytes, at most the physical memory. Physical memory alone
// would have a plan count on what other processes use, and the kernel's OOM
// killer, not an error, would end the run.
size_t CpuBackend::memory_capacity() {
    size_t held = 0;
    {
        Books& b = books();
        std::lock_guard<std::mutex> lock(b.mutex);
        if (b.limit) return b.limit;
        held = b.current + b.cached;
    }
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    const size_t physical = pages > 0 && page > 0 ? size_t(pages) * size_t(page) : SIZE_MAX;
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    size_t kib = 0;
    while (meminfo >> key >> kib) {
        if (key == "MemAvailable:") return std::min(physical, kib * 1024 + held);
        meminfo.ignore(256, '\n');
    }
    return physical;
}

void CpuBackend::empty_cache() {
    Books& b = books();
    std::lock_guard<std::mutex> lock(b.mutex);
    release_cache(b);
}

// memcpy with a null pointer is undefined even for zero bytes.
void CpuBackend::copy_from_host(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memcpy(dst, src, bytes);
}

void CpuBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memcpy(dst, src, bytes);
}

void CpuBackend::copy(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memcpy(dst, src, bytes);
}

void CpuBackend::fill(int64_t n, float value, float* y) {
    NST_CHECK(n >= 0, "fill: negative element count ", n);
#pragma omp parallel for if (n >= cpu::kParallelFrom) schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = value;
}

void CpuBackend::strided_copy(int ndim, const int64_t* shape, const int64_t* strides,
                              int64_t offset, const float* src, float* dst) {
    NST_CHECK(ndim >= 0 && ndim <= 8, "strided_copy: ndim must be in [0, 8], got ", ndim);
    int64_t total = 1;
    for (int d = 0; d < ndim; ++d) {
        NST_CHECK(shape[d] >= 0, "strided_copy: negative size in shape ",
                  shape_str(std::vector<int64_t>(shape, shape + ndim)));
        total *= shape[d];
    }
    if (total == 0) return;
    if (ndim == 0) {
        dst[0] = src[offset];
        return;
    }

    // Walk the outer dimensions like an odometer; the last dimension is one
    // contiguous run of dst, and a plain memcpy when src is contiguous too.
    const int64_t inner = shape[ndim - 1];
    const int64_t inner_stride = strides[ndim - 1];
    int64_t index[8] = {0};
    int64_t src_pos = offset;
    for (int64_t out = 0; out < total; out += inner) {
        const float* s = src + src_pos;
        float* d = dst + out;
        if (inner_stride == 1) {
            std::memcpy(d, s, size_t(inner) * sizeof(float));
        } else {
            for (int64_t i = 0; i < inner; ++i) d[i] = s[i * inner_stride];
        }
        for (int k = ndim - 2; k >= 0; --k) {
            src_pos += strides[k];
            if (++index[k] < shape[k]) break;
            src_pos -= strides[k] * shape[k];
            index[k] = 0;
        }
    }
}

void CpuBackend::convert(int64_t n, DType from, const void* x, DType to, void* y) {
    check_count("convert", n);
    if (from == to) {
        copy(y, x, size_t(n) * dtype_size(from));
        return;
    }
    std::vector<float> f = from == DType::F32
        ? std::vector<float>(static_cast<const float*>(x), static_cast<const float*>(x) + n)
        : cpu16::widen(from, x, n);
    if (to == DType::F32)
        copy(y, f.data(), size_t(n) * 4);
    else
        cpu16::narrow(to, f, y);
}

}  // namespace nst

namespace nst {

// Threaded over pixels, each pixel's three channels by one thread: threads
// over channels would be three at most, writing every third byte of the
// same cache lines.
void CpuBackend::rgb8_to_planar(int N, int64_t HW, const uint8_t* x, float* y) {
    check_channels("rgb8_to_planar", N, 3, HW);
    for (int n = 0; n < N; ++n) {
        const uint8_t* in = x + int64_t(n) * HW * 3;
        float* out = y + int64_t(n) * 3 * HW;
#pragma omp parallel for if (HW >= cpu::kParallelFrom) schedule(static)
        for (int64_t i = 0; i < HW; ++i)
            for (int c = 0; c < 3; ++c) out[c * HW + i] = float(in[3 * i + c]);
    }
}

void CpuBackend::planar_to_rgb8(int N, int64_t HW, const float* x, uint8_t* y) {
    check_channels("planar_to_rgb8", N, 3, HW);
    for (int n = 0; n < N; ++n) {
        const float* in = x + int64_t(n) * 3 * HW;
        uint8_t* out = y + int64_t(n) * HW * 3;
#pragma omp parallel for if (HW >= cpu::kParallelFrom) schedule(static)
        for (int64_t i = 0; i < HW; ++i)
            for (int c = 0; c < 3; ++c) {
                // Comparisons first: NaN fails both and lands on 0.
                const float v = in[c * HW + i];
                out[3 * i + c] = v >= 255.f ? 255 : v > 0.f ? uint8_t(std::lround(v)) : 0;
            }
    }
}

}  // namespace nst
