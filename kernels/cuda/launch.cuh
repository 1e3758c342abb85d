// The launch shape of the elementwise-style kernels: grid-stride loops with
// 64-bit indices, 256 threads a block, enough blocks to fill the GPU a few
// times over (never more, never zero). One shape for any size, and tensors
// past 2^31 elements stay correct. launch() is the one way to start such a
// kernel; kernels with a shape of their own (reductions, per-plane grids)
// launch themselves.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/context.hpp"

namespace nst::cuda {

constexpr int kThreads = 256;

inline int grid_for(int64_t n, const Context& ctx) {
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    return int(std::max<int64_t>(1, std::min<int64_t>(blocks, int64_t(ctx.sm_count) * 32)));
}

// Runs a grid-stride kernel over n items on the device's stream in that
// shape, and checks the launch (an error names `what`, the backend method).
// Nothing is launched for n == 0.
// The argument types are the kernel's own (not deduced from the call), so
// each argument converts where the caller writes it.
template <class T>
struct KernelParameter {
    using type = T;
};
template <class... Params>
void launch(int device, const char* what, int64_t n, void (*kernel)(Params...),
            typename KernelParameter<Params>::type... args) {
    if (n <= 0) return;
    Context& ctx = context(device);
    kernel<<<grid_for(n, ctx), kThreads, 0, ctx.stream>>>(args...);
    check_launch(what);
}

// Element i of planes of H x W as its plane, row and column: the index
// arithmetic of the kernels over [NC, H, W] tensors.
struct PlanePixel {
    int64_t plane;
    int h, w;
};
__device__ __forceinline__ PlanePixel plane_pixel(int64_t i, int H, int W) {
    return {i / (int64_t(W) * H), int((i / W) % H), int(i % W)};
}

}  // namespace nst::cuda

#define GRID_STRIDE_LOOP(i, n)                                                 \
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
         i += int64_t(gridDim.x) * blockDim.x)
