// CPU instance norm: statistics over HW for each (n, c), biased variance.
//
// Statistics are two-pass in double (mean first, then the centred sum of
// squares): no catastrophic cancellation even for large, offset activations,
// which makes this the reference the single-pass GPU kernels are judged by.
// Backward uses the standard closed form
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * gamma
// and accumulates dgamma and dbeta over the batch in double, in fixed order.
#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/cpu/storage16.hpp"

namespace nst {

void CpuBackend::instance_norm_forward(int N, int C, int64_t HW, float eps, const float* x,
                                       const float* gamma, const float* beta, float* y,
                                       float* mean, float* rstd, bool relu) {
    check_norm("instance_norm_forward", N, C, HW);
    NST_CHECK(eps >= 0.0f, "instance_norm_forward: eps must be >= 0, got ", eps);
    const int64_t planes = int64_t(N) * C;
#pragma omp parallel for if (planes * HW >= cpu::kParallelFrom) schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) {
        const int c = int(plane % C);
        const float* xp = x + plane * HW;
        float* yp = y + plane * HW;

        double sum = 0.0;
        for (int64_t i = 0; i < HW; ++i) sum += xp[i];
        const double mu = sum / double(HW);
        double sq = 0.0;
        for (int64_t i = 0; i < HW; ++i) {
            const double d = xp[i] - mu;
            sq += d * d;
        }
        const double r = 1.0 / std::sqrt(sq / double(HW) + double(eps));
        mean[plane] = float(mu);
        rstd[plane] = float(r);

        // Centre before scaling: folding mean into the shift would cancel
        // catastrophically in float when |mean| >> std.
        const float m = float(mu);
        const float a = float((gamma ? gamma[c] : 1.0) * r);
        const float b = beta ? beta[c] : 0.0f;
        for (int64_t i = 0; i < HW; ++i) yp[i] = (xp[i] - m) * a + b;
        if (relu)
            for (int64_t i = 0; i < HW; ++i) yp[i] = yp[i] < 0.0f ? 0.0f : yp[i];
    }
}

void CpuBackend::instance_norm_backward(int N, int C, int64_t HW, const float* x,
                                        const float* gamma, const float* mean,
                                        const float* rstd, const float* dy, float* dx,
                                        float* dgamma, float* dbeta) {
    check_norm("instance_norm_backward", N, C, HW);
    // Each plane's sums on its own; the per-channel totals afterwards, over
    // the batch in order: the same bits whatever the thread count.
    const int64_t planes = int64_t(N) * C;
    std::vector<double> plane_dy(static_cast<size_t>(planes)), plane_dy_xhat(static_cast<size_t>(planes));
#pragma omp parallel for if (planes * HW >= cpu::kParallelFrom) schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) {
        const int c = int(plane % C);
        const float* xp = x + plane * HW;
        const float* dyp = dy + plane * HW;
        float* dxp = dx + plane * HW;
        const double mu = mean[plane];
        const double r = rstd[plane];

        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int64_t i = 0; i < HW; ++i) {
            sum_dy += dyp[i];
            sum_dy_xhat += dyp[i] * ((xp[i] - mu) * r);
        }
        plane_dy_xhat[size_t(plane)] = sum_dy_xhat;
        plane_dy[size_t(plane)] = sum_dy;

        // dx = g*r*dy - g*r*mean(dy) - (x - mean) * g*r*r*mean(dy*xhat),
        // i.e. a*dy + b*(x - mean) + k with per-plane constants.
        const double g = gamma ? gamma[c] : 1.0;
        const double mean_dy = sum_dy / double(HW);
        const double mean_dy_xhat = sum_dy_xhat / double(HW);
        const float m = mean[plane];
        const float a = float(g * r);
        const float b = float(-g * r * r * mean_dy_xhat);
        const float k = float(-g * r * mean_dy);
        for (int64_t i = 0; i < HW; ++i) dxp[i] = a * dyp[i] + b * (xp[i] - m) + k;
    }
    for (int c = 0; c < C; ++c) {
        double g = 0.0, b = 0.0;
        for (int n = 0; n < N; ++n) g += plane_dy_xhat[size_t(n) * C + c], b += plane_dy[size_t(n) * C + c];
        if (dgamma) dgamma[c] = float(g);
        if (dbeta) dbeta[c] = float(b);
    }
}

void CpuBackend::instance_norm_forward16(DType type, int N, int C, int64_t HW, float eps,
                                         const void* x, const void* gamma, const void* beta,
                                         void* y, bool relu) {
    check_type16("instance_norm_forward16", type);
    check_norm("instance_norm_forward16", N, C, HW);
    NST_CHECK(eps >= 0.0f, "instance_norm_forward16: eps must be >= 0, got ", eps);
    std::vector<float> v = cpu16::widen(type, x, int64_t(N) * C * HW);
    std::vector<float> mean(size_t(N) * size_t(C)), rstd(mean.size());
    instance_norm_forward(N, C, HW, eps, v.data(), cpu16::data_or_null(cpu16::widen(type, gamma, C)),
                          cpu16::data_or_null(cpu16::widen(type, beta, C)), v.data(), mean.data(), rstd.data(), relu);
    cpu16::narrow(type, v, y);
}

}  // namespace nst
