// CUDA padding, x [NC, H, W] -> y [NC, H+top+bottom, W+left+right], the same
// index maps as kernels/cpu/pad.cpp: zero mode shifts (negative amounts
// crop), reflect mode mirrors without repeating the edge (numpy 'reflect').
// upsample_pad pads the 2x nearest-upsampled x in the same pass: the map of
// the doubled axis, halved (`shift`).
//
// Forward is one thread per output pixel reading its source; it only moves
// elements, so it is a template over the element type (float, fp16, bf16). Backward is the
// transpose written as a gather, one thread per input pixel: along each axis
// at most three output positions read a given input (the direct one and one
// mirror on each side), found in closed form. The sums run in the CPU's
// order (per reader row, a row sum over reader columns, added onto 0) so both
// backends give the same bits. No atomics.
#include <algorithm>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/storage16.cuh"

namespace nst {

namespace {

// Source index in [0, n) of output position o along an axis padded by
// `before`, or -1 when it reads a zero.
__device__ __forceinline__ int source_index(int o, int n, int before, bool reflect) {
    int i = o - before;
    if (!reflect) return (i >= 0 && i < n) ? i : -1;
    if (i < 0) i = -i;                // amounts <= n-1, so one
    if (i >= n) i = 2 * (n - 1) - i;  // reflection always lands inside
    return i;
}

// The output positions (ascending, at most three) that read source index i
// along an axis of size n padded by `before` and `after`; returns the count.
__device__ __forceinline__ int readers(int i, int n, int before, int after, bool reflect,
                                       int out[3]) {
    const int direct = i + before;
    if (!reflect) {
        out[0] = direct;
        return (direct >= 0 && direct < n + before + after) ? 1 : 0;
    }
    int count = 0;
    if (i >= 1 && i <= before) out[count++] = before - i;                         // top/left mirror
    out[count++] = direct;
    if (i <= n - 2 && i >= n - 1 - after) out[count++] = before + 2 * (n - 1) - i;  // far mirror
    return count;
}

// x [NC, H, W]; the padding applies to x upsampled by 2^shift (0 or 1).
template <class T>
__global__ void pad_forward_kernel(int64_t NC, int H, int W, int shift, int top, int left, int Ho,
                                   int Wo, bool reflect, const T* __restrict__ x,
                                   T* __restrict__ y) {
    const int64_t total = NC * Ho * Wo;
    GRID_STRIDE_LOOP(i, total) {
        const auto [plane, oh, ow] = cuda::plane_pixel(i, Ho, Wo);
        int ih = source_index(oh, H << shift, top, reflect);
        int iw = source_index(ow, W << shift, left, reflect);
        ih = ih < 0 ? -1 : ih >> shift;
        iw = iw < 0 ? -1 : iw >> shift;
        y[i] = (ih >= 0 && iw >= 0) ? x[plane * H * W + int64_t(ih) * W + iw]
                                    : cuda::from_float<T>(0.0f);
    }
}

__global__ void pad_backward_kernel(int64_t NC, int H, int W, int top, int bottom, int left,
                                    int right, bool reflect, const float* __restrict__ dy,
                                    float* __restrict__ dx) {
    const int Ho = H + top + bottom, Wo = W + left + right;
    const int64_t total = NC * H * W;
    GRID_STRIDE_LOOP(i, total) {
        const auto [plane, h, w] = cuda::plane_pixel(i, H, W);
        int rows[3], cols[3];
        const int nrows = readers(h, H, top, bottom, reflect, rows);
        const int ncols = readers(w, W, left, right, reflect, cols);
        const float* g = dy + plane * Ho * Wo;
        float sum = 0.0f;
        for (int r = 0; r < nrows; ++r) {
            const float* row = g + int64_t(rows[r]) * Wo;
            float row_sum = 0.0f;
            for (int c = 0; c < ncols; ++c) row_sum += row[cols[c]];
            sum += row_sum;
        }
        dx[i] = sum;
    }
}

}  // namespace

namespace {

// Every forward (float32 or 16-bit, of x or of x upsampled 2^shift times):
// the amounts apply to the (upsampled) size, which the caller has checked
// (check_pad, check_upsample_pad).
template <class T>
void launch_pad_forward(const char* op, int device, int64_t NC, int H, int W, int shift, int top, int bottom,
                        int left, int right, PadMode mode, const T* x, T* y) {
    const int Ho = (H << shift) + top + bottom, Wo = (W << shift) + left + right;
    const int64_t total = NC * Ho * Wo;
    cuda::launch(device, op, total, pad_forward_kernel<T>, NC, H, W, shift, top, left, Ho, Wo,
                 mode == PadMode::Reflect, x, y);
}

}  // namespace

void CudaBackend::pad_forward(int64_t NC, int H, int W, int top, int bottom, int left, int right,
                              PadMode mode, const float* x, float* y) {
    check_pad("pad_forward", NC, H, W, top, bottom, left, right, mode);
    launch_pad_forward("pad_forward", index_, NC, H, W, 0, top, bottom, left, right, mode, x, y);
}

void CudaBackend::pad_forward16(DType type, int64_t NC, int H, int W, int top, int bottom,
                                int left, int right, PadMode mode, const void* x, void* y) {
    check_type16("pad_forward16", type);
    check_pad("pad_forward16", NC, H, W, top, bottom, left, right, mode);
    cuda::dispatch16("pad_forward16", type, [&](auto t) {
        using T = decltype(t);
        launch_pad_forward("pad_forward16", index_, NC, H, W, 0, top, bottom, left, right, mode,
                           static_cast<const T*>(x), static_cast<T*>(y));
    });
}

void CudaBackend::upsample_pad_forward(int64_t NC, int H, int W, int p, PadMode mode, const float* x,
                                       float* y) {
    check_upsample_pad("upsample_pad_forward", NC, H, W, p, mode);
    launch_pad_forward("upsample_pad_forward", index_, NC, H, W, 1, p, p, p, p, mode, x, y);
}

void CudaBackend::upsample_pad_forward16(DType type, int64_t NC, int H, int W, int p, PadMode mode,
                                         const void* x, void* y) {
    check_type16("upsample_pad_forward16", type);
    check_upsample_pad("upsample_pad_forward16", NC, H, W, p, mode);
    cuda::dispatch16("upsample_pad_forward16", type, [&](auto t) {
        using T = decltype(t);
        launch_pad_forward("upsample_pad_forward16", index_, NC, H, W, 1, p, p, p, p, mode,
                           static_cast<const T*>(x), static_cast<T*>(y));
    });
}

void CudaBackend::pad_backward(int64_t NC, int H, int W, int top, int bottom, int left, int right,
                               PadMode mode, const float* dy, float* dx) {
    check_pad("pad_backward", NC, H, W, top, bottom, left, right, mode);
    const int64_t total = NC * H * W;
    cuda::launch(index_, "pad_backward", total, pad_backward_kernel, NC, H, W, top, bottom, left, right,
                 mode == PadMode::Reflect, dy, dx);
}

}  // namespace nst
