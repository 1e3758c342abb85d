// The backend interface: every op the engine has, as raw-pointer kernels on
// contiguous float32 NCHW buffers that live on the backend's device, plus the
// inference forwards on 16-bit buffers (fp16/bf16, see the end).
//
// Like ggml, one op API (core/ops.hpp) sits above several backends; users see
// tensors and ops, never this. The CPU backend (kernels/cpu) is the reference;
// the CUDA backend (kernels/cuda) must agree with it. Conventions:
//  * Every output buffer is fully overwritten (never accumulated into), so
//    callers never need to zero it first.
//  * Scalar results (losses) are one float in device memory; backward kernels
//    read the upstream scalar gradient from device memory too, so the
//    autograd pass never waits for the host.
//  * Reductions are deterministic: the same bits on every run.
//  * Convolutions take symmetric padding only; the op layer composes
//    asymmetric zero padding and reflect padding from pad/crop.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/device.hpp"
#include "core/dtype.hpp"

namespace nst {

// x [N, C, H, W] * w [K, C, R, S] (+ b [K]) -> y [N, K, P, Q]
struct ConvShape {
    int N, C, H, W;   // input
    int K, R, S;      // output channels, kernel height, kernel width
    int stride;
    int pad_h, pad_w; // zero padding on each side
    int P, Q;         // output height, width
    int64_t x_size() const { return int64_t(N) * C * H * W; }
    int64_t w_size() const { return int64_t(K) * C * R * S; }
    int64_t y_size() const { return int64_t(N) * K * P * Q; }
};

enum class PadMode { Zero, Reflect };

class Backend {
public:
    virtual ~Backend() = default;
    virtual Device device() const = 0;

    // ---- memory ----------------------------------------------------------
    virtual void* allocate(size_t bytes) = 0;
    virtual void deallocate(void* ptr, size_t bytes) = 0;
    virtual void copy_from_host(void* dst, const void* src, size_t bytes) = 0;
    virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;
    virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // same device
    virtual void fill(int64_t n, float value, float* y) = 0;
    // dst[i] = src[offset + sum_d idx_d * strides_d] over the row-major index
    // space `shape` (ndim <= 8): makes a strided view contiguous.
    virtual void strided_copy(int ndim, const int64_t* shape, const int64_t* strides,
                              int64_t offset, const float* src, float* dst) = 0;

    // ---- convolution (cuDNN on CUDA, im2col + GEMM on CPU) ----------------
    virtual void conv2d_forward(const ConvShape& s, const float* x, const float* w,
                                const float* b, float* y) = 0;  // b may be null
    virtual void conv2d_backward_data(const ConvShape& s, const float* dy, const float* w,
                                      float* dx) = 0;
    virtual void conv2d_backward_filter(const ConvShape& s, const float* x, const float* dy,
                                        float* dw) = 0;
    virtual void conv2d_backward_bias(const ConvShape& s, const float* dy, float* db) = 0;

    // ---- GEMM: C[M,N] = alpha * op(A) op(B) + beta * C, row-major ---------
    // op(A) is [M,K] (A stored [K,M] when trans_a), op(B) is [K,N].
    virtual void matmul(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                        const float* A, const float* B, float beta, float* C) = 0;

    // ---- elementwise, n elements ------------------------------------------
    virtual void relu_forward(int64_t n, const float* x, float* y) = 0;
    virtual void relu_backward(int64_t n, const float* y, const float* dy, float* dx) = 0;
    virtual void tanh_forward(int64_t n, const float* x, float* y) = 0;
    virtual void tanh_backward(int64_t n, const float* y, const float* dy, float* dx) = 0;
    virtual void add(int64_t n, const float* a, const float* b, float* y) = 0;
    virtual void mul(int64_t n, const float* a, const float* b, float* y) = 0;
    // y = alpha * x + beta * y  (beta == 0 ignores y's old contents, NaN too)
    virtual void axpby(int64_t n, float alpha, const float* x, float beta, float* y) = 0;

    // ---- per-channel, x [N, C, HW] -----------------------------------------
    // y = x * scale[c] + shift[c]; scale or shift may be null (1 and 0).
    virtual void channel_affine(int N, int C, int64_t HW, const float* x, const float* scale,
                                const float* shift, float* y) = 0;
    // out[c] = sum over n, hw of x  (bias gradient)
    virtual void channel_sum(int N, int C, int64_t HW, const float* x, float* out) = 0;

    // ---- pooling 2x2 stride 2 (odd trailing row/column dropped) -----------
    // x [N*C, H, W] -> y [N*C, H/2, W/2]; NC = N*C
    virtual void max_pool2x2_forward(int64_t NC, int H, int W, const float* x, float* y) = 0;
    // dx gets dy at the first maximum of each window (recomputed from x), 0 elsewhere.
    virtual void max_pool2x2_backward(int64_t NC, int H, int W, const float* x, const float* dy,
                                      float* dx) = 0;
    virtual void avg_pool2x2_forward(int64_t NC, int H, int W, const float* x, float* y) = 0;
    virtual void avg_pool2x2_backward(int64_t NC, int H, int W, const float* dy, float* dx) = 0;

    // ---- 2x upsampling: x [NC, H, W] -> y [NC, 2H, 2W] ---------------------
    virtual void upsample_nearest2x_forward(int64_t NC, int H, int W, const float* x, float* y) = 0;
    virtual void upsample_nearest2x_backward(int64_t NC, int H, int W, const float* dy, float* dx) = 0;
    // bilinear, half-pixel centres (PyTorch align_corners=False)
    virtual void upsample_bilinear2x_forward(int64_t NC, int H, int W, const float* x, float* y) = 0;
    virtual void upsample_bilinear2x_backward(int64_t NC, int H, int W, const float* dy, float* dx) = 0;

    // ---- padding: x [NC, H, W] -> y [NC, H+top+bottom, W+left+right] ------
    // Zero mode accepts negative amounts (cropping). Reflect mode needs each
    // amount in [0, size-1] (edge pixel not repeated, like numpy 'reflect').
    virtual void pad_forward(int64_t NC, int H, int W, int top, int bottom, int left, int right,
                             PadMode mode, const float* x, float* y) = 0;
    // dx [NC, H, W] from dy [NC, H+top+bottom, W+left+right]; a gather, no atomics.
    virtual void pad_backward(int64_t NC, int H, int W, int top, int bottom, int left, int right,
                              PadMode mode, const float* dy, float* dx) = 0;
    // pad(upsample_nearest2x(x)) by p on every side in one pass, without the
    // upsampled intermediate: x [NC, H, W] -> y [NC, 2H+2p, 2W+2p]. (Its
    // gradient is the two backwards composed: training needs no fusion.)
    virtual void upsample_pad_forward(int64_t NC, int H, int W, int p, PadMode mode, const float* x,
                                      float* y) = 0;

    // ---- Gram matrix: F [N, C, HW] -> G [N, C, C] = scale * F F^T ----------
    virtual void gram_forward(int N, int C, int64_t HW, float scale, const float* F, float* G) = 0;
    // dF = scale * (dG + dG^T) F
    virtual void gram_backward(int N, int C, int64_t HW, float scale, const float* F,
                               const float* dG, float* dF) = 0;

    // ---- instance norm over HW per (n, c), biased variance -----------------
    // y = gamma[c] * (x - mean) * rstd + beta[c]; gamma/beta may be null (1, 0).
    // Writes mean[N*C] and rstd[N*C] = 1/sqrt(var + eps) for the backward.
    // relu: y = max(y, 0) in the same pass (NaN passes, as relu_forward).
    virtual void instance_norm_forward(int N, int C, int64_t HW, float eps, const float* x,
                                       const float* gamma, const float* beta, float* y,
                                       float* mean, float* rstd, bool relu) = 0;
    // dgamma/dbeta may be null (not wanted); they are [C], summed over N.
    virtual void instance_norm_backward(int N, int C, int64_t HW, const float* x,
                                        const float* gamma, const float* mean, const float* rstd,
                                        const float* dy, float* dx, float* dgamma,
                                        float* dbeta) = 0;

    // ---- loss reductions: one float out, deterministic ---------------------
    // out = mean((a - b)^2)
    virtual void mse_forward(int64_t n, const float* a, const float* b, float* out) = 0;
    // da = dout * 2 (a - b) / n
    virtual void mse_backward(int64_t n, const float* a, const float* b, const float* dout,
                              float* da) = 0;
    // out = sum(x^2)
    virtual void sum_squares_forward(int64_t n, const float* x, float* out) = 0;
    virtual void sum_squares_backward(int64_t n, const float* x, const float* dout, float* dx) = 0;
    // out = sum (x[h+1,w] - x[h,w])^2 + sum (x[h,w+1] - x[h,w])^2, x [NC, H, W]
    virtual void tv_forward(int64_t NC, int H, int W, const float* x, float* out) = 0;
    virtual void tv_backward(int64_t NC, int H, int W, const float* x, const float* dout,
                             float* dx) = 0;
    // out = sum(a * b): the inner products of L-BFGS.
    virtual void dot(int64_t n, const float* a, const float* b, float* out) = 0;

    // ---- optimizer updates, in place --------------------------------------
    // Adam (Kingma & Ba, PyTorch's formulation): m = b1 m + (1-b1) g,
    // v = b2 v + (1-b2) g^2, param -= lr / bc1 * m / (sqrt(v / bc2) + eps),
    // with the bias corrections bc1 = 1 - b1^t, bc2 = 1 - b2^t from the caller.
    virtual void adam_step(int64_t n, float lr, float beta1, float beta2, float eps, float bc1,
                           float bc2, const float* grad, float* param, float* m, float* v) = 0;

    // ---- 16-bit storage: fp16 or bf16, inference only ----------------------
    // y = x converted, rounding to nearest even; any pair of dtypes.
    virtual void convert(int64_t n, DType from, const void* x, DType to, void* y) = 0;
    // The forwards a transformation network needs, with the float32 kernels'
    // semantics, on buffers of `type` (F16 or BF16; weights, bias, gamma and
    // beta too, but channel_affine16's scale and shift are float32): inputs
    // widened to fp32, fp32 math (convolutions accumulate in fp32), each
    // output rounded once to `type`. The CPU backend does exactly that around
    // its float32 kernels, which makes it the reference; GPUs differ only in
    // summation order.
    // A bias is added to the rounded convolution and rounded again (cuDNN's
    // output is already 16-bit).
    virtual void conv2d_forward16(DType type, const ConvShape& s, const void* x, const void* w,
                                  const void* b, void* y) = 0;  // b may be null
    // conv2d_backward_data as a forward: the transposed convolution.
    virtual void conv_transpose2d_forward16(DType type, const ConvShape& s, const void* x,
                                            const void* w, void* y) = 0;
    virtual void relu_forward16(DType type, int64_t n, const void* x, void* y) = 0;
    virtual void add16(DType type, int64_t n, const void* a, const void* b, void* y) = 0;
    virtual void channel_affine16(DType type, int N, int C, int64_t HW, const void* x,
                                  const float* scale, const float* shift, void* y) = 0;
    virtual void pad_forward16(DType type, int64_t NC, int H, int W, int top, int bottom, int left,
                               int right, PadMode mode, const void* x, void* y) = 0;
    virtual void upsample_pad_forward16(DType type, int64_t NC, int H, int W, int p, PadMode mode,
                                        const void* x, void* y) = 0;
    // Statistics in fp32 from the 16-bit values; no mean/rstd out (no backward).
    virtual void instance_norm_forward16(DType type, int N, int C, int64_t HW, float eps,
                                         const void* x, const void* gamma, const void* beta,
                                         void* y, bool relu) = 0;
};

// The backend for a device; throws nst::Error for a device that is not there
// (for example cuda:0 in a CPU-only build or on a machine without a GPU).
Backend& backend(Device device);

}  // namespace nst
