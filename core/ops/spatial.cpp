// Pooling, 2x upsampling and padding: ops over the H, W plane of every
// (n, c) image, so the backends see x as [N*C, H, W].
#include "core/ops/common.hpp"

namespace nst {
namespace {

struct Plane {
    int64_t NC;
    int H, W;
};

Plane plane(const char* op, const Tensor& x) {
    ops::check_dim(op, "input", x, 4);
    ops::check_int(op, x.numel());
    return {x.size(0) * x.size(1), int(x.size(2)), int(x.size(3))};
}

}  // namespace

Tensor max_pool2d(const Tensor& x_in) {
    const char* op = "max_pool2d";
    ops::same_device(op, {&x_in});
    const Plane p = plane(op, x_in);
    NST_CHECK(p.H >= 2 && p.W >= 2, op, ": input ", shape_str(x_in.shape()), " is smaller than 2x2");
    Tensor x = x_in.contiguous();
    Tensor y = Tensor::empty({x.size(0), x.size(1), p.H / 2, p.W / 2}, x.device());
    backend(x.device()).max_pool2x2_forward(p.NC, p.H, p.W, x.data(), y.data());
    record(y, op, {x_in}, [p, x](const Tensor& g_in, const ops::Needs&) {
        Tensor g = g_in.contiguous(), dx = Tensor::empty(x.shape(), g.device());
        backend(g.device()).max_pool2x2_backward(p.NC, p.H, p.W, x.data(), g.data(), dx.data());
        return ops::Grads{dx};
    });
    return y;
}

Tensor avg_pool2d(const Tensor& x_in) {
    const char* op = "avg_pool2d";
    ops::same_device(op, {&x_in});
    const Plane p = plane(op, x_in);
    NST_CHECK(p.H >= 2 && p.W >= 2, op, ": input ", shape_str(x_in.shape()), " is smaller than 2x2");
    Tensor x = x_in.contiguous();
    Tensor y = Tensor::empty({x.size(0), x.size(1), p.H / 2, p.W / 2}, x.device());
    backend(x.device()).avg_pool2x2_forward(p.NC, p.H, p.W, x.data(), y.data());
    record(y, op, {x_in}, [p, shape = x.shape()](const Tensor& g_in, const ops::Needs&) {
        Tensor g = g_in.contiguous(), dx = Tensor::empty(shape, g.device());
        backend(g.device()).avg_pool2x2_backward(p.NC, p.H, p.W, g.data(), dx.data());
        return ops::Grads{dx};
    });
    return y;
}

namespace {

template <class Forward, class Backward>
Tensor upsample2x(const char* op, const Tensor& x_in, Forward forward, Backward backward) {
    ops::same_device(op, {&x_in});
    const Plane p = plane(op, x_in);
    ops::check_int(op, x_in.numel() * 4);
    Tensor x = x_in.contiguous();
    Tensor y = Tensor::empty({x.size(0), x.size(1), 2 * int64_t(p.H), 2 * int64_t(p.W)}, x.device());
    (backend(x.device()).*forward)(p.NC, p.H, p.W, x.data(), y.data());
    record(y, op, {x_in}, [p, backward, shape = x.shape()](const Tensor& g_in, const ops::Needs&) {
        Tensor g = g_in.contiguous(), dx = Tensor::empty(shape, g.device());
        (backend(g.device()).*backward)(p.NC, p.H, p.W, g.data(), dx.data());
        return ops::Grads{dx};
    });
    return y;
}

}  // namespace

Tensor upsample_nearest2x(const Tensor& x_in) {
    // 16-bit inference has the fused op; with no padding it is the upsampling.
    if (x_in.defined() && ops::is16(x_in)) return upsample_pad(x_in, 0, PadMode::Zero);
    return upsample2x("upsample_nearest2x", x_in, &Backend::upsample_nearest2x_forward,
                      &Backend::upsample_nearest2x_backward);
}

Tensor upsample_bilinear2x(const Tensor& x) {
    return upsample2x("upsample_bilinear2x", x, &Backend::upsample_bilinear2x_forward,
                      &Backend::upsample_bilinear2x_backward);
}

Tensor pad(const Tensor& x_in, int top, int bottom, int left, int right, PadMode mode) {
    const char* op = "pad";
    ops::same_device(op, {&x_in});
    const Plane p = plane(op, x_in);
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
    const Plane s = plane(op, x_in);
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
