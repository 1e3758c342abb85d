// The CUDA backend object and its memory ops: allocation through the caching
// allocator, copies, fill, and the strided copy that makes views contiguous.
//
// Host copies are queued on the device's stream and then waited for: the host
// side is ordinary pageable memory that the caller reads (or frees) as soon as
// the call returns, and waiting here is what makes that safe. Device copies
// and kernels never wait; the one stream orders them.
//
// strided_copy decomposes each destination index into per-dimension indices
// with divisions. That is slower than an odometer walk, but each thread owns
// exactly one element and the (at most 8) sizes and strides travel by value
// in the kernel's argument block, so there is no setup copy at all.
#include <algorithm>
#include <array>
#include <mutex>
#include <vector>

#include "core/cuda_context.hpp"
#include "core/error.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/storage16.cuh"

namespace nst {

namespace {

constexpr int kMaxBackends = 64;

__global__ void fill_kernel(int64_t n, float value, float* y) {
    GRID_STRIDE_LOOP(i, n)
        y[i] = value;
}

template <class From, class To>
__global__ void convert_kernel(int64_t n, const From* x, To* y) {
    GRID_STRIDE_LOOP(i, n)
        y[i] = cuda::from_float<To>(cuda::to_float(x[i]));
}

// Calls f(T{}) with T the CUDA element type of `type`.
template <class F>
void dispatch_any(DType type, F&& f) {
    if (type == DType::F32)
        f(float{});
    else
        cuda::dispatch16("convert", type, f);
}

struct StridedLayout {
    int ndim;
    int64_t shape[8];
    int64_t strides[8];
};

__global__ void strided_copy_kernel(StridedLayout layout, int64_t total, int64_t offset,
                                    const float* __restrict__ src, float* __restrict__ dst) {
    GRID_STRIDE_LOOP(i, total) {
        int64_t rest = i;
        int64_t pos = offset;
        for (int d = layout.ndim - 1; d >= 0; --d) {
            const int64_t size = layout.shape[d];
            pos += (rest % size) * layout.strides[d];
            rest /= size;
        }
        dst[i] = src[pos];
    }
}

}  // namespace

Backend& cuda_backend(int index) {
    const int count = cuda_device_count();
    NST_CHECK(index >= 0 && index < count && index < kMaxBackends, "cuda:", index,
              " is not available (", count, " CUDA device(s) found)");
    // Never destroyed, like the contexts: tensors in statics may still free
    // their memory through it during exit.
    static std::array<std::once_flag, kMaxBackends> once;
    static std::array<CudaBackend*, kMaxBackends> backends{};
    std::call_once(once[index], [index] { backends[index] = new CudaBackend(index); });
    return *backends[index];
}

Device CudaBackend::device() const { return Device::cuda(index_); }

void* CudaBackend::allocate(size_t bytes) { return cuda::allocate(index_, bytes); }

void CudaBackend::deallocate(void* ptr, size_t /*bytes: the allocator knows*/) {
    cuda::deallocate(index_, ptr);
}

void CudaBackend::copy_from_host(void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    cuda::Context& ctx = cuda::context(index_);
    cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx.stream),
                "copy_from_host: cudaMemcpyAsync");
    cuda::check(cudaStreamSynchronize(ctx.stream), "copy_from_host: cudaStreamSynchronize");
}

void CudaBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    cuda::Context& ctx = cuda::context(index_);
    cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx.stream),
                "copy_to_host: cudaMemcpyAsync");
    cuda::check(cudaStreamSynchronize(ctx.stream), "copy_to_host: cudaStreamSynchronize");
}

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    cuda::Context& ctx = cuda::context(index_);
    cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx.stream),
                "copy: cudaMemcpyAsync");
}

void CudaBackend::fill(int64_t n, float value, float* y) {
    NST_CHECK(n >= 0, "fill: negative element count ", n);
    if (n == 0) return;
    cuda::Context& ctx = cuda::context(index_);
    fill_kernel<<<cuda::grid_for(n, ctx), cuda::kThreads, 0, ctx.stream>>>(n, value, y);
    cuda::check_launch("fill_kernel");
}

void CudaBackend::convert(int64_t n, DType from, const void* x, DType to, void* y) {
    NST_CHECK(n >= 0, "convert: negative element count ", n);
    if (n == 0) return;
    if (from == to) return copy(y, x, size_t(n) * dtype_size(from));
    cuda::Context& ctx = cuda::context(index_);
    dispatch_any(from, [&](auto a) {
        dispatch_any(to, [&](auto b) {
            using From = decltype(a);
            using To = decltype(b);
            convert_kernel<<<cuda::grid_for(n, ctx), cuda::kThreads, 0, ctx.stream>>>(
                n, static_cast<const From*>(x), static_cast<To*>(y));
        });
    });
    cuda::check_launch("convert_kernel");
}

void CudaBackend::strided_copy(int ndim, const int64_t* shape, const int64_t* strides,
                               int64_t offset, const float* src, float* dst) {
    NST_CHECK(ndim >= 0 && ndim <= 8, "strided_copy: ndim must be in [0, 8], got ", ndim);
    StridedLayout layout{};
    layout.ndim = ndim;
    int64_t total = 1;
    for (int d = 0; d < ndim; ++d) {
        NST_CHECK(shape[d] >= 0, "strided_copy: negative size in shape ",
                  shape_str(std::vector<int64_t>(shape, shape + ndim)));
        layout.shape[d] = shape[d];
        layout.strides[d] = strides[d];
        total *= shape[d];
    }
    if (total == 0) return;
    cuda::Context& ctx = cuda::context(index_);
    strided_copy_kernel<<<cuda::grid_for(total, ctx), cuda::kThreads, 0, ctx.stream>>>(layout, total, offset,
                                                                            src, dst);
    cuda::check_launch("strided_copy_kernel");
}

}  // namespace nst
