// The CPU backend: the methods of core/backend_methods.inc, each defined in
// the kernels/cpu file of its op family (kernels/README.md); convolutions and
// GEMMs through oneDNN, our own loops threaded with OpenMP (the runtime
// oneDNN runs on).
#pragma once
#include "core/backend.hpp"

namespace nst {

class CpuBackend final : public Backend {
public:
    Device device() const override;

#define NST_BACKEND_METHOD(result, name, parameters) result name parameters override;
#include "core/backend_methods.inc"
#undef NST_BACKEND_METHOD

    // Sets the calling thread's OpenMP thread count to the setting
    // (cpu_threads_of_calling_thread) where it differs (kernels/cpu/context.cpp).
    void size_pool_for_calling_thread();
};

// C = alpha op(A) op(B) + beta C, row-major, on oneDNN's sgemm (kernels/cpu/matmul.cpp):
// the one GEMM of the CPU backend.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace nst
