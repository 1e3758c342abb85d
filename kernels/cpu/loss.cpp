// CPU loss reductions: each forward sums in double, in fixed chunks whose
// sums are added in order (kernels/cpu/parallel.hpp), so the result is the
// same bits whatever the thread count and accurate to float rounding of the
// final value, and writes one float. Backward kernels read the upstream
// scalar gradient from dout[0] (device memory, like every other backend), so
// a loss weight or a chained scalar op costs no host round trip.
#include <vector>

#include "core/backend_rules.hpp"
#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/parallel.hpp"

namespace nst {

void CpuBackend::mse_loss_forward(int64_t n, const float* a, const float* b, float* out) {
    NST_CHECK(n > 0, "mse_loss_forward: needs at least one element, got ", n);
    const double sum = cpu::deterministic_sum(n, [&](int64_t i) {
        const double d = double(a[i]) - double(b[i]);
        return d * d;
    });
    out[0] = float(sum / double(n));
}

void CpuBackend::mse_loss_backward(int64_t n, const float* a, const float* b, const float* dout,
                              float* da) {
    NST_CHECK(n > 0, "mse_loss_backward: needs at least one element, got ", n);
    const float scale = float(2.0 * double(dout[0]) / double(n));
#pragma omp parallel for if (n >= cpu::kParallelFrom) schedule(static)
    for (int64_t i = 0; i < n; ++i) da[i] = scale * (a[i] - b[i]);
}

void CpuBackend::sum_squares_forward(int64_t n, const float* x, float* out) {
    check_count("sum_squares_forward", n);
    out[0] = float(cpu::deterministic_sum(n, [&](int64_t i) { return double(x[i]) * double(x[i]); }));
}

void CpuBackend::sum_squares_backward(int64_t n, const float* x, const float* dout, float* dx) {
    check_count("sum_squares_backward", n);
    const float scale = 2.0f * dout[0];
#pragma omp parallel for if (n >= cpu::kParallelFrom) schedule(static)
    for (int64_t i = 0; i < n; ++i) dx[i] = scale * x[i];
}

void CpuBackend::tv_loss_forward(int64_t NC, int H, int W, const float* x, float* out) {
    check_planes("tv_loss_forward", NC, H, W);
    // One partial sum per plane, in index order; the planes' in plane order.
    std::vector<double> partial(size_t(NC), 0.0);
    cpu::for_each_plane(NC, int64_t(H) * W, [&](int64_t i) {
        double sum = 0.0;
        const float* xi = x + i * H * W;
        for (int h = 0; h < H; ++h) {
            const float* row = xi + int64_t(h) * W;
            for (int w = 0; w + 1 < W; ++w) {
                const double d = double(row[w + 1]) - double(row[w]);
                sum += d * d;
            }
            if (h + 1 < H) {
                for (int w = 0; w < W; ++w) {
                    const double d = double(row[w + W]) - double(row[w]);
                    sum += d * d;
                }
            }
        }
        partial[size_t(i)] = sum;
    });
    double total = 0.0;
    for (const double p : partial) total += p;
    out[0] = float(total);
}

// Gather form: each pixel collects the derivative of the (up to four)
// squared differences it takes part in, 2 * dout * tv_stencil (core/backend_rules.hpp,
// which the CUDA kernel uses too).
void CpuBackend::tv_loss_backward(int64_t NC, int H, int W, const float* x, const float* dout,
                             float* dx) {
    check_planes("tv_loss_backward", NC, H, W);
    const float scale = 2.0f * dout[0];
    cpu::for_each_plane(NC, int64_t(H) * W, [&](int64_t i) {
        const float* xi = x + i * H * W;
        float* dxi = dx + i * H * W;
        for (int h = 0; h < H; ++h) {
            const float* row = xi + int64_t(h) * W;
            float* out = dxi + int64_t(h) * W;
            for (int w = 0; w < W; ++w) out[w] = scale * tv_stencil(row, h, H, w, W);
        }
    });
}

void CpuBackend::dot(int64_t n, const float* a, const float* b, float* out) {
    check_count("dot", n);
    out[0] = float(cpu::deterministic_sum(n, [&](int64_t i) { return double(a[i]) * double(b[i]); }));
}

}  // namespace nst
