// CUDA Gram matrices: G[n] = scale * F[n] F[n]^T with F [N, C, HW] row-major,
// and the backward dF = scale * (dG + dG^T) F. Written here: no cuBLAS.
//
// What limits an fp32 SIMT product on an H100. An SM issues 4 warp FFMAs a
// clock, but shared memory returns 128 bytes (one register per lane) a clock.
// A thread's 8x8 micro-tile fed by float4 loads does 4 FFMAs per loaded
// register, so the loads take as long as the math: shared memory, not the
// FFMA units, sets the pace. The way out, as in CUTLASS's SIMT kernels: the
// hardware answers an LDS.128 in 2 passes instead of 4 when lanes T and T^1
// (or T and T^2) read the same address, so lanes are arranged so that lanes
// differing in bit 0 share the column operand and lanes differing in bit 1
// the row operand (every load then costs half). Loads from HBM are 16-byte
// cp.async (4-byte when HW % 4 != 0 or the buffer is misaligned).
//
// Forward. Only 64x64 tiles on or above the diagonal of the tile grid are
// computed; the lower triangle is mirrored (exactly: both from one sum). F
// rows are staged in shared memory as [channel][32 HW values] (128 bytes: 8
// quads of 16 bytes); a thread owns an 8x8 micro-tile and a k-group of quads,
// and the k-groups of a micro-tile are summed at the end by warp shuffles
// (recursive halving: a fixed tree). Off-diagonal tile: 16 2x2 blocks of
// micro-tiles x 4 k-groups (quads g and g+4). Diagonal tile (all of C = 64):
// warps 0-5 hold the 6 2x2 blocks strictly above the diagonal x 8 k-groups,
// warp 6 the 4 remaining micro-tiles above it, warp 7 the 8 diagonal
// micro-tiles, which compute only their upper triangle: 2080 multiply-adds
// per k, the 64*65/2 entries needed. The quad swizzle (quad position =
// q ^ swizzle(row / 8)) keeps every load and copy free of bank conflicts for
// these lane arrangements.
//
// Split-K, deterministic. Too few tiles fill 132 SMs, so HW is split: each
// block writes its partial tile to a workspace and a second kernel sums the
// partials in a fixed order (no float atomics), so G has the same bits every
// run. A single split writes G directly. The second kernel is a programmatic
// dependent launch, so its launch overlaps the first kernel's tail.
//
// Budget at C = 64, 512x512 on an H100: F is 67 MB, 22 us at 3 TB/s; the
// 2080 multiply-adds per k are 1.09 GFLOP, ~18 us of FFMA issue. Both only
// overlap if the loop issues little else: 2 16-byte copies per thread per
// 32-value chunk, 16 float4 loads per 256 FFMAs, one barrier per 1-2 chunks.
//
// Backward: dF = S F with S = scale (dG + dG^T), a plain [C,C] x [C,HW]
// product. S is formed once by a small kernel (rows padded to a multiple of 4
// floats, so all its loads are 16-byte copies); then a classic outer-product
// SGEMM with 8x8 micro-tiles in 32x64 warp tiles. Blocks are persistent: each
// walks several output tiles with one continuous cp.async pipeline, so short
// k loops (C = 64: one 64-deep product per tile) never drain the pipeline.
//
// The knobs, exposed as variants (gram_variants.hpp) so gram_bench can time
// them all. Forward: pipeline depth (3-8 chunk buffers: how much of F is in
// flight; C = 64 needs half the shared memory per buffer, so 8 still leave 2
// blocks per SM), chunks computed per barrier (1 or 2: barrier and loop
// overhead against latency), split count (blocks for 1, 2 or 4 rounds of the
// SMs: fewer partials against better balance of cheap diagonal tiles and full
// ones), and the dependent launch on or off. Backward: block tile (128x128,
// or 64x256 when C = 64 would leave half a 128-row tile empty), k-step and
// stages, persistence (blocks for 1 or 2 rounds, or one tile per block). The
// choice functions pick a variant per shape.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/gram_variants.hpp"

namespace nst {

namespace {

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

// Programmatic dependent launch (sm_90): a kernel launched with the
// programmatic-serialization attribute may start while the previous kernel in
// the stream is finishing (hiding the launch gap); it must call
// wait_for_previous_grid() before reading that kernel's output. The previous
// kernel calls allow_dependent_grid() to let it be scheduled. Both are no-ops
// for normal launches.
__device__ __forceinline__ void wait_for_previous_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void allow_dependent_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// ---- forward geometry ---------------------------------------------------------
constexpr int kTile = 64;            // output tile edge
constexpr int kChunk = 32;           // HW values per stage row: 8 quads, 128 bytes
constexpr int kFwdThreads = 256;     // 8 warps
// A stage holds both operands of an off-diagonal tile, or one when C <= 64
// (one diagonal tile: half the shared memory, so deeper pipelines fit).
constexpr int kStageFloats = 2 * kTile * kChunk;
constexpr int kOutStride = kTile + 1;  // epilogue tile rows (+1: no conflicts)
static_assert(kTile * kOutStride <= 3 * kTile * kChunk, "the epilogue tile fits in 3 small stages");
// The partial-sum workspace is capped at 64 MB (tile-splits of 16 KB each).
constexpr int64_t kMaxPartialTiles = 4096;

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

// Quad q of stage row `row` lies at quad position q ^ quad_swizzle(row / 8).
// Micro-tile m -> (m & 1) * 4 + m / 2: micro-tiles 2b and 2b+1 (the two rows
// of a 2x2 block) land in opposite halves of the 8 positions, which is what
// keeps the block-shaped lane groups below conflict-free.
__host__ __device__ inline int quad_swizzle(int micro) {
    micro &= 7;
    return ((micro & 1) << 2) | (micro >> 1);
}
__host__ __device__ inline int stage_offset(int row, int q) {
    return row * kChunk + ((q ^ quad_swizzle(row >> 3)) << 2);
}

// What one thread of the forward computes (uniform per warp except mi, mj, quad).
enum FwdRole { kOffDiag = 0, kDiagAbove = 1, kDiagOn = 2 };
struct FwdThread {
    int role;
    int mi, mj;  // micro-tile: tile rows 8mi.., columns 8mj..
    int quad;    // quad of every chunk (also quad + 4 for kOffDiag and kDiagOn)
    int kbit_lo, kbit_hi;  // lane bits [lo, hi) number the k-groups of a micro-tile
};
__host__ __device__ inline FwdThread fwd_thread(bool diag, int warp, int lane) {
    FwdThread t;
    const int b0 = lane & 1, b1 = (lane >> 1) & 1;  // row / column within a 2x2 block
    if (!diag) {  // 2x2 block (warp*2 + lane bit 4) of a 4x4 grid, k-group = lane bits 2-3
        const int block = warp * 2 + (lane >> 4);
        t = {kOffDiag, 2 * (block / 4) + b0, 2 * (block % 4) + b1, (lane >> 2) & 3, 2, 4};
    } else if (warp < 6) {  // blocks (0,1) (0,2) (0,3) (1,2) (1,3) (2,3), k-group = bits 2-4
        const int bi = warp < 3 ? 0 : (warp < 5 ? 1 : 2);
        const int bj = warp < 3 ? warp + 1 : (warp < 5 ? warp - 1 : 3);
        t = {kDiagAbove, 2 * bi + b0, 2 * bj + b1, lane >> 2, 2, 5};
    } else if (warp == 6) {  // micro-tiles (2b, 2b+1), b = lane bits 3-4, k-group = bits 0-2
        const int b = lane >> 3;
        t = {kDiagAbove, 2 * b, 2 * b + 1, lane & 7, 0, 3};
    } else {  // diagonal micro-tile m = lane bits 0-2, k-group = bits 3-4
        t = {kDiagOn, lane & 7, lane & 7, lane >> 3, 3, 5};
    }
    return t;
}

// acc[r][c] += the 4-term dot product of A row r and B row c at one quad
// (a, b: the quad of rows 8m.. of a micro-tile; rows are 32 floats apart).
__device__ __forceinline__ void quad_fma(const float* a, const float* b, float (&acc)[8][8]) {
    float4 bq[8];
#pragma unroll
    for (int c = 0; c < 8; ++c) bq[c] = *reinterpret_cast<const float4*>(b + c * kChunk);
#pragma unroll
    for (int r = 0; r < 8; ++r) {
        const float4 aq = *reinterpret_cast<const float4*>(a + r * kChunk);
#pragma unroll
        for (int c = 0; c < 8; ++c) {
            acc[r][c] = fmaf(aq.x, bq[c].x, acc[r][c]);
            acc[r][c] = fmaf(aq.y, bq[c].y, acc[r][c]);
            acc[r][c] = fmaf(aq.z, bq[c].z, acc[r][c]);
            acc[r][c] = fmaf(aq.w, bq[c].w, acc[r][c]);
        }
    }
}
// The same for a diagonal micro-tile (A == B): its upper triangle only.
__device__ __forceinline__ void quad_fma_upper(const float* x, float (&acc)[8][8]) {
    float4 xq[8];
#pragma unroll
    for (int r = 0; r < 8; ++r) xq[r] = *reinterpret_cast<const float4*>(x + r * kChunk);
#pragma unroll
    for (int r = 0; r < 8; ++r)
#pragma unroll
        for (int c = r; c < 8; ++c) {
            acc[r][c] = fmaf(xq[r].x, xq[c].x, acc[r][c]);
            acc[r][c] = fmaf(xq[r].y, xq[c].y, acc[r][c]);
            acc[r][c] = fmaf(xq[r].z, xq[c].z, acc[r][c]);
            acc[r][c] = fmaf(xq[r].w, xq[c].w, acc[r][c]);
        }
}

// Copies chunks (32 HW values) of the split into stages: rows 0-63 from the
// tile's row channels, rows 64-127 from its column channels (off-diagonal
// tiles only). Values at or past the split's end, and rows past C, are
// zero-filled. kVec: thread t copies quad t % 8 of rows t / 8 and t / 8 + 32
// (a warp fills 4 whole rows); else warp w copies rows 8w .. 8w+7 (one
// micro-tile, so one swizzle), lane = one float. State is kept small: the
// main loop's 8x8 accumulators and operands need ~100 of the 128 registers.
template <bool kVec>
struct ChunkLoader {
    const float* src_a;  // this thread's first row channel, at the split's first k
    const float* src_b;
    int64_t HW;
    int k_left;      // values of the split left from this thread's first column
    unsigned rows;   // bit i: copy i is inside C (else it zero-fills)
    unsigned issue;  // bit i: copy i exists (diagonal tiles copy only the first operand:
                     // their stages may have no room for a second)
    int dst;         // stage offset of this thread's first copy

    __device__ ChunkLoader(const float* Fn_split, int64_t HW_, int ti, int tj, int rows_a,
                           int rows_b, bool two, int k_len)
        : HW(HW_) {
        const int t = threadIdx.x;
        const int row0 = kVec ? t / 8 : 8 * (t / 32);
        const int col = kVec ? 4 * (t % 8) : t % 32;
        src_a = Fn_split + int64_t(ti * kTile + row0) * HW + col;
        src_b = Fn_split + int64_t(tj * kTile + row0) * HW + col;
        k_left = k_len - col;
        dst = kVec ? stage_offset(row0, t % 8) : stage_offset(row0, col / 4) + col % 4;
        rows = 0;
        constexpr int kCopies = kVec ? 2 : 8;  // per operand
        constexpr int kStep = kVec ? 32 : 1;   // rows between copies
        for (int i = 0; i < kCopies; ++i) {
            if (row0 + kStep * i < rows_a) rows |= 1u << i;
            if (two && row0 + kStep * i < rows_b) rows |= 1u << (kCopies + i);
        }
        issue = two ? (1u << (2 * kCopies)) - 1 : (1u << kCopies) - 1;
    }

    __device__ __forceinline__ void load(float* stage, int chunk, const float* dummy) const {
        const int k0 = chunk * kChunk;
        const bool k_ok = k0 < k_left;
        if constexpr (kVec) {
            const int q = threadIdx.x % 8, row1 = threadIdx.x / 8 + 32;
            const int dst1 = stage_offset(row1, q);  // row + 32: another swizzle
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                if (!((issue >> i) & 1u)) break;
                const bool ok = k_ok && ((rows >> i) & 1u);
                const float* src = (i < 2 ? src_a : src_b) + (i % 2) * 32 * HW + k0;
                const int d = (i % 2 ? dst1 : dst) + (i / 2) * kTile * kChunk;
                cp_async16(stage + d, ok ? src : dummy, ok);
            }
        } else {
#pragma unroll
            for (int i = 0; i < 16; ++i) {
                if (!((issue >> i) & 1u)) break;
                const bool ok = k_ok && ((rows >> i) & 1u);
                const float* src = (i < 8 ? src_a : src_b) + (i % 8) * HW + k0;
                cp_async4(stage + dst + (i % 8 + (i / 8) * kTile) * kChunk, ok ? src : dummy, ok);
            }
        }
    }
};

// One level of the k-group sum: the lanes differing in `bit` hold the same
// entries; entries first .. first + 2*kHalf - 1 are in acc's first 2*kHalf
// (row-major) slots. Afterwards this lane holds, in its first kHalf slots, the
// pair's sum of the lower half (bit clear) or the upper half (bit set), and
// `first` says where that half starts.
template <int kHalf>
__device__ __forceinline__ void halve_micro_tile(float (&acc)[8][8], int lane, int bit,
                                                 int& first) {
    const bool upper = (lane >> bit) & 1;
#pragma unroll
    for (int i = 0; i < kHalf; ++i) {
        float& lo = acc[i / 8][i % 8];
        const float hi = acc[(i + kHalf) / 8][(i + kHalf) % 8];
        const float mine = upper ? hi : lo, theirs = upper ? lo : hi;
        lo = mine + __shfl_xor_sync(0xffffffffu, theirs, 1 << bit);
    }
    if (upper) first += kHalf;
}

// One block = one (batch n, HW split, upper tile). Writes the unscaled
// partial tile to `partial` [N][splits][tiles][64][64] (diagonal tiles: the
// entries on and above the diagonal), or, when splits == 1, scale * the tile
// and its mirror image straight into G. kStages chunk buffers, of which
// kStep are computed per barrier while the other kStages - kStep load.
template <int kStages, int kStep, bool kVec>
__global__ void __launch_bounds__(kFwdThreads, 2)
    gram_forward_kernel(const float* __restrict__ F, int C, int HW, int tiles_per_row, int tiles,
                        int splits, int chunks_per_split, float scale,
                        float* __restrict__ partial, float* __restrict__ G) {
    static_assert(kStages >= 2 * kStep && kStages >= 3, "a step computes while the next loads");
    allow_dependent_grid();  // the reduce kernel may be scheduled as our last blocks run
    extern __shared__ float4 smem_f4[];
    float* smem = reinterpret_cast<float*>(smem_f4);

    // Tiles vary fastest: blocks running together read the same HW range of F.
    const int tile = static_cast<int>(blockIdx.x % unsigned(tiles));
    const int split = static_cast<int>((blockIdx.x / unsigned(tiles)) % unsigned(splits));
    const int n = static_cast<int>(blockIdx.x / unsigned(tiles) / unsigned(splits));
    int ti, tj;
    upper_coords(tile, tiles_per_row, ti, tj);
    const bool diag = ti == tj;
    const int rows_a = min(kTile, C - ti * kTile), rows_b = min(kTile, C - tj * kTile);

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int role, a_off, b_off;
    {
        const FwdThread me = fwd_thread(diag, warp, lane);
        role = me.role;
        a_off = stage_offset(8 * me.mi, me.quad);
        b_off = stage_offset((diag ? 0 : kTile) + 8 * me.mj, me.quad);
    }

    const int64_t k_begin = int64_t(split) * chunks_per_split * kChunk;
    const int k_len = int(min(int64_t(HW) - k_begin, int64_t(chunks_per_split) * kChunk));
    const int nchunks = (k_len + kChunk - 1) / kChunk;
    const ChunkLoader<kVec> loader(F + int64_t(n) * C * HW + k_begin, HW, ti, tj, rows_a, rows_b,
                                   !diag, k_len);
    // The epilogue re-reads these from shared memory instead of keeping them
    // in registers through the main loop.
    __shared__ int block_info[4];
    if (threadIdx.x == 0) {
        block_info[0] = n;
        block_info[1] = split;
        block_info[2] = tile;
        block_info[3] = ti * tiles_per_row + tj;
    }

    float acc[8][8];
#pragma unroll
    for (int r = 0; r < 8; ++r)
#pragma unroll
        for (int c = 0; c < 8; ++c) acc[r][c] = 0.0f;

    const int stage_floats = tiles_per_row == 1 ? kTile * kChunk : kStageFloats;
    for (int s = 0; s < kStages - kStep; ++s) {
        if (s < nchunks) loader.load(smem + s * stage_floats, s, F);
        cp_async_commit();
    }
    for (int c0 = 0; c0 < nchunks; c0 += kStep) {
        cp_async_wait<kStages - 2 * kStep>();  // this thread's copies of the step have landed
        __syncthreads();  // everyone's have, and the previous step's stages are free again
#pragma unroll
        for (int j = 0; j < kStep; ++j) {  // one copy group per chunk, even if empty
            const int next = c0 + kStages - kStep + j;
            if (next < nchunks) loader.load(smem + (next % kStages) * stage_floats, next, F);
            cp_async_commit();
        }
        // Not unrolled: overlapping two quads' operand loads would need more
        // than 128 registers (spills). The second quad of a chunk (q + 4)
        // sits at position ^ 4, i.e. float offset ^ 16.
        const int quads = role == kDiagAbove ? 1 : 2;
#pragma unroll 1
        for (int j = 0; j < kStep; ++j) {
            if (c0 + j >= nchunks) break;
            const float* stage = smem + ((c0 + j) % kStages) * stage_floats;
#pragma unroll 1
            for (int h = 0; h < quads; ++h) {
                const float* a = stage + (a_off ^ (16 * h));
                if (role != kDiagOn)
                    quad_fma(a, stage + (b_off ^ (16 * h)), acc);
                else
                    quad_fma_upper(a, acc);
            }
        }
    }
    cp_async_wait<0>();
    __syncthreads();  // the stages are free: reuse them for the output tile

    const int e_n = block_info[0], e_split = block_info[1], e_tile = block_info[2];
    const int e_ti = block_info[3] / tiles_per_row, e_tj = block_info[3] % tiles_per_row;
    const bool e_diag = e_ti == e_tj;
    const int e_rows_a = min(kTile, C - e_ti * kTile), e_rows_b = min(kTile, C - e_tj * kTile);
    const FwdThread em = fwd_thread(e_diag, warp, lane);  // recomputed: no registers held

    // Sum the k-groups of each micro-tile by recursive halving over the
    // k-group lane bits (2 or 3 of them): at each level a lane pair swaps
    // halves of what it holds and each keeps the sum of one half, so every
    // entry ends summed in a fixed tree in exactly one lane (56 shuffles
    // instead of 192 for 3 levels).
    int first = 0;  // entries first .. first + count - 1 of the 8x8 micro-tile (row-major)
    halve_micro_tile<32>(acc, lane, em.kbit_lo, first);
    halve_micro_tile<16>(acc, lane, em.kbit_lo + 1, first);
    const bool third = em.kbit_hi - em.kbit_lo == 3;
    if (third) halve_micro_tile<8>(acc, lane, em.kbit_lo + 2, first);
    float* out = smem;  // [64][kOutStride]
#pragma unroll
    for (int i = 0; i < 16; ++i) {
        if (third && i >= 8) break;
        const int r = (first + i) / 8, c = (first + i) % 8;
        if (em.role != kDiagOn || c >= r)
            out[(8 * em.mi + r) * kOutStride + 8 * em.mj + c] = acc[i / 8][i % 8];
    }
    __syncthreads();

    if (splits == 1) {
        float* Gn = G + int64_t(e_n) * C * C;
        for (int e = threadIdx.x; e < kTile * kTile; e += kFwdThreads) {
            const int la = e / kTile, lb = e % kTile;
            // the tile itself: G[ti*64 + la][tj*64 + lb]
            if (la < e_rows_a && lb < e_rows_b && (!e_diag || la <= lb))
                Gn[int64_t(e_ti * kTile + la) * C + e_tj * kTile + lb] =
                    scale * out[la * kOutStride + lb];
            // its mirror image: G[tj*64 + la][ti*64 + lb] = tile[lb][la]
            if (la < e_rows_b && lb < e_rows_a && (!e_diag || lb < la))
                Gn[int64_t(e_tj * kTile + la) * C + e_ti * kTile + lb] =
                    scale * out[lb * kOutStride + la];
        }
    } else {
        float* P = partial +
                   ((int64_t(e_n) * splits + e_split) * tiles + e_tile) * (kTile * kTile);
        for (int e = threadIdx.x; e < kTile * kTile; e += kFwdThreads)
            P[e] = out[(e / kTile) * kOutStride + e % kTile];
    }
}

// G = scale * sum over splits of the partial tiles, in a fixed order. One
// block = one half row (32 entries) of one tile; warp w of W sums splits
// w, w + W, ... in four interleaved accumulators (loads in flight), then warp
// 0 adds the W warp sums in order. Each entry on or above the diagonal writes
// itself and its mirror.
constexpr int kReduceMaxWarps = 16;
constexpr int kReduceSegments = kTile * kTile / 32;  // blocks per tile

__global__ void __launch_bounds__(kReduceMaxWarps * 32)
    gram_reduce_kernel(const float* __restrict__ partial, int C, int tiles_per_row, int tiles,
                       int splits, float scale, float* __restrict__ G) {
    __shared__ float warp_sums[kReduceMaxWarps][32];
    const int seg = static_cast<int>(blockIdx.x % unsigned(kReduceSegments));
    const int tile = static_cast<int>((blockIdx.x / unsigned(kReduceSegments)) % unsigned(tiles));
    const int n = static_cast<int>(blockIdx.x / unsigned(kReduceSegments) / unsigned(tiles));
    int ti, tj;
    upper_coords(tile, tiles_per_row, ti, tj);
    const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int la = seg / 2, lb0 = (seg % 2) * 32, lb = lb0 + lane;
    const int i = ti * kTile + la, j = tj * kTile + lb;
    if (i >= C || (ti == tj && la > lb0 + 31)) return;  // the whole block has nothing to do
    const bool needed = j < C && (ti != tj || la <= lb);
    wait_for_previous_grid();  // the partials are complete

    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    if (needed) {
        const int64_t stride = int64_t(tiles) * kTile * kTile;
        const float* src = partial + (int64_t(n) * splits * tiles + tile) * (kTile * kTile) +
                           la * kTile + lb;
        int s = warp;
        for (; s + 3 * warps < splits; s += 4 * warps) {
            s0 += src[s * stride];
            s1 += src[(s + warps) * stride];
            s2 += src[(s + 2 * warps) * stride];
            s3 += src[(s + 3 * warps) * stride];
        }
        for (; s < splits; s += warps) s0 += src[s * stride];
    }
    warp_sums[warp][lane] = (s0 + s1) + (s2 + s3);
    __syncthreads();
    if (warp != 0 || !needed) return;
    float total = warp_sums[0][lane];
    for (int w = 1; w < warps; ++w) total += warp_sums[w][lane];
    float* Gn = G + int64_t(n) * C * C;
    Gn[int64_t(i) * C + j] = scale * total;
    if (i != j) Gn[int64_t(j) * C + i] = scale * total;
}

// ---- backward -----------------------------------------------------------------
constexpr int kBwdThreads = 256;

// S [N][C][ld] = scale (dG + dG^T), columns C..ld-1 zero. 32x32 tiles through
// shared memory so both dG reads are coalesced.
__global__ void __launch_bounds__(256)
    gram_symmetrize_kernel(const float* __restrict__ dG, int C, int ld, float scale,
                           float* __restrict__ S) {
    __shared__ float t[32][33];  // dG[j0 + y][i0 + x], transposed on the way out
    allow_dependent_grid();
    const int i0 = blockIdx.y * 32, j0 = blockIdx.x * 32;
    const float* dGn = dG + int64_t(blockIdx.z) * C * C;
    float* Sn = S + int64_t(blockIdx.z) * C * ld;
    for (int y = threadIdx.y; y < 32; y += 8) {
        const int r = j0 + y, c = i0 + threadIdx.x;
        t[y][threadIdx.x] = r < C && c < C ? dGn[int64_t(r) * C + c] : 0.0f;
    }
    __syncthreads();
    for (int y = threadIdx.y; y < 32; y += 8) {
        const int i = i0 + y, j = j0 + threadIdx.x;
        if (i >= C || j >= ld) continue;
        Sn[int64_t(i) * ld + j] =
            j < C ? scale * (dGn[int64_t(i) * C + j] + t[threadIdx.x][y]) : 0.0f;
    }
}

// dF = S F. Block tile kBM x kBN (kBM = 32 x warps along C, kBN = 64 x warps
// along HW), 8x8 per thread as two 4-row and two 4-column halves of a 32x64
// warp tile. Lane layout 4 x 8 interleaved: row group li = lane bits 0 and 4,
// column group lj = lane bits 1-3, so lanes T and T^2 share their S loads and
// T and T^1 their F loads (2-pass LDS.128, see the top comment). The block
// walks tiles blockIdx.x, + gridDim.x, ...; the cp.async pipeline runs over
// (tile, k-step) pairs without draining between tiles.
template <int kWarpsI, int kBK, int kStages, bool kVec>
__global__ void __launch_bounds__(kBwdThreads, 2)
    gram_backward_kernel(const float* __restrict__ S, int ld, const float* __restrict__ F,
                         int C, int HW, int tiles_i, int tiles_j, int64_t tiles_total,
                         float* __restrict__ dF) {
    constexpr int kWarpsJ = 8 / kWarpsI;
    constexpr int kBM = 32 * kWarpsI, kBN = 64 * kWarpsJ;
    constexpr int kStageA = kBK * kBM, kStageB = kBK * kBN;
    extern __shared__ float4 smem_f4[];
    float* As = reinterpret_cast<float*>(smem_f4);  // [stage][k][i]
    float* Bs = As + kStages * kStageA;             // [stage][k][j]

    const int t = threadIdx.x, warp = t / 32, lane = t % 32;
    const int li = (lane & 1) | ((lane >> 4) << 1), lj = (lane >> 1) & 7;
    const int wi = (warp / kWarpsJ) * 32, wj = (warp % kWarpsJ) * 64;

    const int nk = (C + kBK - 1) / kBK;
    if (int64_t(blockIdx.x) >= tiles_total) return;
    wait_for_previous_grid();  // S is complete
    const int64_t my_tiles = (tiles_total - 1 - blockIdx.x) / gridDim.x + 1;
    const int64_t steps = my_tiles * nk;
    const int64_t per_batch = int64_t(tiles_i) * tiles_j;

    auto load_step = [&](int64_t step, int buf) {
        const int64_t tile = blockIdx.x + (step / nk) * gridDim.x;
        const int k0 = int(step % nk) * kBK;
        const int n = int(tile / per_batch);
        const int rem = int(tile % per_batch);
        const int i0 = (rem / tiles_j) * kBM, j0 = (rem % tiles_j) * kBN;
        float* a_dst = As + buf * kStageA;
        float* b_dst = Bs + buf * kStageB;
        const float* Sn = S + int64_t(n) * C * ld;
        const float* Fn = F + int64_t(n) * C * HW;
#pragma unroll
        for (int p = 0; p < kStageA / 4 / kBwdThreads; ++p) {  // S rows: ld % 4 == 0
            const int q = t + p * kBwdThreads;
            const int k = q / (kBM / 4), i = (q % (kBM / 4)) * 4;
            const bool ok = k0 + k < C && i0 + i < ld;
            cp_async16(a_dst + k * kBM + i, ok ? Sn + int64_t(k0 + k) * ld + i0 + i : S, ok);
        }
        if constexpr (kVec) {
#pragma unroll
            for (int p = 0; p < kStageB / 4 / kBwdThreads; ++p) {
                const int q = t + p * kBwdThreads;
                const int k = q / (kBN / 4), j = (q % (kBN / 4)) * 4;
                const bool ok = k0 + k < C && j0 + j < HW;
                cp_async16(b_dst + k * kBN + j, ok ? Fn + int64_t(k0 + k) * HW + j0 + j : F, ok);
            }
        } else {
#pragma unroll 4
            for (int p = 0; p < kStageB / kBwdThreads; ++p) {
                const int e = t + p * kBwdThreads;
                const int k = e / kBN, j = e % kBN;
                const bool ok = k0 + k < C && j0 + j < HW;
                cp_async4(b_dst + k * kBN + j, ok ? Fn + int64_t(k0 + k) * HW + j0 + j : F, ok);
            }
        }
    };

    float acc[8][8];
#pragma unroll
    for (int r = 0; r < 8; ++r)
#pragma unroll
        for (int c = 0; c < 8; ++c) acc[r][c] = 0.0f;

    for (int s = 0; s < kStages - 1; ++s) {
        if (s < steps) load_step(s, s);
        cp_async_commit();
    }
    for (int64_t step = 0; step < steps; ++step) {
        cp_async_wait<kStages - 2>();
        __syncthreads();
        const int64_t next = step + kStages - 1;
        if (next < steps) load_step(next, int(next % kStages));
        cp_async_commit();

        const int buf = int(step % kStages);
        const float* a = As + buf * kStageA + wi + 4 * li;
        const float* b = Bs + buf * kStageB + wj + 4 * lj;
#pragma unroll
        for (int k = 0; k < kBK; ++k) {
            const float4 a0 = *reinterpret_cast<const float4*>(a + k * kBM);
            const float4 a1 = *reinterpret_cast<const float4*>(a + k * kBM + 16);
            const float4 b0 = *reinterpret_cast<const float4*>(b + k * kBN);
            const float4 b1 = *reinterpret_cast<const float4*>(b + k * kBN + 32);
            const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
            for (int r = 0; r < 8; ++r)
#pragma unroll
                for (int c = 0; c < 8; ++c) acc[r][c] = fmaf(av[r], bv[c], acc[r][c]);
        }

        if (step % nk == nk - 1) {  // the tile is complete: write it, start the next
            const int64_t tile = blockIdx.x + (step / nk) * gridDim.x;
            const int n = int(tile / per_batch);
            const int rem = int(tile % per_batch);
            const int i0 = (rem / tiles_j) * kBM + wi + 4 * li;
            const int j0 = (rem % tiles_j) * kBN + wj + 4 * lj;
            float* dFn = dF + int64_t(n) * C * HW;
#pragma unroll
            for (int r = 0; r < 8; ++r) {
                const int i = i0 + (r < 4 ? r : 16 + r - 4);
                if (i < C) {
                    float* out = dFn + int64_t(i) * HW;
#pragma unroll
                    for (int h = 0; h < 2; ++h) {
                        const int j = j0 + 32 * h;
                        if constexpr (kVec) {
                            if (j < HW)
                                *reinterpret_cast<float4*>(out + j) =
                                    make_float4(acc[r][4 * h], acc[r][4 * h + 1],
                                                acc[r][4 * h + 2], acc[r][4 * h + 3]);
                        } else {
#pragma unroll
                            for (int c = 0; c < 4; ++c)
                                if (j + c < HW) out[j + c] = acc[r][4 * h + c];
                        }
                    }
                }
#pragma unroll
                for (int c = 0; c < 8; ++c) acc[r][c] = 0.0f;
            }
        }
    }
    cp_async_wait<0>();
}

// ---- launch helpers (host) ------------------------------------------------------
bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Per device and kernel, once: allow its dynamic shared memory beyond 48 KB
// (up to smem_max); per shared memory size, once: how many blocks fit on an SM.
int blocks_per_sm(int device, const void* kernel, int threads, size_t smem, size_t smem_max,
                  const char* op) {
    static std::mutex mutex;
    static std::map<std::pair<int, const void*>, bool> attribute_set;
    static std::map<std::tuple<int, const void*, size_t>, int> cache;
    std::lock_guard<std::mutex> lock(mutex);
    const auto key = std::make_tuple(device, kernel, smem);
    const auto found = cache.find(key);
    if (found != cache.end()) return found->second;
    if (!attribute_set[std::make_pair(device, kernel)]) {
        cuda::check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         int(smem_max)),
                    op);
        attribute_set[std::make_pair(device, kernel)] = true;
    }
    int blocks = 0;
    cuda::check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, smem), op);
    blocks = std::max(blocks, 1);
    cache.emplace(key, blocks);
    return blocks;
}

// Programmatic dependent launches need compute capability 9.0 (asked once per device).
bool has_dependent_launch(int device) {
    static std::mutex mutex;
    static std::map<int, bool> cache;
    std::lock_guard<std::mutex> lock(mutex);
    const auto found = cache.find(device);
    if (found != cache.end()) return found->second;
    int major = 0;
    cuda::check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
                "gram: cudaDeviceGetAttribute(ComputeCapabilityMajor)");
    return cache[device] = major >= 9;
}

// Launch `kernel` on the stream; with `dependent`, as a programmatic dependent
// launch of the kernel before it (see wait_for_previous_grid).
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
            bool dependent, const char* name, Args... args) {
    cudaLaunchConfig_t config = {};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = stream;
    cudaLaunchAttribute attribute[1];
    attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[0].val.programmaticStreamSerializationAllowed = 1;
    config.attrs = attribute;
    config.numAttrs = dependent ? 1 : 0;
    cuda::check(cudaLaunchKernelEx(&config, kernel, Params(args)...), name);
    cuda::check_launch(name);
}

// ---- forward variants -------------------------------------------------------------
struct ForwardVariant {
    const char* name;
    int stages;         // chunk buffers
    int step;           // chunks computed per barrier
    double rounds;      // blocks for this many rounds of the SMs (sets the split count)
    bool pdl;           // reduce kernel as a programmatic dependent launch
    bool scalar_loads;  // force the 4-byte copy path (to time it; normally only odd HW)
};
constexpr ForwardVariant kForwardVariants[] = {
    {"fwd s3 k1 r1", 3, 1, 1.0, true, false},  {"fwd s3 k1 r2", 3, 1, 2.0, true, false},
    {"fwd s4 k1 r1", 4, 1, 1.0, true, false},  {"fwd s4 k1 r2", 4, 1, 2.0, true, false},
    {"fwd s4 k1 r4", 4, 1, 4.0, true, false},  {"fwd s6 k1 r1", 6, 1, 1.0, true, false},
    {"fwd s6 k1 r2", 6, 1, 2.0, true, false},  {"fwd s4 k2 r1", 4, 2, 1.0, true, false},
    {"fwd s4 k2 r2", 4, 2, 2.0, true, false},  {"fwd s6 k2 r1", 6, 2, 1.0, true, false},
    {"fwd s6 k2 r2", 6, 2, 2.0, true, false},  {"fwd s6 k2 r4", 6, 2, 4.0, true, false},
    {"fwd s8 k2 r1", 8, 2, 1.0, true, false},  {"fwd s8 k2 r2", 8, 2, 2.0, true, false},
    {"fwd s8 k2 r1 no-pdl", 8, 2, 1.0, false, false},
    {"fwd s4 k1 r2 no-pdl", 4, 1, 2.0, false, false},
    {"fwd s4 k1 r1 4B-loads", 4, 1, 1.0, true, true},
};
constexpr int kForwardVariantCount = int(sizeof(kForwardVariants) / sizeof(kForwardVariants[0]));

struct ForwardPlan {
    int tiles_per_row = 0;
    int tiles = 0;
    int splits = 1;
    int chunks_per_split = 0;
};

// As many splits as give `rounds` rounds of blocks over the SMs' slots (never
// more blocks than that: a last partial round would run alone), at least one
// chunk each, and the partial workspace capped.
ForwardPlan plan_forward(int N, int C, int HW, int slots, double rounds) {
    ForwardPlan p;
    p.tiles_per_row = (C + kTile - 1) / kTile;
    p.tiles = p.tiles_per_row * (p.tiles_per_row + 1) / 2;
    const int64_t nchunks = (int64_t(HW) + kChunk - 1) / kChunk;
    const int64_t tile_blocks = int64_t(N) * p.tiles;
    int64_t splits = int64_t(rounds * slots) / tile_blocks;
    splits = std::min<int64_t>({splits, nchunks, kMaxPartialTiles / tile_blocks});
    splits = std::max<int64_t>(splits, 1);
    const int64_t cps = (nchunks + splits - 1) / splits;
    p.chunks_per_split = int(cps);
    p.splits = int((nchunks + cps - 1) / cps);
    return p;
}

// What a forward launch needs besides the kernel's template parameters.
struct ForwardArgs {
    int device;
    cudaStream_t stream;
    int sm_count;
    double rounds;
    bool pdl;
    int N, C, HW;
    float scale;
    const float* F;
    float* G;
};

template <int kStages, int kStep, bool kVec>
void launch_forward(const ForwardArgs& a) {
    auto kernel = gram_forward_kernel<kStages, kStep, kVec>;
    const size_t stage_bytes = (a.C <= kTile ? kTile * kChunk : kStageFloats) * sizeof(float);
    const size_t smem = kStages * stage_bytes;
    const int per_sm = blocks_per_sm(a.device, reinterpret_cast<const void*>(kernel), kFwdThreads,
                                     smem, kStages * kStageFloats * sizeof(float),
                                     "gram_forward: kernel setup");
    const ForwardPlan plan = plan_forward(a.N, a.C, a.HW, per_sm * a.sm_count, a.rounds);
    const int64_t blocks = int64_t(a.N) * plan.splits * plan.tiles;
    const int64_t reduce_blocks = int64_t(a.N) * plan.tiles * kReduceSegments;
    NST_CHECK(blocks <= INT_MAX && reduce_blocks <= INT_MAX, "gram_forward: shape [", a.N, ", ",
              a.C, ", ", a.HW, "] too large");
    // A single split writes G directly; otherwise partial tiles go to the workspace.
    cuda::Workspace partial(a.device, plan.splits > 1
                                          ? size_t(blocks) * kTile * kTile * sizeof(float)
                                          : 0);
    launch(kernel, dim3(unsigned(blocks)), dim3(kFwdThreads), smem, a.stream, false,
           "gram_forward_kernel", a.F, a.C, a.HW, plan.tiles_per_row, plan.tiles, plan.splits,
           plan.chunks_per_split, a.scale, partial.as<float>(), a.G);
    if (plan.splits > 1) {
        const int warps = std::min(kReduceMaxWarps, plan.splits);
        const float* partials = partial.as<float>();
        launch(gram_reduce_kernel, dim3(unsigned(reduce_blocks)), dim3(warps * 32), 0, a.stream,
               a.pdl && has_dependent_launch(a.device), "gram_reduce_kernel", partials, a.C,
               plan.tiles_per_row, plan.tiles, plan.splits, a.scale, a.G);
    }
}

template <int kStages, int kStep>
void launch_forward_vec(bool vec, const ForwardArgs& a) {
    if (vec)
        launch_forward<kStages, kStep, true>(a);
    else
        launch_forward<kStages, kStep, false>(a);
}

// ---- backward variants ------------------------------------------------------------
struct BackwardVariant {
    const char* name;
    int config;  // kernel instantiation, see gram_backward_variant
    int rounds;  // persistent blocks for this many rounds of the SMs; 0: one tile per block
    bool pdl;    // the product kernel as a programmatic dependent launch of the S kernel
    bool scalar_loads;
};
constexpr BackwardVariant kBackwardVariants[] = {
    {"bwd 128x128 k16 s4 p1", 0, 1, true, false},
    {"bwd 128x128 k16 s4 p2", 0, 2, true, false},
    {"bwd 128x128 k16 s4 p0", 0, 0, true, false},
    {"bwd 128x128 k32 s3 p1", 1, 1, true, false},
    {"bwd 128x128 k32 s3 p0", 1, 0, true, false},
    {"bwd 64x256 k16 s4 p1", 2, 1, true, false},
    {"bwd 64x256 k16 s4 p2", 2, 2, true, false},
    {"bwd 64x256 k16 s4 p0", 2, 0, true, false},
    {"bwd 64x256 k16 s3 p1", 3, 1, true, false},
    {"bwd 128x128 k16 s4 p1 no-pdl", 0, 1, false, false},
    {"bwd 128x128 k16 s4 p1 4B-loads", 0, 1, true, true},
};
constexpr int kBackwardVariantCount =
    int(sizeof(kBackwardVariants) / sizeof(kBackwardVariants[0]));

// What a backward launch needs besides the kernel's template parameters.
struct BackwardArgs {
    int device;
    cudaStream_t stream;
    int sm_count;
    int rounds;
    bool pdl;
    int N, C, HW;
    const float* S;  // [N][C][ld]
    int ld;
    const float* F;
    float* dF;
};

template <int kWarpsI, int kBK, int kStages, bool kVec>
void launch_backward(const BackwardArgs& a) {
    auto kernel = gram_backward_kernel<kWarpsI, kBK, kStages, kVec>;
    constexpr int kBM = 32 * kWarpsI, kBN = 64 * (8 / kWarpsI);
    constexpr size_t smem = size_t(kStages) * kBK * (kBM + kBN) * sizeof(float);
    const int per_sm = blocks_per_sm(a.device, reinterpret_cast<const void*>(kernel), kBwdThreads,
                                     smem, smem, "gram_backward: kernel setup");
    const int tiles_i = (a.C + kBM - 1) / kBM, tiles_j = (a.HW + kBN - 1) / kBN;
    const int64_t tiles = int64_t(a.N) * tiles_i * tiles_j;
    const int64_t grid =
        a.rounds > 0 ? std::min<int64_t>(tiles, int64_t(a.rounds) * per_sm * a.sm_count) : tiles;
    NST_CHECK(grid <= INT_MAX, "gram_backward: shape [", a.N, ", ", a.C, ", ", a.HW,
              "] too large");
    launch(kernel, dim3(unsigned(grid)), dim3(kBwdThreads), smem, a.stream,
           a.pdl && has_dependent_launch(a.device), "gram_backward_kernel", a.S, a.ld, a.F, a.C,
           a.HW, tiles_i, tiles_j, tiles, a.dF);
}

template <int kWarpsI, int kBK, int kStages>
void launch_backward_vec(bool vec, const BackwardArgs& a) {
    if (vec)
        launch_backward<kWarpsI, kBK, kStages, true>(a);
    else
        launch_backward<kWarpsI, kBK, kStages, false>(a);
}

// The variant named `name` (the choice functions name theirs).
template <class Variant, size_t kCount>
int variant_index(const Variant (&table)[kCount], const char* name) {
    for (size_t i = 0; i < kCount; ++i)
        if (std::strcmp(table[i].name, name) == 0) return int(i);
    nst::fail(std::string("gram: no variant named ") + name);
}

}  // namespace

// ---- variant entry points (gram_variants.hpp) ---------------------------------------
namespace cuda {

int gram_forward_variant_count() { return kForwardVariantCount; }

const char* gram_forward_variant_name(int variant) {
    NST_CHECK(variant >= 0 && variant < kForwardVariantCount, "gram_forward: no variant ",
              variant);
    return kForwardVariants[variant].name;
}

// The production choice: the first rule whose C and N*HW bounds the shape is
// within. A starting heuristic, to be set from gram_bench --sweep on the
// H100: C = 64 is bound by reading F, so the deepest pipeline; larger C mixes
// cheap diagonal tiles with full ones, so two rounds of blocks even out the
// SMs, except when HW is too short for two rounds of useful splits.
struct ShapeRule {
    int max_c;
    int64_t max_n_hw;  // N * HW
    const char* variant;
};
// From gram_bench --sweep on an H100 (2026-11-25, bench/RESULTS.md): the
// fastest valid variant per VGG-19 tap shape.
constexpr ShapeRule kForwardRules[] = {
    {64, INT64_MAX, "fwd s3 k1 r1"},
    {INT_MAX, 1024, "fwd s8 k2 r1"},  // few tiles: deeper pipeline, fewer barriers
    {128, INT64_MAX, "fwd s3 k1 r2"},
    {INT_MAX, INT64_MAX, "fwd s3 k1 r1"},
};
constexpr ShapeRule kBackwardRules[] = {
    {64, INT64_MAX, "bwd 64x256 k16 s4 p1"},  // a 128-row tile would be half empty
    {INT_MAX, 4096, "bwd 128x128 k16 s4 p1 no-pdl"},
    {INT_MAX, 65536, "bwd 128x128 k32 s3 p1"},
    {INT_MAX, INT64_MAX, "bwd 128x128 k32 s3 p0"},
};

template <class Variant, size_t kVariants, size_t kRules>
int choose(const Variant (&variants)[kVariants], const ShapeRule (&rules)[kRules], int N, int C,
           int64_t HW) {
    for (const ShapeRule& rule : rules)
        if (C <= rule.max_c && int64_t(N) * HW <= rule.max_n_hw)
            return variant_index(variants, rule.variant);
    return 0;
}

int gram_forward_choice(int /*device*/, int N, int C, int64_t HW) {
    return choose(kForwardVariants, kForwardRules, N, C, HW);
}

void gram_forward_variant(int variant, int device, int N, int C, int64_t HW, float scale,
                          const float* F, float* G) {
    check_gram("gram_forward", N, C, HW);
    NST_CHECK(variant >= 0 && variant < kForwardVariantCount, "gram_forward: no variant ",
              variant);
    if (N == 0 || C == 0) return;
    NST_CHECK(G != nullptr && (F != nullptr || HW == 0), "gram_forward: null buffer for [", N,
              ", ", C, ", ", HW, "]");
    Context& ctx = context(device);
    if (HW == 0) {  // an empty sum
        check(cudaMemsetAsync(G, 0, size_t(N) * C * C * sizeof(float), ctx.stream),
              "gram_forward: cudaMemsetAsync");
        return;
    }
    const ForwardVariant& v = kForwardVariants[variant];
    const bool vec = !v.scalar_loads && HW % 4 == 0 && aligned16(F);
    const ForwardArgs a{device, ctx.stream, std::max(ctx.sm_count, 1), v.rounds, v.pdl, N, C,
                        int(HW), scale, F, G};
    if (v.stages == 3)
        launch_forward_vec<3, 1>(vec, a);
    else if (v.stages == 4 && v.step == 1)
        launch_forward_vec<4, 1>(vec, a);
    else if (v.stages == 6 && v.step == 1)
        launch_forward_vec<6, 1>(vec, a);
    else if (v.stages == 4)
        launch_forward_vec<4, 2>(vec, a);
    else if (v.stages == 6)
        launch_forward_vec<6, 2>(vec, a);
    else
        launch_forward_vec<8, 2>(vec, a);
}

int gram_backward_variant_count() { return kBackwardVariantCount; }

const char* gram_backward_variant_name(int variant) {
    NST_CHECK(variant >= 0 && variant < kBackwardVariantCount, "gram_backward: no variant ",
              variant);
    return kBackwardVariants[variant].name;
}

int gram_backward_choice(int /*device*/, int N, int C, int64_t HW) {
    return choose(kBackwardVariants, kBackwardRules, N, C, HW);
}

void gram_backward_variant(int variant, int device, int N, int C, int64_t HW, float scale,
                           const float* F, const float* dG, float* dF) {
    check_gram("gram_backward", N, C, HW);
    NST_CHECK(variant >= 0 && variant < kBackwardVariantCount, "gram_backward: no variant ",
              variant);
    if (N == 0 || C == 0 || HW == 0) return;
    NST_CHECK(F != nullptr && dG != nullptr && dF != nullptr,
              "gram_backward: null buffer for [", N, ", ", C, ", ", HW, "]");
    NST_CHECK(N <= 65535, "gram_backward: batch ", N, " too large (at most 65535)");
    Context& ctx = context(device);
    const BackwardVariant& v = kBackwardVariants[variant];
    const int ld = (C + 3) / 4 * 4;  // S rows padded to whole 16-byte quads
    Workspace S(device, size_t(N) * C * ld * sizeof(float));
    const dim3 sym_grid(unsigned((ld + 31) / 32), unsigned((C + 31) / 32), unsigned(N));
    launch(gram_symmetrize_kernel, sym_grid, dim3(32, 8), 0, ctx.stream, false,
           "gram_symmetrize_kernel", dG, C, ld, scale, S.as<float>());
    const bool vec = !v.scalar_loads && HW % 4 == 0 && aligned16(F) && aligned16(dF);
    const BackwardArgs a{device, ctx.stream, std::max(ctx.sm_count, 1), v.rounds, v.pdl, N, C,
                         int(HW), S.as<float>(), ld, F, dF};
    switch (v.config) {
        case 0:
            launch_backward_vec<4, 16, 4>(vec, a);
            break;
        case 1:
            launch_backward_vec<4, 32, 3>(vec, a);
            break;
        case 2:
            launch_backward_vec<2, 16, 4>(vec, a);
            break;
        default:
            launch_backward_vec<2, 16, 3>(vec, a);
            break;
    }
}

}  // namespace cuda

void CudaBackend::gram_forward(int N, int C, int64_t HW, float scale, const float* F, float* G) {
    cuda::gram_forward_variant(cuda::gram_forward_choice(index_, N, C, HW), index_, N, C, HW,
                               scale, F, G);
}

void CudaBackend::gram_backward(int N, int C, int64_t HW, float scale, const float* F,
                                const float* dG, float* dF) {
    cuda::gram_backward_variant(cuda::gram_backward_choice(index_, N, C, HW), index_, N, C, HW,
                                scale, F, dG, dF);
}

}  // namespace nst
