// CPU Gram matrices, F [N, C, HW] -> G [N, C, C] = scale * F F^T.
//
// Forward is one GEMM F F^T (oneDNN's sgemm, kernels/cpu/matmul.cpp) whose
// upper triangle is then mirrored, so G is exactly symmetric, which a GEMM
// alone would not guarantee bit for bit. Backward folds dG + dG^T into one
// small C x C matrix first, then does a single GEMM with F.

#include <vector>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cpu/cpu_backend.hpp"

namespace nst {

void CpuBackend::gram_forward(int N, int C, int64_t HW, float scale, const float* F, float* G) {
    check_gram("gram_forward", N, C, HW);
    const int64_t CC = int64_t(C) * C;
    for (int n = 0; n < N; ++n) {
        float* Gn = G + n * CC;
        if (HW == 0) {  // a GEMM rejects K == 0 with lda 0
            for (int64_t i = 0; i < CC; ++i) Gn[i] = 0.0f;
            continue;
        }
        if (C == 0) continue;
        sgemm(false, true, C, C, HW, scale, F + n * C * HW, HW, F + n * C * HW, HW, 0.0f, Gn, C);
        for (int i = 1; i < C; ++i)
            for (int j = 0; j < i; ++j) Gn[int64_t(i) * C + j] = Gn[int64_t(j) * C + i];
    }
}

void CpuBackend::gram_backward(int N, int C, int64_t HW, float scale, const float* F,
                               const float* dG, float* dF) {
    check_gram("gram_backward", N, C, HW);
    if (C == 0 || HW == 0) return;
    const int64_t CC = int64_t(C) * C;
    std::vector<float> sym(static_cast<size_t>(CC));
    for (int n = 0; n < N; ++n) {
        const float* dGn = dG + n * CC;
        for (int i = 0; i < C; ++i)
            for (int j = 0; j < C; ++j)
                sym[size_t(i) * C + j] = dGn[int64_t(i) * C + j] + dGn[int64_t(j) * C + i];
        sgemm(false, false, C, HW, C, scale, sym.data(), C, F + n * C * HW, HW, 0.0f, dF + n * C * HW, HW);
    }
}

}  // namespace nst
