// The contract checks of the backend interface (core/backend_methods.inc):
// one set, called by every backend's methods, so that the CPU reference and
// the CUDA backend refuse exactly the same arguments with the same message.
// Each throws nst::Error naming the method and the shape. The 2^31 - 1 bounds
// are the kernels' own (32-bit BLAS and cuDNN indices, CUDA grid sizes); the
// op layer refuses larger tensors before they get here.
#pragma once
#include <cstdint>
#include <string>

#include "core/backend.hpp"

namespace nst {

void check_count(const char* op, int64_t n);                         // n >= 0
void check_channels(const char* op, int N, int C, int64_t HW);        // [N, C, HW], none negative
void check_planes(const char* op, int64_t NC, int H, int W);          // [NC, H, W], none negative
void check_gram(const char* op, int N, int C, int64_t HW);            // check_channels, HW < 2^31
void check_norm(const char* op, int N, int C, int64_t HW);            // HW > 0, N * C < 2^31
// The padded size is not negative (zero mode crops) and below 2^31 per side;
// reflect mode needs each amount in [0, size - 1].
void check_pad(const char* op, int64_t NC, int H, int W, int top, int bottom, int left, int right,
               PadMode mode);
// check_pad of x [NC, H, W] upsampled 2x, padded by p on every side; the
// upsampled size must itself fit.
void check_upsample_pad(const char* op, int64_t NC, int H, int W, int p, PadMode mode);
// Positive sizes, P and Q as the input, kernel, stride and padding give
// them, and every tensor under 2^31 elements.
void check_conv(const char* op, const ConvShape& s);
void check_matmul(int M, int N, int K);                               // none negative
void check_type16(const char* op, DType type);                       // F16 or BF16

// "x [N, C, H, W] w [K, C, R, S] stride s pad h,w -> y [N, K, P, Q]", for messages.
std::string conv_shape_str(const ConvShape& s);

}  // namespace nst
