// matmul: a GEMM (cuBLAS / oneDNN); its backward is two more.
#include "core/ops/common.hpp"

namespace nst {

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
    const char* op = "matmul";
    ops::same_device(op, {&a_in, &b_in});
    ops::check_dim(op, "left operand", a_in, 2);
    ops::check_dim(op, "right operand", b_in, 2);
    NST_CHECK(a_in.size(1) == b_in.size(0), op, ": cannot multiply ", shape_str(a_in.shape()),
              " by ", shape_str(b_in.shape()));
    for (const Tensor* t : {&a_in, &b_in}) ops::check_int(op, t->size(0)), ops::check_int(op, t->size(1));
    Tensor a = a_in.contiguous(), b = b_in.contiguous();
    const int M = int(a.size(0)), K = int(a.size(1)), N = int(b.size(1));
    Tensor y = Tensor::empty({M, N}, a.device());
    backend(a.device()).matmul(false, false, M, N, K, 1.f, a.data(), b.data(), 0.f, y.data());
    record(y, op, {a_in, b_in}, [a, b, M, N, K](const Tensor& g_in, const ops::Needs& need) {
        Tensor g = g_in.contiguous();
        Backend& be = backend(g.device());
        ops::Grads grads(2);
        if (need[0]) {  // dA = dY B^T
            grads[0] = Tensor::empty({M, K}, g.device());
            be.matmul(false, true, M, K, N, 1.f, g.data(), b.data(), 0.f, grads[0].data());
        }
        if (need[1]) {  // dB = A^T dY
            grads[1] = Tensor::empty({K, N}, g.device());
            be.matmul(true, false, K, N, M, 1.f, a.data(), g.data(), 0.f, grads[1].data());
        }
        return grads;
    });
    return y;
}

}  // namespace nst
