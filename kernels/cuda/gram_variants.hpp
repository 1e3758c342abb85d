// The Gram kernels' tuning variants (kernels/cuda/gram.cu), exposed for
// bench/gram_bench only: it validates and times every variant at every shape
// so the shape heuristic behind CudaBackend::gram_forward / gram_backward
// (the "choice" functions below) can be set from measurements. Nothing else
// should include this header.
#pragma once
#include <cstdint>

namespace nst::cuda {

// Forward G = scale F F^T, F [N, C, HW]. Variants 0 .. count-1.
int gram_forward_variant_count();
const char* gram_forward_variant_name(int variant);
// The variant CudaBackend::gram_forward runs for this shape on `device`.
int gram_forward_choice(int device, int N, int C, int64_t HW);
void gram_forward_variant(int variant, int device, int N, int C, int64_t HW, float scale,
                          const float* F, float* G);

// Backward dF = scale (dG + dG^T) F.
int gram_backward_variant_count();
const char* gram_backward_variant_name(int variant);
int gram_backward_choice(int device, int N, int C, int64_t HW);
void gram_backward_variant(int variant, int device, int N, int C, int64_t HW, float scale,
                           const float* F, const float* dG, float* dF);

}  // namespace nst::cuda
