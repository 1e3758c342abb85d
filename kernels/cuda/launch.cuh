// The launch shape of the elementwise-style kernels: grid-stride loops with
// 64-bit indices, 256 threads a block, enough blocks to fill the GPU a few
// times over (never more, never zero). One shape for any size, and tensors
// past 2^31 elements stay correct.
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/cuda_context.hpp"

namespace nst::cuda {

constexpr int kThreads = 256;

inline int grid_for(int64_t n, const Context& ctx) {
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    return int(std::max<int64_t>(1, std::min<int64_t>(blocks, int64_t(ctx.sm_count) * 32)));
}

}  // namespace nst::cuda

#define GRID_STRIDE_LOOP(i, n)                                                 \
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
         i += int64_t(gridDim.x) * blockDim.x)
