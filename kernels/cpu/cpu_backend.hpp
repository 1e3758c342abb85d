// The CPU reference backend. Each method is defined in the kernels/cpu file
// of its op family; plain loops, GEMMs through OpenBLAS.
#pragma once
#include "core/backend.hpp"

namespace nst {

class CpuBackend final : public Backend {
public:
    Device device() const override;

    // ---- memory ----------------------------------------------------------
    void* allocate(size_t bytes) override;
    void deallocate(void* ptr, size_t bytes) override;
    void copy_from_host(void* dst, const void* src, size_t bytes) override;
    void copy_to_host(void* dst, const void* src, size_t bytes) override;
    void copy(void* dst, const void* src, size_t bytes) override;
    void fill(int64_t n, float value, float* y) override;
    void strided_copy(int ndim, const int64_t* shape, const int64_t* strides,
                              int64_t offset, const float* src, float* dst) override;

    // ---- convolution (cuDNN on CUDA, im2col + GEMM on CPU) ----------------
    void conv2d_forward(const ConvShape& s, const float* x, const float* w,
                                const float* b, float* y) override;
    void conv2d_backward_data(const ConvShape& s, const float* dy, const float* w,
                                      float* dx) override;
    void conv2d_backward_filter(const ConvShape& s, const float* x, const float* dy,
                                        float* dw) override;
    void conv2d_backward_bias(const ConvShape& s, const float* dy, float* db) override;

    // ---- GEMM: C[M,N] = alpha * op(A) op(B) + beta * C, row-major ---------
    void matmul(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                        const float* A, const float* B, float beta, float* C) override;

    // ---- elementwise, n elements ------------------------------------------
    void relu_forward(int64_t n, const float* x, float* y) override;
    void relu_backward(int64_t n, const float* y, const float* dy, float* dx) override;
    void tanh_forward(int64_t n, const float* x, float* y) override;
    void tanh_backward(int64_t n, const float* y, const float* dy, float* dx) override;
    void add(int64_t n, const float* a, const float* b, float* y) override;
    void mul(int64_t n, const float* a, const float* b, float* y) override;
    void axpby(int64_t n, float alpha, const float* x, float beta, float* y) override;

    // ---- per-channel, x [N, C, HW] -----------------------------------------
    void channel_affine(int N, int C, int64_t HW, const float* x, const float* scale,
                                const float* shift, float* y) override;
    void channel_sum(int N, int C, int64_t HW, const float* x, float* out) override;

    // ---- pooling 2x2 stride 2 (odd trailing row/column dropped) -----------
    void max_pool2x2_forward(int64_t NC, int H, int W, const float* x, float* y) override;
    void max_pool2x2_backward(int64_t NC, int H, int W, const float* x, const float* dy,
                                      float* dx) override;
    void avg_pool2x2_forward(int64_t NC, int H, int W, const float* x, float* y) override;
    void avg_pool2x2_backward(int64_t NC, int H, int W, const float* dy, float* dx) override;

    // ---- 2x upsampling: x [NC, H, W] -> y [NC, 2H, 2W] ---------------------
    void upsample_nearest2x_forward(int64_t NC, int H, int W, const float* x, float* y) override;
    void upsample_nearest2x_backward(int64_t NC, int H, int W, const float* dy, float* dx) override;
    void upsample_bilinear2x_forward(int64_t NC, int H, int W, const float* x, float* y) override;
    void upsample_bilinear2x_backward(int64_t NC, int H, int W, const float* dy, float* dx) override;

    // ---- padding: x [NC, H, W] -> y [NC, H+top+bottom, W+left+right] ------
    void pad_forward(int64_t NC, int H, int W, int top, int bottom, int left, int right,
                             PadMode mode, const float* x, float* y) override;
    void pad_backward(int64_t NC, int H, int W, int top, int bottom, int left, int right,
                              PadMode mode, const float* dy, float* dx) override;
    void upsample_pad_forward(int64_t NC, int H, int W, int p, PadMode mode, const float* x,
                              float* y) override;

    // ---- Gram matrix: F [N, C, HW] -> G [N, C, C] = scale * F F^T ----------
    void gram_forward(int N, int C, int64_t HW, float scale, const float* F, float* G) override;
    void gram_backward(int N, int C, int64_t HW, float scale, const float* F,
                               const float* dG, float* dF) override;

    // ---- instance norm over HW per (n, c), biased variance -----------------
    void instance_norm_forward(int N, int C, int64_t HW, float eps, const float* x,
                                       const float* gamma, const float* beta, float* y,
                                       float* mean, float* rstd, bool relu) override;
    void instance_norm_backward(int N, int C, int64_t HW, const float* x,
                                        const float* gamma, const float* mean, const float* rstd,
                                        const float* dy, float* dx, float* dgamma,
                                        float* dbeta) override;

    // ---- loss reductions: one float out, deterministic ---------------------
    void mse_forward(int64_t n, const float* a, const float* b, float* out) override;
    void mse_backward(int64_t n, const float* a, const float* b, const float* dout,
                              float* da) override;
    void sum_squares_forward(int64_t n, const float* x, float* out) override;
    void sum_squares_backward(int64_t n, const float* x, const float* dout, float* dx) override;
    void tv_forward(int64_t NC, int H, int W, const float* x, float* out) override;
    void tv_backward(int64_t NC, int H, int W, const float* x, const float* dout,
                             float* dx) override;
    void dot(int64_t n, const float* a, const float* b, float* out) override;

    // ---- optimizer updates, in place --------------------------------------
    void adam_step(int64_t n, float lr, float beta1, float beta2, float eps, float bc1, float bc2,
                   const float* grad, float* param, float* m, float* v) override;

    // ---- 16-bit storage: fp16 or bf16, inference only ----------------------
    void convert(int64_t n, DType from, const void* x, DType to, void* y) override;
    void conv2d_forward16(DType type, const ConvShape& s, const void* x, const void* w,
                          const void* b, void* y) override;
    void conv_transpose2d_forward16(DType type, const ConvShape& s, const void* x, const void* w,
                                    void* y) override;
    void relu_forward16(DType type, int64_t n, const void* x, void* y) override;
    void add16(DType type, int64_t n, const void* a, const void* b, void* y) override;
    void channel_affine16(DType type, int N, int C, int64_t HW, const void* x, const float* scale,
                          const float* shift, void* y) override;
    void pad_forward16(DType type, int64_t NC, int H, int W, int top, int bottom, int left,
                       int right, PadMode mode, const void* x, void* y) override;
    void upsample_pad_forward16(DType type, int64_t NC, int H, int W, int p, PadMode mode,
                                const void* x, void* y) override;
    void instance_norm_forward16(DType type, int N, int C, int64_t HW, float eps, const void* x,
                                 const void* gamma, const void* beta, void* y, bool relu) override;
};

}  // namespace nst
