// CPU GEMM: a thin row-major wrapper over OpenBLAS sgemm. The only logic here
// is the degenerate shapes BLAS rejects or leaves undefined: an empty output
// does nothing, and K == 0 still scales C by beta (beta == 0 clears it, so a
// NaN in an uninitialised C never leaks through).
#include <cblas.h>

#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"

namespace nst {

void CpuBackend::matmul(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                        const float* A, const float* B, float beta, float* C) {
    NST_CHECK(M >= 0 && N >= 0 && K >= 0, "matmul: negative size M ", M, " N ", N, " K ", K);
    if (M == 0 || N == 0) return;
    if (K == 0) {
        const int64_t n = int64_t(M) * N;
        for (int64_t i = 0; i < n; ++i) C[i] = beta == 0.0f ? 0.0f : beta * C[i];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, trans_a ? M : K, B,
                trans_b ? K : N, beta, C, N);
}

}  // namespace nst
