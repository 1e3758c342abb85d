// CPU GEMM: a row-major wrapper over oneDNN's sgemm (threaded on OpenMP,
// like the convolutions, so one thread pool serves every CPU op). The only
// logic here is the degenerate shapes: an empty output does nothing, and
// K == 0 still scales C by beta (beta_times, core/backend_rules.hpp).
#include <dnnl.h>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cpu/cpu_backend.hpp"

namespace nst {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    const dnnl_status_t status =
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    NST_CHECK(status == dnnl_success, "sgemm: oneDNN failed (status ", int(status), ") for M ", M, " N ", N, " K ",
              K);
}

void CpuBackend::matmul(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                        const float* A, const float* B, float beta, float* C) {
    check_matmul(M, N, K);
    if (M == 0 || N == 0) return;
    if (K == 0) {
        const int64_t n = int64_t(M) * N;
        for (int64_t i = 0; i < n; ++i) C[i] = beta_times(beta, C[i]);
        return;
    }
    sgemm(trans_a, trans_b, M, N, K, alpha, A, trans_a ? M : K, B, trans_b ? K : N, beta, C, N);
}

}  // namespace nst
