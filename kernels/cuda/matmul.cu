// CUDA GEMM through cuBLAS, on row-major data.
//
// cuBLAS is column-major, and a row-major [M, N] matrix is the same bytes as
// a column-major [N, M] one. So C = op(A) op(B) in row-major is computed as
// C^T = op(B)^T op(A)^T in column-major: swap the operands (and M with N),
// keep each operand's transpose flag, and every leading dimension is simply
// the row length of the stored row-major matrix.
//
// TF32 is opt-in (allow_tf32): CUBLAS_COMPUTE_32F keeps full fp32 otherwise.
// cuBLAS never reads C when beta == 0, so an uninitialised C is fine; K == 0
// is handled here like the CPU reference (beta_times, core/backend_rules.hpp).
#include <algorithm>
#include <string>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/launch.cuh"

namespace nst {

namespace {

__global__ void scale_in_place_kernel(int64_t n, float beta, float* c) {
    GRID_STRIDE_LOOP(i, n)
        c[i] = beta_times(beta, c[i]);
}

}  // namespace

void CudaBackend::matmul(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                         const float* A, const float* B, float beta, float* C) {
    check_matmul(M, N, K);
    if (M == 0 || N == 0) return;
    if (K == 0) {
        const int64_t n = int64_t(M) * N;
        return cuda::launch(index_, "matmul", n, scale_in_place_kernel, n, beta, C);
    }
    cuda::Context& ctx = cuda::context(index_);
    const int lda = trans_a ? M : K;  // row length of A as stored
    const int ldb = trans_b ? K : N;  // row length of B as stored
    const cublasComputeType_t compute =
        allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    // alpha and beta live on the host; the handle is shared, so say so.
    cuda::check(cublasSetPointerMode(ctx.cublas, CUBLAS_POINTER_MODE_HOST),
                "matmul: cublasSetPointerMode");
    const cublasStatus_t status =
        cublasGemmEx(ctx.cublas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                     trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, CUDA_R_32F, ldb, A,
                     CUDA_R_32F, lda, &beta, C, CUDA_R_32F, N, compute, CUBLAS_GEMM_DEFAULT);
    if (status != CUBLAS_STATUS_SUCCESS) {
        const std::string what = detail::concat("matmul (M ", M, " N ", N, " K ", K, " trans_a ",
                                                trans_a, " trans_b ", trans_b, ")");
        cuda::check(status, what.c_str());
    }
}

}  // namespace nst
