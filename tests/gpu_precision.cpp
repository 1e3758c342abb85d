// The 16-bit (fp16, bf16) inference ops on the GPU against the CPU reference
// (widen, float32 kernel, round once), at the transformation network's shapes
// and at odd ones that take the scalar paths; then a whole network.
//
// Tolerances, in units of the format's unit roundoff u (2^-11 for fp16,
// 2^-8 for bf16), relative to the largest |cpu| value m; one step of the
// format at m (its ulp) is up to 2u relative to m:
//   exact     0       data movement and one correctly rounded fp32 operation
//                     before the one rounding to 16 bits: convert, relu, add,
//                     pad, nearest upsample, channel_affine (no FMA on either side).
//   2 units   norm    fp32 Welford statistics and fused multiply-adds against
//                     the CPU's double statistics move outputs across a 16-bit
//                     rounding boundary: one step at the largest outputs.
//   4 units   conv    fp32 sums in another order (cuDNN, tensor cores), rounded,
//                     then the bias added and rounded again: up to two steps.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "core/autograd.hpp"
#include "core/error.hpp"
#include "core/ops.hpp"
#include "gpu_device.hpp"
#include "nets/transform_net.hpp"

using namespace nst;
using nst::test::gpu;

namespace {

double unit(DType type) { return type == DType::F16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8); }

// Both 16-bit results of `type`: the largest |gpu - cpu| over max |cpu|, at
// most `units` of the format's precision (0: bit for bit).
void expect_close(const std::string& what, const Tensor& on_gpu, const Tensor& on_cpu, DType type, double units) {
    REQUIRE(on_gpu.dtype() == type);
    REQUIRE(on_cpu.dtype() == type);
    REQUIRE(on_gpu.shape() == on_cpu.shape());
    const std::vector<float> g = on_gpu.to_vector(), c = on_cpu.to_vector();
    double diff = 0, scale = 0;
    size_t bad = 0;
    for (size_t i = 0; i < c.size(); ++i) {
        if (!std::isfinite(g[i])) ++bad;
        diff = std::max(diff, std::fabs(double(g[i]) - c[i]));
        scale = std::max(scale, std::fabs(double(c[i])));
    }
    INFO(what << " " << dtype_name(type) << ": max diff " << diff << " of max |cpu| " << scale << " = "
              << diff / scale / unit(type) << " units; non-finite on the GPU: " << bad);
    CHECK(bad == 0);
    CHECK(diff <= units * unit(type) * scale);
}

// Random float32 data on the CPU, rounded to `type`, and its copy on the GPU.
std::pair<Tensor, Tensor> both(const Shape& shape, uint64_t seed, DType type, float mean = 0, float std = 1) {
    const Tensor t = Tensor::randn(shape, seed, Device::cpu(), mean, std).to(type);
    return {t, t.to(gpu())};
}

}  // namespace

TEST_CASE("gpu precision: conversions and data movement are exact", "[gpu]") {
    for (const DType type : {DType::F16, DType::BF16}) {
        const Tensor x = Tensor::randn({2, 8, 37, 41}, 1, Device::cpu(), 0, 300);  // fp16 overflows past 65504: not here
        expect_close("convert from float32", x.to(gpu()).to(type), x.to(type), type, 0);
        for (const DType other : {DType::F16, DType::BF16})
            expect_close("convert between 16-bit types", x.to(other).to(gpu()).to(type), x.to(other).to(type), type, 0);
        CHECK(x.to(type).to(gpu()).to(DType::F32).to_vector() == x.to(type).to(DType::F32).to_vector());

        const auto [c, g] = both({2, 8, 37, 41}, 2, type);
        const auto [c2, g2] = both({2, 8, 37, 41}, 3, type);
        expect_close("relu", relu(g), relu(c), type, 0);
        expect_close("add", add(g, g2), add(c, c2), type, 0);
        expect_close("pad reflect", pad(g, 4, 4, 3, 5, PadMode::Reflect), pad(c, 4, 4, 3, 5, PadMode::Reflect), type, 0);
        expect_close("pad zero and crop", pad(g, 1, -2, -3, 2), pad(c, 1, -2, -3, 2), type, 0);
        expect_close("nearest upsample", upsample_nearest2x(g), upsample_nearest2x(c), type, 0);
        expect_close("upsample and reflect pad", upsample_pad(g, 1, PadMode::Reflect), upsample_pad(c, 1, PadMode::Reflect),
                     type, 0);
        expect_close("upsample and zero pad", upsample_pad(g, 4, PadMode::Zero), upsample_pad(c, 4, PadMode::Zero), type, 0);
        const std::vector<float> scale{1, -2, 0.5f, 3, 0.1f, 7, -1, 2}, shift{0, 1, -1, 2, 0.25f, -3, 5, 0};
        expect_close("channel_affine", channel_affine(g, scale, shift), channel_affine(c, scale, shift), type, 0);
        const auto [cb, gb] = both({8}, 4, type);
        expect_close("bias_add", bias_add(g, gb), bias_add(c, cb), type, 0);
    }
}

TEST_CASE("gpu precision: instance norm, every launch shape", "[gpu]") {
    for (const DType type : {DType::F16, DType::BF16}) {
        // warp per row, block per row, split rows; HW % 4 != 0 takes the scalar loads
        for (const Shape& shape : {Shape{2, 64, 16, 16}, Shape{1, 32, 64, 64}, Shape{1, 32, 512, 512},
                                   Shape{2, 8, 31, 33}, Shape{1, 3, 257, 255}}) {
            const auto [c, g] = both(shape, 5, type, 3, 2);
            const auto [cg, gg] = both({shape[1]}, 6, type, 1, 0.3f);
            const auto [cb, gb] = both({shape[1]}, 7, type, 0, 0.3f);
            expect_close("instance_norm " + shape_str(shape), instance_norm(g, gg, gb, 1e-5f),
                         instance_norm(c, cg, cb, 1e-5f), type, 2);
            expect_close("instance_norm_relu " + shape_str(shape), instance_norm_relu(g, gg, gb, 1e-5f),
                         instance_norm_relu(c, cg, cb, 1e-5f), type, 2);
        }
    }
}

TEST_CASE("gpu precision: convolutions at the transformation network's shapes", "[gpu]") {
    for (const DType type : {DType::F16, DType::BF16}) {
        struct Case {
            Shape x, w;
            int stride, pad;
        };
        for (const Case& k : {Case{{1, 3, 256, 256}, {32, 3, 9, 9}, 1, 4}, Case{{1, 32, 256, 256}, {64, 32, 3, 3}, 2, 1},
                              Case{{2, 128, 64, 64}, {128, 128, 3, 3}, 1, 1}, Case{{1, 5, 33, 29}, {7, 5, 3, 3}, 2, 1}}) {
            const auto [cx, gx] = both(k.x, 8, type);
            const auto [cw, gw] = both(k.w, 9, type, 0, float(1 / std::sqrt(double(k.w[1] * k.w[2] * k.w[3]))));
            const auto [cb, gb] = both({k.w[0]}, 10, type);
            const Conv2dOptions o = Conv2dOptions::padded(k.pad, k.stride);
            expect_close("conv2d " + shape_str(k.x) + " * " + shape_str(k.w), conv2d(gx, gw, gb, o), conv2d(cx, cw, cb, o),
                         type, 4);
        }
        // The TensorFlow networks' upsampling: a stride-2 transposed conv, 'SAME' crop.
        const auto [cx, gx] = both({1, 128, 64, 64}, 11, type);
        const auto [cw, gw] = both({128, 64, 3, 3}, 12, type, 0, 0.03f);
        ConvTranspose2dOptions t;
        t.stride = 2, t.pad_top = t.pad_left = 0, t.pad_bottom = t.pad_right = 1, t.output_padding_h = t.output_padding_w = 1;
        expect_close("conv_transpose2d", conv_transpose2d(gx, gw, Tensor(), t), conv_transpose2d(cx, cw, Tensor(), t), type, 4);
    }
}

// A whole network on the GPU in 16 bits: against the CPU's 16-bit run (the
// same roundings up to summation order) and against float32 on the GPU (the
// 40 dB the stylize --precision promise rests on).
TEST_CASE("gpu precision: a network in 16 bits", "[gpu]") {
    set_allow_tf32(false);
    for (const TransformNetVariant variant : {TransformNetVariant::Native, TransformNetVariant::TensorFlow}) {
        TransformNetSpec spec;
        spec.variant = variant;
        const TransformNet cpu_net = TransformNet::create(spec, 21, Device::cpu());
        const TransformNet gpu_net = TransformNet::create(spec, 21, gpu());
        const Tensor image = Tensor::rand({1, 3, 130, 97}, 22, Device::cpu(), 0.f, 255.f);
        const std::vector<float> fp32 = gpu_net.stylize(image.to(gpu())).to_vector();
        for (const DType type : {DType::F16, DType::BF16}) {
            const std::vector<float> g = gpu_net.to(type).stylize(image.to(gpu())).to_vector();
            const std::vector<float> c = cpu_net.to(type).stylize(image).to_vector();
            auto psnr = [](const std::vector<float>& a, const std::vector<float>& b) {
                double mse = 0, lo = b[0], hi = b[0];
                for (size_t i = 0; i < a.size(); ++i) {
                    mse += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
                    lo = std::min(lo, double(b[i])), hi = std::max(hi, double(b[i]));
                }
                return 10 * std::log10((hi - lo) * (hi - lo) * double(a.size()) / mse);
            };
            INFO(variant_name(variant) << " " << dtype_name(type) << ": GPU vs CPU " << psnr(g, c) << " dB, vs fp32 "
                                       << psnr(g, fp32) << " dB");
            CHECK(psnr(g, c) >= 50);
            CHECK(psnr(g, fp32) >= 40);
        }
    }
}
