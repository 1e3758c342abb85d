// CPU padding, x [NC, H, W] -> y [NC, H+top+bottom, W+left+right], and the
// padding of the 2x nearest-upsampled x in one pass (upsample_pad).
//
// Both modes reduce to one index map per axis: output position -> source
// position, or -1 for a zero; for upsample_pad the map of the doubled axis,
// halved. Zero mode shifts (negative amounts crop);
// reflect mode mirrors about the edge without repeating it (numpy 'reflect').
// Backward is the transpose of that map written as a gather: each input pixel
// sums the (at most three per axis) output positions that read it, so every
// dx element is written exactly once and no atomics are needed on the GPU.
#include <cstdint>
#include <vector>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/cpu/storage16.hpp"

namespace nst {

namespace {

// Source index in [0, n) of output position o along an axis padded by
// `before`, or -1 when it reads a zero.
int source_index(int o, int n, int before, PadMode mode) {
    int i = o - before;
    if (mode == PadMode::Zero) return (i >= 0 && i < n) ? i : -1;
    if (i < 0) i = -i;                  // amounts <= n-1, so one
    if (i >= n) i = 2 * (n - 1) - i;    // reflection always lands inside
    return i;
}

std::vector<int> source_map(int n, int before, int after, PadMode mode) {
    std::vector<int> map(size_t(n + before + after));
    for (int o = 0; o < n + before + after; ++o) map[o] = source_index(o, n, before, mode);
    return map;
}

// For each source index, the output positions that read it: the inverse of
// source_map, as offsets/positions in CSR form.
struct Readers {
    std::vector<int> begin, at;
    Readers(const std::vector<int>& map, int n) : begin(size_t(n) + 1, 0) {
        for (int s : map)
            if (s >= 0) ++begin[s + 1];
        for (int i = 0; i < n; ++i) begin[i + 1] += begin[i];
        at.resize(begin[n]);
        std::vector<int> next(begin.begin(), begin.end() - 1);
        for (int o = 0; o < int(map.size()); ++o)
            if (map[o] >= 0) at[next[map[o]]++] = o;
    }
};

// y[i][oh][ow] = x[i][rows[oh]][cols[ow]], 0 where either map is -1.
void gather(int64_t NC, int H, int W, const std::vector<int>& rows, const std::vector<int>& cols,
            const float* x, float* y) {
    const int Ho = int(rows.size()), Wo = int(cols.size());
    cpu::for_each_plane(NC, int64_t(H) * W, [&](int64_t i) {
        const float* xi = x + i * H * W;
        float* yi = y + i * Ho * Wo;
        for (int oh = 0; oh < Ho; ++oh) {
            float* out = yi + int64_t(oh) * Wo;
            if (rows[oh] < 0) {
                for (int ow = 0; ow < Wo; ++ow) out[ow] = 0.0f;
                continue;
            }
            const float* in = xi + int64_t(rows[oh]) * W;
            for (int ow = 0; ow < Wo; ++ow) out[ow] = cols[ow] >= 0 ? in[cols[ow]] : 0.0f;
        }
    });
}

// The map of the 2x nearest-upsampled axis, as indices of the original one.
std::vector<int> halved(std::vector<int> map) {
    for (int& s : map) s = s < 0 ? -1 : s / 2;
    return map;
}

}  // namespace

void CpuBackend::pad_forward(int64_t NC, int H, int W, int top, int bottom, int left, int right,
                             PadMode mode, const float* x, float* y) {
    check_pad("pad_forward", NC, H, W, top, bottom, left, right, mode);
    gather(NC, H, W, source_map(H, top, bottom, mode), source_map(W, left, right, mode), x, y);
}

void CpuBackend::upsample_pad_forward(int64_t NC, int H, int W, int p, PadMode mode, const float* x,
                                      float* y) {
    check_upsample_pad("upsample_pad_forward", NC, H, W, p, mode);
    gather(NC, H, W, halved(source_map(2 * H, p, p, mode)), halved(source_map(2 * W, p, p, mode)), x,
           y);
}

void CpuBackend::pad_backward(int64_t NC, int H, int W, int top, int bottom, int left, int right,
                              PadMode mode, const float* dy, float* dx) {
    check_pad("pad_backward", NC, H, W, top, bottom, left, right, mode);
    const std::vector<int> rows = source_map(H, top, bottom, mode);
    const std::vector<int> cols = source_map(W, left, right, mode);
    const Readers row_readers(rows, H), col_readers(cols, W);
    const int Ho = int(rows.size()), Wo = int(cols.size());
    cpu::for_each_plane(NC, int64_t(H) * W, [&](int64_t i) {
        const float* dyi = dy + i * Ho * Wo;
        float* dxi = dx + i * H * W;
        for (int h = 0; h < H; ++h) {
            float* out = dxi + int64_t(h) * W;
            for (int w = 0; w < W; ++w) out[w] = 0.0f;
            for (int k = row_readers.begin[h]; k < row_readers.begin[h + 1]; ++k) {
                const float* g = dyi + int64_t(row_readers.at[k]) * Wo;
                for (int w = 0; w < W; ++w) {
                    float sum = 0.0f;
                    for (int j = col_readers.begin[w]; j < col_readers.begin[w + 1]; ++j)
                        sum += g[col_readers.at[j]];
                    out[w] += sum;
                }
            }
        }
    });
}

void CpuBackend::pad_forward16(DType type, int64_t NC, int H, int W, int top, int bottom, int left,
                               int right, PadMode mode, const void* x, void* y) {
    check_type16("pad_forward16", type);
    check_pad("pad_forward16", NC, H, W, top, bottom, left, right, mode);  // before sizing `out`
    std::vector<float> out(size_t(NC * (int64_t(H) + top + bottom) * (int64_t(W) + left + right)));
    pad_forward(NC, H, W, top, bottom, left, right, mode, cpu16::widen(type, x, NC * H * W).data(),
                out.data());
    cpu16::narrow(type, out, y);
}

void CpuBackend::upsample_pad_forward16(DType type, int64_t NC, int H, int W, int p, PadMode mode,
                                        const void* x, void* y) {
    check_type16("upsample_pad_forward16", type);
    check_upsample_pad("upsample_pad_forward16", NC, H, W, p, mode);
    std::vector<float> out(size_t(NC * (2 * int64_t(H) + 2 * int64_t(p)) * (2 * int64_t(W) + 2 * int64_t(p))));
    upsample_pad_forward(NC, H, W, p, mode, cpu16::widen(type, x, NC * H * W).data(), out.data());
    cpu16::narrow(type, out, y);
}

}  // namespace nst
