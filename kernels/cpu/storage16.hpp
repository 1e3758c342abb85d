// The CPU reference of the 16-bit (fp16/bf16) inference forwards: widen
// every input to float32, run the float32 kernel, round the output once.
// This is the semantics the backend interface promises, so it is also what
// the CUDA kernels are checked against. Each *_forward16 lives beside its
// float32 kernel, in the file of its op family; these are their helpers. On
// the CPU it is slower than float32 (the conversions come on top); 16-bit
// storage pays off on GPUs.
#pragma once
#include <cstdint>
#include <vector>

#include "core/dtype.hpp"

namespace nst::cpu16 {

// n values of `type` as floats (null stays empty: an absent bias or gamma).
inline std::vector<float> widen(DType type, const void* x, int64_t n) {
    if (!x) return {};
    std::vector<float> out(static_cast<size_t>(n));
    const auto* p = static_cast<const uint16_t*>(x);
    for (int64_t i = 0; i < n; ++i) out[size_t(i)] = type == DType::F16 ? f16_to_float(p[i]) : bf16_to_float(p[i]);
    return out;
}

// Rounds the floats to `type` into y.
inline void narrow(DType type, const std::vector<float>& x, void* y) {
    auto* p = static_cast<uint16_t*>(y);
    for (size_t i = 0; i < x.size(); ++i) p[i] = type == DType::F16 ? float_to_f16(x[i]) : float_to_bf16(x[i]);
}

// The data of a widened optional input, or null.
inline const float* data_or_null(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

}  // namespace nst::cpu16
