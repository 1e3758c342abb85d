// CUDA loss reductions (MSE, sum of squares, total variation) and their
// gradients, and the inner product L-BFGS needs (the same reduction).
//
// A forward is two launches: a fixed grid of at most kMaxBlocks blocks, each
// writing one partial sum to a workspace, then a single block that adds the
// partials in a fixed tree and writes out[0]. The grid size is a function of
// the element count only, each thread visits a fixed set of elements in a
// fixed order, and the trees are fixed shuffle/shared-memory patterns, so the
// result is the same bits on every run (no float atomics anywhere). Loads are
// float4 when both inputs are 16-byte aligned, but the arithmetic on each
// 4-element chunk is the same either way, so alignment does not change bits.
//
// Accuracy: the squares of a 4-element chunk are added in fp32, every sum
// above that (per thread, the block tree, the partials) is in double. The
// kernels are bound by memory bandwidth, where the H100's fp64 adds are free,
// and the result then matches the CPU reference (double, index order) to
// float rounding even for 4K images and multi-million-element feature maps.
//
// Gradients are elementwise and read the upstream scalar from device memory
// (dout[0]) inside the kernel, so nothing waits for the host. TV backward is
// a gather: each pixel reads its up to four neighbours; no atomics.
#include <cuda_runtime.h>

#include <cstdint>

#include "core/backend_rules.hpp"
#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/cuda_backend.hpp"

namespace nst {

namespace {

constexpr int kBlock = 256;        // threads per block of the partial and elementwise kernels
constexpr int kWarps = kBlock / 32;
constexpr int kMaxBlocks = 1024;   // partial sums per reduction; also the final block's size
constexpr int64_t kMaxElementwiseBlocks = 4096;  // grid-stride beyond: ~8 blocks per SM
constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(kFullMask, v, offset);
    return v;
}

// Sum over the block in a fixed tree; the result is valid in thread 0.
template <int threads>
__device__ __forceinline__ double block_sum(double v) {
    static_assert(threads % 32 == 0 && threads / 32 <= 32, "whole warps, at most 32");
    constexpr int warps = threads / 32;
    __shared__ double warp_totals[warps];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = warp_sum(v);
    if (lane == 0) warp_totals[warp] = v;
    __syncthreads();
    v = 0.0;
    if (warp == 0) v = warp_sum(lane < warps ? warp_totals[lane] : 0.0);
    return v;
}

// Elements [4*chunk, 4*chunk + 4) clipped to n; out-of-range elements read as
// 0. kVec (16-byte aligned p) loads full chunks as one float4; the last,
// partial chunk of an n % 4 != 0 buffer always goes element by element.
template <bool kVec>
__device__ __forceinline__ int load_chunk(const float* p, int64_t chunk, int64_t n, float v[4]) {
    const int64_t base = chunk * 4;
    const int count = n - base < 4 ? int(n - base) : 4;
    if (kVec && count == 4) {
        const float4 q = reinterpret_cast<const float4*>(p)[chunk];
        v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
    } else {
#pragma unroll
        for (int k = 0; k < 4; ++k) v[k] = k < count ? p[base + k] : 0.0f;
    }
    return count;
}

template <bool kVec>
__device__ __forceinline__ void store_chunk(float* p, int64_t chunk, int count, const float v[4]) {
    if (kVec && count == 4) {
        reinterpret_cast<float4*>(p)[chunk] = make_float4(v[0], v[1], v[2], v[3]);
    } else {
#pragma unroll
        for (int k = 0; k < 4; ++k)
            if (k < count) p[chunk * 4 + k] = v[k];
    }
}

// partials[block] = sum of (a - b)^2 (b null: a^2) over this block's chunks,
// or with kProduct the sum of a * b.
template <bool kVec, bool kProduct = false>
__global__ void __launch_bounds__(kBlock)
squares_partials(int64_t n, const float* a, const float* b, double* partials) {
    const int64_t chunks = (n + 3) / 4;
    const int64_t stride = int64_t(gridDim.x) * kBlock;
    double sum = 0.0;
    for (int64_t chunk = int64_t(blockIdx.x) * kBlock + threadIdx.x; chunk < chunks;
         chunk += stride) {
        float d[4], other[4];
        load_chunk<kVec>(a, chunk, n, d);
        if (kProduct) {
            load_chunk<kVec>(b, chunk, n, other);
            sum += (double(d[0]) * other[0] + double(d[1]) * other[1]) +
                   (double(d[2]) * other[2] + double(d[3]) * other[3]);
            continue;
        }
        if (b) {
            load_chunk<kVec>(b, chunk, n, other);
#pragma unroll
            for (int k = 0; k < 4; ++k) d[k] -= other[k];
        }
        sum += double((d[0] * d[0] + d[1] * d[1]) + (d[2] * d[2] + d[3] * d[3]));
    }
    sum = block_sum<kBlock>(sum);
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

// partials[block] = this block's share of the TV sum over x [rows = NC*H, W].
// A warp takes whole image rows; each lane adds its pixels' right and down
// differences (in that order), so the per-lane order is fixed by the shape.
__global__ void __launch_bounds__(kBlock)
tv_partials(int64_t rows, int H, int W, const float* x, double* partials) {
    const int lane = threadIdx.x % 32;
    const int64_t warps = int64_t(gridDim.x) * kWarps;
    double sum = 0.0;
    for (int64_t r = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32; r < rows; r += warps) {
        const float* row = x + r * W;
        const bool has_down = r % H + 1 < H;
        for (int w = lane; w < W; w += 32) {
            const float v = row[w];
            float s = 0.0f;
            if (w + 1 < W) {
                const float d = row[w + 1] - v;
                s = d * d;
            }
            if (has_down) {
                const float d = row[w + W] - v;
                s += d * d;
            }
            sum += double(s);
        }
    }
    sum = block_sum<kBlock>(sum);
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

// out[0] = (sum of the partials, in a fixed tree) / divisor. One block.
__global__ void __launch_bounds__(kMaxBlocks)
finish_sum(int count, const double* partials, double divisor, float* out) {
    const double total = block_sum<kMaxBlocks>(int(threadIdx.x) < count ? partials[threadIdx.x] : 0.0);
    if (threadIdx.x == 0) out[0] = float(total / divisor);
}

// y = (2 dout[0] / divisor) * (a - b)  (b null: a). The scale is formed in
// double exactly as the CPU reference forms it, so the gradients agree bitwise.
template <bool kVec>
__global__ void __launch_bounds__(kBlock)
scaled_difference(int64_t n, const float* a, const float* b, const float* dout, double divisor,
                  float* y) {
    const float scale = float(2.0 * double(dout[0]) / divisor);
    const int64_t chunks = (n + 3) / 4;
    const int64_t stride = int64_t(gridDim.x) * kBlock;
    for (int64_t chunk = int64_t(blockIdx.x) * kBlock + threadIdx.x; chunk < chunks;
         chunk += stride) {
        float v[4], other[4];
        const int count = load_chunk<kVec>(a, chunk, n, v);
        if (b) {
            load_chunk<kVec>(b, chunk, n, other);
#pragma unroll
            for (int k = 0; k < 4; ++k) v[k] = scale * (v[k] - other[k]);
        } else {
#pragma unroll
            for (int k = 0; k < 4; ++k) v[k] = scale * v[k];
        }
        store_chunk<kVec>(y, chunk, count, v);
    }
}

// dx = 2 dout tv_stencil (core/backend_rules.hpp, as the CPU); warps own rows.
__global__ void __launch_bounds__(kBlock)
tv_gradient(int64_t rows, int H, int W, const float* x, const float* dout, float* dx) {
    const float scale = 2.0f * dout[0];
    const int lane = threadIdx.x % 32;
    const int64_t warps = int64_t(gridDim.x) * kWarps;
    for (int64_t r = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32; r < rows; r += warps) {
        const float* row = x + r * W;
        float* out = dx + r * W;
        const int h = int(r % H);
        for (int w = lane; w < W; w += 32) out[w] = scale * tv_stencil(row, h, H, w, W);
    }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Fixed by the work size alone: enough blocks to cover it, at most `most`.
unsigned grid_for(int64_t units, int64_t units_per_block, int64_t most) {
    const int64_t blocks = (units + units_per_block - 1) / units_per_block;
    return unsigned(blocks < 1 ? 1 : blocks > most ? most : blocks);
}

// out[0] = sum((a - b)^2) / divisor, b null meaning 0; with `product`,
// out[0] = sum(a * b) / divisor.
void launch_squares(int device, int64_t n, const float* a, const float* b, double divisor,
                    float* out, bool product = false) {
    cudaStream_t stream = cuda::context(device).stream;
    const unsigned blocks = grid_for((n + 3) / 4, kBlock, kMaxBlocks);
    cuda::Workspace partials(device, blocks * sizeof(double));
    const bool vec = aligned16(a) && (!b || aligned16(b));
    if (product && vec)
        squares_partials<true, true><<<blocks, kBlock, 0, stream>>>(n, a, b, partials.as<double>());
    else if (product)
        squares_partials<false, true><<<blocks, kBlock, 0, stream>>>(n, a, b, partials.as<double>());
    else if (vec)
        squares_partials<true><<<blocks, kBlock, 0, stream>>>(n, a, b, partials.as<double>());
    else
        squares_partials<false><<<blocks, kBlock, 0, stream>>>(n, a, b, partials.as<double>());
    cuda::check_launch("squares_partials");
    finish_sum<<<1, kMaxBlocks, 0, stream>>>(int(blocks), partials.as<double>(), divisor, out);
    cuda::check_launch("finish_sum");
}

// y = (2 dout[0] / divisor) * (a - b), b null meaning 0.
void launch_scaled_difference(int device, int64_t n, const float* a, const float* b,
                              const float* dout, double divisor, float* y) {
    if (n == 0) return;
    cudaStream_t stream = cuda::context(device).stream;
    const unsigned blocks = grid_for((n + 3) / 4, kBlock, kMaxElementwiseBlocks);
    if (aligned16(a) && (!b || aligned16(b)) && aligned16(y))
        scaled_difference<true><<<blocks, kBlock, 0, stream>>>(n, a, b, dout, divisor, y);
    else
        scaled_difference<false><<<blocks, kBlock, 0, stream>>>(n, a, b, dout, divisor, y);
    cuda::check_launch("scaled_difference");
}

}  // namespace

void CudaBackend::mse_loss_forward(int64_t n, const float* a, const float* b, float* out) {
    NST_CHECK(n > 0, "mse_loss_forward: needs at least one element, got ", n);
    NST_CHECK(a && b && out, "mse_loss_forward: null input or output for ", n, " elements");
    launch_squares(index_, n, a, b, double(n), out);
}

void CudaBackend::mse_loss_backward(int64_t n, const float* a, const float* b, const float* dout,
                                    float* da) {
    NST_CHECK(n > 0, "mse_loss_backward: needs at least one element, got ", n);
    NST_CHECK(a && b && dout && da, "mse_loss_backward: null pointer for ", n, " elements");
    launch_scaled_difference(index_, n, a, b, dout, double(n), da);
}

void CudaBackend::sum_squares_forward(int64_t n, const float* x, float* out) {
    check_count("sum_squares_forward", n);
    NST_CHECK(out && (x || n == 0), "sum_squares_forward: null input or output for ", n,
              " elements");
    launch_squares(index_, n, x, nullptr, 1.0, out);
}

void CudaBackend::sum_squares_backward(int64_t n, const float* x, const float* dout, float* dx) {
    check_count("sum_squares_backward", n);
    if (n == 0) return;
    NST_CHECK(x && dout && dx, "sum_squares_backward: null pointer for ", n, " elements");
    launch_scaled_difference(index_, n, x, nullptr, dout, 1.0, dx);
}

void CudaBackend::tv_loss_forward(int64_t NC, int H, int W, const float* x, float* out) {
    check_planes("tv_loss_forward", NC, H, W);
    const int64_t rows = NC * H;
    NST_CHECK(out && (x || rows * W == 0), "tv_loss_forward: null input or output for [", NC, ", ", H,
              ", ", W, "]");
    cudaStream_t stream = cuda::context(index_).stream;
    // An empty image still gets one block, which writes a zero partial.
    const unsigned blocks = grid_for(W > 0 ? rows : 0, kWarps, kMaxBlocks);
    cuda::Workspace partials(index_, blocks * sizeof(double));
    tv_partials<<<blocks, kBlock, 0, stream>>>(W > 0 ? rows : 0, H, W, x, partials.as<double>());
    cuda::check_launch("tv_partials");
    finish_sum<<<1, kMaxBlocks, 0, stream>>>(int(blocks), partials.as<double>(), 1.0, out);
    cuda::check_launch("finish_sum");
}

void CudaBackend::tv_loss_backward(int64_t NC, int H, int W, const float* x, const float* dout,
                                   float* dx) {
    check_planes("tv_loss_backward", NC, H, W);
    const int64_t rows = NC * H;
    if (rows == 0 || W == 0) return;
    NST_CHECK(x && dout && dx, "tv_loss_backward: null pointer for [", NC, ", ", H, ", ", W, "]");
    NST_CHECK(x != dx, "tv_loss_backward: dx must not alias x (each pixel reads its neighbours)");
    cudaStream_t stream = cuda::context(index_).stream;
    const unsigned blocks = grid_for(rows, kWarps, kMaxElementwiseBlocks);
    tv_gradient<<<blocks, kBlock, 0, stream>>>(rows, H, W, x, dout, dx);
    cuda::check_launch("tv_gradient");
}

void CudaBackend::dot(int64_t n, const float* a, const float* b, float* out) {
    check_count("dot", n);
    NST_CHECK(out && ((a && b) || n == 0), "dot: null input or output for ", n, " elements");
    launch_squares(index_, n, a, b, 1.0, out, /*product=*/true);
}

}  // namespace nst
