// max_pool2x2, avg_pool2x2: 2x2 windows, stride 2, over the H, W plane of
// every (n, c) image; an odd last row or column is dropped. Max pooling's
// backward recomputes the winner from x, so no argmax tensor is kept.
#include "core/ops/common.hpp"

namespace nst {

Tensor max_pool2x2(const Tensor& x_in) {
    const char* op = "max_pool2x2";
    ops::same_device(op, {&x_in});
    const ops::Plane p = ops::plane(op, x_in);
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

Tensor avg_pool2x2(const Tensor& x_in) {
    const char* op = "avg_pool2x2";
    ops::same_device(op, {&x_in});
    const ops::Plane p = ops::plane(op, x_in);
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

}  // namespace nst
