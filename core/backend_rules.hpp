// The rules of the backend contract that more than one place computes,
// written once: the CPU backend, the CUDA kernels and the op layer include
// this header, so that they cannot disagree in a size, a tie or a rounding.
// The functions are inline host code in a .cpp file and host and device
// code under nvcc (NST_HOST_DEVICE). Their arithmetic is what the CPU
// reference has always done, operation for operation; none multiplies and
// adds in one expression, so no compiler can fuse the two into an FMA with
// another rounding (the CPU build has -ffp-contract=off, nvcc does not).
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define NST_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define NST_HOST_DEVICE inline
#endif

namespace nst {

// The output size of a convolution along one axis: `in` pixels with `pad`
// zeros on each side, a kernel of `kernel` taps, `stride` (floor, as
// PyTorch and cuDNN). Meaningful when in + 2 pad >= kernel.
NST_HOST_DEVICE int64_t conv_output_size(int64_t in, int64_t pad, int64_t kernel, int64_t stride) {
    return (in + 2 * pad - kernel) / stride + 1;
}

// Max pooling's tie rule: the index 0..3 (row-major: top left, top right,
// bottom left, bottom right) of the first maximum of a 2x2 window. NaN
// never wins a comparison. The backward recomputes it from x, so the
// gradient goes where the forward's value came from.
NST_HOST_DEVICE int first_max_of_window(float a, float b, float c, float d) {
    int best = 0;
    float m = a;
    if (b > m) { best = 1; m = b; }
    if (c > m) { best = 2; m = c; }
    if (d > m) { best = 3; }
    return best;
}

// The maximum of a 2x2 window: the value at first_max_of_window.
NST_HOST_DEVICE float max_of_window(float a, float b, float c, float d) {
    const int k = first_max_of_window(a, b, c, d);
    return k == 0 ? a : k == 1 ? b : k == 2 ? c : d;
}

// Average pooling's sum: the rows' pairs first, ((a + b) + (c + d)) / 4.
NST_HOST_DEVICE float mean_of_window(float a, float b, float c, float d) {
    return 0.25f * ((a + b) + (c + d));
}

// The total-variation gradient's stencil at column w of row h of an H x W
// plane, `row` pointing at the row's first pixel: the sum over the (up to
// four) neighbours there are of (x - neighbour), added up, down, left,
// right. tv_loss_backward multiplies it by 2 dout.
NST_HOST_DEVICE float tv_stencil(const float* row, int h, int H, int w, int W) {
    const float v = row[w];
    float g = 0.0f;
    if (h > 0) g += v - row[w - W];
    if (h + 1 < H) g += v - row[w + W];
    if (w > 0) g += v - row[w - 1];
    if (w + 1 < W) g += v - row[w + 1];
    return g;
}

// A GEMM's beta * C where the product adds nothing (K == 0): beta == 0
// clears C, so a NaN in an uninitialised C never leaks through.
NST_HOST_DEVICE float beta_times(float beta, float c) { return beta == 0.0f ? 0.0f : beta * c; }

}  // namespace nst
