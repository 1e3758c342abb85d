// CUDA optimizer updates. Adam is one fused elementwise pass (read grad, m,
// v, param; write m, v, param) instead of the five or six separate ops an
// unfused formulation would launch: optimizer steps on full-resolution
// images are memory-bound, so one pass is the whole cost. The bias
// corrections are scalars from the host, so there is no device-host traffic.
#include <cuda_runtime.h>

#include "core/cuda_context.hpp"
#include "core/error.hpp"
#include "kernels/cuda/cuda_backend.hpp"

namespace nst {
namespace {

__global__ void adam_kernel(int64_t n, float lr_bc1, float beta1, float beta2, float eps,
                            float sqrt_bc2, const float* __restrict__ grad,
                            float* __restrict__ param, float* __restrict__ m,
                            float* __restrict__ v) {
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float g = grad[i];
        const float mi = beta1 * m[i] + (1.f - beta1) * g;
        const float vi = beta2 * v[i] + (1.f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] -= lr_bc1 * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    }
}

}  // namespace

void CudaBackend::adam_step(int64_t n, float lr, float beta1, float beta2, float eps, float bc1,
                            float bc2, const float* grad, float* param, float* m, float* v) {
    NST_CHECK(n >= 0, "adam_step: negative element count ", n);
    NST_CHECK(bc1 > 0 && bc2 > 0, "adam_step: bias corrections must be positive");
    if (n == 0) return;
    const cuda::Context& ctx = cuda::context(index_);
    const int threads = 256;
    const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, int64_t(ctx.sm_count) * 16);
    adam_kernel<<<unsigned(blocks), threads, 0, ctx.stream>>>(n, lr / bc1, beta1, beta2, eps,
                                                             sqrtf(bc2), grad, param, m, v);
    cuda::check_launch("adam_step");
}

}  // namespace nst
