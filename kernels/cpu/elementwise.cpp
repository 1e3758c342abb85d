// CPU elementwise and per-channel kernels: single plain loops the compiler
// vectorises. Every kernel is safe in place (y may alias an input) because
// element i is read before it is written. Backward activations take the
// forward output y, not x: both derivatives are cheap functions of y, so the
// autograd graph keeps one tensor instead of two.
#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"

namespace nst {

namespace {

void check_count(const char* op, int64_t n) {
    NST_CHECK(n >= 0, op, ": negative element count ", n);
}

void check_channels(const char* op, int N, int C, int64_t HW) {
    NST_CHECK(N >= 0 && C >= 0 && HW >= 0, op, ": bad shape [", N, ", ", C, ", ", HW, "]");
}

}  // namespace

void CpuBackend::relu_forward(int64_t n, const float* x, float* y) {
    check_count("relu_forward", n);
    // x < 0 rather than x > 0: NaN passes through (as in PyTorch) instead of
    // hiding a divergence behind zeros.
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void CpuBackend::relu_backward(int64_t n, const float* y, const float* dy, float* dx) {
    check_count("relu_backward", n);
    for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void CpuBackend::tanh_forward(int64_t n, const float* x, float* y) {
    check_count("tanh_forward", n);
    for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void CpuBackend::tanh_backward(int64_t n, const float* y, const float* dy, float* dx) {
    check_count("tanh_backward", n);
    for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

void CpuBackend::add(int64_t n, const float* a, const float* b, float* y) {
    check_count("add", n);
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void CpuBackend::mul(int64_t n, const float* a, const float* b, float* y) {
    check_count("mul", n);
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

void CpuBackend::axpby(int64_t n, float alpha, const float* x, float beta, float* y) {
    check_count("axpby", n);
    // beta == 0 must not read y: it may be uninitialised memory holding NaN.
    if (beta == 0.0f) {
        for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i];
    } else {
        for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i] + beta * y[i];
    }
}

void CpuBackend::channel_affine(int N, int C, int64_t HW, const float* x, const float* scale,
                                const float* shift, float* y) {
    check_channels("channel_affine", N, C, HW);
    for (int n = 0; n < N; ++n) {
        for (int c = 0; c < C; ++c) {
            const int64_t base = (int64_t(n) * C + c) * HW;
            const float a = scale ? scale[c] : 1.0f;
            const float b = shift ? shift[c] : 0.0f;
            for (int64_t i = 0; i < HW; ++i) y[base + i] = x[base + i] * a + b;
        }
    }
}

void CpuBackend::channel_sum(int N, int C, int64_t HW, const float* x, float* out) {
    check_channels("channel_sum", N, C, HW);
    // Double accumulators in a fixed order: deterministic, and accurate even
    // for a bias gradient summed over millions of pixels.
    std::vector<double> sum(size_t(C), 0.0);
    for (int n = 0; n < N; ++n) {
        for (int c = 0; c < C; ++c) {
            const float* xc = x + (int64_t(n) * C + c) * HW;
            double s = 0.0;
            for (int64_t i = 0; i < HW; ++i) s += xc[i];
            sum[c] += s;
        }
    }
    for (int c = 0; c < C; ++c) out[c] = float(sum[c]);
}

}  // namespace nst
