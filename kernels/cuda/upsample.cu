// CUDA 2x upsampling, x [NC, H, W] -> y [NC, 2H, 2W], nearest and bilinear,
// matching kernels/cpu/upsample.cpp bit for bit.
//
// Bilinear is PyTorch's align_corners=False: destination d reads source
// (d + 0.5) / 2 - 0.5 clamped at 0, second tap clamped at size-1. Those values
// are exact in float (quarters), so the taps computed here per element equal
// the CPU's tables.
//
// Both backward passes are gathers, one thread per input pixel, no atomics.
// The CPU scatters each output gradient onto its taps in row-major output
// order; the gather visits the same (output, tap) pairs in that same order,
// starting from the same 0, so the float sums round identically. The only
// outputs that can touch input i along an axis are 2i-2 .. 2i+2 (2i-2 only
// through output 0's zero-weight second tap, kept so inf/NaN behave alike).
#include <algorithm>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/launch.cuh"

namespace nst {

namespace {

// Along one axis of input size n, destination d reads tap i0 with weight l0
// and tap i1 with weight l1 (kernels/cpu/upsample.cpp BilinearTaps).
struct Taps {
    int i0, i1;
    float l0, l1;
};

__device__ __forceinline__ Taps bilinear_taps(int d, int n) {
    const float src = fmaxf(__fsub_rn(__fmul_rn(0.5f, float(d) + 0.5f), 0.5f), 0.0f);
    const int lo = int(src);
    Taps t;
    t.i0 = lo;
    t.i1 = lo < n - 1 ? lo + 1 : lo;
    t.l1 = src - float(lo);
    t.l0 = 1.0f - t.l1;
    return t;
}

__global__ void nearest_forward_kernel(int64_t NC, int H, int W, const float* __restrict__ x,
                                       float* __restrict__ y) {
    const int Ho = 2 * H, Wo = 2 * W;
    const int64_t total = NC * Ho * Wo;
    GRID_STRIDE_LOOP(i, total) {
        const auto [plane, oh, ow] = cuda::plane_pixel(i, Ho, Wo);
        y[i] = x[plane * H * W + int64_t(oh / 2) * W + ow / 2];
    }
}

__global__ void nearest_backward_kernel(int64_t NC, int H, int W, const float* __restrict__ dy,
                                        float* __restrict__ dx) {
    const int Wo = 2 * W;
    const int64_t total = NC * H * W;
    GRID_STRIDE_LOOP(i, total) {
        const auto [plane, h, w] = cuda::plane_pixel(i, H, W);
        const float* r0 = dy + plane * 4 * H * W + int64_t(2 * h) * Wo + 2 * w;
        const float* r1 = r0 + Wo;
        dx[i] = (r0[0] + r0[1]) + (r1[0] + r1[1]);
    }
}

__global__ void bilinear_forward_kernel(int64_t NC, int H, int W, const float* __restrict__ x,
                                        float* __restrict__ y) {
    const int Ho = 2 * H, Wo = 2 * W;
    const int64_t total = NC * Ho * Wo;
    GRID_STRIDE_LOOP(i, total) {
        const auto [plane, oh, ow] = cuda::plane_pixel(i, Ho, Wo);
        const Taps r = bilinear_taps(oh, H), c = bilinear_taps(ow, W);
        const float* r0 = x + plane * H * W + int64_t(r.i0) * W;
        const float* r1 = x + plane * H * W + int64_t(r.i1) * W;
        // h0 * (w0 * a + w1 * b) + h1 * (w0 * c + w1 * d), each op rounded.
        const float top = __fadd_rn(__fmul_rn(c.l0, r0[c.i0]), __fmul_rn(c.l1, r0[c.i1]));
        const float bottom = __fadd_rn(__fmul_rn(c.l0, r1[c.i0]), __fmul_rn(c.l1, r1[c.i1]));
        y[i] = __fadd_rn(__fmul_rn(r.l0, top), __fmul_rn(r.l1, bottom));
    }
}

__global__ void bilinear_backward_kernel(int64_t NC, int H, int W, const float* __restrict__ dy,
                                         float* __restrict__ dx) {
    const int Ho = 2 * H, Wo = 2 * W;
    const int64_t total = NC * H * W;
    GRID_STRIDE_LOOP(i, total) {
        const auto [plane, h, w] = cuda::plane_pixel(i, H, W);
        const float* g = dy + plane * Ho * Wo;
        float sum = 0.0f;
        for (int oh = max(0, 2 * h - 2); oh <= min(Ho - 1, 2 * h + 2); ++oh) {
            const Taps r = bilinear_taps(oh, H);
            if (r.i0 != h && r.i1 != h) continue;
            for (int ow = max(0, 2 * w - 2); ow <= min(Wo - 1, 2 * w + 2); ++ow) {
                const Taps c = bilinear_taps(ow, W);
                if (c.i0 != w && c.i1 != w) continue;
                const float v = g[int64_t(oh) * Wo + ow];
                // The CPU's tap order for one output: (i0,j0) (i0,j1) (i1,j0) (i1,j1).
                if (r.i0 == h) {
                    if (c.i0 == w) sum = __fadd_rn(sum, __fmul_rn(__fmul_rn(r.l0, c.l0), v));
                    if (c.i1 == w) sum = __fadd_rn(sum, __fmul_rn(__fmul_rn(r.l0, c.l1), v));
                }
                if (r.i1 == h) {
                    if (c.i0 == w) sum = __fadd_rn(sum, __fmul_rn(__fmul_rn(r.l1, c.l0), v));
                    if (c.i1 == w) sum = __fadd_rn(sum, __fmul_rn(__fmul_rn(r.l1, c.l1), v));
                }
            }
        }
        dx[i] = sum;
    }
}

// check_planes, then `kernel` over `items` threads: the output's elements
// for a forward, the input's for a backward (both are gathers).
void launch_upsample(int device, const char* op, int64_t NC, int H, int W, bool forward,
                     void (*kernel)(int64_t, int, int, const float*, float*), const float* in, float* out) {
    check_planes(op, NC, H, W);
    const int64_t items = NC * H * W * (forward ? 4 : 1);
    cuda::launch(device, op, items, kernel, NC, H, W, in, out);
}

}  // namespace

void CudaBackend::upsample_nearest2x_forward(int64_t NC, int H, int W, const float* x, float* y) {
    launch_upsample(index_, "upsample_nearest2x_forward", NC, H, W, true, nearest_forward_kernel, x, y);
}

void CudaBackend::upsample_nearest2x_backward(int64_t NC, int H, int W, const float* dy, float* dx) {
    launch_upsample(index_, "upsample_nearest2x_backward", NC, H, W, false, nearest_backward_kernel, dy, dx);
}

void CudaBackend::upsample_bilinear2x_forward(int64_t NC, int H, int W, const float* x, float* y) {
    launch_upsample(index_, "upsample_bilinear2x_forward", NC, H, W, true, bilinear_forward_kernel, x, y);
}

void CudaBackend::upsample_bilinear2x_backward(int64_t NC, int H, int W, const float* dy, float* dx) {
    launch_upsample(index_, "upsample_bilinear2x_backward", NC, H, W, false, bilinear_backward_kernel, dy, dx);
}

}  // namespace nst
