// CPU optimizer updates: the reference for kernels/cuda/optim.cu. Plain
// loops in float, in the order PyTorch's Adam writes its formula.
#include <cmath>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/parallel.hpp"

namespace nst {

void CpuBackend::axpby(int64_t n, float alpha, const float* x, float beta, float* y) {
    check_count("axpby", n);
    // beta == 0 must not read y: it may be uninitialised memory holding NaN.
    if (beta == 0.0f) return scale_forward(n, alpha, x, y);
#pragma omp parallel for if (n >= cpu::kParallelFrom) schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i] + beta * y[i];
}

void CpuBackend::adam_step(int64_t n, float lr, float beta1, float beta2, float eps, float bc1,
                           float bc2, const float* grad, float* param, float* m, float* v) {
    check_count("adam_step", n);
    NST_CHECK(bc1 > 0 && bc2 > 0, "adam_step: bias corrections must be positive");
    const float step = lr / bc1, sqrt_bc2 = std::sqrt(bc2);
#pragma omp parallel for if (n >= cpu::kParallelFrom) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float g = grad[i];
        m[i] = beta1 * m[i] + (1.f - beta1) * g;
        v[i] = beta2 * v[i] + (1.f - beta2) * g * g;
        param[i] -= step * m[i] / (std::sqrt(v[i]) / sqrt_bc2 + eps);
    }
}

}  // namespace nst
