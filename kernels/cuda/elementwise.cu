// CUDA elementwise and per-channel kernels.
//
// Grid-stride loops (kernels/cuda/launch.cuh). Like the CPU versions every
// kernel is safe in place (element i is read before it is written).
//
// Multiply-adds are written with __fmul_rn/__fadd_rn so nvcc does not fuse
// them into FMAs: the CPU reference (compiled without FMA) rounds the product
// and the sum separately, and this way both backends give the same bits.
//
// relu, add and channel_affine are templates over the element type
// (kernels/cuda/storage16.cuh): the float32 kernels and their fp16/bf16
// twins, the same fp32 arithmetic between the load and the store
// (channel_affine's scale and shift are float32 in both).
//
// bias_add_backward is the bias gradient, a reduction that must give the same bits
// every run: one block per channel, each thread sums a fixed subset in double
// (as the CPU does), then a fixed-shape tree in shared memory. No atomics.
#include <algorithm>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/storage16.cuh"

namespace nst {

namespace {

constexpr int kSumThreads = 512;  // fixed: it decides the order of the sum

template <class T>
__global__ void relu_forward_kernel(int64_t n, const T* x, T* y) {
    // NaN passes, as on the CPU.
    GRID_STRIDE_LOOP(i, n) { y[i] = cuda::to_float(x[i]) < 0.0f ? cuda::from_float<T>(0.0f) : x[i]; }
}

__global__ void relu_backward_kernel(int64_t n, const float* y, const float* dy, float* dx) {
    GRID_STRIDE_LOOP(i, n) { dx[i] = y[i] > 0.0f ? dy[i] : 0.0f; }
}

__global__ void tanh_forward_kernel(int64_t n, const float* x, float* y) {
    GRID_STRIDE_LOOP(i, n) { y[i] = tanhf(x[i]); }
}

// d tanh(x) = 1 - tanh(x)^2, from the forward output y.
__global__ void tanh_backward_kernel(int64_t n, const float* y, const float* dy, float* dx) {
    GRID_STRIDE_LOOP(i, n) {
        const float v = y[i];
        dx[i] = __fmul_rn(dy[i], __fsub_rn(1.0f, __fmul_rn(v, v)));
    }
}

template <class T>
__global__ void add_kernel(int64_t n, const T* a, const T* b, T* y) {
    GRID_STRIDE_LOOP(i, n) { y[i] = cuda::from_float<T>(cuda::to_float(a[i]) + cuda::to_float(b[i])); }
}

__global__ void mul_kernel(int64_t n, const float* a, const float* b, float* y) {
    GRID_STRIDE_LOOP(i, n) { y[i] = a[i] * b[i]; }
}

__global__ void scale_kernel(int64_t n, float alpha, const float* x, float* y) {
    GRID_STRIDE_LOOP(i, n) { y[i] = __fmul_rn(alpha, x[i]); }
}

// Rows are the N*C planes of HW elements: blockIdx.x picks the plane (so the
// channel is known without a per-element division), blockIdx.y and the
// threads stride across the plane.
template <class T>
__global__ void channel_affine_kernel(int C, int64_t HW, const T* x, const float* scale,
                                      const float* shift, T* y) {
    const int64_t plane = blockIdx.x;
    const int c = int(plane % C);
    const float a = scale ? scale[c] : 1.0f;
    const float b = shift ? shift[c] : 0.0f;
    const T* xp = x + plane * HW;
    T* yp = y + plane * HW;
    for (int64_t i = int64_t(blockIdx.y) * blockDim.x + threadIdx.x; i < HW;
         i += int64_t(gridDim.y) * blockDim.x)
        yp[i] = cuda::from_float<T>(__fadd_rn(__fmul_rn(cuda::to_float(xp[i]), a), b));
}

template <class T>
void launch_channel_affine(int device, int N, int C, int64_t HW, const T* x, const float* scale,
                           const float* shift, T* y) {
    check_channels("channel_affine_forward", N, C, HW);
    const int64_t planes = int64_t(N) * C;
    if (planes == 0 || HW == 0) return;
    NST_CHECK(planes <= INT32_MAX, "channel_affine_forward: too many planes N*C = ", planes);
    cuda::Context& ctx = cuda::context(device);
    // Enough blocks per plane to keep the GPU busy when there are few planes.
    const int64_t wanted = std::max<int64_t>(1, int64_t(ctx.sm_count) * 8 / planes);
    const int64_t per_plane = std::min<int64_t>({(HW + cuda::kThreads - 1) / cuda::kThreads, wanted, 65535});
    const dim3 grid{unsigned(planes), unsigned(per_plane)};
    channel_affine_kernel<<<grid, cuda::kThreads, 0, ctx.stream>>>(C, HW, x, scale, shift, y);
    cuda::check_launch("channel_affine_kernel");
}

__global__ void bias_add_backward_kernel(int N, int C, int64_t HW, const float* dy, float* out) {
    __shared__ double partial[kSumThreads];
    const int c = blockIdx.x;
    double sum = 0.0;
    for (int n = 0; n < N; ++n) {
        const float* row = dy + (int64_t(n) * C + c) * HW;
        for (int64_t i = threadIdx.x; i < HW; i += kSumThreads) sum += row[i];
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int width = kSumThreads / 2; width > 0; width /= 2) {
        if (int(threadIdx.x) < width) partial[threadIdx.x] += partial[threadIdx.x + width];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[c] = float(partial[0]);
}

}  // namespace

void CudaBackend::relu_forward(int64_t n, const float* x, float* y) {
    check_count("relu_forward", n);
    cuda::launch(index_, "relu_forward", n, relu_forward_kernel<float>, n, x, y);
}

void CudaBackend::relu_forward16(DType type, int64_t n, const void* x, void* y) {
    check_type16("relu_forward16", type);
    check_count("relu_forward16", n);
    cuda::dispatch16("relu_forward16", type, [&](auto t) {
        using T = decltype(t);
        cuda::launch(index_, "relu_forward16", n, relu_forward_kernel<T>, n, static_cast<const T*>(x),
                     static_cast<T*>(y));
    });
}

void CudaBackend::relu_backward(int64_t n, const float* y, const float* dy, float* dx) {
    check_count("relu_backward", n);
    cuda::launch(index_, "relu_backward", n, relu_backward_kernel, n, y, dy, dx);
}

void CudaBackend::tanh_forward(int64_t n, const float* x, float* y) {
    check_count("tanh_forward", n);
    cuda::launch(index_, "tanh_forward", n, tanh_forward_kernel, n, x, y);
}

void CudaBackend::tanh_backward(int64_t n, const float* y, const float* dy, float* dx) {
    check_count("tanh_backward", n);
    cuda::launch(index_, "tanh_backward", n, tanh_backward_kernel, n, y, dy, dx);
}

void CudaBackend::add_forward(int64_t n, const float* a, const float* b, float* y) {
    check_count("add_forward", n);
    cuda::launch(index_, "add_forward", n, add_kernel<float>, n, a, b, y);
}

void CudaBackend::add_forward16(DType type, int64_t n, const void* a, const void* b, void* y) {
    check_type16("add_forward16", type);
    check_count("add_forward16", n);
    cuda::dispatch16("add_forward16", type, [&](auto t) {
        using T = decltype(t);
        cuda::launch(index_, "add_forward16", n, add_kernel<T>, n, static_cast<const T*>(a),
                     static_cast<const T*>(b), static_cast<T*>(y));
    });
}

void CudaBackend::mul_forward(int64_t n, const float* a, const float* b, float* y) {
    check_count("mul_forward", n);
    cuda::launch(index_, "mul_forward", n, mul_kernel, n, a, b, y);
}

void CudaBackend::scale_forward(int64_t n, float alpha, const float* x, float* y) {
    check_count("scale_forward", n);
    cuda::launch(index_, "scale_forward", n, scale_kernel, n, alpha, x, y);
}

void CudaBackend::channel_affine_forward(int N, int C, int64_t HW, const float* x, const float* scale,
                                         const float* shift, float* y) {
    launch_channel_affine(index_, N, C, HW, x, scale, shift, y);
}

void CudaBackend::channel_affine_forward16(DType type, int N, int C, int64_t HW, const void* x,
                                           const float* scale, const float* shift, void* y) {
    check_type16("channel_affine_forward16", type);
    cuda::dispatch16("channel_affine_forward16", type, [&](auto t) {
        using T = decltype(t);
        launch_channel_affine(index_, N, C, HW, static_cast<const T*>(x), scale, shift,
                              static_cast<T*>(y));
    });
}

void CudaBackend::bias_add_backward(int N, int C, int64_t HW, const float* dy, float* out) {
    check_channels("bias_add_backward", N, C, HW);
    if (C == 0) return;
    cuda::Context& ctx = cuda::context(index_);
    bias_add_backward_kernel<<<C, kSumThreads, 0, ctx.stream>>>(N, C, HW, dy, out);
    cuda::check_launch("bias_add_backward");
}

}  // namespace nst
