// CPU elementwise and per-channel kernels: plain loops the compiler
// vectorises, split across the threads (kernels/cpu/parallel.hpp). Every
// kernel is safe in place (y may alias an input) because element i is read
// before it is written. Backward activations take the
// forward output y, not x: both derivatives are cheap functions of y, so the
// autograd graph keeps one tensor instead of two.
#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/cpu/storage16.hpp"

namespace nst {

void CpuBackend::relu_forward(int64_t n, const float* x, float* y) {
    check_count("relu_forward", n);
    // x < 0 rather than x > 0: NaN passes through (as in PyTorch) instead of
    // hiding a divergence behind zeros.
    #pragma omp parallel for if (n >= cpu::kParallelFrom) schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void CpuBackend::relu_backward(int64_t n, const float* y, const float* dy, float* dx) {
    check_count("relu_backward", n);
    #pragma omp parallel for if (n >= cpu::kParallelFrom) schedule(static)
    for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void CpuBackend::tanh_forward(int64_t n, const float* x, float* y) {
    check_count("tanh_forward", n);
    #pragma omp parallel for if (n >= cpu::kParallelFrom) schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void CpuBackend::tanh_backward(int64_t n, const float* y, const float* dy, float* dx) {
    check_count("tanh_backward", n);
    #pragma omp parallel for if (n >= cpu::kParallelFrom) schedule(static)
    for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

void CpuBackend::add_forward(int64_t n, const float* a, const float* b, float* y) {
    check_count("add_forward", n);
    #pragma omp parallel for if (n >= cpu::kParallelFrom) schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void CpuBackend::mul_forward(int64_t n, const float* a, const float* b, float* y) {
    check_count("mul_forward", n);
    #pragma omp parallel for if (n >= cpu::kParallelFrom) schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

void CpuBackend::scale_forward(int64_t n, float alpha, const float* x, float* y) {
    check_count("scale_forward", n);
    #pragma omp parallel for if (n >= cpu::kParallelFrom) schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i];
}

void CpuBackend::channel_affine_forward(int N, int C, int64_t HW, const float* x, const float* scale,
                                        const float* shift, float* y) {
    check_channels("channel_affine_forward", N, C, HW);
    const int64_t planes = int64_t(N) * C;
#pragma omp parallel for if (planes * HW >= cpu::kParallelFrom) schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        const int64_t base = p * HW;
        const int c = int(p % C);
        const float a = scale ? scale[c] : 1.0f;
        const float b = shift ? shift[c] : 0.0f;
        for (int64_t i = 0; i < HW; ++i) y[base + i] = x[base + i] * a + b;
    }
}

void CpuBackend::bias_add_backward(int N, int C, int64_t HW, const float* dy, float* out) {
    check_channels("bias_add_backward", N, C, HW);
    // Double accumulators in a fixed order, one channel to a thread:
    // deterministic, and accurate even for a bias gradient summed over
    // millions of pixels.
#pragma omp parallel for if (int64_t(N) * C * HW >= cpu::kParallelFrom) schedule(static)
    for (int c = 0; c < C; ++c) {
        double sum = 0.0;
        for (int n = 0; n < N; ++n) {
            const float* row = dy + (int64_t(n) * C + c) * HW;
            double s = 0.0;
            for (int64_t i = 0; i < HW; ++i) s += row[i];
            sum += s;
        }
        out[c] = float(sum);
    }
}

void CpuBackend::relu_forward16(DType type, int64_t n, const void* x, void* y) {
    check_type16("relu_forward16", type);
    check_count("relu_forward16", n);
    std::vector<float> v = cpu16::widen(type, x, n);
    relu_forward(n, v.data(), v.data());
    cpu16::narrow(type, v, y);
}

void CpuBackend::add_forward16(DType type, int64_t n, const void* a, const void* b, void* y) {
    check_type16("add_forward16", type);
    check_count("add_forward16", n);
    std::vector<float> va = cpu16::widen(type, a, n), vb = cpu16::widen(type, b, n);
    add_forward(n, va.data(), vb.data(), va.data());
    cpu16::narrow(type, va, y);
}

void CpuBackend::channel_affine_forward16(DType type, int N, int C, int64_t HW, const void* x,
                                  const float* scale, const float* shift, void* y) {
    check_type16("channel_affine_forward16", type);
    check_channels("channel_affine_forward16", N, C, HW);
    std::vector<float> v = cpu16::widen(type, x, int64_t(N) * C * HW);
    channel_affine_forward(N, C, HW, v.data(), scale, shift, v.data());
    cpu16::narrow(type, v, y);
}

}  // namespace nst
