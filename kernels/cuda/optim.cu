// CUDA optimizer updates: axpby (L-BFGS's vector work) and Adam. Adam is
// one fused elementwise pass (read grad, m, v, param; write m, v, param)
// instead of the five or six separate ops an unfused formulation would
// launch: optimizer steps on full-resolution images are memory-bound, so one
// pass is the whole cost. The bias corrections are scalars from the host, so
// there is no device-host traffic.
#include <cuda_runtime.h>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/launch.cuh"

namespace nst {
namespace {

// Multiply-adds unfused (__fmul_rn/__fadd_rn), as the CPU reference rounds them.
__global__ void axpby_kernel(int64_t n, float alpha, const float* x, float beta, float* y) {
    GRID_STRIDE_LOOP(i, n) { y[i] = __fadd_rn(__fmul_rn(alpha, x[i]), __fmul_rn(beta, y[i])); }
}

__global__ void adam_kernel(int64_t n, float lr_bc1, float beta1, float beta2, float eps,
                            float sqrt_bc2, const float* __restrict__ grad,
                            float* __restrict__ param, float* __restrict__ m,
                            float* __restrict__ v) {
    GRID_STRIDE_LOOP(i, n) {
        const float g = grad[i];
        const float mi = beta1 * m[i] + (1.f - beta1) * g;
        const float vi = beta2 * v[i] + (1.f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] -= lr_bc1 * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    }
}

}  // namespace

void CudaBackend::axpby(int64_t n, float alpha, const float* x, float beta, float* y) {
    check_count("axpby", n);
    // beta == 0 must not read y: it may be uninitialised memory holding NaN.
    if (beta == 0.0f) return scale_forward(n, alpha, x, y);
    cuda::launch(index_, "axpby", n, axpby_kernel, n, alpha, x, beta, y);
}

void CudaBackend::adam_step(int64_t n, float lr, float beta1, float beta2, float eps, float bc1,
                            float bc2, const float* grad, float* param, float* m, float* v) {
    check_count("adam_step", n);
    NST_CHECK(bc1 > 0 && bc2 > 0, "adam_step: bias corrections must be positive");
    cuda::launch(index_, "adam_step", n, adam_kernel, n, lr / bc1, beta1, beta2, eps, sqrtf(bc2), grad, param, m,
                 v);
}

}  // namespace nst
