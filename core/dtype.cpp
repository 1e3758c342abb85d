// Software fp16/bf16 conversions: a few integer operations each, exact for
// every input (checked against the compiler's _Float16 in tests/test_precision.cpp), and
// independent of the host's F16C support.
#include "core/dtype.hpp"

#include <cmath>

#include "core/error.hpp"

namespace nst {

DType parse_precision(const std::string& name) {
    if (name == "fp32") return DType::F32;
    if (name == "fp16") return DType::F16;
    if (name == "bf16") return DType::BF16;
    NST_CHECK(false, "unknown precision '", name, "' (expected fp32, fp16 or bf16)");
    return DType::F32;
}

uint16_t float_to_f16(float value) {
    const uint32_t x = float_bits(value);
    const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
    const uint32_t abs = x & 0x7fffffffu;
    if (abs > 0x7f800000u) return sign | 0x7e00u;  // NaN (quiet)
    // 65520 and above round to infinity: halfway past 65504, the largest fp16,
    // whose odd last mantissa bit makes the tie go up.
    if (abs >= 0x477ff000u) return sign | 0x7c00u;
    if (abs < 0x38800000u) {
        // Below 2^-14, fp16 is subnormal: a multiple of 2^-24. Scaling by 2^24
        // is exact, and the default rounding mode rounds to nearest even.
        return sign | uint16_t(std::nearbyint(float_from_bits(abs) * 16777216.0f));
    }
    // Normal: rebias the exponent (127 -> 15) and round 23 mantissa bits to 10;
    // a carry out of the mantissa correctly bumps the exponent.
    const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
    return sign | uint16_t((rounded - 0x38000000u) >> 13);
}

float f16_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
        const float v = std::ldexp(float(mantissa), -24);
        return sign ? -v : v;
    }
    if (exponent == 31) return float_from_bits(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
    return float_from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t float_to_bf16(float value) {
    const uint32_t x = float_bits(value);
    if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);  // NaN stays NaN
    return uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

float bf16_to_float(uint16_t bits) { return float_from_bits(uint32_t(bits) << 16); }

}  // namespace nst
