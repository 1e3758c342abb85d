// CUDA instance norm: statistics over HW for each (n, c) row, biased variance.
//
// Statistics are single-pass Welford/Chan in fp32 on x - x[row][0]: each
// thread takes 16 elements at a time (four float4 chunks), computes their
// mean and centred sum of squares as a two-pass over registers, and merges
// that into its running (count, mean, M2) with Chan's parallel formula;
// threads, then blocks of a split row, are merged with the same formula in
// a fixed tree. Nothing ever forms sum(x^2) - n*mean^2, which in fp32 loses
// all of the variance of values around 1000 with std 1. Shifting by the
// row's first element first makes the offset itself harmless too: the
// shifted mean is at most sqrt(HW) standard deviations from zero (Samuelson),
// so the merges never subtract large nearly-equal means; rows around 1e5
// with std 1 come out with rstd within 1e-7 of the double reference. x is
// read from memory once for the statistics and once to normalise.
//
// Three launch shapes, chosen from the shape alone:
//  * HW <= 1024: one warp per row, eight rows per block, no block barrier;
//    many small rows (deep layers) keep every warp busy.
//  * otherwise one block per row, statistics and normalisation fused (for
//    rows of up to some 100K elements the second read hits L2).
//  * when rows are too few to fill the GPU (N=1, C=32, HW=8M), each row is
//    split over up to kTargetBlocks/rows blocks that write partial statistics;
//    a tiny kernel merges them in split order, then a split apply pass writes
//    y. Same two reads of x as the fused path, just spread over more SMs.
// The grid and every reduction tree depend on the shape only, never on
// timing or the SM count, and no float atomics are used: same bits every run.
// The arithmetic is identical for float4 and scalar loads (the scalar path
// serves rows that are not 16-byte aligned or HW % 4 != 0), so alignment does
// not change the result either.
//
// The forward kernels are templates over the element type of x, y, gamma and
// beta (kernels/cuda/storage16.cuh): float32, and fp16/bf16 for inference,
// whose values are widened on load (a vector load is then 4 x 16 bits) so
// the statistics and the arithmetic stay fp32.
//
// Backward uses dx = rstd*gamma * (dy - mean(dy) - xhat * mean(dy*xhat)); the
// two row sums (which are also dbeta's and dgamma's contributions) are fp32
// sums of 16-element groups, per thread, then the same fixed tree. dgamma and
// dbeta sum the per-row results over n in index order in a separate tiny
// kernel (one thread per channel), never with atomics.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/storage16.cuh"

namespace nst {

namespace {

constexpr int kBlock = 256;                     // threads per block, every kernel here
constexpr int kWarps = kBlock / 32;
constexpr int kUnroll = 4;                      // float4 chunks per thread per loop step
constexpr int64_t kWarpRowMaxHW = 1024;         // rows this short get one warp each
constexpr int64_t kMinSplitElements = 16384;    // a split block gets at least this much
constexpr int64_t kTargetBlocks = 1024;         // about the resident blocks of an H100
constexpr unsigned kFullMask = 0xffffffffu;

// Running statistics of a set of values: count, mean, sum of squared deviations.
struct Stats {
    float n, mean, m2;
};

// Chan et al.'s parallel merge. An empty side (n == 0) returns the other side
// bit for bit, so padding lanes with empties is harmless.
__device__ __forceinline__ Stats combine(Stats a, Stats b) {
    if (b.n == 0.0f) return a;
    if (a.n == 0.0f) return b;
    const float n = a.n + b.n;
    const float delta = b.mean - a.mean;
    const float wb = b.n / n;
    return {n, a.mean + delta * wb, a.m2 + b.m2 + delta * delta * (a.n * wb)};
}
__device__ __forceinline__ float2 combine(float2 a, float2 b) {
    return make_float2(a.x + b.x, a.y + b.y);
}

__device__ __forceinline__ Stats shfl_down(Stats s, int offset) {
    return {__shfl_down_sync(kFullMask, s.n, offset), __shfl_down_sync(kFullMask, s.mean, offset),
            __shfl_down_sync(kFullMask, s.m2, offset)};
}
__device__ __forceinline__ float2 shfl_down(float2 v, int offset) {
    return make_float2(__shfl_down_sync(kFullMask, v.x, offset),
                       __shfl_down_sync(kFullMask, v.y, offset));
}
__device__ __forceinline__ Stats shfl_lane0(Stats s) {
    return {__shfl_sync(kFullMask, s.n, 0), __shfl_sync(kFullMask, s.mean, 0),
            __shfl_sync(kFullMask, s.m2, 0)};
}
__device__ __forceinline__ float2 shfl_lane0(float2 v) {
    return make_float2(__shfl_sync(kFullMask, v.x, 0), __shfl_sync(kFullMask, v.y, 0));
}

template <class T>
__device__ __forceinline__ T empty();
template <>
__device__ __forceinline__ Stats empty<Stats>() {
    return {0.0f, 0.0f, 0.0f};
}
template <>
__device__ __forceinline__ float2 empty<float2>() {
    return make_float2(0.0f, 0.0f);
}

// Lane 0 ends with the combination of the first `width` lanes, in a fixed tree.
template <int width, class T>
__device__ __forceinline__ T warp_reduce(T v) {
#pragma unroll
    for (int offset = width / 2; offset > 0; offset /= 2) v = combine(v, shfl_down(v, offset));
    return v;
}

// The total over the threads that share a row, returned to all of them.
// group == 32: one warp (no barrier); group == kBlock: the whole block.
template <int group, class T>
__device__ __forceinline__ T group_reduce(T v) {
    static_assert(group == 32 || group == kBlock, "a row is one warp or one block");
    if constexpr (group == 32) {
        return shfl_lane0(warp_reduce<32>(v));
    } else {
        __shared__ T warp_totals[kWarps];
        __shared__ T total;
        const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
        v = warp_reduce<32>(v);
        if (lane == 0) warp_totals[warp] = v;
        __syncthreads();
        if (warp == 0) {
            v = warp_reduce<kWarps>(lane < kWarps ? warp_totals[lane] : empty<T>());
            if (lane == 0) total = v;
        }
        __syncthreads();
        return total;
    }
}

// Chunk `chunk` of a row is elements [4*chunk, 4*chunk + 4) clipped to hw;
// out-of-row elements read as 0. kVec needs a row aligned to 4 elements
// (16 bytes in float32, 8 in 16-bit) and hw % 4 == 0 (then every chunk is full).
template <bool kVec, class T>
__device__ __forceinline__ int load_chunk(const T* row, int64_t chunk, int64_t hw, float v[4]) {
    if constexpr (kVec && std::is_same_v<T, float>) {
        const float4 q = reinterpret_cast<const float4*>(row)[chunk];
        v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
        return 4;
    } else if constexpr (kVec) {
        const uint2 q = reinterpret_cast<const uint2*>(row)[chunk];
        T e[4];
        memcpy(e, &q, sizeof q);
#pragma unroll
        for (int k = 0; k < 4; ++k) v[k] = cuda::to_float(e[k]);
        return 4;
    } else {
        const int64_t base = chunk * 4;
        const int count = hw - base < 4 ? int(hw - base) : 4;
#pragma unroll
        for (int k = 0; k < 4; ++k) v[k] = k < count ? cuda::to_float(row[base + k]) : 0.0f;
        return count;
    }
}

template <bool kVec, class T>
__device__ __forceinline__ void store_chunk(T* row, int64_t chunk, int count, const float v[4]) {
    if constexpr (kVec && std::is_same_v<T, float>) {
        reinterpret_cast<float4*>(row)[chunk] = make_float4(v[0], v[1], v[2], v[3]);
    } else if constexpr (kVec) {
        T e[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) e[k] = cuda::from_float<T>(v[k]);
        uint2 q;
        memcpy(&q, e, sizeof q);
        reinterpret_cast<uint2*>(row)[chunk] = q;
    } else {
#pragma unroll
        for (int k = 0; k < 4; ++k)
            if (k < count) row[chunk * 4 + k] = cuda::from_float<T>(v[k]);
    }
}

// This thread's statistics of x - pivot over chunks [begin, end) of a row,
// taking chunks begin + tid, begin + tid + threads, ... (coalesced).
template <bool kVec, class T>
__device__ Stats thread_stats(const T* row, float pivot, int64_t hw, int64_t begin,
                              int64_t end, int tid, int threads) {
    Stats s = empty<Stats>();
    for (int64_t first = begin + tid; first < end; first += int64_t(kUnroll) * threads) {
        float v[kUnroll][4];
        int count[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const int64_t chunk = first + int64_t(u) * threads;
            if (chunk < end) {
                count[u] = load_chunk<kVec>(row, chunk, hw, v[u]);
            } else {
                count[u] = 0;
                v[u][0] = v[u][1] = v[u][2] = v[u][3] = 0.0f;
            }
        }
        // Two-pass statistics of these (up to) 16 shifted values, then one merge.
        float n = 0.0f, sum = 0.0f;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            n += float(count[u]);
#pragma unroll
            for (int k = 0; k < 4; ++k) v[u][k] = k < count[u] ? v[u][k] - pivot : 0.0f;
            sum += (v[u][0] + v[u][1]) + (v[u][2] + v[u][3]);
        }
        const float mean = sum / n;  // n >= 1: chunk `first` is always in range
        float m2 = 0.0f;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u)
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                const float d = k < count[u] ? v[u][k] - mean : 0.0f;
                m2 += d * d;
            }
        s = combine(s, Stats{n, mean, m2});
    }
    return s;
}

// y = (x - mean) * scale + shift over chunks [begin, end) of a row, then
// max(y, 0) with relu. Centring first keeps the precision that folding mean
// into shift would cancel away.
template <bool kVec, class T>
__device__ void normalize_chunks(const T* x, T* y, int64_t hw, int64_t begin, int64_t end,
                                 int tid, int threads, float mean, float scale, float shift,
                                 bool relu) {
    for (int64_t chunk = begin + tid; chunk < end; chunk += threads) {
        float v[4];
        const int count = load_chunk<kVec>(x, chunk, hw, v);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            v[k] = (v[k] - mean) * scale + shift;
            if (relu) v[k] = v[k] < 0.0f ? 0.0f : v[k];  // NaN passes, as relu_forward
        }
        store_chunk<kVec>(y, chunk, count, v);
    }
}

// (sum dy, sum dy * (x - mean)) of this thread's chunks in [begin, end).
template <bool kVec>
__device__ float2 thread_grad_sums(const float* x, const float* dy, int64_t hw, int64_t begin,
                                   int64_t end, int tid, int threads, float mean) {
    float2 s = empty<float2>();
    for (int64_t first = begin + tid; first < end; first += int64_t(kUnroll) * threads) {
        float xv[kUnroll][4], gv[kUnroll][4];
        int count[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const int64_t chunk = first + int64_t(u) * threads;
            if (chunk < end) {
                count[u] = load_chunk<kVec>(x, chunk, hw, xv[u]);
                load_chunk<kVec>(dy, chunk, hw, gv[u]);
            } else {
                count[u] = 0;
#pragma unroll
                for (int k = 0; k < 4; ++k) xv[u][k] = gv[u][k] = 0.0f;
            }
        }
        float sum_dy = 0.0f, sum_dy_xc = 0.0f;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            sum_dy += (gv[u][0] + gv[u][1]) + (gv[u][2] + gv[u][3]);
#pragma unroll
            for (int k = 0; k < 4; ++k)
                if (k < count[u]) sum_dy_xc += gv[u][k] * (xv[u][k] - mean);
        }
        s.x += sum_dy;
        s.y += sum_dy_xc;
    }
    return s;
}

// dx = a * (dy - mean_dy - (x - mean) * k) with a = rstd*gamma,
// k = rstd * mean(dy*xhat): the closed form with gamma factored out.
template <bool kVec>
__device__ void grad_chunks(const float* x, const float* dy, float* dx, int64_t hw, int64_t begin,
                            int64_t end, int tid, int threads, float mean, float a, float mean_dy,
                            float k) {
    for (int64_t chunk = begin + tid; chunk < end; chunk += threads) {
        float xv[4], gv[4];
        const int count = load_chunk<kVec>(x, chunk, hw, xv);
        load_chunk<kVec>(dy, chunk, hw, gv);
#pragma unroll
        for (int e = 0; e < 4; ++e) gv[e] = a * (gv[e] - mean_dy - (xv[e] - mean) * k);
        store_chunk<kVec>(dx, chunk, count, gv);
    }
}

__device__ __forceinline__ float rstd_of(Stats s, float inv_hw, float eps) {
    return 1.0f / sqrtf(s.m2 * inv_hw + eps);
}

// ---- forward -----------------------------------------------------------------

// Statistics and normalisation of whole rows; a row is `group` threads.
template <bool kVec, int group, class T>
__global__ void __launch_bounds__(kBlock)
instance_norm_forward_rows(int64_t rows, int C, int64_t hw, float inv_hw, float eps,
                           const T* x, const T* gamma, const T* beta, T* y,
                           float* mean_out, float* rstd_out, bool relu) {
    const int64_t row = int64_t(blockIdx.x) * (kBlock / group) + threadIdx.x / group;
    if (row >= rows) return;  // whole warps only: group == 32 when a block has spare rows
    const int tid = threadIdx.x % group;
    const int64_t chunks = (hw + 3) / 4;
    const T* xr = x + row * hw;

    // Read before the reduction: with y == x, thread 0 overwrites xr[0] after it.
    const float pivot = cuda::to_float(xr[0]);
    const Stats s =
        group_reduce<group>(thread_stats<kVec>(xr, pivot, hw, 0, chunks, tid, group));
    const float mean = pivot + s.mean;
    const float rstd = rstd_of(s, inv_hw, eps);
    if (tid == 0) {
        mean_out[row] = mean;
        rstd_out[row] = rstd;
    }
    const int c = int(row % C);
    const float scale = gamma ? cuda::to_float(gamma[c]) * rstd : rstd;
    const float shift = beta ? cuda::to_float(beta[c]) : 0.0f;
    normalize_chunks<kVec>(xr, y + row * hw, hw, 0, chunks, tid, group, mean, scale, shift, relu);
}

// Split rows, pass 1: grid (rows, splits); partial statistics of one split.
template <bool kVec, class T>
__global__ void __launch_bounds__(kBlock)
instance_norm_partial_stats(int64_t hw, int64_t chunks_per_split, const T* x, Stats* partials) {
    const int64_t row = blockIdx.x;
    const int64_t chunks = (hw + 3) / 4;
    const int64_t begin = int64_t(blockIdx.y) * chunks_per_split;
    const int64_t end = begin + chunks_per_split < chunks ? begin + chunks_per_split : chunks;
    const T* xr = x + row * hw;
    const Stats s = group_reduce<kBlock>(
        thread_stats<kVec>(xr, cuda::to_float(xr[0]), hw, begin, end, threadIdx.x, kBlock));
    if (threadIdx.x == 0) partials[row * gridDim.y + blockIdx.y] = s;
}

// Split rows, pass 2: one thread per row merges its splits in split order.
template <class T>
__global__ void __launch_bounds__(kBlock)
instance_norm_merge_stats(int64_t rows, int splits, int64_t hw, float inv_hw, float eps,
                          const T* x, const Stats* partials, float* mean_out,
                          float* rstd_out) {
    const int64_t row = int64_t(blockIdx.x) * kBlock + threadIdx.x;
    if (row >= rows) return;
    Stats s = partials[row * splits];
    for (int k = 1; k < splits; ++k) s = combine(s, partials[row * splits + k]);
    mean_out[row] = cuda::to_float(x[row * hw]) + s.mean;
    rstd_out[row] = rstd_of(s, inv_hw, eps);
}

// Split rows, pass 3: grid (rows, splits); normalise one split.
template <bool kVec, class T>
__global__ void __launch_bounds__(kBlock)
instance_norm_apply(int C, int64_t hw, int64_t chunks_per_split, const T* x, const T* gamma,
                    const T* beta, const float* mean, const float* rstd, T* y, bool relu) {
    const int64_t row = blockIdx.x;
    const int64_t chunks = (hw + 3) / 4;
    const int64_t begin = int64_t(blockIdx.y) * chunks_per_split;
    const int64_t end = begin + chunks_per_split < chunks ? begin + chunks_per_split : chunks;
    const int c = int(row % C);
    const float scale = gamma ? cuda::to_float(gamma[c]) * rstd[row] : rstd[row];
    const float shift = beta ? cuda::to_float(beta[c]) : 0.0f;
    normalize_chunks<kVec>(x + row * hw, y + row * hw, hw, begin, end, threadIdx.x, kBlock,
                           mean[row], scale, shift, relu);
}

// ---- backward ----------------------------------------------------------------

// Whole rows: the row sums, then dx. row_sums[row] = (sum dy, sum dy*xhat),
// the row's contributions to dbeta and dgamma (null when neither is wanted).
template <bool kVec, int group>
__global__ void __launch_bounds__(kBlock)
instance_norm_backward_rows(int64_t rows, int C, int64_t hw, float inv_hw, const float* x,
                            const float* gamma, const float* mean, const float* rstd,
                            const float* dy, float* dx, float2* row_sums) {
    const int64_t row = int64_t(blockIdx.x) * (kBlock / group) + threadIdx.x / group;
    if (row >= rows) return;  // whole warps only, as in the forward
    const int tid = threadIdx.x % group;
    const int64_t chunks = (hw + 3) / 4;
    const float m = mean[row], r = rstd[row];
    const float* xr = x + row * hw;
    const float* dyr = dy + row * hw;

    const float2 s =
        group_reduce<group>(thread_grad_sums<kVec>(xr, dyr, hw, 0, chunks, tid, group, m));
    const float sum_dy_xhat = s.y * r;
    if (row_sums && tid == 0) row_sums[row] = make_float2(s.x, sum_dy_xhat);
    const float g = gamma ? gamma[int(row % C)] : 1.0f;
    grad_chunks<kVec>(xr, dyr, dx + row * hw, hw, 0, chunks, tid, group, m, r * g, s.x * inv_hw,
                      r * sum_dy_xhat * inv_hw);
}

// Split rows, pass 1: grid (rows, splits); partial row sums of one split.
template <bool kVec>
__global__ void __launch_bounds__(kBlock)
instance_norm_partial_grad_sums(int64_t hw, int64_t chunks_per_split, const float* x,
                                const float* mean, const float* dy, float2* partials) {
    const int64_t row = blockIdx.x;
    const int64_t chunks = (hw + 3) / 4;
    const int64_t begin = int64_t(blockIdx.y) * chunks_per_split;
    const int64_t end = begin + chunks_per_split < chunks ? begin + chunks_per_split : chunks;
    const float2 s = group_reduce<kBlock>(thread_grad_sums<kVec>(
        x + row * hw, dy + row * hw, hw, begin, end, threadIdx.x, kBlock, mean[row]));
    if (threadIdx.x == 0) partials[row * gridDim.y + blockIdx.y] = s;
}

// Split rows, pass 2: one thread per row adds its splits in split order.
__global__ void __launch_bounds__(kBlock)
instance_norm_merge_grad_sums(int64_t rows, int splits, const float* rstd, const float2* partials,
                              float2* row_sums) {
    const int64_t row = int64_t(blockIdx.x) * kBlock + threadIdx.x;
    if (row >= rows) return;
    float2 s = partials[row * splits];
    for (int k = 1; k < splits; ++k) s = combine(s, partials[row * splits + k]);
    row_sums[row] = make_float2(s.x, s.y * rstd[row]);
}

// Split rows, pass 3: grid (rows, splits); dx of one split.
template <bool kVec>
__global__ void __launch_bounds__(kBlock)
instance_norm_backward_apply(int C, int64_t hw, int64_t chunks_per_split, float inv_hw,
                             const float* x, const float* gamma, const float* mean,
                             const float* rstd, const float* dy, const float2* row_sums,
                             float* dx) {
    const int64_t row = blockIdx.x;
    const int64_t chunks = (hw + 3) / 4;
    const int64_t begin = int64_t(blockIdx.y) * chunks_per_split;
    const int64_t end = begin + chunks_per_split < chunks ? begin + chunks_per_split : chunks;
    const float r = rstd[row];
    const float g = gamma ? gamma[int(row % C)] : 1.0f;
    const float2 s = row_sums[row];
    grad_chunks<kVec>(x + row * hw, dy + row * hw, dx + row * hw, hw, begin, end, threadIdx.x,
                      kBlock, mean[row], r * g, s.x * inv_hw, r * s.y * inv_hw);
}

// dbeta[c] = sum_n row_sums[n*C + c].x, dgamma[c] = sum_n ....y, n in order.
__global__ void __launch_bounds__(kBlock)
instance_norm_channel_grads(int N, int C, const float2* row_sums, float* dgamma, float* dbeta) {
    const int c = blockIdx.x * kBlock + threadIdx.x;
    if (c >= C) return;
    float2 s = empty<float2>();
    for (int n = 0; n < N; ++n) s = combine(s, row_sums[int64_t(n) * C + c]);
    if (dbeta) dbeta[c] = s.x;
    if (dgamma) dgamma[c] = s.y;
}

// ---- launch planning ---------------------------------------------------------

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
// Aligned for a vector load of four elements of T.
template <class T>
bool aligned4(const T* p) { return reinterpret_cast<uintptr_t>(p) % (4 * sizeof(T)) == 0; }

// How rows of hw elements are spread over blocks. splits == 0: one warp per
// row; splits == 1: one block per row; splits > 1: each row over `splits`
// blocks of chunks_per_split float4 chunks. Depends on the shape only.
struct RowPlan {
    int64_t splits;
    int64_t chunks_per_split;
};

RowPlan plan_rows(int64_t rows, int64_t hw) {
    if (hw <= kWarpRowMaxHW) return {0, 0};
    const int64_t chunks = (hw + 3) / 4;
    const int64_t want = (kTargetBlocks + rows - 1) / rows;
    const int64_t most = hw / kMinSplitElements;
    const int64_t splits = want < most ? want : most;
    if (splits <= 1) return {1, chunks};
    // Whole unrolled steps per thread, so no block of a split row idles at the end.
    const int64_t step = int64_t(kBlock) * kUnroll;
    const int64_t per = ((chunks + splits - 1) / splits + step - 1) / step * step;
    return {(chunks + per - 1) / per, per};
}

unsigned blocks_for(int64_t rows, int64_t rows_per_block) {
    return unsigned((rows + rows_per_block - 1) / rows_per_block);
}

template <bool kVec, class T>
void launch_forward(cudaStream_t stream, int device, int64_t rows, int C, int64_t hw, float eps,
                    const T* x, const T* gamma, const T* beta, T* y, float* mean, float* rstd,
                    bool relu) {
    const float inv_hw = float(1.0 / double(hw));
    const RowPlan plan = plan_rows(rows, hw);
    if (plan.splits == 0) {
        instance_norm_forward_rows<kVec, 32, T><<<blocks_for(rows, kWarps), kBlock, 0, stream>>>(
            rows, C, hw, inv_hw, eps, x, gamma, beta, y, mean, rstd, relu);
        cuda::check_launch("instance_norm_forward_rows (warp per row)");
    } else if (plan.splits == 1) {
        instance_norm_forward_rows<kVec, kBlock, T><<<unsigned(rows), kBlock, 0, stream>>>(
            rows, C, hw, inv_hw, eps, x, gamma, beta, y, mean, rstd, relu);
        cuda::check_launch("instance_norm_forward_rows (block per row)");
    } else {
        cuda::Workspace partials(device, size_t(rows * plan.splits) * sizeof(Stats));
        const dim3 grid(unsigned(rows), unsigned(plan.splits));
        instance_norm_partial_stats<kVec><<<grid, kBlock, 0, stream>>>(
            hw, plan.chunks_per_split, x, partials.as<Stats>());
        cuda::check_launch("instance_norm_partial_stats");
        instance_norm_merge_stats<<<blocks_for(rows, kBlock), kBlock, 0, stream>>>(
            rows, int(plan.splits), hw, inv_hw, eps, x, partials.as<Stats>(), mean, rstd);
        cuda::check_launch("instance_norm_merge_stats");
        instance_norm_apply<kVec><<<grid, kBlock, 0, stream>>>(C, hw, plan.chunks_per_split, x,
                                                               gamma, beta, mean, rstd, y, relu);
        cuda::check_launch("instance_norm_apply");
    }
}

template <bool kVec>
void launch_backward(cudaStream_t stream, int device, int N, int C, int64_t hw, const float* x,
                     const float* gamma, const float* mean, const float* rstd, const float* dy,
                     float* dx, float* dgamma, float* dbeta) {
    const int64_t rows = int64_t(N) * C;
    const float inv_hw = float(1.0 / double(hw));
    const RowPlan plan = plan_rows(rows, hw);
    const bool want_params = dgamma || dbeta;
    cuda::Workspace sums(device, (want_params || plan.splits > 1) ? size_t(rows) * sizeof(float2)
                                                                   : 0);
    float2* row_sums = sums.as<float2>();
    if (plan.splits == 0) {
        instance_norm_backward_rows<kVec, 32><<<blocks_for(rows, kWarps), kBlock, 0, stream>>>(
            rows, C, hw, inv_hw, x, gamma, mean, rstd, dy, dx, row_sums);
        cuda::check_launch("instance_norm_backward_rows (warp per row)");
    } else if (plan.splits == 1) {
        instance_norm_backward_rows<kVec, kBlock><<<unsigned(rows), kBlock, 0, stream>>>(
            rows, C, hw, inv_hw, x, gamma, mean, rstd, dy, dx, row_sums);
        cuda::check_launch("instance_norm_backward_rows (block per row)");
    } else {
        cuda::Workspace partials(device, size_t(rows * plan.splits) * sizeof(float2));
        const dim3 grid(unsigned(rows), unsigned(plan.splits));
        instance_norm_partial_grad_sums<kVec><<<grid, kBlock, 0, stream>>>(
            hw, plan.chunks_per_split, x, mean, dy, partials.as<float2>());
        cuda::check_launch("instance_norm_partial_grad_sums");
        instance_norm_merge_grad_sums<<<blocks_for(rows, kBlock), kBlock, 0, stream>>>(
            rows, int(plan.splits), rstd, partials.as<float2>(), row_sums);
        cuda::check_launch("instance_norm_merge_grad_sums");
        instance_norm_backward_apply<kVec><<<grid, kBlock, 0, stream>>>(
            C, hw, plan.chunks_per_split, inv_hw, x, gamma, mean, rstd, dy, row_sums, dx);
        cuda::check_launch("instance_norm_backward_apply");
    }
    if (want_params) {
        instance_norm_channel_grads<<<blocks_for(C, kBlock), kBlock, 0, stream>>>(
            N, C, row_sums, dgamma, dbeta);
        cuda::check_launch("instance_norm_channel_grads");
    }
}

}  // namespace

void CudaBackend::instance_norm_forward(int N, int C, int64_t HW, float eps, const float* x,
                                        const float* gamma, const float* beta, float* y,
                                        float* mean, float* rstd, bool relu) {
    const char* op = "instance_norm_forward";
    check_norm(op, N, C, HW);
    NST_CHECK(eps >= 0.0f, op, ": eps must be >= 0, got ", eps);
    const int64_t rows = int64_t(N) * C;
    if (rows == 0) return;
    NST_CHECK(x && y && mean && rstd, op, ": null x, y, mean or rstd for shape [", N, ", ", C,
              ", ", HW, "]");
    cudaStream_t stream = cuda::context(index_).stream;
    if (HW % 4 == 0 && aligned4(x) && aligned4(y))
        launch_forward<true>(stream, index_, rows, C, HW, eps, x, gamma, beta, y, mean, rstd, relu);
    else
        launch_forward<false>(stream, index_, rows, C, HW, eps, x, gamma, beta, y, mean, rstd, relu);
}

void CudaBackend::instance_norm_forward16(DType type, int N, int C, int64_t HW, float eps,
                                          const void* x, const void* gamma, const void* beta,
                                          void* y, bool relu) {
    const char* op = "instance_norm_forward16";
    check_type16(op, type);
    check_norm(op, N, C, HW);
    NST_CHECK(eps >= 0.0f, op, ": eps must be >= 0, got ", eps);
    const int64_t rows = int64_t(N) * C;
    if (rows == 0) return;
    NST_CHECK(x && y, op, ": null x or y for shape [", N, ", ", C, ", ", HW, "]");
    cudaStream_t stream = cuda::context(index_).stream;
    // The statistics are not kept (no backward), but the kernels write them.
    cuda::Workspace stats(index_, size_t(rows) * 2 * sizeof(float));
    float* mean = stats.as<float>();
    float* rstd = mean + rows;
    cuda::dispatch16(op, type, [&](auto t) {
        using T = decltype(t);
        const T* xt = static_cast<const T*>(x);
        T* yt = static_cast<T*>(y);
        const T* g = static_cast<const T*>(gamma);
        const T* b = static_cast<const T*>(beta);
        if (HW % 4 == 0 && aligned4(xt) && aligned4(yt))
            launch_forward<true>(stream, index_, rows, C, HW, eps, xt, g, b, yt, mean, rstd, relu);
        else
            launch_forward<false>(stream, index_, rows, C, HW, eps, xt, g, b, yt, mean, rstd, relu);
    });
}

void CudaBackend::instance_norm_backward(int N, int C, int64_t HW, const float* x,
                                         const float* gamma, const float* mean, const float* rstd,
                                         const float* dy, float* dx, float* dgamma,
                                         float* dbeta) {
    const char* op = "instance_norm_backward";
    check_norm(op, N, C, HW);
    cudaStream_t stream = cuda::context(index_).stream;
    if (int64_t(N) * C == 0) {
        // No rows: dgamma and dbeta are sums over nothing.
        if (C > 0) {
            if (dgamma) cuda::check(cudaMemsetAsync(dgamma, 0, size_t(C) * sizeof(float), stream),
                                    "instance_norm_backward: cudaMemsetAsync(dgamma)");
            if (dbeta) cuda::check(cudaMemsetAsync(dbeta, 0, size_t(C) * sizeof(float), stream),
                                   "instance_norm_backward: cudaMemsetAsync(dbeta)");
        }
        return;
    }
    NST_CHECK(x && mean && rstd && dy && dx, op, ": null x, mean, rstd, dy or dx for shape [", N,
              ", ", C, ", ", HW, "]");
    if (HW % 4 == 0 && aligned16(x) && aligned16(dy) && aligned16(dx))
        launch_backward<true>(stream, index_, N, C, HW, x, gamma, mean, rstd, dy, dx, dgamma,
                              dbeta);
    else
        launch_backward<false>(stream, index_, N, C, HW, x, gamma, mean, rstd, dy, dx, dgamma,
                               dbeta);
}

}  // namespace nst
