// CPU 2x2 stride-2 pooling. An odd trailing row or column is dropped (floor,
// PyTorch's default), and gets zero gradient. Max-pool backward recomputes the
// winner from x instead of storing argmax indices: one less tensor to keep
// alive, and the tie rule (first_max_of_window, core/backend_rules.hpp, which
// the CUDA kernels use too) is the same in forward and backward by
// construction.
#include "core/backend_rules.hpp"
#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/parallel.hpp"

namespace nst {

namespace {

// y = window(top left, top right, bottom left, bottom right) of every full
// window of every plane (a lambda, so that it is inlined).
template <class Window>
void pool_forward(int64_t NC, int H, int W, const float* x, float* y, Window window) {
    const int Ho = H / 2, Wo = W / 2;
    cpu::for_each_plane(NC, int64_t(H) * W, [&](int64_t i) {
        const float* xi = x + i * H * W;
        float* yi = y + i * Ho * Wo;
        for (int oh = 0; oh < Ho; ++oh) {
            const float* r0 = xi + int64_t(2 * oh) * W;
            const float* r1 = r0 + W;
            for (int ow = 0; ow < Wo; ++ow)
                yi[int64_t(oh) * Wo + ow] = window(r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]);
        }
    });
}

}  // namespace

void CpuBackend::max_pool2x2_forward(int64_t NC, int H, int W, const float* x, float* y) {
    check_planes("max_pool2x2_forward", NC, H, W);
    pool_forward(NC, H, W, x, y, [](float a, float b, float c, float d) { return max_of_window(a, b, c, d); });
}

void CpuBackend::avg_pool2x2_forward(int64_t NC, int H, int W, const float* x, float* y) {
    check_planes("avg_pool2x2_forward", NC, H, W);
    pool_forward(NC, H, W, x, y, [](float a, float b, float c, float d) { return mean_of_window(a, b, c, d); });
}

void CpuBackend::max_pool2x2_backward(int64_t NC, int H, int W, const float* x, const float* dy,
                                      float* dx) {
    check_planes("max_pool2x2_backward", NC, H, W);
    const int Ho = H / 2, Wo = W / 2;
    cpu::for_each_plane(NC, int64_t(H) * W, [&](int64_t i) {
        const float* xi = x + i * H * W;
        const float* dyi = dy + i * Ho * Wo;
        float* dxi = dx + i * H * W;
        for (int64_t j = 0; j < int64_t(H) * W; ++j) dxi[j] = 0.0f;
        for (int oh = 0; oh < Ho; ++oh) {
            const int64_t row0 = int64_t(2 * oh) * W;
            for (int ow = 0; ow < Wo; ++ow) {
                const int64_t at[4] = {row0 + 2 * ow, row0 + 2 * ow + 1, row0 + W + 2 * ow,
                                       row0 + W + 2 * ow + 1};
                const int k = first_max_of_window(xi[at[0]], xi[at[1]], xi[at[2]], xi[at[3]]);
                dxi[at[k]] = dyi[int64_t(oh) * Wo + ow];
            }
        }
    });
}

void CpuBackend::avg_pool2x2_backward(int64_t NC, int H, int W, const float* dy, float* dx) {
    check_planes("avg_pool2x2_backward", NC, H, W);
    const int Ho = H / 2, Wo = W / 2;
    cpu::for_each_plane(NC, int64_t(H) * W, [&](int64_t i) {
        const float* dyi = dy + i * Ho * Wo;
        float* dxi = dx + i * H * W;
        for (int h = 0; h < H; ++h) {
            float* row = dxi + int64_t(h) * W;
            const int oh = h / 2;
            for (int w = 0; w < W; ++w)
                row[w] = (oh < Ho && w / 2 < Wo) ? 0.25f * dyi[int64_t(oh) * Wo + w / 2] : 0.0f;
        }
    });
}

}  // namespace nst
