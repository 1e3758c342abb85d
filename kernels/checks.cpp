#include "kernels/checks.hpp"

#include "core/error.hpp"

namespace nst {

void check_count(const char* op, int64_t n) { NST_CHECK(n >= 0, op, ": negative element count ", n); }

void check_channels(const char* op, int N, int C, int64_t HW) {
    NST_CHECK(N >= 0 && C >= 0 && HW >= 0, op, ": bad shape [", N, ", ", C, ", ", HW, "]");
}

void check_planes(const char* op, int64_t NC, int H, int W) {
    NST_CHECK(NC >= 0 && H >= 0 && W >= 0, op, ": bad shape [", NC, ", ", H, ", ", W, "]");
}

void check_gram(const char* op, int N, int C, int64_t HW) {
    check_channels(op, N, C, HW);
    NST_CHECK(HW <= INT32_MAX, op, ": HW ", HW, " too large (at most 2^31 - 1)");
}

void check_norm(const char* op, int N, int C, int64_t HW) {
    NST_CHECK(N >= 0 && C >= 0 && HW > 0, op, ": bad shape [", N, ", ", C, ", ", HW, "] (HW must be positive)");
    // CUDA: one block per row, at most 2^31 - 1 blocks.
    NST_CHECK(int64_t(N) * C <= INT32_MAX, op, ": too many rows N*C = ", int64_t(N) * C, " for shape [", N, ", ",
              C, ", ", HW, "]");
}

void check_pad(const char* op, int64_t NC, int H, int W, int top, int bottom, int left, int right,
               PadMode mode) {
    check_planes(op, NC, H, W);
    NST_CHECK(int64_t(H) + top + bottom >= 0 && int64_t(W) + left + right >= 0, op, ": cropping [", NC, ", ", H,
              ", ", W, "] by top ", top, " bottom ", bottom, " left ", left, " right ", right,
              " leaves a negative size");
    NST_CHECK(int64_t(H) + top + bottom <= INT32_MAX && int64_t(W) + left + right <= INT32_MAX, op,
              ": padded size too large");
    if (mode == PadMode::Reflect)
        NST_CHECK(top >= 0 && bottom >= 0 && top <= H - 1 && bottom <= H - 1 && left >= 0 && right >= 0 &&
                      left <= W - 1 && right <= W - 1,
                  op, ": reflect padding needs each amount in [0, size-1]; got top ", top, " bottom ", bottom,
                  " left ", left, " right ", right, " for [", NC, ", ", H, ", ", W, "]");
}

void check_upsample_pad(const char* op, int64_t NC, int H, int W, int p, PadMode mode) {
    NST_CHECK(p >= 0 && 2 * int64_t(H) + 2 * int64_t(p) <= INT32_MAX && 2 * int64_t(W) + 2 * int64_t(p) <= INT32_MAX,
              op, ": bad padding ", p, " or size [", NC, ", ", H, ", ", W, "]");
    check_pad(op, NC, 2 * H, 2 * W, p, p, p, p, mode);
}

std::string conv_shape_str(const ConvShape& s) {
    return detail::concat("x [", s.N, ", ", s.C, ", ", s.H, ", ", s.W, "] w [", s.K, ", ", s.C, ", ", s.R, ", ", s.S,
                          "] stride ", s.stride, " pad ", s.pad_h, ",", s.pad_w, " -> y [", s.N, ", ", s.K, ", ",
                          s.P, ", ", s.Q, "]");
}

void check_conv(const char* op, const ConvShape& s) {
    NST_CHECK(s.N >= 0 && s.C > 0 && s.H > 0 && s.W > 0 && s.K > 0 && s.R > 0 && s.S > 0 && s.stride > 0 &&
                  s.pad_h >= 0 && s.pad_w >= 0,
              op, ": bad shape ", conv_shape_str(s));
    NST_CHECK(int64_t(s.H) + 2 * int64_t(s.pad_h) >= s.R && int64_t(s.W) + 2 * int64_t(s.pad_w) >= s.S &&
                  s.P == conv_output_size(s.H, s.pad_h, s.R, s.stride) &&
                  s.Q == conv_output_size(s.W, s.pad_w, s.S, s.stride),
              op, ": output size does not match the input, kernel, stride and padding: ", conv_shape_str(s));
    // cuDNN's legacy API and 32-bit BLAS (im2col columns of C*R*S x P*Q) index with 32-bit integers.
    NST_CHECK(s.x_size() <= INT32_MAX && s.y_size() <= INT32_MAX && s.w_size() <= INT32_MAX &&
                  int64_t(s.C) * s.R * s.S <= INT32_MAX && int64_t(s.P) * s.Q <= INT32_MAX &&
                  int64_t(s.H) * s.W <= INT32_MAX,
              op, ": tensors over 2^31 elements are not supported: ", conv_shape_str(s));
}

void check_matmul(int M, int N, int K) {
    NST_CHECK(M >= 0 && N >= 0 && K >= 0, "matmul: negative size M ", M, " N ", N, " K ", K);
}

void check_type16(const char* op, DType type) {
    NST_CHECK(type == DType::F16 || type == DType::BF16, op, ": ", dtype_name(type), " is not a 16-bit type");
}

}  // namespace nst
