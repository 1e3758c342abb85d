// CUDA Gram matrices: G[n] = scale * F[n] F[n]^T with F [N, C, HW] row-major,
// and the backward dF = scale * (dG + dG^T) F. Written here: no cuBLAS.
//
// Forward: why symmetric micro-tiles. G is symmetric, so only the 64x64
// output tiles on or above the diagonal of the tile grid are computed and the
// lower triangle is mirrored (exactly: both halves come from one sum). A tile
// is 64 per-thread 8x8 micro-tiles; in a diagonal tile only 36 of them are
// needed, and inside the 8 diagonal micro-tiles only 36 of 64 entries. The
// saving only counts if whole warps have less to do, not single lanes, so the
// 256 threads (8 warps) of a block split the work by k as well as by
// micro-tile: in a diagonal tile, warps 0-6 hold the 28 micro-tiles above the
// diagonal x 8 k-groups (one 4-wide quad of every 32-wide HW chunk each) and
// warp 7 holds the 8 diagonal micro-tiles x 4 k-groups (two quads each) and
// computes only their upper triangles: 2080 multiply-adds per k, exactly the
// 64*65/2 entries needed, with all warps evenly loaded. Off-diagonal tiles
// use 64 micro-tiles x 4 k-groups. The k-groups are summed through shared
// memory in a fixed order at the end. At C = 64 (one diagonal tile) this
// halves the flops of SGEMM, leaving the HBM read of F as the main limit; a
// 4-stage cp.async pipeline overlaps that read with the math.
//
// Loads are 4-byte cp.async, a warp reading 32 consecutive HW values of one
// channel: coalesced for any HW and any alignment (no separate odd-HW path),
// zero-filled past C and HW, and as cheap per byte in L1 wavefronts as 16-byte
// copies. Shared memory keeps F's [channel][hw] layout, 128 bytes a row, each
// 16-byte quad XOR-swizzled with the row's micro-tile index, so the copies in
// and the float4 reads of 8 rows at one quad are free of bank conflicts.
// 8 warps and at most 128 registers give 2 blocks (16 warps) per SM.
//
// Why split-K with a fixed-order reduction. One tile over all of HW is far
// too little work for 132 SMs, so HW is split: each block writes its partial
// tile to a workspace and a second kernel sums the partials in split order
// (no float atomics), so G has the same bits every run. The split count comes
// from a small cost model of SM count and occupancy (fill every SM, prefer
// two blocks per SM, charge per-block overhead and partial-sum traffic); the
// workspace is capped, and a single split writes G directly.
//
// Backward: dF = S F with S = scale (dG + dG^T) is a [C,C] x [C,HW] product,
// compute-bound for large C: a classic 128x128 (64x128 for C <= 64) block
// tile of 8x8 micro-tiles, double-buffered. The S tile is formed on the fly
// while staging it into shared memory (dG[k][i] + dG[i][k], the transposed
// read hitting L1); F tiles come in by cp.async, 16 bytes when HW % 4 == 0 and
// the pointers are aligned, 4 bytes otherwise.
#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <mutex>

#include "core/cuda_context.hpp"
#include "core/error.hpp"
#include "kernels/cuda/cuda_backend.hpp"

namespace nst {

namespace {

// ---- forward geometry -----------------------------------------------------------
constexpr int kTile = 64;       // output tile edge
constexpr int kChunk = 32;      // HW values per pipeline stage (one 128-byte row)
constexpr int kStages = 4;      // cp.async pipeline depth
constexpr int kThreads = 256;   // 8 warps
constexpr int kAboveMicro = 28;   // diagonal tile: micro-tiles above the diagonal ...
constexpr int kAboveGroups = 8;   // ... x 8 k-groups of one quad = warps 0-6
constexpr int kAboveThreads = kAboveMicro * kAboveGroups;  // 224
constexpr int kOnGroups = 4;      // 8 diagonal micro-tiles x 4 groups of two quads = warp 7
constexpr int kOffGroups = 4;     // off-diagonal tile: 64 micro-tiles x 4 groups of two quads
constexpr int kDumpStride = 68;   // floats per thread when summing k-groups (+4: no conflicts)
constexpr int kTileFloats = kTile * kTile;
constexpr int kStageFloats = 2 * kTile * kChunk;  // both operands of one stage
static_assert(kAboveThreads + 8 * kOnGroups == kThreads, "diagonal tile fills the block");
static_assert(kTile * kOffGroups == kThreads, "off-diagonal tile fills the block");
constexpr size_t kSmemBytes =
    std::max(kStages * kStageFloats, kThreads * kDumpStride) * sizeof(float);
// The partial-sum workspace is capped at 64 MB (tile-splits of 16 KB each).
constexpr int64_t kMaxPartialTiles = 4096;
// Split-count cost model (units: one chunk of one block sharing its SM).
constexpr double kBlockOverheadChunks = 3.0;   // pipeline fill + epilogue per block
constexpr double kReducePerBlock = 1.0 / 180;  // reading one 16 KB partial tile
constexpr double kReduceLaunch = 2.0;          // the second kernel's launch and latency

// ---- cp.async -----------------------------------------------------------------
// src_bytes 0 reads nothing and zero-fills the destination.
__device__ __forceinline__ void cp_async4(void* smem_dst, const void* gmem_src, bool valid) {
    const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(gmem_src),
                 "r"(valid ? 4 : 0)
                 : "memory");
}
__device__ __forceinline__ void cp_async16(void* smem_dst, const void* gmem_src, bool valid) {
    const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem_src),
                 "r"(valid ? 16 : 0)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// ---- index helpers ------------------------------------------------------------
// Upper triangle (diagonal included) of an n x n grid, row by row: p -> (i, j).
__host__ __device__ inline void upper_coords(int p, int n, int& i, int& j) {
    const double b = 2.0 * n + 1.0;  // row i starts at i*n - i*(i-1)/2
    int r = static_cast<int>((b - sqrt(b * b - 8.0 * p)) / 2.0);
    r = r < 0 ? 0 : (r > n - 1 ? n - 1 : r);
    while (r > 0 && r * n - r * (r - 1) / 2 > p) --r;
    while (r < n - 1 && (r + 1) * n - (r + 1) * r / 2 <= p) ++r;
    i = r;
    j = r + (p - (r * n - r * (r - 1) / 2));
}
// Strictly above the diagonal of the 8x8 micro-tile grid: (mi < mj) <-> 0..27.
__host__ __device__ inline int above_index(int mi, int mj) {
    return mi * 8 - mi * (mi + 1) / 2 + (mj - mi - 1);
}
__host__ __device__ inline void above_coords(int p, int& mi, int& mj) {
    mi = 0;
    while (p >= 7 - mi) {
        p -= 7 - mi;
        ++mi;
    }
    mj = mi + 1 + p;
}

// Float offset of (row, k) in a stage: rows of 32 floats, the 16-byte quad
// k/4 XOR-swizzled with row/8 (the micro-tile index). Rows 0..63 are the
// tile's row channels, 64..127 its column channels (off-diagonal tiles).
__host__ __device__ inline int stage_offset(int row, int k) {
    return row * kChunk + ((((k >> 2) ^ (row >> 3)) & 7) << 2) + (k & 3);
}

// Copy HW values [koff, koff + 32) of the split into one stage. Warp w copies
// stage rows 8w..8w+7 (and 64+8w.. for the column channels of off-diagonal
// tiles), lane = k, so all its rows share one swizzle and the shared address
// is one base plus constants. src_a / src_b point at channel 8w of the row /
// column channels at the split's first k + lane; rows_a / rows_b count the
// channels from there on that are inside C.
__device__ __forceinline__ void load_stage(float* stage, const float* src_a, const float* src_b,
                                           int HW, int koff, int k_len, int rows_a, int rows_b,
                                           bool two_operands, int warp, int lane,
                                           const float* fallback) {
    const bool k_ok = koff + lane < k_len;
    float* dst = stage + stage_offset(8 * warp, lane);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const bool ok = k_ok && i < rows_a;
        cp_async4(dst + i * kChunk, ok ? src_a + int64_t(i) * HW + koff : fallback, ok);
    }
    if (two_operands) {
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const bool ok = k_ok && i < rows_b;
            cp_async4(dst + (kTile + i) * kChunk, ok ? src_b + int64_t(i) * HW + koff : fallback,
                      ok);
        }
    }
}

// acc[r][c] += sum over the 4 k of quad q of A[a_row0 + r][k] * B[b_row0 + c][k]
// (rows multiples of 8, so the swizzle is the same for all 8 rows).
__device__ __forceinline__ void accumulate_quad(const float* stage, int a_row0, int b_row0,
                                                int q, float (&acc)[8][8]) {
    const float* a_base = stage + stage_offset(a_row0, 4 * q);
    const float* b_base = stage + stage_offset(b_row0, 4 * q);
    float4 b[8];
#pragma unroll
    for (int c = 0; c < 8; ++c) b[c] = *reinterpret_cast<const float4*>(b_base + c * kChunk);
#pragma unroll
    for (int r = 0; r < 8; ++r) {
        const float4 a = *reinterpret_cast<const float4*>(a_base + r * kChunk);
#pragma unroll
        for (int c = 0; c < 8; ++c) {
            acc[r][c] = fmaf(a.x, b[c].x, acc[r][c]);
            acc[r][c] = fmaf(a.y, b[c].y, acc[r][c]);
            acc[r][c] = fmaf(a.z, b[c].z, acc[r][c]);
            acc[r][c] = fmaf(a.w, b[c].w, acc[r][c]);
        }
    }
}

// The same for a diagonal micro-tile (rows == columns): the upper triangle only.
__device__ __forceinline__ void accumulate_quad_upper(const float* stage, int row0, int q,
                                                      float (&acc)[8][8]) {
    const float* base = stage + stage_offset(row0, 4 * q);
    float4 x[8];
#pragma unroll
    for (int r = 0; r < 8; ++r) x[r] = *reinterpret_cast<const float4*>(base + r * kChunk);
#pragma unroll
    for (int r = 0; r < 8; ++r)
#pragma unroll
        for (int c = r; c < 8; ++c) {
            acc[r][c] = fmaf(x[r].x, x[c].x, acc[r][c]);
            acc[r][c] = fmaf(x[r].y, x[c].y, acc[r][c]);
            acc[r][c] = fmaf(x[r].z, x[c].z, acc[r][c]);
            acc[r][c] = fmaf(x[r].w, x[c].w, acc[r][c]);
        }
}

// One block = one (batch n, HW split, upper tile). Writes the unscaled
// partial tile to `partial` [N][splits][tiles][64][64] (entries on or above
// the diagonal only, for diagonal tiles), or, when splits == 1, scale * the
// tile straight into G together with its mirror image.
__global__ void __launch_bounds__(kThreads, 2)
    gram_partial_kernel(const float* __restrict__ F, int C, int HW, int tiles_per_row, int tiles,
                        int splits, int chunks_per_split, float scale,
                        float* __restrict__ partial, float* __restrict__ G) {
    extern __shared__ float4 smem_f4[];
    float* smem = reinterpret_cast<float*>(smem_f4);

    // Tiles vary fastest: blocks running together read the same HW range of F.
    const int tile = static_cast<int>(blockIdx.x % unsigned(tiles));
    const int split = static_cast<int>((blockIdx.x / unsigned(tiles)) % unsigned(splits));
    const int n = static_cast<int>(blockIdx.x / unsigned(tiles) / unsigned(splits));
    int ti, tj;
    upper_coords(tile, tiles_per_row, ti, tj);
    const bool diag = ti == tj;
    const int rows_a = min(kTile, C - ti * kTile);
    const int rows_b = min(kTile, C - tj * kTile);
    // The epilogue re-reads these from shared memory instead of keeping them
    // in registers through the main loop (which needs all 128).
    __shared__ int block_info[5];
    if (threadIdx.x == 0) {
        block_info[0] = n;
        block_info[1] = split;
        block_info[2] = tile;
        block_info[3] = ti;
        block_info[4] = tj;
    }

    // This thread's micro-tile, k-group and role (uniform per warp).
    const int t = threadIdx.x, warp = t / 32, lane = t % 32;
    // k-group g covers quads g and g + 4 of every chunk, except above the
    // diagonal of a diagonal tile: quad g alone (8 groups).
    int g, mi, mj;
    bool upper_only = false;  // a diagonal micro-tile of a diagonal tile
    if (!diag) {
        g = t / kTile;
        mi = (t % kTile) / 8;
        mj = t % 8;
    } else if (t < kAboveThreads) {
        g = t / kAboveMicro;
        above_coords(t % kAboveMicro, mi, mj);
    } else {
        g = (t - kAboveThreads) / 8;
        mi = mj = (t - kAboveThreads) % 8;
        upper_only = true;
    }
    const int a_row0 = 8 * mi;
    const int b_row0 = (diag ? 0 : kTile) + 8 * mj;
    const bool live = 8 * mj < rows_b;  // skip micro-tiles wholly past C (rows_a is 64 or mi <= mj)

    const int64_t k_begin = int64_t(split) * chunks_per_split * kChunk;
    const int k_len = int(min(int64_t(HW) - k_begin, int64_t(chunks_per_split) * kChunk));
    const int nchunks = (k_len + kChunk - 1) / kChunk;
    const float* Fn = F + int64_t(n) * C * HW;
    const float* src_a = Fn + int64_t(ti * kTile + 8 * warp) * HW + k_begin + lane;
    const float* src_b = Fn + int64_t(tj * kTile + 8 * warp) * HW + k_begin + lane;
    const int warp_rows_a = rows_a - 8 * warp, warp_rows_b = rows_b - 8 * warp;

    float acc[8][8];
#pragma unroll
    for (int r = 0; r < 8; ++r)
#pragma unroll
        for (int c = 0; c < 8; ++c) acc[r][c] = 0.0f;

    for (int s = 0; s < kStages - 1; ++s) {
        if (s < nchunks)
            load_stage(smem + s * kStageFloats, src_a, src_b, HW, s * kChunk, k_len, warp_rows_a,
                       warp_rows_b, !diag, warp, lane, F);
        cp_async_commit();
    }
    for (int chunk = 0; chunk < nchunks; ++chunk) {
        cp_async_wait<kStages - 2>();  // this thread's copies of `chunk` have landed
        __syncthreads();               // everyone's have, and stage chunk-1 is free again
        const int next = chunk + kStages - 1;
        if (next < nchunks)
            load_stage(smem + (next % kStages) * kStageFloats, src_a, src_b, HW, next * kChunk,
                       k_len, warp_rows_a, warp_rows_b, !diag, warp, lane, F);
        cp_async_commit();
        const float* stage = smem + (chunk % kStages) * kStageFloats;
        if (live) {
            if (upper_only) {
                accumulate_quad_upper(stage, a_row0, g, acc);
                accumulate_quad_upper(stage, a_row0, g + 4, acc);
            } else {
                accumulate_quad(stage, a_row0, b_row0, g, acc);
                if (!diag) accumulate_quad(stage, a_row0, b_row0, g + 4, acc);
            }
        }
    }
    cp_async_wait<0>();
    __syncthreads();

    // Sum the k-groups in a fixed order: every thread parks its micro-tile
    // in shared memory (slot = thread index), then each thread sums whole
    // tile entries, lanes along a row so the output writes coalesce.
    float* slot = smem + threadIdx.x * kDumpStride;
#pragma unroll
    for (int r = 0; r < 8; ++r)
#pragma unroll
        for (int c = 0; c < 8; c += 4)
            *reinterpret_cast<float4*>(slot + r * 8 + c) =
                make_float4(acc[r][c], acc[r][c + 1], acc[r][c + 2], acc[r][c + 3]);
    __syncthreads();

    const int e_n = block_info[0], e_split = block_info[1], e_tile = block_info[2];
    const int e_ti = block_info[3], e_tj = block_info[4];
    const bool e_diag = e_ti == e_tj;
    const int lb = threadIdx.x % kTile, ej = lb / 8, cj = lb % 8;
    const int j = e_tj * kTile + lb;
    float* out = partial + ((int64_t(e_n) * splits + e_split) * tiles + e_tile) * kTileFloats;
    float* Gn = G + int64_t(e_n) * C * C;
    for (int la = threadIdx.x / kTile; la < kTile; la += kThreads / kTile) {
        const int i = e_ti * kTile + la, ei = la / 8;
        if (i >= C || j >= C || (e_diag && la > lb)) continue;
        const float* src = smem + (la % 8) * 8 + cj;
        float sum;
        if (!e_diag) {  // slot of (group g, micro-tile m) = g * 64 + m
            src += (ei * 8 + ej) * kDumpStride;
            sum = src[0];
#pragma unroll
            for (int gg = 1; gg < kOffGroups; ++gg) sum += src[gg * kTile * kDumpStride];
        } else if (ei < ej) {  // slot = g * 28 + m
            src += above_index(ei, ej) * kDumpStride;
            sum = src[0];
#pragma unroll
            for (int gg = 1; gg < kAboveGroups; ++gg) sum += src[gg * kAboveMicro * kDumpStride];
        } else {  // slot = 224 + g * 8 + d
            src += (kAboveThreads + ei) * kDumpStride;
            sum = src[0];
#pragma unroll
            for (int gg = 1; gg < kOnGroups; ++gg) sum += src[gg * 8 * kDumpStride];
        }
        if (splits > 1) {
            out[la * kTile + lb] = sum;
        } else {
            Gn[int64_t(i) * C + j] = scale * sum;
            if (i != j) Gn[int64_t(j) * C + i] = scale * sum;
        }
    }
}

// G = scale * sum over splits of the partial tiles, in split order.
// One block = one half row (32 entries) of one tile; its 8 warps take every
// 8th split, then warp 0 adds the 8 warp sums in order. Each entry on or
// above the diagonal writes itself and its mirror.
constexpr int kReduceThreads = 256;
constexpr int kReduceWarps = kReduceThreads / 32;
constexpr int kReduceSegments = kTileFloats / 32;  // blocks per tile

__global__ void __launch_bounds__(kReduceThreads)
    gram_reduce_kernel(const float* __restrict__ partial, int C, int tiles_per_row, int tiles,
                       int splits, float scale, float* __restrict__ G) {
    __shared__ float warp_sums[kReduceWarps][32];
    const int seg = static_cast<int>(blockIdx.x % unsigned(kReduceSegments));
    const int tile = static_cast<int>((blockIdx.x / unsigned(kReduceSegments)) % unsigned(tiles));
    const int n = static_cast<int>(blockIdx.x / unsigned(kReduceSegments) / unsigned(tiles));
    int ti, tj;
    upper_coords(tile, tiles_per_row, ti, tj);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int la = seg / 2, lb0 = (seg % 2) * 32, lb = lb0 + lane;
    const int i = ti * kTile + la, j = tj * kTile + lb;
    if (i >= C || (ti == tj && la > lb0 + 31)) return;  // the whole block has nothing to do
    const bool needed = j < C && (ti != tj || la <= lb);

    float sum = 0.0f;
    if (needed) {
        const int64_t stride = int64_t(tiles) * kTileFloats;
        const float* src =
            partial + (int64_t(n) * splits * tiles + tile) * kTileFloats + la * kTile + lb;
#pragma unroll 4
        for (int s = warp; s < splits; s += kReduceWarps) sum += src[s * stride];
    }
    warp_sums[warp][lane] = sum;
    __syncthreads();
    if (warp != 0 || !needed) return;
    float total = warp_sums[0][lane];
#pragma unroll
    for (int w = 1; w < kReduceWarps; ++w) total += warp_sums[w][lane];
    float* Gn = G + int64_t(n) * C * C;
    Gn[int64_t(i) * C + j] = scale * total;
    if (i != j) Gn[int64_t(j) * C + i] = scale * total;
}

// ---- forward launch plan (host) ------------------------------------------------
struct ForwardPlan {
    int tiles_per_row = 0;
    int tiles = 0;
    int splits = 1;
    int chunks_per_split = 0;
};

// Split count minimising the modelled time (see the top comment): the busiest
// SM runs q = ceil(blocks / SMs) blocks, blocks_per_sm at a time; a partial
// round is cheaper than a full one but not proportionally (a lone block hides
// latency worse). Each block costs its chunks plus a fixed overhead.
ForwardPlan plan_forward(int N, int C, int HW, int sm_count, int blocks_per_sm) {
    ForwardPlan p;
    p.tiles_per_row = (C + kTile - 1) / kTile;
    p.tiles = p.tiles_per_row * (p.tiles_per_row + 1) / 2;
    const int64_t nchunks = (int64_t(HW) + kChunk - 1) / kChunk;
    const int64_t tile_blocks = int64_t(N) * p.tiles;
    const int64_t max_splits = std::max<int64_t>(
        1, std::min<int64_t>({nchunks, kMaxPartialTiles / tile_blocks,
                              int64_t(4) * sm_count * blocks_per_sm}));
    double best = 0.0;
    int64_t best_splits = 1;
    for (int64_t s = 1; s <= max_splits; ++s) {
        const int64_t cps = (nchunks + s - 1) / s;
        if ((nchunks + cps - 1) / cps != s) continue;  // same chunks per split as a smaller s
        const int64_t blocks = tile_blocks * s;
        const int64_t q = (blocks + sm_count - 1) / sm_count;
        const int64_t full = q / blocks_per_sm, rem = q % blocks_per_sm;
        const double rounds =
            double(full) + (rem ? (rem + 0.2 * double(blocks_per_sm - rem)) / blocks_per_sm : 0.0);
        double cost = rounds * (double(cps) + kBlockOverheadChunks);
        if (s > 1) cost += double(blocks) * kReducePerBlock + kReduceLaunch;
        if (s == 1 || cost < best - 1e-9) {
            best = cost;
            best_splits = s;
        }
    }
    const int64_t cps = (nchunks + best_splits - 1) / best_splits;
    p.chunks_per_split = int(cps);
    p.splits = int((nchunks + cps - 1) / cps);
    return p;
}

// Per device, once: allow the >48 KB of dynamic shared memory, and ask how
// many blocks then fit on one SM.
int forward_blocks_per_sm(int device) {
    constexpr int kMaxDevices = 64;
    static std::array<std::once_flag, kMaxDevices> once;
    static std::array<int, kMaxDevices> blocks_per_sm{};
    NST_CHECK(device >= 0 && device < kMaxDevices, "gram_forward: bad device ", device);
    std::call_once(once[device], [device] {
        cuda::check(cudaFuncSetAttribute(gram_partial_kernel,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         int(kSmemBytes)),
                    "gram_forward: cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
        int blocks = 0;
        cuda::check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, gram_partial_kernel,
                                                                  kThreads, kSmemBytes),
                    "gram_forward: cudaOccupancyMaxActiveBlocksPerMultiprocessor");
        blocks_per_sm[device] = std::max(blocks, 1);
    });
    return blocks_per_sm[device];
}

// ---- backward: dF = scale * (dG + dG^T) F ---------------------------------------
constexpr int kBwdN = 128;  // HW columns per block
constexpr int kBwdK = 8;    // channels (the reduction dimension) per stage

// Block tile kBM channels x 128 HW, kBM * 2 threads each owning an 8x8
// micro-tile split into two 4-row and two 4-column halves (rows ty*4 and
// kBM/2 + ty*4, columns tx*4 and 64 + tx*4), so a warp's float4 shared reads
// are conflict-free. Stage k+1 loads (S into registers, F by cp.async) while
// stage k is multiplied.
template <int kBM, bool kVec>
__global__ void __launch_bounds__(kBM * 2, 512 / (kBM * 2))
    gram_backward_kernel(const float* __restrict__ F, const float* __restrict__ dG, int C,
                         int HW, float scale, float* __restrict__ dF) {
    constexpr int kBwdThreads = kBM * 2;
    constexpr int kAPerThread = kBM * kBwdK / kBwdThreads;  // 4
    __shared__ __align__(16) float As[2][kBwdK][kBM];    // As[k][i] = S[i][k] = S[k][i]
    __shared__ __align__(16) float Bs[2][kBwdK][kBwdN];  // Bs[k][j] = F[k][j]

    const int t = threadIdx.x, tx = t % 16, ty = t / 16;
    const int i0 = blockIdx.y * kBM;
    const int j0 = blockIdx.x * kBwdN;
    const float* Fn = F + int64_t(blockIdx.z) * C * HW;
    const float* dGn = dG + int64_t(blockIdx.z) * C * C;
    float* dFn = dF + int64_t(blockIdx.z) * C * HW;

    float a_stage[kAPerThread];
    auto load_s = [&](int k0) {  // S[i][k] for this thread's (k, i) of the stage
#pragma unroll
        for (int r = 0; r < kAPerThread; ++r) {
            const int e = t + r * kBwdThreads;
            const int i = i0 + e % kBM, k = k0 + e / kBM;
            a_stage[r] = (i < C && k < C)
                             ? __ldg(dGn + int64_t(k) * C + i) + __ldg(dGn + int64_t(i) * C + k)
                             : 0.0f;
        }
    };
    auto store_s = [&](int buf) {
#pragma unroll
        for (int r = 0; r < kAPerThread; ++r) {
            const int e = t + r * kBwdThreads;
            As[buf][e / kBM][e % kBM] = a_stage[r];
        }
    };
    auto load_f = [&](int k0, int buf) {
        if constexpr (kVec) {  // HW % 4 == 0, so j < HW implies j + 3 < HW
#pragma unroll
            for (int r = 0; r < kBwdK * kBwdN / 4 / kBwdThreads; ++r) {
                const int q = t + r * kBwdThreads;
                const int kk = q / (kBwdN / 4), jj = (q % (kBwdN / 4)) * 4;
                const bool ok = k0 + kk < C && j0 + jj < HW;
                cp_async16(&Bs[buf][kk][jj], ok ? Fn + int64_t(k0 + kk) * HW + j0 + jj : Fn, ok);
            }
        } else {  // thread t copies column t % 128 of every (kBwdThreads / 128)-th row
            constexpr int kRowStep = kBwdThreads / kBwdN;
            const int jj = t % kBwdN;
            const bool j_ok = j0 + jj < HW;
            const float* src = Fn + int64_t(k0 + t / kBwdN) * HW + j0 + jj;
#pragma unroll
            for (int kk = t / kBwdN; kk < kBwdK; kk += kRowStep, src += int64_t(kRowStep) * HW) {
                const bool ok = j_ok && k0 + kk < C;
                cp_async4(&Bs[buf][kk][jj], ok ? src : Fn, ok);
            }
        }
        cp_async_commit();
    };

    float acc[8][8];
#pragma unroll
    for (int r = 0; r < 8; ++r)
#pragma unroll
        for (int c = 0; c < 8; ++c) acc[r][c] = 0.0f;

    const int nk = (C + kBwdK - 1) / kBwdK;
    load_f(0, 0);
    load_s(0);
    store_s(0);
    cp_async_wait<0>();
    __syncthreads();
    for (int kc = 0; kc < nk; ++kc) {
        const int buf = kc & 1;
        const bool more = kc + 1 < nk;
        if (more) {  // into the other buffer: everyone finished reading it last round
            load_f((kc + 1) * kBwdK, buf ^ 1);
            load_s((kc + 1) * kBwdK);
        }
#pragma unroll
        for (int k = 0; k < kBwdK; ++k) {
            const float4 a0 = *reinterpret_cast<const float4*>(&As[buf][k][ty * 4]);
            const float4 a1 = *reinterpret_cast<const float4*>(&As[buf][k][kBM / 2 + ty * 4]);
            const float4 b0 = *reinterpret_cast<const float4*>(&Bs[buf][k][tx * 4]);
            const float4 b1 = *reinterpret_cast<const float4*>(&Bs[buf][k][kBwdN / 2 + tx * 4]);
            const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
            for (int r = 0; r < 8; ++r)
#pragma unroll
                for (int c = 0; c < 8; ++c) acc[r][c] = fmaf(a[r], b[c], acc[r][c]);
        }
        if (more) {
            store_s(buf ^ 1);
            cp_async_wait<0>();
        }
        __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < 8; ++r) {
        const int i = i0 + (r < 4 ? ty * 4 + r : kBM / 2 + ty * 4 + r - 4);
        if (i >= C) continue;
        float* out = dFn + int64_t(i) * HW;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int j = j0 + h * (kBwdN / 2) + tx * 4;
            if constexpr (kVec) {
                if (j < HW)
                    *reinterpret_cast<float4*>(out + j) =
                        make_float4(scale * acc[r][4 * h], scale * acc[r][4 * h + 1],
                                    scale * acc[r][4 * h + 2], scale * acc[r][4 * h + 3]);
            } else {
#pragma unroll
                for (int c = 0; c < 4; ++c)
                    if (j + c < HW) out[j + c] = scale * acc[r][4 * h + c];
            }
        }
    }
}

template <int kBM>
void launch_gram_backward(bool vec, dim3 grid, cudaStream_t stream, const float* F,
                          const float* dG, int C, int HW, float scale, float* dF) {
    if (vec)
        gram_backward_kernel<kBM, true><<<grid, kBM * 2, 0, stream>>>(F, dG, C, HW, scale, dF);
    else
        gram_backward_kernel<kBM, false><<<grid, kBM * 2, 0, stream>>>(F, dG, C, HW, scale, dF);
    cuda::check_launch("gram_backward_kernel");
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

void check_shape(const char* op, int N, int C, int64_t HW) {
    NST_CHECK(N >= 0 && C >= 0 && HW >= 0, op, ": bad shape [", N, ", ", C, ", ", HW, "]");
    NST_CHECK(HW <= INT_MAX, op, ": HW ", HW, " too large (at most 2^31 - 1)");
}

}  // namespace

void CudaBackend::gram_forward(int N, int C, int64_t HW, float scale, const float* F, float* G) {
    check_shape("gram_forward", N, C, HW);
    if (N == 0 || C == 0) return;
    NST_CHECK(G != nullptr && (F != nullptr || HW == 0), "gram_forward: null buffer for [", N,
              ", ", C, ", ", HW, "]");
    cuda::Context& ctx = cuda::context(index_);
    if (HW == 0) {  // an empty sum
        cuda::check(cudaMemsetAsync(G, 0, size_t(N) * C * C * sizeof(float), ctx.stream),
                    "gram_forward: cudaMemsetAsync");
        return;
    }
    const ForwardPlan plan = plan_forward(N, C, int(HW), std::max(ctx.sm_count, 1),
                                          forward_blocks_per_sm(index_));
    const int64_t blocks = int64_t(N) * plan.splits * plan.tiles;
    const int64_t reduce_blocks = int64_t(N) * plan.tiles * kReduceSegments;
    NST_CHECK(reduce_blocks <= INT_MAX, "gram_forward: shape [", N, ", ", C, ", ", HW,
              "] too large");

    // A single split writes G directly; otherwise partial tiles go to the workspace.
    cuda::Workspace partial(index_, plan.splits > 1 ? size_t(blocks) * kTileFloats * sizeof(float)
                                                    : 0);
    gram_partial_kernel<<<unsigned(blocks), kThreads, kSmemBytes, ctx.stream>>>(
        F, C, int(HW), plan.tiles_per_row, plan.tiles, plan.splits, plan.chunks_per_split, scale,
        partial.as<float>(), G);
    cuda::check_launch("gram_partial_kernel");
    if (plan.splits > 1) {
        gram_reduce_kernel<<<unsigned(reduce_blocks), kReduceThreads, 0, ctx.stream>>>(
            partial.as<float>(), C, plan.tiles_per_row, plan.tiles, plan.splits, scale, G);
        cuda::check_launch("gram_reduce_kernel");
    }
}

void CudaBackend::gram_backward(int N, int C, int64_t HW, float scale, const float* F,
                                const float* dG, float* dF) {
    check_shape("gram_backward", N, C, HW);
    if (N == 0 || C == 0 || HW == 0) return;
    NST_CHECK(F != nullptr && dG != nullptr && dF != nullptr,
              "gram_backward: null buffer for [", N, ", ", C, ", ", HW, "]");
    const int bm = C <= 64 ? 64 : 128;
    NST_CHECK(N <= 65535, "gram_backward: batch ", N, " too large (at most 65535)");
    cuda::Context& ctx = cuda::context(index_);
    const bool vec = HW % 4 == 0 && aligned16(F) && aligned16(dF);
    const dim3 grid(unsigned((HW + kBwdN - 1) / kBwdN), unsigned((C + bm - 1) / bm), unsigned(N));
    if (bm == 64)
        launch_gram_backward<64>(vec, grid, ctx.stream, F, dG, C, int(HW), scale, dF);
    else
        launch_gram_backward<128>(vec, grid, ctx.stream, F, dG, C, int(HW), scale, dF);
}

}  // namespace nst
