// CPU convolution: im2col + OpenBLAS sgemm, one image of the batch at a time.
//
// The column matrix of one image is [C*R*S, P*Q], which for a 3x3 conv on a
// large feature map is hundreds of MiB. So each image is processed in bands of
// whole output rows, sized to keep the column buffer under kColumnBudget
// floats (8 MiB, cache-friendly); the GEMM stays hundreds to thousands of
// columns wide, which keeps OpenBLAS near peak. A 1x1, stride 1, unpadded conv needs no im2col at
// all: the image itself is the column matrix.
//
//   forward          y[n]  (K x PQ)  = W (K x CRS) * col (CRS x PQ) + b
//   backward_data    dcol (CRS x PQ) = W^T * dy[n], then col2im sums into dx[n]
//   backward_filter  dW   (K x CRS) += dy[n] * col^T, over every image
#include <cblas.h>

#include <algorithm>
#include <vector>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/storage16.hpp"

namespace nst {

namespace {

constexpr int64_t kColumnBudget = int64_t(1) << 21;  // floats (8 MiB)

bool is_pointwise(const ConvShape& s) {
    return s.R == 1 && s.S == 1 && s.stride == 1 && s.pad_h == 0 && s.pad_w == 0;
}

// Output rows per band: as many as fit the column budget, at least one.
int band_rows(const ConvShape& s) {
    const int64_t floats_per_row = int64_t(s.C) * s.R * s.S * s.Q;
    return int(std::clamp<int64_t>(kColumnBudget / floats_per_row, 1, s.P));
}

// The output columns q whose input column q * stride + offset lies in [0, W).
void valid_range(int offset, int stride, int W, int Q, int& q_begin, int& q_end) {
    q_begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    q_end = offset > W - 1 ? 0 : std::min(Q, (W - 1 - offset) / stride + 1);
    q_begin = std::min(q_begin, q_end);
}

// col [C*R*S, (p_end-p_begin)*Q] from one image x [C, H, W], output rows
// [p_begin, p_end); out-of-image taps are zero.
void im2col(const ConvShape& s, const float* x, int p_begin, int p_end, float* col) {
    const int64_t band_cols = int64_t(p_end - p_begin) * s.Q;
    for (int c = 0; c < s.C; ++c) {
        const float* xc = x + int64_t(c) * s.H * s.W;
        for (int r = 0; r < s.R; ++r) {
            for (int t = 0; t < s.S; ++t) {
                float* row = col + (int64_t(c) * s.R * s.S + r * s.S + t) * band_cols;
                int q_begin, q_end;
                valid_range(t - s.pad_w, s.stride, s.W, s.Q, q_begin, q_end);
                for (int p = p_begin; p < p_end; ++p) {
                    float* out = row + int64_t(p - p_begin) * s.Q;
                    const int ih = p * s.stride - s.pad_h + r;
                    if (ih < 0 || ih >= s.H) {
                        std::fill(out, out + s.Q, 0.0f);
                        continue;
                    }
                    const float* in = xc + int64_t(ih) * s.W;
                    std::fill(out, out + q_begin, 0.0f);
                    const int offset = t - s.pad_w;
                    if (s.stride == 1 && q_begin < q_end) {
                        std::copy(in + q_begin + offset, in + q_end + offset, out + q_begin);
                    } else {
                        for (int q = q_begin; q < q_end; ++q) out[q] = in[q * s.stride + offset];
                    }
                    std::fill(out + q_end, out + s.Q, 0.0f);
                }
            }
        }
    }
}

// The adjoint of im2col: adds every column entry back onto its input pixel.
void col2im_add(const ConvShape& s, const float* col, int p_begin, int p_end, float* x) {
    const int64_t band_cols = int64_t(p_end - p_begin) * s.Q;
    for (int c = 0; c < s.C; ++c) {
        float* xc = x + int64_t(c) * s.H * s.W;
        for (int r = 0; r < s.R; ++r) {
            for (int t = 0; t < s.S; ++t) {
                const float* row = col + (int64_t(c) * s.R * s.S + r * s.S + t) * band_cols;
                int q_begin, q_end;
                valid_range(t - s.pad_w, s.stride, s.W, s.Q, q_begin, q_end);
                for (int p = p_begin; p < p_end; ++p) {
                    const int ih = p * s.stride - s.pad_h + r;
                    if (ih < 0 || ih >= s.H) continue;
                    const float* in = row + int64_t(p - p_begin) * s.Q;
                    float* out = xc + int64_t(ih) * s.W;
                    const int offset = t - s.pad_w;
                    if (s.stride == 1) {
                        for (int q = q_begin; q < q_end; ++q) out[q + offset] += in[q];
                    } else {
                        for (int q = q_begin; q < q_end; ++q) out[q * s.stride + offset] += in[q];
                    }
                }
            }
        }
    }
}

}  // namespace

void CpuBackend::conv2d_forward(const ConvShape& s, const float* x, const float* w,
                                const float* b, float* y) {
    check_conv("conv2d_forward", s);
    const int CRS = s.C * s.R * s.S;
    const int PQ = s.P * s.Q;
    const int64_t image_in = int64_t(s.C) * s.H * s.W;
    const int64_t image_out = int64_t(s.K) * PQ;
    const int rows = is_pointwise(s) ? s.P : band_rows(s);
    std::vector<float> col(is_pointwise(s) ? 0 : size_t(CRS) * rows * s.Q);

    for (int n = 0; n < s.N; ++n) {
        const float* xn = x + n * image_in;
        float* yn = y + n * image_out;
        // Start from the bias (or zero) and let the GEMM add onto it.
        for (int k = 0; k < s.K; ++k)
            std::fill(yn + int64_t(k) * PQ, yn + int64_t(k + 1) * PQ, b ? b[k] : 0.0f);
        for (int p0 = 0; p0 < s.P; p0 += rows) {
            const int p1 = std::min(s.P, p0 + rows);
            const int cols = (p1 - p0) * s.Q;
            const float* B = xn;
            if (!is_pointwise(s)) {
                im2col(s, xn, p0, p1, col.data());
                B = col.data();
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.K, cols, CRS, 1.0f, w, CRS,
                        B, cols, 1.0f, yn + int64_t(p0) * s.Q, PQ);
        }
    }
}

void CpuBackend::conv2d_backward_data(const ConvShape& s, const float* dy, const float* w,
                                      float* dx) {
    check_conv("conv2d_backward_data", s);
    const int CRS = s.C * s.R * s.S;
    const int PQ = s.P * s.Q;
    const int64_t image_in = int64_t(s.C) * s.H * s.W;
    const int64_t image_out = int64_t(s.K) * PQ;

    if (is_pointwise(s)) {
        for (int n = 0; n < s.N; ++n)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s.C, PQ, s.K, 1.0f, w, CRS,
                        dy + n * image_out, PQ, 0.0f, dx + n * image_in, PQ);
        return;
    }
    const int rows = band_rows(s);
    std::vector<float> col(size_t(CRS) * rows * s.Q);
    for (int n = 0; n < s.N; ++n) {
        float* dxn = dx + n * image_in;
        std::fill(dxn, dxn + image_in, 0.0f);
        for (int p0 = 0; p0 < s.P; p0 += rows) {
            const int p1 = std::min(s.P, p0 + rows);
            const int cols = (p1 - p0) * s.Q;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CRS, cols, s.K, 1.0f, w, CRS,
                        dy + n * image_out + int64_t(p0) * s.Q, PQ, 0.0f, col.data(), cols);
            col2im_add(s, col.data(), p0, p1, dxn);
        }
    }
}

void CpuBackend::conv2d_backward_filter(const ConvShape& s, const float* x, const float* dy,
                                        float* dw) {
    check_conv("conv2d_backward_filter", s);
    const int CRS = s.C * s.R * s.S;
    const int PQ = s.P * s.Q;
    const int64_t image_in = int64_t(s.C) * s.H * s.W;
    const int64_t image_out = int64_t(s.K) * PQ;
    const int rows = is_pointwise(s) ? s.P : band_rows(s);
    std::vector<float> col(is_pointwise(s) ? 0 : size_t(CRS) * rows * s.Q);

    std::fill(dw, dw + s.w_size(), 0.0f);
    for (int n = 0; n < s.N; ++n) {
        const float* xn = x + n * image_in;
        for (int p0 = 0; p0 < s.P; p0 += rows) {
            const int p1 = std::min(s.P, p0 + rows);
            const int cols = (p1 - p0) * s.Q;
            const float* B = xn;
            int ldb = PQ;
            if (!is_pointwise(s)) {
                im2col(s, xn, p0, p1, col.data());
                B = col.data();
                ldb = cols;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.K, CRS, cols, 1.0f,
                        dy + n * image_out + int64_t(p0) * s.Q, PQ, B, ldb, 1.0f, dw, CRS);
        }
    }
}

void CpuBackend::conv2d_backward_bias(const ConvShape& s, const float* dy, float* db) {
    check_conv("conv2d_backward_bias", s);
    bias_add_backward(s.N, s.K, int64_t(s.P) * s.Q, dy, db);
}

void CpuBackend::conv2d_forward16(DType type, const ConvShape& s, const void* x, const void* w,
                                  const void* b, void* y) {
    check_type16("conv2d_forward16", type);
    check_conv("conv2d_forward16", s);
    std::vector<float> out(size_t(s.y_size()));
    conv2d_forward(s, cpu16::widen(type, x, s.x_size()).data(), cpu16::widen(type, w, s.w_size()).data(), nullptr,
                   out.data());
    cpu16::narrow(type, out, y);
    if (b)
        channel_affine_forward16(type, s.N, s.K, int64_t(s.P) * s.Q, y, nullptr, cpu16::widen(type, b, s.K).data(),
                                 y);
}

void CpuBackend::conv_transpose2d_forward16(DType type, const ConvShape& s, const void* x,
                                            const void* w, void* y) {
    check_type16("conv_transpose2d_forward16", type);
    check_conv("conv_transpose2d_forward16", s);
    std::vector<float> out(size_t(s.x_size()));
    conv2d_backward_data(s, cpu16::widen(type, x, s.y_size()).data(), cpu16::widen(type, w, s.w_size()).data(),
                         out.data());
    cpu16::narrow(type, out, y);
}

}  // namespace nst
