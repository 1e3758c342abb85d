// The CUDA backend object and its memory ops: allocation through the caching
// allocator, copies, fill, the strided copy that makes views contiguous, and
// the conversions of dtypes and of 8-bit RGB frames.
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
#include <string>
#include <vector>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/storage16.cuh"

namespace nst {

namespace {

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

// One thread per (image, pixel): three byte loads or stores next to each
// other, the float planes read or written coalesced.
__global__ void rgb8_to_planar_kernel(int64_t total, int64_t HW, const uint8_t* __restrict__ x,
                                      float* __restrict__ y) {
    GRID_STRIDE_LOOP(i, total) {
        const int64_t n = i / HW, p = i - n * HW;
        const uint8_t* in = x + 3 * i;
        float* out = y + n * 3 * HW + p;
        out[0] = float(in[0]);
        out[HW] = float(in[1]);
        out[2 * HW] = float(in[2]);
    }
}

__device__ uint8_t to_byte(float v) {
    // As the CPU: comparisons first (NaN lands on 0), then round half away from zero.
    return v >= 255.f ? 255 : v > 0.f ? uint8_t(roundf(v)) : 0;
}

__global__ void planar_to_rgb8_kernel(int64_t total, int64_t HW, const float* __restrict__ x,
                                      uint8_t* __restrict__ y) {
    GRID_STRIDE_LOOP(i, total) {
        const int64_t n = i / HW, p = i - n * HW;
        const float* in = x + n * 3 * HW + p;
        uint8_t* out = y + 3 * i;
        out[0] = to_byte(in[0]);
        out[1] = to_byte(in[HW]);
        out[2] = to_byte(in[2 * HW]);
    }
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

// A copy queued on the device's stream; `wait` for host memory (see above).
void copy_on_stream(int device, const char* op, void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                    bool wait) {
    if (bytes == 0) return;
    cuda::Context& ctx = cuda::context(device);
    // The message is built only on failure: copies are frequent.
    cudaError_t status = cudaMemcpyAsync(dst, src, bytes, kind, ctx.stream);
    if (status != cudaSuccess) cuda::check(status, (std::string(op) + ": cudaMemcpyAsync").c_str());
    if (!wait) return;
    status = cudaStreamSynchronize(ctx.stream);
    if (status != cudaSuccess) cuda::check(status, (std::string(op) + ": cudaStreamSynchronize").c_str());
}

}  // namespace

Device CudaBackend::device() const { return Device::cuda(index_); }

void* CudaBackend::allocate(size_t bytes) { return cuda::allocate(index_, bytes); }

void CudaBackend::deallocate(void* ptr, size_t /*bytes: the allocator knows*/) {
    cuda::deallocate(index_, ptr);
}

void CudaBackend::copy_from_host(void* dst, const void* src, size_t bytes) {
    copy_on_stream(index_, "copy_from_host", dst, src, bytes, cudaMemcpyHostToDevice, /*wait=*/true);
}

void CudaBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
    copy_on_stream(index_, "copy_to_host", dst, src, bytes, cudaMemcpyDeviceToHost, /*wait=*/true);
}

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
    copy_on_stream(index_, "copy", dst, src, bytes, cudaMemcpyDeviceToDevice, /*wait=*/false);
}

void CudaBackend::fill(int64_t n, float value, float* y) {
    check_count("fill", n);
    cuda::launch(index_, "fill", n, fill_kernel, n, value, y);
}

void CudaBackend::convert(int64_t n, DType from, const void* x, DType to, void* y) {
    check_count("convert", n);
    if (n == 0) return;
    if (from == to) return copy(y, x, size_t(n) * dtype_size(from));
    dispatch_any(from, [&](auto a) {
        dispatch_any(to, [&](auto b) {
            using From = decltype(a);
            using To = decltype(b);
            cuda::launch(index_, "convert", n, convert_kernel<From, To>, n, static_cast<const From*>(x),
                         static_cast<To*>(y));
        });
    });
}

void CudaBackend::rgb8_to_planar(int N, int64_t HW, const uint8_t* x, float* y) {
    check_channels("rgb8_to_planar", N, 3, HW);
    const int64_t total = int64_t(N) * HW;
    cuda::launch(index_, "rgb8_to_planar", total, rgb8_to_planar_kernel, total, HW, x, y);
}

void CudaBackend::planar_to_rgb8(int N, int64_t HW, const float* x, uint8_t* y) {
    check_channels("planar_to_rgb8", N, 3, HW);
    const int64_t total = int64_t(N) * HW;
    cuda::launch(index_, "planar_to_rgb8", total, planar_to_rgb8_kernel, total, HW, x, y);
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
    cuda::launch(index_, "strided_copy", total, strided_copy_kernel, layout, total, offset, src, dst);
}

}  // namespace nst
