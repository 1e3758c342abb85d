// The op API: every differentiable op of the engine, on tensors of any device.
// Each op checks its inputs (one readable nst::Error naming the op and the
// shapes), runs the kernel of the tensors' backend and, when a gradient is
// wanted, records its backward (core/ops/*.cpp keep each op's forward and
// backward together). Images and feature maps are NCHW float32.
#pragma once
#include <vector>

#include "core/backend.hpp"
#include "core/tensor.hpp"

namespace nst {

// ---- convolution ----------------------------------------------------------------
struct Conv2dOptions {
    int stride = 1;
    int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
    PadMode pad_mode = PadMode::Zero;

    // The same amount on every side.
    static Conv2dOptions padded(int pad, int stride = 1, PadMode mode = PadMode::Zero) {
        return {stride, pad, pad, pad, pad, mode};
    }
};
// x [N, C, H, W], w [K, C, R, S], optional b [K] -> [N, K, P, Q]
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b = Tensor(),
              const Conv2dOptions& options = {});
// relu(conv2d(x, w, b, options)) in one pass over the output (VGG-19's
// layers); float32.
Tensor conv2d_relu(const Tensor& x, const Tensor& w, const Tensor& b = Tensor(),
                   const Conv2dOptions& options = {});

struct ConvTranspose2dOptions {
    int stride = 1;
    // Rows/columns removed from the full output, as in PyTorch's `padding`
    // but per side, so TensorFlow 'SAME' (extra pixel bottom/right) fits.
    int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
    int output_padding_h = 0, output_padding_w = 0;  // extra rows/cols at the bottom/right
};
// The gradient of conv2d with respect to its input. x [N, Cin, H, W],
// w [Cin, Cout, R, S] (PyTorch layout), optional b [Cout] ->
// [N, Cout, (H-1)*stride + R - pad_top - pad_bottom + output_padding_h, ...]
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b = Tensor(),
                        const ConvTranspose2dOptions& options = {});

// ---- elementwise (same shapes, no broadcasting) -------------------------------------
Tensor relu(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor add(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, float alpha);
// x [N, C, H, W] + b[c]
Tensor bias_add(const Tensor& x, const Tensor& b);
// x[:, c] * scale[c] + shift[c]
Tensor channel_affine(const Tensor& x, const std::vector<float>& scale, const std::vector<float>& shift);
// (x[:, c] - mean[c]) / std[c]: ImageNet-style input normalization
Tensor normalize_channels(const Tensor& x, const std::vector<float>& mean,
                          const std::vector<float>& std);

// ---- spatial -----------------------------------------------------------------------
Tensor max_pool2x2(const Tensor& x);  // 2x2, stride 2; odd last row/column dropped
Tensor avg_pool2x2(const Tensor& x);  // 2x2, stride 2; odd last row/column dropped
Tensor upsample_nearest2x(const Tensor& x);
Tensor upsample_bilinear2x(const Tensor& x);  // align_corners=False
// Zero mode accepts negative amounts (crop); reflect needs 0 <= amount < size.
Tensor pad(const Tensor& x, int top, int bottom, int left, int right,
           PadMode mode = PadMode::Zero);
// pad(upsample_nearest2x(x), p, p, p, p, mode) in one pass: the upsampled
// tensor, four times x, is never made (upsample + conv layers).
Tensor upsample_pad(const Tensor& x, int p, PadMode mode);

// ---- matrices ------------------------------------------------------------------------
Tensor matmul(const Tensor& a, const Tensor& b);  // [M, K] x [K, N] -> [M, N]
// Gram matrix of feature maps: F [N, C, H, W] viewed as [N, C, HW] ->
// F F^T / norm, [N, C, C]. Style transfer usually divides by C*H*W or H*W.
Tensor gram(const Tensor& features, float norm);

// ---- normalization ---------------------------------------------------------------------
// Per (n, c) over H, W: gamma[c] * (x - mean) / sqrt(var + eps) + beta[c],
// biased variance. gamma and beta [C] may be undefined (1 and 0).
Tensor instance_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps = 1e-5f);
// relu(instance_norm(x, gamma, beta, eps)) in one pass over the activation.
Tensor instance_norm_relu(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps = 1e-5f);

// ---- losses: scalar tensors (shape []) ------------------------------------------------------
Tensor mse_loss(const Tensor& a, const Tensor& b);  // mean((a - b)^2)
Tensor sum_squares(const Tensor& x);                // sum(x^2)
// Total variation of images [N, C, H, W]: sum of squared differences between
// vertical and horizontal neighbours.
Tensor tv_loss(const Tensor& x);

}  // namespace nst
