// Element types. Training and optimization are float32 throughout; fp16 and
// bf16 are storage types for inference (stylize --precision): the
// transformation network's forward ops accept them, computing in fp32 and
// rounding each output once (core/backend.hpp, "16-bit storage").
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace nst {

enum class DType { F32, F16, BF16 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }
inline const char* dtype_name(DType t) {
    return t == DType::F32 ? "float32" : t == DType::F16 ? "float16" : "bfloat16";
}

// "fp32", "fp16" or "bf16" (the CLI's and the API's --precision); else nst::Error.
DType parse_precision(const std::string& name);

// Host conversions, round to nearest even (as CUDA's __float2half_rn and
// __float2bfloat16_rn). Overflow goes to infinity; NaN stays NaN.
uint16_t float_to_f16(float value);
float f16_to_float(uint16_t bits);
uint16_t float_to_bf16(float value);
float bf16_to_float(uint16_t bits);

// A float's IEEE-754 bit pattern, and the float of one (C++20's std::bit_cast).
inline uint32_t float_bits(float value) {
    uint32_t bits;
    std::memcpy(&bits, &value, 4);
    return bits;
}
inline float float_from_bits(uint32_t bits) {
    float value;
    std::memcpy(&value, &bits, 4);
    return value;
}

}  // namespace nst
