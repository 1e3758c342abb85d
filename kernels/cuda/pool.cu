// CUDA 2x2 stride-2 pooling, the same rules as kernels/cpu/pool.cpp, from
// the same functions (core/backend_rules.hpp): an odd trailing row or column
// is dropped and gets zero gradient; max-pool backward recomputes the winner
// from x (first_max_of_window, the forward's comparison chain), so no argmax
// tensor is stored; the averages keep the CPU's pairing ((a + b) + (c + d)).
//
// Windows do not overlap, so the backward kernel is a gather: one thread per
// window writes that window's (up to) four dx values, no atomics. The grid
// covers ceil(H/2) x ceil(W/2) windows so the threads of partial windows at
// the odd edge write the zeros there, and dx is fully overwritten in one pass.
// Max and average pooling differ only in what a window's value and its
// gradients are: one kernel each way, a template over the two.
#include "core/backend_rules.hpp"
#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/launch.cuh"

namespace nst {

namespace {

// A window's value, and the gradients g[0..3] of its four pixels (row-major)
// from the window's dy, given the window's top left pixel of x.
struct MaxWindow {
    __device__ static float value(float a, float b, float c, float d) { return max_of_window(a, b, c, d); }
    __device__ static void gradient(const float* x, int W, float dy, float g[4]) {
        const int win = first_max_of_window(x[0], x[1], x[W], x[W + 1]);
#pragma unroll
        for (int p = 0; p < 4; ++p) g[p] = win == p ? dy : 0.0f;  // no dynamic index: g stays in registers
    }
};

struct MeanWindow {
    __device__ static float value(float a, float b, float c, float d) { return mean_of_window(a, b, c, d); }
    __device__ static void gradient(const float*, int, float dy, float g[4]) {
        g[0] = g[1] = g[2] = g[3] = 0.25f * dy;
    }
};

template <class Window>
__global__ void pool_forward_kernel(int64_t NC, int H, int W, const float* __restrict__ x,
                                    float* __restrict__ y) {
    const int Ho = H / 2, Wo = W / 2;
    const int64_t total = NC * Ho * Wo;
    GRID_STRIDE_LOOP(i, total) {
        const auto [plane, oh, ow] = cuda::plane_pixel(i, Ho, Wo);
        const float* r0 = x + plane * H * W + int64_t(2 * oh) * W + 2 * ow;
        const float* r1 = r0 + W;
        y[i] = Window::value(r0[0], r0[1], r1[0], r1[1]);
    }
}

// x is read by max pooling only.
template <class Window>
__global__ void pool_backward_kernel(int64_t NC, int H, int W, const float* __restrict__ x,
                                     const float* __restrict__ dy, float* __restrict__ dx) {
    const int Ho = H / 2, Wo = W / 2;
    const int Hw = (H + 1) / 2, Ww = (W + 1) / 2;  // windows including partial ones
    const int64_t total = NC * Hw * Ww;
    GRID_STRIDE_LOOP(i, total) {
        const auto [plane, k, j] = cuda::plane_pixel(i, Hw, Ww);
        const int64_t base = plane * H * W + int64_t(2 * k) * W + 2 * j;
        float g[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // a partial window's pixels were dropped
        if (k < Ho && j < Wo) Window::gradient(x + base, W, dy[plane * Ho * Wo + int64_t(k) * Wo + j], g);
        const bool has_col = 2 * j + 1 < W, has_row = 2 * k + 1 < H;
        dx[base] = g[0];
        if (has_col) dx[base + 1] = g[1];
        if (has_row) dx[base + W] = g[2];
        if (has_row && has_col) dx[base + W + 1] = g[3];
    }
}

template <class Window>
void launch_forward(int device, const char* op, int64_t NC, int H, int W, const float* x, float* y) {
    check_planes(op, NC, H, W);
    cuda::launch(device, op, NC * (H / 2) * (W / 2), pool_forward_kernel<Window>, NC, H, W, x, y);
}

template <class Window>
void launch_backward(int device, const char* op, int64_t NC, int H, int W, const float* x, const float* dy,
                     float* dx) {
    check_planes(op, NC, H, W);
    const int64_t windows = NC * ((H + 1) / 2) * ((W + 1) / 2);
    cuda::launch(device, op, windows, pool_backward_kernel<Window>, NC, H, W, x, dy, dx);
}

}  // namespace

void CudaBackend::max_pool2x2_forward(int64_t NC, int H, int W, const float* x, float* y) {
    launch_forward<MaxWindow>(index_, "max_pool2x2_forward", NC, H, W, x, y);
}

void CudaBackend::max_pool2x2_backward(int64_t NC, int H, int W, const float* x, const float* dy,
                                       float* dx) {
    launch_backward<MaxWindow>(index_, "max_pool2x2_backward", NC, H, W, x, dy, dx);
}

void CudaBackend::avg_pool2x2_forward(int64_t NC, int H, int W, const float* x, float* y) {
    launch_forward<MeanWindow>(index_, "avg_pool2x2_forward", NC, H, W, x, y);
}

void CudaBackend::avg_pool2x2_backward(int64_t NC, int H, int W, const float* dy, float* dx) {
    launch_backward<MeanWindow>(index_, "avg_pool2x2_backward", NC, H, W, nullptr, dy, dx);
}

}  // namespace nst
