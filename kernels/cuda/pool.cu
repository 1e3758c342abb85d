// CUDA 2x2 stride-2 pooling, the same rules as kernels/cpu/pool.cpp: an odd
// trailing row or column is dropped and gets zero gradient; max-pool backward
// recomputes the winner from x (first maximum in row-major window order, the
// same comparison chain as the forward), so no argmax tensor is stored.
//
// Windows do not overlap, so every backward kernel is a gather: one thread per
// window writes that window's (up to) four dx values, no atomics. The grid
// covers ceil(H/2) x ceil(W/2) windows so the threads of partial windows at
// the odd edge write the zeros there, and dx is fully overwritten in one pass.
// The averaging sums keep the CPU's pairing ((a + b) + (c + d)) for equal bits.
#include <algorithm>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/launch.cuh"

namespace nst {

namespace {

// Index 0..3 (row-major) of the first maximum of a 2x2 window; NaN never wins
// a comparison, exactly as on the CPU.
__device__ __forceinline__ int first_max(float a, float b, float c, float d) {
    int best = 0;
    float m = a;
    if (b > m) { best = 1; m = b; }
    if (c > m) { best = 2; m = c; }
    if (d > m) { best = 3; }
    return best;
}

__global__ void max_pool_forward_kernel(int64_t NC, int H, int W, const float* __restrict__ x,
                                        float* __restrict__ y) {
    const int Ho = H / 2, Wo = W / 2;
    const int64_t total = NC * Ho * Wo;
    GRID_STRIDE_LOOP(i, total) {
        const int ow = int(i % Wo);
        const int oh = int((i / Wo) % Ho);
        const int64_t plane = i / (int64_t(Wo) * Ho);
        const float* r0 = x + plane * H * W + int64_t(2 * oh) * W + 2 * ow;
        const float* r1 = r0 + W;
        const float v[4] = {r0[0], r0[1], r1[0], r1[1]};
        y[i] = v[first_max(v[0], v[1], v[2], v[3])];
    }
}

__global__ void max_pool_backward_kernel(int64_t NC, int H, int W, const float* __restrict__ x,
                                         const float* __restrict__ dy, float* __restrict__ dx) {
    const int Ho = H / 2, Wo = W / 2;
    const int Hw = (H + 1) / 2, Ww = (W + 1) / 2;  // windows including partial ones
    const int64_t total = NC * Hw * Ww;
    GRID_STRIDE_LOOP(i, total) {
        const int j = int(i % Ww);
        const int k = int((i / Ww) % Hw);
        const int64_t plane = i / (int64_t(Ww) * Hw);
        const int64_t base = plane * H * W + int64_t(2 * k) * W + 2 * j;
        if (k < Ho && j < Wo) {
            const float* xw = x + base;
            const int win = first_max(xw[0], xw[1], xw[W], xw[W + 1]);
            const float g = dy[plane * Ho * Wo + int64_t(k) * Wo + j];
            dx[base] = win == 0 ? g : 0.0f;
            dx[base + 1] = win == 1 ? g : 0.0f;
            dx[base + W] = win == 2 ? g : 0.0f;
            dx[base + W + 1] = win == 3 ? g : 0.0f;
        } else {
            // A partial window at the odd edge: its pixels were dropped.
            const bool has_col = 2 * j + 1 < W, has_row = 2 * k + 1 < H;
            dx[base] = 0.0f;
            if (has_col) dx[base + 1] = 0.0f;
            if (has_row) dx[base + W] = 0.0f;
            if (has_row && has_col) dx[base + W + 1] = 0.0f;
        }
    }
}

__global__ void avg_pool_forward_kernel(int64_t NC, int H, int W, const float* __restrict__ x,
                                        float* __restrict__ y) {
    const int Ho = H / 2, Wo = W / 2;
    const int64_t total = NC * Ho * Wo;
    GRID_STRIDE_LOOP(i, total) {
        const int ow = int(i % Wo);
        const int oh = int((i / Wo) % Ho);
        const int64_t plane = i / (int64_t(Wo) * Ho);
        const float* r0 = x + plane * H * W + int64_t(2 * oh) * W + 2 * ow;
        const float* r1 = r0 + W;
        y[i] = 0.25f * ((r0[0] + r0[1]) + (r1[0] + r1[1]));
    }
}

__global__ void avg_pool_backward_kernel(int64_t NC, int H, int W, const float* __restrict__ dy,
                                         float* __restrict__ dx) {
    const int Ho = H / 2, Wo = W / 2;
    const int Hw = (H + 1) / 2, Ww = (W + 1) / 2;
    const int64_t total = NC * Hw * Ww;
    GRID_STRIDE_LOOP(i, total) {
        const int j = int(i % Ww);
        const int k = int((i / Ww) % Hw);
        const int64_t plane = i / (int64_t(Ww) * Hw);
        const int64_t base = plane * H * W + int64_t(2 * k) * W + 2 * j;
        const bool full = k < Ho && j < Wo;
        const float g = full ? 0.25f * dy[plane * Ho * Wo + int64_t(k) * Wo + j] : 0.0f;
        const bool has_col = 2 * j + 1 < W, has_row = 2 * k + 1 < H;
        dx[base] = g;
        if (has_col) dx[base + 1] = g;
        if (has_row) dx[base + W] = g;
        if (has_row && has_col) dx[base + W + 1] = g;
    }
}

}  // namespace

void CudaBackend::max_pool2x2_forward(int64_t NC, int H, int W, const float* x, float* y) {
    check_planes("max_pool2x2_forward", NC, H, W);
    const int64_t total = NC * (H / 2) * (W / 2);
    cuda::launch(index_, "max_pool2x2_forward", total, max_pool_forward_kernel, NC, H, W, x, y);
}

void CudaBackend::max_pool2x2_backward(int64_t NC, int H, int W, const float* x, const float* dy,
                                       float* dx) {
    check_planes("max_pool2x2_backward", NC, H, W);
    const int64_t windows = NC * ((H + 1) / 2) * ((W + 1) / 2);
    cuda::launch(index_, "max_pool2x2_backward", windows, max_pool_backward_kernel, NC, H, W, x, dy, dx);
}

void CudaBackend::avg_pool2x2_forward(int64_t NC, int H, int W, const float* x, float* y) {
    check_planes("avg_pool2x2_forward", NC, H, W);
    const int64_t total = NC * (H / 2) * (W / 2);
    cuda::launch(index_, "avg_pool2x2_forward", total, avg_pool_forward_kernel, NC, H, W, x, y);
}

void CudaBackend::avg_pool2x2_backward(int64_t NC, int H, int W, const float* dy, float* dx) {
    check_planes("avg_pool2x2_backward", NC, H, W);
    const int64_t windows = NC * ((H + 1) / 2) * ((W + 1) / 2);
    cuda::launch(index_, "avg_pool2x2_backward", windows, avg_pool_backward_kernel, NC, H, W, dy, dx);
}

}  // namespace nst
