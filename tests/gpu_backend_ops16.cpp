// The CUDA backend's 16-bit (fp16, bf16) methods and convert against the CPU
// reference, method by method, with outputs poisoned and guard tails checked
// (tests/backend_twin.hpp); gpu_precision checks the same kernels through the
// op layer and a whole network. Tolerances in units of the format, as there:
// 0 for data movement and one rounding (convert, relu, add, channel_affine,
// pad, upsample_pad), 2 for instance norm, 4 for the convolutions.
//
// These tests need a GPU (CTest label `gpu`); without one they fail.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "backend_twin.hpp"
#include "core/backend.hpp"
#include "core/dtype.hpp"

namespace {

using namespace nst::test;
using nst::Backend;
using nst::ConvShape;
using nst::DType;
using nst::PadMode;

const DType kTypes[] = {DType::F16, DType::BF16};

// Normal values rounded to `type`, within fp16's range.
std::vector<uint16_t> random16(DType type, int64_t n, uint32_t seed, float stddev = 1.0f, float mean = 0.0f) {
    return narrowed(type, random_normal(n, seed, stddev, mean));
}

TEST_CASE("convert between float32, fp16 and bf16", "[gpu][convert]") {
    for (int64_t n : {int64_t(3 * 1080 * 1920), int64_t(1001), int64_t(1)}) {
        INFO("n = " << n);
        const std::vector<float> host = random_normal(n, 2500, 300.f);  // fp16 holds 65504
        Twin x(host);
        for (const DType type : kTypes) {
            Twin back(n);  // poisoned afresh for each type
            Twin16 narrow(n), other(n);
            const DType to = type == DType::F16 ? DType::BF16 : DType::F16;
            for (const Side s : {Side::Cpu, Side::Gpu}) {
                Backend& be = s == Side::Cpu ? cpu_backend() : gpu_backend();
                be.convert(n, DType::F32, x[s], type, narrow[s]);
                be.convert(n, type, narrow[s], DType::F32, back[s]);
                be.convert(n, type, narrow[s], to, other[s]);
            }
            expect_match16("convert float32 to 16 bits", narrow, type, 0);
            expect_match("convert 16 bits to float32", back, kExact);
            expect_match16("convert between 16-bit types", other, to, 0);
        }
        Twin copy(n);
        for (const Side s : {Side::Cpu, Side::Gpu})
            (s == Side::Cpu ? cpu_backend() : gpu_backend()).convert(n, DType::F32, x[s], DType::F32, copy[s]);
        expect_match("convert float32 to float32", copy, kExact);
    }
}

TEST_CASE("relu, add and channel_affine in 16 bits", "[gpu][elementwise]") {
    const int N = 2, C = 8;
    for (const int64_t HW : {int64_t(135 * 241), int64_t(31), int64_t(1)}) {
        const int64_t n = N * C * HW;
        INFO("n = " << n);
        const std::vector<float> scale = random_normal(C, 2600), shift = random_normal(C, 2601);
        Twin scale_t(scale), shift_t(shift);
        for (const DType type : kTypes) {
            Twin16 a(random16(type, n, 2602, 3.f)), b(random16(type, n, 2603));
            Twin16 relu(n), sum(n), affine(n), scaled(n), shifted(n);
            for (const Side s : {Side::Cpu, Side::Gpu}) {
                Backend& be = s == Side::Cpu ? cpu_backend() : gpu_backend();
                be.relu_forward16(type, n, a[s], relu[s]);
                be.add_forward16(type, n, a[s], b[s], sum[s]);
                be.channel_affine_forward16(type, N, C, HW, a[s], scale_t[s], shift_t[s], affine[s]);
                be.channel_affine_forward16(type, N, C, HW, a[s], scale_t[s], nullptr, scaled[s]);
                be.channel_affine_forward16(type, N, C, HW, a[s], nullptr, shift_t[s], shifted[s]);
            }
            expect_match16("relu_forward16", relu, type, 0);
            expect_match16("add_forward16", sum, type, 0);
            expect_match16("channel_affine_forward16", affine, type, 0);
            expect_match16("channel_affine_forward16, scale only", scaled, type, 0);
            expect_match16("channel_affine_forward16, shift only", shifted, type, 0);
        }
    }
}

TEST_CASE("pad_forward16 and upsample_pad_forward16", "[gpu][pad]") {
    struct Case {
        int64_t NC;
        int H, W, top, bottom, left, right;
        PadMode mode;
    };
    const Case pads[] = {{2 * 32, 256, 256, 4, 4, 4, 4, PadMode::Reflect},
                         {3, 37, 53, 36, 1, 0, 52, PadMode::Reflect},
                         {3, 37, 53, 2, -3, -1, 4, PadMode::Zero}};
    for (const DType type : kTypes)
        for (const Case& c : pads) {
            INFO("pad NC=" << c.NC << " H=" << c.H << " W=" << c.W);
            const int64_t n_out = c.NC * (c.H + c.top + c.bottom) * (c.W + c.left + c.right);
            Twin16 x(random16(type, c.NC * c.H * c.W, 2700)), y(n_out);
            for (const Side s : {Side::Cpu, Side::Gpu})
                (s == Side::Cpu ? cpu_backend() : gpu_backend())
                    .pad_forward16(type, c.NC, c.H, c.W, c.top, c.bottom, c.left, c.right, c.mode, x[s], y[s]);
            expect_match16("pad_forward16", y, type, 0);
        }
    struct Up {
        int64_t NC;
        int H, W, p;
        PadMode mode;
    };
    for (const DType type : kTypes)
        for (const Up& c : {Up{2 * 64, 67, 121, 1, PadMode::Reflect}, Up{3, 17, 9, 4, PadMode::Zero},
                            Up{3, 17, 9, 0, PadMode::Zero}}) {
            INFO("upsample_pad NC=" << c.NC << " H=" << c.H << " W=" << c.W << " p=" << c.p);
            Twin16 x(random16(type, c.NC * c.H * c.W, 2701)), y(c.NC * (2 * c.H + 2 * c.p) * (2 * c.W + 2 * c.p));
            for (const Side s : {Side::Cpu, Side::Gpu})
                (s == Side::Cpu ? cpu_backend() : gpu_backend())
                    .upsample_pad_forward16(type, c.NC, c.H, c.W, c.p, c.mode, x[s], y[s]);
            expect_match16("upsample_pad_forward16", y, type, 0);
        }
}

TEST_CASE("instance_norm_forward16, with and without gamma, beta and relu", "[gpu][instance_norm]") {
    struct Case {
        int N, C;
        int64_t HW;
    };
    // warp per row, block per row, split rows; HW % 4 != 0 takes the scalar loads
    for (const Case& c : {Case{2, 64, 16 * 16}, Case{1, 32, 64 * 64}, Case{1, 32, 512 * 512}, Case{2, 8, 31 * 33}})
        for (const DType type : kTypes) {
            INFO("N=" << c.N << " C=" << c.C << " HW=" << c.HW);
            const int64_t n = int64_t(c.N) * c.C * c.HW;
            Twin16 x(random16(type, n, 2800, 2.f, 3.f));
            Twin16 gamma(random16(type, c.C, 2801, 0.3f, 1.f)), beta(random16(type, c.C, 2802, 0.3f));
            Twin16 y(n), y_relu(n), y_plain(n);
            for (const Side s : {Side::Cpu, Side::Gpu}) {
                Backend& be = s == Side::Cpu ? cpu_backend() : gpu_backend();
                be.instance_norm_forward16(type, c.N, c.C, c.HW, 1e-5f, x[s], gamma[s], beta[s], y[s], false);
                be.instance_norm_forward16(type, c.N, c.C, c.HW, 1e-5f, x[s], gamma[s], beta[s], y_relu[s], true);
                be.instance_norm_forward16(type, c.N, c.C, c.HW, 1e-3f, x[s], nullptr, nullptr, y_plain[s], false);
            }
            expect_match16("instance_norm_forward16", y, type, 2);
            expect_match16("instance_norm_forward16 with relu", y_relu, type, 2);
            expect_match16("instance_norm_forward16 without gamma and beta", y_plain, type, 2);
        }
}

TEST_CASE("conv2d_forward16 and conv_transpose2d_forward16", "[gpu][conv]") {
    auto shape = [](int N, int C, int H, int W, int K, int R, int stride, int pad) {
        return ConvShape::of(N, C, H, W, K, R, R, stride, pad, pad);
    };
    // the transformation network's convolutions, and an odd one
    for (const ConvShape& s : {shape(1, 3, 256, 256, 32, 9, 1, 4), shape(1, 32, 256, 256, 64, 3, 2, 1),
                               shape(2, 128, 64, 64, 128, 3, 1, 1), shape(1, 5, 33, 29, 7, 3, 2, 1)})
        for (const DType type : kTypes) {
            INFO("x [" << s.N << ", " << s.C << ", " << s.H << ", " << s.W << "] w [" << s.K << ", " << s.C << ", "
                       << s.R << ", " << s.S << "] stride " << s.stride);
            const float w_std = float(1 / std::sqrt(double(s.C) * s.R * s.S));
            Twin16 x(random16(type, s.x_size(), 2900)), w(random16(type, s.w_size(), 2901, w_std));
            Twin16 b(random16(type, s.K, 2902)), y(s.y_size()), y_bias(s.y_size()), dx(s.x_size());
            for (const Side side : {Side::Cpu, Side::Gpu}) {
                Backend& be = side == Side::Cpu ? cpu_backend() : gpu_backend();
                be.conv2d_forward16(type, s, x[side], w[side], nullptr, y[side]);
                be.conv2d_forward16(type, s, x[side], w[side], b[side], y_bias[side]);
            }
            expect_match16("conv2d_forward16", y, type, 4);
            expect_match16("conv2d_forward16 with bias", y_bias, type, 4);
            // The transposed convolution maps y's shape back to x's.
            Twin16 t_in(random16(type, s.y_size(), 2903));
            for (const Side side : {Side::Cpu, Side::Gpu})
                (side == Side::Cpu ? cpu_backend() : gpu_backend())
                    .conv_transpose2d_forward16(type, s, t_in[side], w[side], dx[side]);
            expect_match16("conv_transpose2d_forward16", dx, type, 4);
        }
}

}  // namespace
