// Instance normalization (Ulyanov et al.), the normalization of style
// transfer networks. The forward keeps the per-(n, c) mean and 1/std so the
// backward does not recompute the statistics. instance_norm_relu is the norm
// and the ReLU that follows it in one pass over the activation; its backward
// masks the gradient with the output (as relu's does) and goes on as the
// norm's.
#include "core/ops/common.hpp"

namespace nst {
namespace {

Tensor norm(const char* op, const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in, float eps,
            bool relu) {
    ops::same_device(op, {&x_in, &gamma_in, &beta_in});
    ops::check_dim(op, "input", x_in, 4);
    ops::check_int(op, x_in.numel());
    const int N = int(x_in.size(0)), C = int(x_in.size(1));
    const int64_t HW = x_in.size(2) * x_in.size(3);
    NST_CHECK(HW > 0, op, ": empty input ", shape_str(x_in.shape()));
    NST_CHECK(eps >= 0, op, ": eps must not be negative");
    for (const Tensor* t : {&gamma_in, &beta_in})
        NST_CHECK(!t->defined() || t->shape() == Shape{C}, op, ": gamma/beta ",
                  shape_str(t->shape()), " do not match ", C, " channels of ",
                  shape_str(x_in.shape()));
    Tensor x = x_in.contiguous();
    Tensor gamma = gamma_in.defined() ? gamma_in.contiguous() : gamma_in;
    Tensor beta = beta_in.defined() ? beta_in.contiguous() : beta_in;
    Tensor y = ops::empty_like(x, x.shape());
    if (ops::is16(x)) {
        backend(x.device()).instance_norm_forward16(x.dtype(), N, C, HW, eps, x.raw_data(),
                                                    ops::raw_or_null(gamma), ops::raw_or_null(beta),
                                                    y.raw_data(), relu);
        return y;
    }
    Tensor mean = Tensor::empty({N, C}, x.device()), rstd = Tensor::empty({N, C}, x.device());
    backend(x.device()).instance_norm_forward(N, C, HW, eps, x.data(),
                                              gamma.defined() ? gamma.data() : nullptr,
                                              beta.defined() ? beta.data() : nullptr, y.data(),
                                              mean.data(), rstd.data(), relu);
    // With relu the output is kept for the mask: it is the next layer's
    // input, saved there anyway.
    const Tensor y_saved = relu ? y.detach() : Tensor();
    record(y, op, {x_in, gamma_in, beta_in},
           [=](const Tensor& g_in, const ops::Needs& need) {
               Tensor g = g_in.contiguous();
               Backend& be = backend(g.device());
               if (relu) {
                   Tensor masked = Tensor::empty(g.shape(), g.device());
                   be.relu_backward(g.numel(), y_saved.data(), g.data(), masked.data());
                   g = masked;
               }
               ops::Grads grads(3);
               // dx is always computed: the kernel forms it with the row sums
               // that dgamma/dbeta need anyway.
               grads[0] = Tensor::empty(x.shape(), g.device());
               if (need[1]) grads[1] = Tensor::empty({C}, g.device());
               if (need[2]) grads[2] = Tensor::empty({C}, g.device());
               be.instance_norm_backward(
                   N, C, HW, x.data(), gamma.defined() ? gamma.data() : nullptr, mean.data(),
                   rstd.data(), g.data(), grads[0].data(),
                   need[1] ? grads[1].data() : nullptr, need[2] ? grads[2].data() : nullptr);
               if (!need[0]) grads[0] = Tensor();
               return grads;
           });
    return y;
}

}  // namespace

Tensor instance_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) {
    return norm("instance_norm", x, gamma, beta, eps, false);
}

Tensor instance_norm_relu(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) {
    return norm("instance_norm_relu", x, gamma, beta, eps, true);
}

}  // namespace nst
