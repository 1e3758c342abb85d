// gram: the Gram matrix of feature maps, the heart of the style loss (a
// custom kernel on the GPU).
#include "core/ops/common.hpp"

namespace nst {

Tensor gram(const Tensor& f_in, float norm) {
    const char* op = "gram";
    ops::same_device(op, {&f_in});
    ops::check_dim(op, "features", f_in, 4);
    ops::check_int(op, f_in.numel());
    NST_CHECK(norm > 0, op, ": norm must be positive, got ", norm);
    Tensor f = f_in.contiguous();
    const int N = int(f.size(0)), C = int(f.size(1));
    const int64_t HW = f.size(2) * f.size(3);
    NST_CHECK(N > 0 && C > 0 && HW > 0, op, ": empty features ", shape_str(f.shape()));
    const float s = 1.f / norm;
    Tensor g = Tensor::empty({N, C, C}, f.device());
    backend(f.device()).gram_forward(N, C, HW, s, f.data(), g.data());
    record(g, op, {f_in}, [f, N, C, HW, s](const Tensor& dg_in, const ops::Needs&) {
        Tensor dg = dg_in.contiguous(), df = Tensor::empty(f.shape(), dg.device());
        backend(dg.device()).gram_backward(N, C, HW, s, f.data(), dg.data(), df.data());
        return ops::Grads{df};
    });
    return g;
}

}  // namespace nst
