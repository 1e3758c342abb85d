// Loss reductions: each returns a scalar tensor on the inputs' device. The
// backward reads the upstream gradient from device memory, so a whole
// optimization step never waits for the host.
#include "core/ops/common.hpp"

namespace nst {

Tensor mse_loss(const Tensor& a_in, const Tensor& b_in) {
    const char* op = "mse_loss";
    ops::same_device(op, {&a_in, &b_in});
    ops::check_same_shape(op, a_in, b_in);
    NST_CHECK(a_in.numel() > 0, op, ": empty inputs");
    Tensor a = a_in.contiguous(), b = b_in.contiguous();
    Tensor out = Tensor::empty({}, a.device());
    backend(a.device()).mse_loss_forward(a.numel(), a.data(), b.data(), out.data());
    record(out, op, {a_in, b_in}, [a, b](const Tensor& g, const ops::Needs& need) {
        Backend& be = backend(g.device());
        ops::Grads grads(2);
        Tensor da = Tensor::empty(a.shape(), g.device());
        be.mse_loss_backward(a.numel(), a.data(), b.data(), g.data(), da.data());
        if (need[0]) grads[0] = da;
        if (need[1]) grads[1] = scale(da, -1.f);
        return grads;
    });
    return out;
}

Tensor sum_squares(const Tensor& x_in) {
    const char* op = "sum_squares";
    ops::same_device(op, {&x_in});
    Tensor x = x_in.contiguous();
    Tensor out = Tensor::empty({}, x.device());
    backend(x.device()).sum_squares_forward(x.numel(), x.data(), out.data());
    record(out, op, {x_in}, [x](const Tensor& g, const ops::Needs&) {
        Tensor dx = Tensor::empty(x.shape(), g.device());
        backend(g.device()).sum_squares_backward(x.numel(), x.data(), g.data(), dx.data());
        return ops::Grads{dx};
    });
    return out;
}

Tensor tv_loss(const Tensor& x_in) {
    const char* op = "tv_loss";
    ops::same_device(op, {&x_in});
    ops::check_dim(op, "input", x_in, 4);
    ops::check_int(op, x_in.numel());
    Tensor x = x_in.contiguous();
    const int64_t NC = x.size(0) * x.size(1);
    const int H = int(x.size(2)), W = int(x.size(3));
    Tensor out = Tensor::empty({}, x.device());
    backend(x.device()).tv_loss_forward(NC, H, W, x.data(), out.data());
    record(out, op, {x_in}, [x, NC, H, W](const Tensor& g, const ops::Needs&) {
        Tensor dx = Tensor::empty(x.shape(), g.device());
        backend(g.device()).tv_loss_backward(NC, H, W, x.data(), g.data(), dx.data());
        return ops::Grads{dx};
    });
    return out;
}

}  // namespace nst
