// CPU reference of the 16-bit (fp16/bf16) inference ops: widen every input to
// float32, run the float32 kernel, round the output once. This is the
// semantics the backend interface promises, so it is also what the CUDA
// kernels are checked against. On the CPU it is slower than float32 (the
// conversions come on top); 16-bit storage pays off on GPUs.
#include <vector>

#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"

namespace nst {

namespace {

void check_type(const char* op, DType type) {
    NST_CHECK(type == DType::F16 || type == DType::BF16, op, ": ", dtype_name(type),
              " is not a 16-bit type");
}

float widen_one(DType type, uint16_t v) {
    return type == DType::F16 ? f16_to_float(v) : bf16_to_float(v);
}

// n values of `type` (null stays empty: an absent bias or gamma).
std::vector<float> widen(DType type, const void* x, int64_t n) {
    if (!x) return {};
    std::vector<float> out(static_cast<size_t>(n));
    const auto* p = static_cast<const uint16_t*>(x);
    for (int64_t i = 0; i < n; ++i) out[size_t(i)] = widen_one(type, p[i]);
    return out;
}

void narrow(DType type, const std::vector<float>& x, void* y) {
    auto* p = static_cast<uint16_t*>(y);
    for (size_t i = 0; i < x.size(); ++i)
        p[i] = type == DType::F16 ? float_to_f16(x[i]) : float_to_bf16(x[i]);
}

const float* ptr(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

}  // namespace

void CpuBackend::convert(int64_t n, DType from, const void* x, DType to, void* y) {
    NST_CHECK(n >= 0, "convert: negative element count ", n);
    if (from == to) {
        copy(y, x, size_t(n) * dtype_size(from));
        return;
    }
    std::vector<float> f = from == DType::F32
        ? std::vector<float>(static_cast<const float*>(x), static_cast<const float*>(x) + n)
        : widen(from, x, n);
    if (to == DType::F32)
        copy(y, f.data(), size_t(n) * 4);
    else
        narrow(to, f, y);
}

void CpuBackend::conv2d_forward16(DType type, const ConvShape& s, const void* x, const void* w,
                                  const void* b, void* y) {
    check_type("conv2d_forward16", type);
    std::vector<float> out(size_t(s.y_size()));
    conv2d_forward(s, widen(type, x, s.x_size()).data(), widen(type, w, s.w_size()).data(), nullptr,
                   out.data());
    narrow(type, out, y);
    if (b) channel_affine16(type, s.N, s.K, int64_t(s.P) * s.Q, y, nullptr, widen(type, b, s.K).data(), y);
}

void CpuBackend::conv_transpose2d_forward16(DType type, const ConvShape& s, const void* x,
                                            const void* w, void* y) {
    check_type("conv_transpose2d_forward16", type);
    std::vector<float> out(size_t(s.x_size()));
    conv2d_backward_data(s, widen(type, x, s.y_size()).data(), widen(type, w, s.w_size()).data(),
                         out.data());
    narrow(type, out, y);
}

void CpuBackend::relu_forward16(DType type, int64_t n, const void* x, void* y) {
    check_type("relu_forward16", type);
    std::vector<float> v = widen(type, x, n);
    relu_forward(n, v.data(), v.data());
    narrow(type, v, y);
}

void CpuBackend::add16(DType type, int64_t n, const void* a, const void* b, void* y) {
    check_type("add16", type);
    std::vector<float> va = widen(type, a, n), vb = widen(type, b, n);
    add(n, va.data(), vb.data(), va.data());
    narrow(type, va, y);
}

void CpuBackend::channel_affine16(DType type, int N, int C, int64_t HW, const void* x,
                                  const float* scale, const float* shift, void* y) {
    check_type("channel_affine16", type);
    std::vector<float> v = widen(type, x, int64_t(N) * C * HW);
    channel_affine(N, C, HW, v.data(), scale, shift, v.data());
    narrow(type, v, y);
}

void CpuBackend::pad_forward16(DType type, int64_t NC, int H, int W, int top, int bottom, int left,
                               int right, PadMode mode, const void* x, void* y) {
    check_type("pad_forward16", type);
    std::vector<float> out(size_t(NC * (int64_t(H) + top + bottom) * (int64_t(W) + left + right)));
    pad_forward(NC, H, W, top, bottom, left, right, mode, widen(type, x, NC * H * W).data(),
                out.data());
    narrow(type, out, y);
}

void CpuBackend::upsample_pad_forward16(DType type, int64_t NC, int H, int W, int p, PadMode mode,
                                        const void* x, void* y) {
    check_type("upsample_pad_forward16", type);
    std::vector<float> out(size_t(NC * (2 * int64_t(H) + 2 * int64_t(p)) * (2 * int64_t(W) + 2 * int64_t(p))));
    upsample_pad_forward(NC, H, W, p, mode, widen(type, x, NC * H * W).data(), out.data());
    narrow(type, out, y);
}

void CpuBackend::instance_norm_forward16(DType type, int N, int C, int64_t HW, float eps,
                                         const void* x, const void* gamma, const void* beta,
                                         void* y, bool relu) {
    check_type("instance_norm_forward16", type);
    std::vector<float> v = widen(type, x, int64_t(N) * C * HW);
    std::vector<float> mean(size_t(N) * size_t(C)), rstd(mean.size());
    instance_norm_forward(N, C, HW, eps, v.data(), ptr(widen(type, gamma, C)),
                          ptr(widen(type, beta, C)), v.data(), mean.data(), rstd.data(), relu);
    narrow(type, v, y);
}

}  // namespace nst
