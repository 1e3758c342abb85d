// CPU 2x upsampling, nearest and bilinear, x [NC, H, W] -> y [NC, 2H, 2W].
//
// Bilinear follows PyTorch align_corners=False exactly, including its edge
// rule: the source coordinate (dst + 0.5) / 2 - 0.5 is clamped at 0 and the
// second tap clamped at size-1. The taps and weights depend only on the
// destination row or column, so they are tabulated once per call (separable)
// and the same tables drive forward and backward. Backward scatters each
// output gradient onto its (at most four) taps; sequential on the CPU, so
// the order of the sums is fixed and the result deterministic.
#include <algorithm>
#include <vector>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/parallel.hpp"

namespace nst {

namespace {

// Along one axis of input size n: destination i reads i0[i] with weight
// l0[i] and i1[i] with weight l1[i].
struct BilinearTaps {
    std::vector<int> i0, i1;
    std::vector<float> l0, l1;

    explicit BilinearTaps(int n)
        : i0(2 * size_t(n)), i1(2 * size_t(n)), l0(2 * size_t(n)), l1(2 * size_t(n)) {
        for (int d = 0; d < 2 * n; ++d) {
            const float src = std::max(0.5f * (float(d) + 0.5f) - 0.5f, 0.0f);
            const int lo = int(src);
            i0[d] = lo;
            i1[d] = lo < n - 1 ? lo + 1 : lo;
            l1[d] = src - float(lo);
            l0[d] = 1.0f - l1[d];
        }
    }
};

}  // namespace

void CpuBackend::upsample_nearest2x_forward(int64_t NC, int H, int W, const float* x, float* y) {
    check_planes("upsample_nearest2x_forward", NC, H, W);
    const int Wo = 2 * W;
    cpu::for_each_plane(NC, int64_t(H) * W, [&](int64_t i) {
        const float* xi = x + i * H * W;
        float* yi = y + i * 4 * H * W;
        for (int h = 0; h < H; ++h) {
            const float* in = xi + int64_t(h) * W;
            float* out = yi + int64_t(2 * h) * Wo;
            for (int w = 0; w < W; ++w) out[2 * w] = out[2 * w + 1] = in[w];
            std::copy(out, out + Wo, out + Wo);
        }
    });
}

void CpuBackend::upsample_nearest2x_backward(int64_t NC, int H, int W, const float* dy,
                                             float* dx) {
    check_planes("upsample_nearest2x_backward", NC, H, W);
    const int Wo = 2 * W;
    cpu::for_each_plane(NC, int64_t(H) * W, [&](int64_t i) {
        const float* dyi = dy + i * 4 * H * W;
        float* dxi = dx + i * H * W;
        for (int h = 0; h < H; ++h) {
            const float* r0 = dyi + int64_t(2 * h) * Wo;
            const float* r1 = r0 + Wo;
            float* out = dxi + int64_t(h) * W;
            for (int w = 0; w < W; ++w)
                out[w] = (r0[2 * w] + r0[2 * w + 1]) + (r1[2 * w] + r1[2 * w + 1]);
        }
    });
}

void CpuBackend::upsample_bilinear2x_forward(int64_t NC, int H, int W, const float* x, float* y) {
    check_planes("upsample_bilinear2x_forward", NC, H, W);
    const BilinearTaps rows(H), cols(W);
    const int Ho = 2 * H, Wo = 2 * W;
    cpu::for_each_plane(NC, int64_t(H) * W, [&](int64_t i) {
        const float* xi = x + i * H * W;
        float* yi = y + i * Ho * Wo;
        for (int oh = 0; oh < Ho; ++oh) {
            const float* r0 = xi + int64_t(rows.i0[oh]) * W;
            const float* r1 = xi + int64_t(rows.i1[oh]) * W;
            const float h0 = rows.l0[oh], h1 = rows.l1[oh];
            float* out = yi + int64_t(oh) * Wo;
            for (int ow = 0; ow < Wo; ++ow) {
                const int j0 = cols.i0[ow], j1 = cols.i1[ow];
                const float w0 = cols.l0[ow], w1 = cols.l1[ow];
                out[ow] = h0 * (w0 * r0[j0] + w1 * r0[j1]) + h1 * (w0 * r1[j0] + w1 * r1[j1]);
            }
        }
    });
}

void CpuBackend::upsample_bilinear2x_backward(int64_t NC, int H, int W, const float* dy,
                                              float* dx) {
    check_planes("upsample_bilinear2x_backward", NC, H, W);
    const BilinearTaps rows(H), cols(W);
    const int Ho = 2 * H, Wo = 2 * W;
    cpu::for_each_plane(NC, int64_t(H) * W, [&](int64_t i) {
        const float* dyi = dy + i * Ho * Wo;
        float* dxi = dx + i * H * W;
        std::fill(dxi, dxi + int64_t(H) * W, 0.0f);
        for (int oh = 0; oh < Ho; ++oh) {
            float* r0 = dxi + int64_t(rows.i0[oh]) * W;
            float* r1 = dxi + int64_t(rows.i1[oh]) * W;
            const float h0 = rows.l0[oh], h1 = rows.l1[oh];
            const float* g = dyi + int64_t(oh) * Wo;
            for (int ow = 0; ow < Wo; ++ow) {
                const int j0 = cols.i0[ow], j1 = cols.i1[ow];
                const float w0 = cols.l0[ow], w1 = cols.l1[ow];
                r0[j0] += h0 * w0 * g[ow];
                r0[j1] += h0 * w1 * g[ow];
                r1[j0] += h1 * w0 * g[ow];
                r1[j1] += h1 * w1 * g[ow];
            }
        }
    });
}

}  // namespace nst
