// The CUDA caching allocator: cudaMalloc and cudaFree synchronise the device
// and cost tens of microseconds, far more than most kernels here, so freed
// blocks are kept per device and handed out again.
//
// Design, kept simple on purpose:
//  * Sizes are rounded (512 B steps below 1 MiB, 2 MiB steps above) so that
//    the slightly different sizes of one training step's tensors share blocks.
//  * Free blocks sit in a size-ordered multimap; a request takes the smallest
//    free block that fits, but only one at most a quarter larger, so a small
//    tensor never pins a large block and the books (what memory plans
//    measure) stay near what tensors ask for, as on the CPU
//    (kernels/cpu/memory.cpp). Blocks are never split.
//  * A freed block can be reused immediately without a sync: every kernel of
//    a device runs on its one stream, which orders the old reader before the
//    new writer (kernels/cuda/context.hpp).
//  * When cudaMalloc fails, the cache's free blocks go back to the driver and
//    the allocation is retried once before reporting out of memory.
// One mutex guards everything: allocation is per op, not per element, so it
// is never contended enough to matter.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "core/device.hpp"
#include "core/error.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/cuda_backend.hpp"

namespace nst::cuda {

namespace {

constexpr size_t kSmallStep = 512;
constexpr size_t kSmallLimit = size_t(1) << 20;  // 1 MiB
constexpr size_t kLargeStep = size_t(2) << 20;   // 2 MiB

struct DeviceCache {
    std::multimap<size_t, void*> free_blocks;  // size -> block
    std::unordered_map<void*, size_t> live;    // block -> size
    size_t current = 0;                        // bytes in live blocks
    size_t peak = 0;
    size_t reserved = 0;                       // bytes obtained from cudaMalloc
    size_t limit = 0;                          // cap on `current`; 0: none
};

struct State {
    std::mutex mutex;
    std::map<int, DeviceCache> devices;
};

// Never destroyed: tensors held in statics may be freed after this file's
// statics would have been torn down, and cudaFree at exit is pointless anyway.
State& state() {
    static State* s = new State;
    return *s;
}

size_t round_size(size_t bytes) {
    if (bytes < kSmallLimit) return (bytes + kSmallStep - 1) / kSmallStep * kSmallStep;
    NST_CHECK(bytes <= SIZE_MAX - kLargeStep, "cuda allocate: size ", bytes, " bytes is too large");
    return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
}

// Returns every free block to the driver. The caller holds the mutex and has
// made the device current. The stream sync makes sure no queued kernel still
// reads a block about to be freed (cudaFree does not wait on other streams).
void release_free_blocks(int device, DeviceCache& cache) {
    if (cache.free_blocks.empty()) return;
    check(cudaStreamSynchronize(context(device).stream), "cuda allocator: cudaStreamSynchronize");
    // Each block leaves the list before it is freed: if one cudaFree fails,
    // the blocks already freed are gone from it, and none is freed twice.
    while (!cache.free_blocks.empty()) {
        const auto it = cache.free_blocks.begin();
        const auto [size, ptr] = *it;
        cache.free_blocks.erase(it);
        cache.reserved -= size;
        check(cudaFree(ptr), "cuda allocator: cudaFree");
    }
}

}  // namespace

void* allocate(int device, size_t bytes) {
    if (bytes == 0) return nullptr;
    const size_t size = round_size(bytes);
    context(device);  // validates the index and makes the device current

    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    DeviceCache& cache = s.devices[device];
    if (cache.limit && cache.current + size > cache.limit)
        throw OutOfMemoryError("out of GPU memory allocating " + format_bytes(bytes) + " on cuda:" +
                               std::to_string(device) + " (" + format_bytes(cache.current) + " in use, limit " +
                               format_bytes(cache.limit) + ")");

    void* ptr = nullptr;
    auto it = cache.free_blocks.lower_bound(size);
    // A cached block counts whole: under a limit, one that would pass it is
    // left for a fresh allocation of the exact size.
    if (it != cache.free_blocks.end() && it->first - size <= size / 4 &&
        (!cache.limit || cache.current + it->first <= cache.limit)) {
        ptr = it->second;
        const size_t block = it->first;
        cache.free_blocks.erase(it);
        cache.live.emplace(ptr, block);
        cache.current += block;
    } else {
        cudaError_t status = cudaMalloc(&ptr, size);
        if (status == cudaErrorMemoryAllocation) {
            cudaGetLastError();  // not sticky; do not let check_launch see it later
            release_free_blocks(device, cache);
            status = cudaMalloc(&ptr, size);
            if (status == cudaErrorMemoryAllocation) {
                cudaGetLastError();
                throw OutOfMemoryError("out of GPU memory allocating " + format_bytes(bytes) + " on cuda:" +
                                       std::to_string(device) + " (" + format_bytes(cache.current) + " in use, " +
                                       format_bytes(cache.reserved) + " reserved)");
            }
        }
        check(status, "cuda allocator: cudaMalloc");
        cache.live.emplace(ptr, size);
        cache.current += size;
        cache.reserved += size;
    }
    if (cache.current > cache.peak) cache.peak = cache.current;
    return ptr;
}

size_t headroom(int device) {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    const DeviceCache& cache = s.devices[device];
    if (cache.limit == 0) return SIZE_MAX;
    const size_t left = cache.limit > cache.current ? cache.limit - cache.current : 0;
    // The largest request whose rounded size (round_size) still fits: a
    // multiple of the large step, or a small request under 1 MiB.
    return std::max(left / kLargeStep * kLargeStep, std::min(left, kSmallLimit - 1) / kSmallStep * kSmallStep);
}

void deallocate(int device, void* ptr) {
    if (!ptr) return;
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    auto dev = s.devices.find(device);
    NST_CHECK(dev != s.devices.end(), "cuda deallocate: nothing was allocated on cuda:", device);
    DeviceCache& cache = dev->second;
    auto it = cache.live.find(ptr);
    NST_CHECK(it != cache.live.end(), "cuda deallocate: pointer ", ptr,
              " was not allocated on cuda:", device, " or was freed twice");
    cache.current -= it->second;
    cache.free_blocks.emplace(it->second, ptr);
    cache.live.erase(it);
}

}  // namespace nst::cuda

namespace nst {

// The backend's books: the allocator's, kept per device.
MemoryStats CudaBackend::memory_stats() {
    cuda::State& s = cuda::state();
    std::lock_guard<std::mutex> lock(s.mutex);
    auto dev = s.devices.find(index_);
    if (dev == s.devices.end()) return {};  // nothing ever allocated there
    return {dev->second.current, dev->second.peak, dev->second.reserved};
}

void CudaBackend::set_memory_limit(size_t bytes) {
    cuda::State& s = cuda::state();
    std::lock_guard<std::mutex> lock(s.mutex);
    s.devices[index_].limit = bytes;
}

size_t CudaBackend::memory_capacity() {
    cuda::State& s = cuda::state();
    std::lock_guard<std::mutex> lock(s.mutex);
    cuda::DeviceCache& cache = s.devices[index_];
    if (cache.limit) return cache.limit;
    cuda::context(index_);  // cudaMemGetInfo reads the current device
    size_t free_bytes = 0, total_bytes = 0;
    cuda::check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
    return free_bytes + cache.reserved;
}

void CudaBackend::reset_peak_memory() {
    cuda::State& s = cuda::state();
    std::lock_guard<std::mutex> lock(s.mutex);
    auto dev = s.devices.find(index_);
    if (dev != s.devices.end()) dev->second.peak = dev->second.current;
}

void CudaBackend::empty_cache() {
    cuda::State& s = cuda::state();
    std::lock_guard<std::mutex> lock(s.mutex);
    auto dev = s.devices.find(index_);
    if (dev == s.devices.end()) return;
    cuda::context(index_);  // make the device current for cudaFree
    cuda::release_free_blocks(index_, dev->second);
}

}  // namespace nst
