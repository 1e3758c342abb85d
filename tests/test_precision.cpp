// 16-bit storage (fp16, bf16): the host conversions bit for bit, the
// inference ops against their float32 versions, the errors that keep 16-bit
// tensors out of training, and whole transformation networks within the
// 40 dB of float32 that stylize --precision promises.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/autograd.hpp"
#include "core/error.hpp"
#include "core/ops.hpp"
#include "nets/transform_net.hpp"

using namespace nst;

namespace {

// Round to nearest even onto bfloat16, in double: the two neighbours by
// truncation, the nearer one, ties to the even mantissa.
uint16_t bf16_reference(float f) {
    const uint32_t u = float_bits(f);
    const uint16_t lo = uint16_t(u >> 16), hi = uint16_t(lo + 1);
    // Infinity stands for 2^128 here: IEEE rounds to it from max + half an ulp.
    auto value = [](uint16_t b) {
        const double v = (b & 0x7fff) == 0x7f80 ? std::ldexp(1.0, 128) : double(float_from_bits(uint32_t(b) << 16));
        return (b & 0x8000) ? -std::fabs(v) : v;
    };
    const double dlo = std::fabs(double(f) - value(lo)), dhi = std::fabs(value(hi) - double(f));
    if ((u & 0xffffu) == 0) return lo;
    if (dlo < dhi) return lo;
    if (dhi < dlo) return hi;
    return (lo & 1) ? hi : lo;
}

// Largest |a - b| relative to max |b|.
double max_rel_diff(const Tensor& a, const Tensor& b) {
    const std::vector<float> x = a.to_vector(), y = b.to_vector();
    REQUIRE(x.size() == y.size());
    double diff = 0, scale = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        diff = std::max(diff, std::fabs(double(x[i]) - y[i]));
        scale = std::max(scale, std::fabs(double(y[i])));
    }
    return diff / scale;
}

// PSNR with the reference's own range as the peak (random networks do not
// fill 0..255 the way trained ones do).
double psnr(const Tensor& got, const Tensor& want) {
    const std::vector<float> x = got.to_vector(), y = want.to_vector();
    double mse = 0, lo = y[0], hi = y[0];
    for (size_t i = 0; i < x.size(); ++i) {
        mse += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
        lo = std::min(lo, double(y[i])), hi = std::max(hi, double(y[i]));
    }
    mse /= double(x.size());
    return mse == 0 ? 999.0 : 10 * std::log10((hi - lo) * (hi - lo) / mse);
}

}  // namespace

TEST_CASE("precision: fp16 conversions are exact and round to nearest even", "[precision]") {
    // Every fp16 value survives the round trip (NaNs stay NaN).
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = f16_to_float(uint16_t(h));
        if (std::isnan(f)) {
            CHECK(std::isnan(f16_to_float(float_to_f16(f))));
            continue;
        }
        REQUIRE(float_to_f16(f) == h);
    }
    CHECK(f16_to_float(0x3c00) == 1.0f);
    CHECK(f16_to_float(0x0001) == std::ldexp(1.0f, -24));   // smallest subnormal
    CHECK(f16_to_float(0x7bff) == 65504.0f);                 // largest finite
    CHECK(float_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);       // tie, to even (down)
    CHECK(float_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);   // tie, to even (up)
    CHECK(float_to_f16(65519.996f) == 0x7bff);
    CHECK(float_to_f16(65520.0f) == 0x7c00);  // rounds to infinity
    CHECK(float_to_f16(-1e9f) == 0xfc00);
    CHECK(float_to_f16(std::ldexp(1.0f, -25)) == 0x0000);      // tie between 0 and 2^-24: even
    CHECK(float_to_f16(3 * std::ldexp(1.0f, -25)) == 0x0002);  // tie: to even
    CHECK(float_to_f16(std::ldexp(1.0f, -14) * (1 - std::ldexp(1.0f, -12))) == 0x0400);  // up into the normals
#ifdef __FLT16_MAX__
    // Against the compiler's own conversion over a spread of float bit patterns.
    for (uint64_t u = 0; u < (uint64_t(1) << 32); u += 65521) {
        const float f = float_from_bits(uint32_t(u));
        if (std::isnan(f)) continue;
        const _Float16 h = static_cast<_Float16>(f);
        uint16_t want;
        std::memcpy(&want, &h, 2);
        INFO(f);
        REQUIRE(float_to_f16(f) == want);
    }
#endif
}

TEST_CASE("precision: bf16 conversions round to nearest even", "[precision]") {
    for (uint64_t u = 0; u < (uint64_t(1) << 32); u += 40009) {
        const float f = float_from_bits(uint32_t(u));
        INFO(f);
        if (std::isnan(f))
            REQUIRE(std::isnan(bf16_to_float(float_to_bf16(f))));  // the payload may differ
        else
            REQUIRE(float_to_bf16(f) == bf16_reference(f));
    }
    for (uint32_t b = 0; b < 65536; ++b) {
        const float f = bf16_to_float(uint16_t(b));
        if (!std::isnan(f)) REQUIRE(float_to_bf16(f) == b);
    }
    CHECK(float_to_bf16(float_from_bits(0x3f808000)) == 0x3f80);  // tie, even stays
    CHECK(float_to_bf16(float_from_bits(0x3f818000)) == 0x3f82);  // tie, odd goes up
    CHECK(float_to_bf16(std::numeric_limits<float>::max()) == 0x7f80);  // rounds to infinity
    CHECK(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
}

TEST_CASE("precision: 16-bit ops agree with float32 within their rounding", "[precision]") {
    for (const DType type : {DType::F16, DType::BF16}) {
        INFO(dtype_name(type));
        // One rounding of the output on top of rounded inputs: a few units of
        // the format's precision (2^-11 for fp16, 2^-8 for bf16) through a conv.
        const double unit = type == DType::F16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
        const Tensor x = Tensor::randn({2, 5, 13, 11}, 1), w = Tensor::randn({6, 5, 3, 3}, 2, Device::cpu(), 0, 0.2f);
        const Tensor b = Tensor::randn({6}, 3), g = Tensor::randn({5}, 4, Device::cpu(), 1, 0.2f);
        const Tensor x16 = x.to(type), w16 = w.to(type), b16 = b.to(type), g16 = g.to(type);
        CHECK(x16.dtype() == type);
        CHECK(x16.str().find(dtype_name(type)) == 0);
        auto check = [&](const char* what, const Tensor& got, const Tensor& want, double units) {
            INFO(what);
            REQUIRE(got.dtype() == type);
            REQUIRE(got.shape() == want.shape());
            CHECK(max_rel_diff(got, want) <= units * unit);
        };
        check("to and back", x16, x, 1);
        check("relu", relu(x16), relu(x), 1);
        check("add", add(x16, x16), add(x, x), 1);
        check("pad reflect", pad(x16, 2, 1, 0, 3, PadMode::Reflect), pad(x, 2, 1, 0, 3, PadMode::Reflect), 1);
        check("pad crop", pad(x16, -2, 1, -3, 0), pad(x, -2, 1, -3, 0), 1);
        check("upsample", upsample_nearest2x(x16), upsample_nearest2x(x), 1);
        check("upsample_pad", upsample_pad(x16, 3, PadMode::Reflect), upsample_pad(x, 3, PadMode::Reflect), 1);
        check("bias_add", bias_add(x16.reshape({2, 5, 143}), g16), bias_add(x.reshape({2, 5, 143}), g), 2);
        check("channel_affine", channel_affine(x16, {1, 2, 3, 4, 5}, {0, -1, 1, 0.5f, 2}),
              channel_affine(x, {1, 2, 3, 4, 5}, {0, -1, 1, 0.5f, 2}), 4);
        check("instance_norm", instance_norm(x16, g16, g16, 1e-5f), instance_norm(x, g, g, 1e-5f), 8);
        check("instance_norm_relu", instance_norm_relu(x16, g16, g16, 1e-5f), instance_norm_relu(x, g, g, 1e-5f), 8);
        Conv2dOptions o;
        o.stride = 2, o.pad_top = 1, o.pad_bottom = 2, o.pad_left = 0, o.pad_right = 1;
        check("conv2d asymmetric", conv2d(x16, w16, b16, o), conv2d(x, w, b, o), 16);
        check("conv2d reflect", conv2d(x16, w16, b16, Conv2dOptions::padded(1, 1, PadMode::Reflect)),
              conv2d(x, w, b, Conv2dOptions::padded(1, 1, PadMode::Reflect)), 16);
        const Tensor wt = Tensor::randn({5, 6, 3, 3}, 5, Device::cpu(), 0, 0.2f);
        ConvTranspose2dOptions t;
        t.stride = 2, t.pad_top = t.pad_left = 0, t.pad_bottom = t.pad_right = 1, t.output_padding_h = t.output_padding_w = 1;
        check("conv_transpose2d", conv_transpose2d(x16, wt.to(type), b16, t), conv_transpose2d(x, wt, b, t), 16);
        CHECK(conv2d(x16, w16).to(DType::F32).dtype() == DType::F32);
    }
}

TEST_CASE("precision: 16-bit tensors stay out of gradients and float32-only ops", "[precision]") {
    using Catch::Contains;
    const Tensor x = Tensor::randn({1, 2, 4, 4}, 1);
    Tensor h = x.to(DType::F16);
    CHECK_THROWS_WITH(h.set_requires_grad(), Contains("float32 only"));
    Tensor p = Tensor::randn({1, 2, 4, 4}, 2).set_requires_grad();
    CHECK_THROWS_WITH(p.to(DType::BF16), Contains("no gradient through bfloat16"));
    {
        NoGradGuard no_grad;
        CHECK(p.to(DType::BF16).dtype() == DType::BF16);
    }
    CHECK_THROWS_WITH(add(h, x), Contains("inputs of different types (float16 and float32)"));
    CHECK_THROWS_WITH(gram(h, 1.f), Contains("float16[1, 2, 4, 4] on cpu used where float32 is needed"));
    CHECK_THROWS_WITH(mse_loss(h, h), Contains("used where float32 is needed"));
    CHECK_THROWS_WITH(parse_precision("fp8"), Contains("unknown precision 'fp8'"));
    CHECK(parse_precision("bf16") == DType::BF16);
}

// The whole network: stylize in 16 bits against float32, both variants, at
// the real width (32 channels, 5 residual blocks) with random weights and
// random instance-norm parameters; 16-bit tiles against 16-bit untiled.
TEST_CASE("precision: fp16 and bf16 networks stay within 40 dB of float32", "[precision]") {
    for (const TransformNetVariant variant : {TransformNetVariant::Native, TransformNetVariant::TensorFlow}) {
        TransformNetSpec spec;
        spec.variant = variant;
        WeightFile w = TransformNet::create(spec, 7, Device::cpu()).to_weights();
        uint64_t seed = 70;
        for (auto& [name, t] : w.tensors)
            if (name.find(".norm.") != std::string::npos)
                t = Tensor::randn(t.shape(), seed++, Device::cpu(), name.find("weight") != std::string::npos ? 1.f : 0.f, 0.3f);
        const TransformNet net = TransformNet::from_weights(w, Device::cpu());
        const Tensor image = Tensor::rand({1, 3, 75, 98}, 5, Device::cpu(), 0.f, 255.f);
        const Tensor want = net.stylize(image);
        for (const DType type : {DType::F16, DType::BF16}) {
            const TransformNet net16 = net.to(type);
            CHECK(net16.dtype() == type);
            CHECK(net.dtype() == DType::F32);
            const Tensor got = net16.stylize(image);
            REQUIRE(got.dtype() == DType::F32);
            REQUIRE(got.shape() == want.shape());
            const double db = psnr(got, want);
            INFO(variant_name(variant) << " " << dtype_name(type) << ": " << db << " dB");
            CHECK(db >= 40.0);
            const double tiled = psnr(net16.stylize_tiled(image, 48), got);
            INFO("tiled against untiled, both " << dtype_name(type) << ": " << tiled << " dB");
            CHECK(tiled >= 40.0);
            // Saved weights are float32 again, equal to the 16-bit values.
            const WeightFile saved = net16.to_weights();
            CHECK(saved.tensors.at("conv_in.weight").dtype() == DType::F32);
            CHECK(max_rel_diff(saved.tensors.at("conv_in.weight"), w.tensors.at("conv_in.weight")) <= 1.0 / 128);
        }
    }
}

// fp16 overflows past 65504: a network whose activations go there gives an
// error naming the precision to use, not a NaN image; bf16 and fp32 run it.
TEST_CASE("precision: an fp16 overflow is an error, not a NaN image", "[precision]") {
    TransformNetSpec spec;
    spec.width = 4, spec.residual_blocks = 1;
    WeightFile w = TransformNet::create(spec, 3, Device::cpu()).to_weights();
    w.tensors["conv_in.weight"] = scale(w.tensors["conv_in.weight"], 1e4f);   // activations ~1e6 before the norm
    w.tensors["conv_in.norm.weight"] = Tensor::full({4}, 1e5f);               // and after it
    const TransformNet net = TransformNet::from_weights(w, Device::cpu());
    const Tensor image = Tensor::rand({1, 3, 40, 48}, 4, Device::cpu(), 0.f, 255.f);
    CHECK_THROWS_WITH(net.to(DType::F16).stylize(image), Catch::Contains("passed 65504") && Catch::Contains("bf16"));
    CHECK_THROWS_WITH(net.to(DType::F16).stylize_tiled(image, 32), Catch::Contains("not finite in float16"));
    for (const DType type : {DType::BF16, DType::F32})
        for (float v : net.to(type).stylize(image).to_vector()) REQUIRE(std::isfinite(v));
}
