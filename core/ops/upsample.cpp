// upsample_nearest2x, upsample_bilinear2x: 2x upsampling of the H, W plane
// of every (n, c) image (bilinear with half-pixel centres, as PyTorch's
// align_corners=False).
#include "core/ops/common.hpp"

namespace nst {
namespace {

template <class Forward, class Backward>
Tensor upsample2x(const char* op, const Tensor& x_in, Forward forward, Backward backward) {
    ops::same_device(op, {&x_in});
    const ops::Plane p = ops::plane(op, x_in);
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

}  // namespace nst
