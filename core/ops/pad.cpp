// pad (zero or reflect; negative zero padding crops) and upsample_pad:
// nearest 2x upsampling and padding in one pass, so that the upsampled
// tensor, four times its input, is never made (the upsample + conv layers of
// the transformation network).
#include "core/ops/common.hpp"

namespace nst {

Tensor pad(const Tensor& x_in, int top, int bottom, int left, int right, PadMode mode) {
    const char* op = "pad";
    ops::same_device(op, {&x_in});
    const ops::Plane p = ops::plane(op, x_in);
    if (mode == PadMode::Reflect) {
        NST_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0 && top < p.H &&
                      bottom < p.H && left < p.W && right < p.W,
                  op, ": reflect padding (", top, ", ", bottom, ", ", left, ", ", right,
                  ") must be smaller than the input ", shape_str(x_in.shape()));
    }
    const int64_t H2 = int64_t(p.H) + top + bottom, W2 = int64_t(p.W) + left + right;
    NST_CHECK(H2 > 0 && W2 > 0, op, ": cropping (", top, ", ", bottom, ", ", left, ", ", right,
              ") leaves nothing of ", shape_str(x_in.shape()));
    ops::check_int(op, p.NC * H2 * W2);
    Tensor x = x_in.contiguous();
    Tensor y = ops::empty_like(x, {x.size(0), x.size(1), H2, W2});
    if (ops::is16(x)) {
        backend(x.device()).pad_forward16(x.dtype(), p.NC, p.H, p.W, top, bottom, left, right, mode,
                                          x.raw_data(), y.raw_data());
        return y;
    }
    backend(x.device()).pad_forward(p.NC, p.H, p.W, top, bottom, left, right, mode, x.data(), y.data());
    record(y, op, {x_in}, [=, shape = x.shape()](const Tensor& g_in, const ops::Needs&) {
        Tensor g = g_in.contiguous(), dx = Tensor::empty(shape, g.device());
        backend(g.device()).pad_backward(p.NC, p.H, p.W, top, bottom, left, right, mode, g.data(),
                                         dx.data());
        return ops::Grads{dx};
    });
    return y;
}

Tensor upsample_pad(const Tensor& x_in, int p, PadMode mode) {
    const char* op = "upsample_pad";
    ops::same_device(op, {&x_in});
    const ops::Plane s = ops::plane(op, x_in);
    const int64_t H2 = 2 * int64_t(s.H), W2 = 2 * int64_t(s.W), P = p;
    NST_CHECK(p >= 0 && (mode == PadMode::Zero || (P < H2 && P < W2)), op, ": padding ", p,
              " must be ", mode == PadMode::Reflect ? "smaller than the upsampled input of " : "non-negative for ",
              shape_str(x_in.shape()));
    ops::check_int(op, H2 + 2 * P);
    ops::check_int(op, W2 + 2 * P);
    ops::check_int(op, s.NC * (H2 + 2 * P) * (W2 + 2 * P));
    Tensor x = x_in.contiguous();
    Tensor y = ops::empty_like(x, {x.size(0), x.size(1), H2 + 2 * P, W2 + 2 * P});
    if (ops::is16(x)) {
        backend(x.device()).upsample_pad_forward16(x.dtype(), s.NC, s.H, s.W, p, mode, x.raw_data(), y.raw_data());
        return y;
    }
    backend(x.device()).upsample_pad_forward(s.NC, s.H, s.W, p, mode, x.data(), y.data());
    record(y, op, {x_in}, [=, shape = x.shape()](const Tensor& g_in, const ops::Needs&) {
        // The two backwards composed: training keeps the upsampled size briefly.
        Tensor g = g_in.contiguous();
        Tensor up = Tensor::empty({shape[0], shape[1], H2, W2}, g.device());
        Tensor dx = Tensor::empty(shape, g.device());
        Backend& be = backend(g.device());
        be.pad_backward(s.NC, int(H2), int(W2), p, p, p, p, mode, g.data(), up.data());
        be.upsample_nearest2x_backward(s.NC, s.H, s.W, up.data(), dx.data());
        return ops::Grads{dx};
    });
    return y;
}

}  // namespace nst
