// The CUDA backend against the CPU reference backend: every method of
// nst::Backend, forward and backward, at the shapes style transfer runs
// (VGG-19 on 224x224, the Johnson transformation network on 256x256) and at
// odd ones, with TF32 off and on.
//
// How a check works, and its tolerances: tests/backend_twin.hpp.
//
// These tests need a GPU (CTest label `gpu`); without one they fail, they do
// not skip: a GPU test that passes without a GPU could never fail.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend_twin.hpp"
#include "core/backend.hpp"
#include "core/device.hpp"
#include "kernels/checks.hpp"

namespace {

using namespace nst::test;
using nst::Backend;
using nst::ConvShape;
using nst::PadMode;

std::vector<float> relu_host(std::vector<float> v) {
    for (float& x : v) x = std::max(x, 0.0f);
    return v;
}

// ==============================================================================

TEST_CASE("the CUDA backend is there", "[gpu]") {
    INFO("nst::cuda_device_count() = " << nst::cuda_device_count());
    REQUIRE(nst::cuda_device_count() > 0);
    CHECK(gpu_backend().device() == nst::Device::cuda(0));
    CHECK(cpu_backend().device() == nst::Device::cpu());
}

// ---- memory ops --------------------------------------------------------------

TEST_CASE("fill and copy on the GPU", "[gpu][memory]") {
    Backend& gpu = gpu_backend();
    const int64_t n = 1000003;

    DeviceBuffer y(gpu, n);
    gpu.fill(n, -2.5f, y.data());
    expect_close("fill", y.download(), std::vector<float>(size_t(n), -2.5f), kExact);
    CHECK(y.guard_intact());

    // fill writes exactly n elements: the tail of a prefix fill keeps its value
    gpu.fill(n, 1.0f, y.data());
    gpu.fill(n - 17, 7.0f, y.data());
    std::vector<float> want(size_t(n), 7.0f);
    std::fill(want.end() - 17, want.end(), 1.0f);
    expect_close("fill of a prefix", y.download(), want, kExact);

    const std::vector<float> src_host = random_normal(n, 11);
    DeviceBuffer src(gpu, src_host), dst(gpu, n);
    gpu.copy(dst.data(), src.data(), sizeof(float) * size_t(n));
    expect_close("copy", dst.download(), src_host, kExact);
    CHECK(dst.guard_intact());
}

// The reference for strided_copy: the row-major walk over `shape`.
std::vector<float> strided_copy_host(const std::vector<int64_t>& shape,
                                     const std::vector<int64_t>& strides, int64_t offset,
                                     const std::vector<float>& src) {
    int64_t total = 1;
    for (int64_t s : shape) total *= s;
    std::vector<float> dst(static_cast<size_t>(total));
    const int ndim = int(shape.size());
    for (int64_t i = 0; i < total; ++i) {
        int64_t rest = i, pos = offset;
        for (int d = ndim - 1; d >= 0; --d) {
            pos += (rest % shape[size_t(d)]) * strides[size_t(d)];
            rest /= shape[size_t(d)];
        }
        dst[size_t(i)] = src[size_t(pos)];
    }
    return dst;
}

void check_strided_copy(const std::string& what, int64_t src_size,
                        const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                        int64_t offset, uint32_t seed) {
    const std::vector<float> src_host = random_normal(src_size, seed);
    const std::vector<float> want = strided_copy_host(shape, strides, offset, src_host);
    Twin src(src_host), dst(int64_t(want.size()));
    run_and_compare(
        {&dst},
        [&](Backend& be, Side s) {
            be.strided_copy(int(shape.size()), shape.data(), strides.data(), offset, src[s],
                            dst[s]);
        },
        [&](bool) {
            expect_match(what, dst, kExact);
            expect_close(what + " vs the host walk", dst.gpu.download(), want, kExact);
        });
}

TEST_CASE("strided_copy makes permuted and sliced views contiguous", "[gpu][memory]") {
    // [2, 3, 5, 7] viewed as permute(0, 2, 3, 1)
    check_strided_copy("permuted 4-D view", 2 * 3 * 5 * 7, {2, 5, 7, 3}, {105, 7, 1, 35}, 0, 21);
    // NCHW [2, 64, 128, 128] viewed as NHWC
    check_strided_copy("NCHW viewed as NHWC", 2 * 64 * 128 * 128, {2, 128, 128, 64},
                       {64 * 128 * 128, 128, 1, 128 * 128}, 0, 22);
    // [4, 6, 10, 12][1:3, ::2, 3:9, 1::3] permuted (3, 1, 0, 2): offset and steps
    check_strided_copy("sliced and permuted view", 4 * 6 * 10 * 12, {4, 3, 2, 6},
                       {3, 240, 720, 12}, 720 + 36 + 1, 23);
    // 8-D [2, 2, 2, 2, 2, 2, 2, 3] with its dimensions reversed
    check_strided_copy("8-D reversed view", 384, {3, 2, 2, 2, 2, 2, 2, 2},
                       {1, 3, 6, 12, 24, 48, 96, 192}, 0, 24);
    check_strided_copy("1-D every third element", 3001, {1000}, {3}, 1, 25);
    check_strided_copy("0-D element of a view", 10, {}, {}, 7, 26);
}

// ---- convolution -------------------------------------------------------------

// x after a ReLU when `relu_input` (every VGG layer but the first).
void check_conv(const ConvShape& s, uint32_t seed, bool relu_input) {
    INFO("conv2d " << nst::conv_shape_str(s));
    std::vector<float> x_host = random_normal(s.x_size(), seed);
    if (relu_input) x_host = relu_host(x_host);
    // He initialisation keeps y ~ O(1) whatever C*R*S is
    Twin x(x_host);
    Twin w(random_normal(s.w_size(), seed + 1, std::sqrt(2.0f / float(s.C * s.R * s.S))));
    Twin b(random_normal(s.K, seed + 2, 0.1f));
    Twin dy(random_normal(s.y_size(), seed + 3));
    Twin y(s.y_size()), y_nobias(s.y_size()), y_relu(s.y_size()), dx(s.x_size()), dw(s.w_size()), db(s.K);
    const auto op = [&](Backend& be, Side d) {
        be.conv2d_forward(s, x[d], w[d], b[d], y[d]);
        be.conv2d_forward(s, x[d], w[d], nullptr, y_nobias[d]);
        be.conv2d_relu_forward(s, x[d], w[d], b[d], y_relu[d]);
        be.conv2d_backward_data(s, dy[d], w[d], dx[d]);
        be.conv2d_backward_filter(s, x[d], dy[d], dw[d]);
        be.conv2d_backward_bias(s, dy[d], db[d]);
    };
    run_and_compare({&y, &y_nobias, &y_relu, &dx, &dw, &db}, op, [&](bool tf32) {
        expect_match("conv2d_forward with bias", y, gemm_tolerance(tf32));
        expect_match("conv2d_forward without bias", y_nobias, gemm_tolerance(tf32));
        expect_match("conv2d_relu_forward", y_relu, gemm_tolerance(tf32));
        expect_match("conv2d_backward_data", dx, gemm_tolerance(tf32));
        expect_match("conv2d_backward_filter", dw, gemm_tolerance(tf32));
        expect_match("conv2d_backward_bias", db, kReduction);
        expect_gpu_rerun_identical("conv2d_backward_bias", {&db}, [&](Backend& be, Side d) {
            be.conv2d_backward_bias(s, dy[d], db[d]);
        });
    });
}

// The CPU reference is the slow part of this file: the big layers run at N=1.
TEST_CASE("conv2d at VGG-19 shapes", "[gpu][conv]") {
    check_conv(ConvShape::of(1, 3, 224, 224, 64, 3, 3, 1, 1, 1), 100, false);
    check_conv(ConvShape::of(1, 64, 224, 224, 64, 3, 3, 1, 1, 1), 110, true);
    check_conv(ConvShape::of(1, 256, 56, 56, 256, 3, 3, 1, 1, 1), 120, true);
    check_conv(ConvShape::of(1, 512, 28, 28, 512, 3, 3, 1, 1, 1), 130, true);
}

TEST_CASE("conv2d at transformation-network shapes", "[gpu][conv]") {
    check_conv(ConvShape::of(2, 3, 256, 256, 32, 9, 9, 1, 4, 4), 200, false);
    check_conv(ConvShape::of(2, 32, 256, 256, 64, 3, 3, 2, 1, 1), 210, true);
    check_conv(ConvShape::of(4, 128, 64, 64, 128, 3, 3, 1, 1, 1), 220, true);
}

TEST_CASE("conv2d at odd shapes", "[gpu][conv]") {
    check_conv(ConvShape::of(2, 3, 37, 53, 5, 5, 5, 2, 2, 2), 300, false);
    check_conv(ConvShape::of(1, 3, 37, 53, 5, 5, 5, 1, 2, 2), 310, false);
    // rectangular kernel with different pads per axis
    check_conv(ConvShape::of(3, 4, 37, 53, 6, 3, 5, 1, 1, 2), 320, false);
    // 1x1 stride 2: every other input row and column gets no gradient (zeros)
    check_conv(ConvShape::of(2, 16, 37, 53, 8, 1, 1, 2, 0, 0), 330, false);
    // no padding
    check_conv(ConvShape::of(1, 5, 9, 7, 3, 3, 3, 1, 0, 0), 340, false);
    // an even kernel with a stride larger than itself leaves gaps
    check_conv(ConvShape::of(2, 2, 17, 19, 3, 2, 2, 3, 1, 0), 350, false);
}

// backend.hpp: "Reductions are deterministic". The filter gradient sums over
// N*P*Q and the data gradient over K*R*S; cuDNN has algorithms for both that
// accumulate with atomics, which this catches.
TEST_CASE("conv2d backward is deterministic", "[gpu][conv][determinism]") {
    const ConvShape s = ConvShape::of(4, 128, 64, 64, 128, 3, 3, 1, 1, 1);
    INFO("conv2d " << nst::conv_shape_str(s));
    Twin x(relu_host(random_normal(s.x_size(), 400)));
    Twin w(random_normal(s.w_size(), 401, 0.04f));
    Twin dy(random_normal(s.y_size(), 402));
    Twin dx(s.x_size()), dw(s.w_size());
    const auto op = [&](Backend& be, Side d) {
        be.conv2d_backward_data(s, dy[d], w[d], dx[d]);
        be.conv2d_backward_filter(s, x[d], dy[d], dw[d]);
    };
    for (bool tf32 : {false, true}) {
        Tf32Scope scope(tf32);
        INFO("TF32 " << (tf32 ? "on" : "off"));
        op(gpu_backend(), Side::Gpu);
        expect_gpu_rerun_identical("conv2d backward_data and backward_filter", {&dx, &dw}, op);
    }
}

// ---- matmul ------------------------------------------------------------------

// C = alpha op(A) op(B) + beta C in double on the host, to check the CPU
// reference itself reads the transposes the way backend.hpp says.
std::vector<float> matmul_host(bool ta, bool tb, int M, int N, int K, float alpha,
                               const std::vector<float>& A, const std::vector<float>& B,
                               float beta, const std::vector<float>& C0) {
    std::vector<float> C(size_t(M) * size_t(N));
    for (int i = 0; i < M; ++i) {
        for (int j = 0; j < N; ++j) {
            double acc = 0.0;
            for (int k = 0; k < K; ++k) {
                const double a = ta ? A[size_t(k) * M + i] : A[size_t(i) * K + k];
                const double b = tb ? B[size_t(j) * K + k] : B[size_t(k) * N + j];
                acc += a * b;
            }
            const double old = beta != 0.0f ? double(beta) * C0[size_t(i) * N + j] : 0.0;
            C[size_t(i) * N + j] = float(alpha * acc + old);
        }
    }
    return C;
}

void check_matmul(bool ta, bool tb, int M, int N, int K, float alpha, float beta,
                  uint32_t seed) {
    INFO("matmul trans_a=" << ta << " trans_b=" << tb << " M=" << M << " N=" << N << " K=" << K
                           << " alpha=" << alpha << " beta=" << beta
                           << (beta == 0.0f ? " (C poisoned with NaN)" : ""));
    const std::vector<float> a_host = random_normal(int64_t(M) * K, seed);
    const std::vector<float> b_host = random_normal(int64_t(K) * N, seed + 1);
    const std::vector<float> c_host = random_normal(int64_t(M) * N, seed + 2);
    Twin A(a_host), B(b_host), C(int64_t(M) * N);
    run_and_compare(
        {&C},
        [&](Backend& be, Side s) {
            // beta != 0 reads C: start each run from the same C; beta == 0 must
            // ignore the NaN poison
            if (beta != 0.0f) C.on(s).upload(c_host);
            be.matmul(ta, tb, M, N, K, alpha, A[s], B[s], beta, C[s]);
        },
        [&](bool tf32) { expect_match("matmul", C, gemm_tolerance(tf32)); });
    if (int64_t(M) * N * K <= 10'000'000) {
        expect_close("CPU matmul vs host double", C.cpu.download(),
                     matmul_host(ta, tb, M, N, K, alpha, a_host, b_host, beta, c_host),
                     kFp32Gemm);
    }
}

TEST_CASE("matmul all four transpose combinations", "[gpu][matmul]") {
    struct Size {
        int M, N, K;
    };
    const Size sizes[] = {{129, 257, 65}, {1024, 1024, 1024}, {1, 300, 77}, {77, 1, 300},
                          {64, 50, 1}};
    uint32_t seed = 500;
    for (const Size& sz : sizes) {
        for (bool ta : {false, true}) {
            for (bool tb : {false, true}) {
                check_matmul(ta, tb, sz.M, sz.N, sz.K, 1.5f, -0.75f, seed += 3);
                check_matmul(ta, tb, sz.M, sz.N, sz.K, 0.8f, 0.0f, seed += 3);
            }
        }
    }
}

// ---- elementwise -------------------------------------------------------------

const int64_t kElementwiseSizes[] = {64 * 224 * 224, 1001, 1};

TEST_CASE("relu tanh add and mul", "[gpu][elementwise]") {
    uint32_t seed = 600;
    for (int64_t n : kElementwiseSizes) {
        INFO("n = " << n);
        std::vector<float> x_host = random_normal(n, seed++, 2.0f);
        for (size_t i = 0; i < x_host.size(); i += 7) x_host[i] = 0.0f;  // relu's kink
        std::vector<float> tanh_host(x_host.size());
        std::transform(x_host.begin(), x_host.end(), tanh_host.begin(),
                       [](float v) { return std::tanh(v); });
        Twin x(x_host), a(random_normal(n, seed++)), b(random_normal(n, seed++));
        Twin dy(random_normal(n, seed++));
        Twin relu_out(relu_host(x_host)), tanh_out(tanh_host);  // inputs of the backwards
        Twin relu_y(n), relu_dx(n), tanh_y(n), tanh_dx(n), sum(n), product(n), scaled(n);
        run_and_compare(
            {&relu_y, &relu_dx, &tanh_y, &tanh_dx, &sum, &product, &scaled},
            [&](Backend& be, Side s) {
                be.relu_forward(n, x[s], relu_y[s]);
                be.relu_backward(n, relu_out[s], dy[s], relu_dx[s]);
                be.tanh_forward(n, x[s], tanh_y[s]);
                be.tanh_backward(n, tanh_out[s], dy[s], tanh_dx[s]);
                be.add_forward(n, a[s], b[s], sum[s]);
                be.mul_forward(n, a[s], b[s], product[s]);
                be.scale_forward(n, -1.75f, a[s], scaled[s]);
            },
            [&](bool) {
                expect_match("relu_forward", relu_y, kExact);
                expect_match("relu_backward", relu_dx, kExact);
                expect_match("tanh_forward", tanh_y, kElementwise);
                expect_match("tanh_backward", tanh_dx, kElementwise);
                expect_match("add", sum, kExact);
                expect_match("mul", product, kExact);
                expect_match("scale_forward", scaled, kExact);
            });
    }
}

TEST_CASE("axpby including beta = 0 over a NaN y", "[gpu][elementwise]") {
    struct Coefficients {
        float alpha, beta;
    };
    const Coefficients cases[] = {{1.5f, -0.5f}, {-2.0f, 1.0f}, {0.75f, 0.0f}};
    uint32_t seed = 700;
    for (int64_t n : kElementwiseSizes) {
        for (const Coefficients& c : cases) {
            INFO("axpby n = " << n << " alpha = " << c.alpha << " beta = " << c.beta);
            Twin x(random_normal(n, seed++));
            const std::vector<float> y0 = random_normal(n, seed++);
            Twin y(n);
            run_and_compare(
                {&y},
                [&](Backend& be, Side s) {
                    if (c.beta != 0.0f) y.on(s).upload(y0);  // else y stays NaN
                    be.axpby(n, c.alpha, x[s], c.beta, y[s]);
                },
                [&](bool) { expect_match("axpby", y, kElementwise); });
        }
    }
}

// The op layer hands the backend pointers into the middle of buffers (views
// with an offset): vectorised kernels must not assume 16-byte alignment.
TEST_CASE("elementwise ops on pointers that are not 16-byte aligned", "[gpu][elementwise]") {
    const int64_t n = 100003;
    const std::vector<float> base = random_normal(n + 4, 800);
    Twin a(random_normal(n + 4, 801)), b(random_normal(n + 4, 802));
    // a + 1, b + 2, out + 3: three different misalignments; elements of out
    // outside [3, n + 3) must keep `base`.
    const auto check = [&](const char* what, Tolerance tol, auto op) {
        Twin out(base);
        for (Side s : {Side::Cpu, Side::Gpu}) {
            Backend& be = s == Side::Cpu ? cpu_backend() : gpu_backend();
            be.fill(n, kNaN, out[s] + 3);
            op(be, a[s] + 1, b[s] + 2, out[s] + 3);
        }
        expect_match(what, out, tol);
    };
    check("fill", kExact, [&](Backend& be, float*, float*, float* y) { be.fill(n, 0.5f, y); });
    check("copy", kExact, [&](Backend& be, float* x, float*, float* y) {
        be.copy(y, x, sizeof(float) * size_t(n));
    });
    check("relu_forward", kExact,
          [&](Backend& be, float* x, float*, float* y) { be.relu_forward(n, x, y); });
    check("tanh_forward", kElementwise,
          [&](Backend& be, float* x, float*, float* y) { be.tanh_forward(n, x, y); });
    check("add", kExact, [&](Backend& be, float* x, float* z, float* y) { be.add_forward(n, x, z, y); });
    check("mul", kExact, [&](Backend& be, float* x, float* z, float* y) { be.mul_forward(n, x, z, y); });
    check("axpby", kElementwise,
          [&](Backend& be, float* x, float*, float* y) { be.axpby(n, 0.5f, x, 0.0f, y); });
}

// ---- per-channel ---------------------------------------------------------------

struct ChannelShape {
    int N, C;
    int64_t HW;
};

TEST_CASE("channel_affine with and without scale and shift", "[gpu][channel]") {
    const ChannelShape shapes[] = {{4, 128, 64 * 64}, {3, 5, 1001}, {1, 1, 1}};
    uint32_t seed = 900;
    for (const ChannelShape& sh : shapes) {
        const int64_t n = int64_t(sh.N) * sh.C * sh.HW;
        Twin x(random_normal(n, seed++)), scale(random_normal(sh.C, seed++)),
            shift(random_normal(sh.C, seed++));
        Twin y(n);
        for (bool with_scale : {true, false}) {
            for (bool with_shift : {true, false}) {
                INFO("channel_affine N=" << sh.N << " C=" << sh.C << " HW=" << sh.HW
                                         << (with_scale ? " scale" : " no scale")
                                         << (with_shift ? " shift" : " no shift"));
                run_and_compare(
                    {&y},
                    [&](Backend& be, Side s) {
                        be.channel_affine_forward(sh.N, sh.C, sh.HW, x[s],
                                          with_scale ? scale[s] : nullptr,
                                          with_shift ? shift[s] : nullptr, y[s]);
                    },
                    [&](bool) { expect_match("channel_affine", y, kElementwise); });
            }
        }
    }
}

TEST_CASE("bias_add_backward", "[gpu][channel]") {
    const ChannelShape shapes[] = {{4, 128, 64 * 64}, {1, 64, 224 * 224}, {3, 5, 1001}, {2, 1, 1}};
    uint32_t seed = 1000;
    for (const ChannelShape& sh : shapes) {
        INFO("bias_add_backward N=" << sh.N << " C=" << sh.C << " HW=" << sh.HW);
        const int64_t n = int64_t(sh.N) * sh.C * sh.HW;
        Twin x(random_normal(n, seed++, 1.0f, 0.3f));
        Twin out(sh.C);
        const auto op = [&](Backend& be, Side s) { be.bias_add_backward(sh.N, sh.C, sh.HW, x[s], out[s]); };
        run_and_compare({&out}, op, [&](bool) {
            expect_match("bias_add_backward", out, kReduction);
            expect_gpu_rerun_identical("bias_add_backward", {&out}, op);
        });
    }
}

// ---- pooling and upsampling ----------------------------------------------------

struct PlaneShape {
    int64_t NC;
    int H, W;
};

TEST_CASE("max and avg pool 2x2 forward and backward", "[gpu][pool]") {
    const PlaneShape shapes[] = {{2 * 64, 224, 224}, {3, 37, 53}, {5, 2, 3}, {4, 3, 2}};
    uint32_t seed = 1100;
    for (const PlaneShape& sh : shapes) {
        INFO("pool NC=" << sh.NC << " H=" << sh.H << " W=" << sh.W);
        const int64_t n_in = sh.NC * sh.H * sh.W;
        const int64_t n_out = sh.NC * (sh.H / 2) * (sh.W / 2);
        Twin x_distinct(distinct_values(n_in, seed++));  // no ties: one first maximum
        Twin x(random_normal(n_in, seed++)), dy(random_normal(n_out, seed++));
        Twin max_y(n_out), max_dx(n_in), avg_y(n_out), avg_dx(n_in);
        run_and_compare(
            {&max_y, &max_dx, &avg_y, &avg_dx},
            [&](Backend& be, Side s) {
                be.max_pool2x2_forward(sh.NC, sh.H, sh.W, x_distinct[s], max_y[s]);
                be.max_pool2x2_backward(sh.NC, sh.H, sh.W, x_distinct[s], dy[s], max_dx[s]);
                be.avg_pool2x2_forward(sh.NC, sh.H, sh.W, x[s], avg_y[s]);
                be.avg_pool2x2_backward(sh.NC, sh.H, sh.W, dy[s], avg_dx[s]);
            },
            [&](bool) {
                expect_match("max_pool2x2_forward", max_y, kExact);
                expect_match("max_pool2x2_backward", max_dx, kExact);
                expect_match("avg_pool2x2_forward", avg_y, kElementwise);
                expect_match("avg_pool2x2_backward", avg_dx, kExact);
            });
    }
}

TEST_CASE("nearest and bilinear 2x upsampling forward and backward", "[gpu][upsample]") {
    const PlaneShape shapes[] = {{2 * 64, 64, 64}, {3, 37, 53}, {2, 1, 1}, {4, 1, 5}, {3, 6, 1}};
    uint32_t seed = 1200;
    for (const PlaneShape& sh : shapes) {
        INFO("upsample NC=" << sh.NC << " H=" << sh.H << " W=" << sh.W);
        const int64_t n_in = sh.NC * sh.H * sh.W;
        const int64_t n_out = n_in * 4;
        Twin x(random_normal(n_in, seed++)), dy(random_normal(n_out, seed++));
        Twin nearest_y(n_out), nearest_dx(n_in), bilinear_y(n_out), bilinear_dx(n_in);
        run_and_compare(
            {&nearest_y, &nearest_dx, &bilinear_y, &bilinear_dx},
            [&](Backend& be, Side s) {
                be.upsample_nearest2x_forward(sh.NC, sh.H, sh.W, x[s], nearest_y[s]);
                be.upsample_nearest2x_backward(sh.NC, sh.H, sh.W, dy[s], nearest_dx[s]);
                be.upsample_bilinear2x_forward(sh.NC, sh.H, sh.W, x[s], bilinear_y[s]);
                be.upsample_bilinear2x_backward(sh.NC, sh.H, sh.W, dy[s], bilinear_dx[s]);
            },
            [&](bool) {
                expect_match("upsample_nearest2x_forward", nearest_y, kExact);
                expect_match("upsample_nearest2x_backward", nearest_dx, kElementwise);
                expect_match("upsample_bilinear2x_forward", bilinear_y, kElementwise);
                expect_match("upsample_bilinear2x_backward", bilinear_dx, kElementwise);
            });
    }
}

// ---- padding -------------------------------------------------------------------

struct PadCase {
    int64_t NC;
    int H, W;
    int top, bottom, left, right;
    PadMode mode;
};

TEST_CASE("zero and reflect padding forward and backward", "[gpu][pad]") {
    const PadMode zero = PadMode::Zero, reflect = PadMode::Reflect;
    const PadCase cases[] = {
        {6, 256, 256, 4, 4, 4, 4, zero},
        {3, 37, 53, 1, 3, 0, 2, zero},      // asymmetric
        {3, 37, 53, -2, -1, -3, 0, zero},   // crop
        {3, 37, 53, 2, -3, -1, 4, zero},    // pad on some sides, crop on others
        {6, 256, 256, 4, 4, 4, 4, reflect}, // before the 9x9 convolutions
        {2 * 128, 64, 64, 1, 1, 1, 1, reflect},
        {3, 37, 53, 36, 1, 0, 52, reflect}, // amounts up to size - 1
        {3, 37, 53, 0, 36, 52, 3, reflect},
        {2, 2, 2, 1, 1, 1, 1, reflect},
    };
    uint32_t seed = 1300;
    for (const PadCase& c : cases) {
        INFO((c.mode == zero ? "zero" : "reflect")
             << " pad NC=" << c.NC << " H=" << c.H << " W=" << c.W << " top=" << c.top
             << " bottom=" << c.bottom << " left=" << c.left << " right=" << c.right);
        const int64_t n_in = c.NC * c.H * c.W;
        const int64_t n_out = c.NC * (c.H + c.top + c.bottom) * (c.W + c.left + c.right);
        Twin x(random_normal(n_in, seed++)), dy(random_normal(n_out, seed++));
        Twin y(n_out), dx(n_in);
        run_and_compare(
            {&y, &dx},
            [&](Backend& be, Side s) {
                be.pad_forward(c.NC, c.H, c.W, c.top, c.bottom, c.left, c.right, c.mode, x[s],
                               y[s]);
                be.pad_backward(c.NC, c.H, c.W, c.top, c.bottom, c.left, c.right, c.mode, dy[s],
                                dx[s]);
            },
            [&](bool) {
                expect_match("pad_forward", y, kExact);
                // reflect backward sums up to 9 contributions per element
                expect_match("pad_backward", dx, c.mode == zero ? kExact : kElementwise);
            });
    }
}

// ---- Gram matrix ---------------------------------------------------------------

void check_gram(int N, int C, int64_t HW, bool relu_features, uint32_t seed) {
    INFO("gram N=" << N << " C=" << C << " HW=" << HW);
    std::vector<float> f_host = random_normal(int64_t(N) * C * HW, seed);
    if (relu_features) f_host = relu_host(f_host);
    const float scale = 1.0f / float(int64_t(C) * HW);
    Twin F(f_host), dG(random_normal(int64_t(N) * C * C, seed + 1));
    Twin G(int64_t(N) * C * C), dF(int64_t(N) * C * HW);
    run_and_compare(
        {&G, &dF},
        [&](Backend& be, Side s) {
            be.gram_forward(N, C, HW, scale, F[s], G[s]);
            be.gram_backward(N, C, HW, scale, F[s], dG[s], dF[s]);
        },
        [&](bool) {
            expect_match("gram_forward", G, kReduction);
            expect_match("gram_backward", dF, kReduction);
            expect_gpu_rerun_identical("gram_forward", {&G}, [&](Backend& be, Side s) {
                be.gram_forward(N, C, HW, scale, F[s], G[s]);
            });
        });
}

TEST_CASE("gram at the VGG-19 style taps", "[gpu][gram]") {
    check_gram(1, 64, 224 * 224, true, 1400);
    check_gram(1, 128, 112 * 112, true, 1410);
    check_gram(1, 256, 56 * 56, true, 1420);
    check_gram(1, 512, 28 * 28, true, 1430);
    check_gram(1, 512, 14 * 14, true, 1440);
}

TEST_CASE("gram at awkward shapes", "[gpu][gram]") {
    check_gram(2, 3, 1001, false, 1450);
    check_gram(2, 65, 1001, false, 1460);
    check_gram(2, 130, 1001, false, 1470);
}

// ---- instance norm -------------------------------------------------------------

// mean and rstd in double, two-pass: the yardstick for both backends.
void instance_stats_host(int64_t planes, int64_t HW, float eps, const std::vector<float>& x,
                         std::vector<float>& mean, std::vector<float>& rstd) {
    mean.resize(size_t(planes));
    rstd.resize(size_t(planes));
    for (int64_t p = 0; p < planes; ++p) {
        const float* xp = x.data() + p * HW;
        double sum = 0.0;
        for (int64_t i = 0; i < HW; ++i) sum += xp[i];
        const double mu = sum / double(HW);
        double sq = 0.0;
        for (int64_t i = 0; i < HW; ++i) sq += (xp[i] - mu) * (xp[i] - mu);
        mean[size_t(p)] = float(mu);
        rstd[size_t(p)] = float(1.0 / std::sqrt(sq / double(HW) + double(eps)));
    }
}

// x has a different mean and spread per (n, c), around `offset`. With every
// variant, gamma/beta and dgamma/dbeta are also tried one at a time.
void check_instance_norm(int N, int C, int64_t HW, float offset, bool every_variant,
                         uint32_t seed) {
    INFO("instance_norm N=" << N << " C=" << C << " HW=" << HW << " offset=" << offset);
    const int64_t planes = int64_t(N) * C, n = planes * HW;
    const float eps = 1e-5f;
    // spreads stay near 1 at +1000 so the 1-ulp-of-mean floor stays near 6e-5
    const std::vector<float> plane_mean = random_normal(planes, seed, 2.0f);
    const std::vector<float> plane_std =
        offset != 0.0f ? random_uniform(planes, seed + 1, 0.8f, 1.25f)
                       : random_uniform(planes, seed + 1, 0.2f, 3.0f);
    std::vector<float> x_host = random_normal(n, seed + 2);
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t i = p * HW; i < (p + 1) * HW; ++i)
            x_host[size_t(i)] =
                offset + plane_mean[size_t(p)] + plane_std[size_t(p)] * x_host[size_t(i)];
    std::vector<float> mean_host, rstd_host;
    instance_stats_host(planes, HW, eps, x_host, mean_host, rstd_host);

    Twin x(x_host);
    Twin gamma(random_normal(C, seed + 3, 0.2f, 1.0f)), beta(random_normal(C, seed + 4, 0.1f));
    Twin y(n), mean(planes), rstd(planes);
    const Tolerance y_tol = offset != 0.0f ? kOffsetNorm : kReduction;

    struct Affine {
        bool gamma, beta, relu;
    };
    std::vector<Affine> forward_variants = {{true, true, false}, {false, false, false}, {true, true, true}};
    if (every_variant) forward_variants.insert(forward_variants.end(), {{true, false, false}, {false, true, true}});
    for (const Affine& v : forward_variants) {
        INFO("forward with" << (v.gamma ? "" : "out") << " gamma, with" << (v.beta ? "" : "out")
                            << " beta" << (v.relu ? ", relu" : ""));
        run_and_compare(
            {&y, &mean, &rstd},
            [&](Backend& be, Side s) {
                be.instance_norm_forward(N, C, HW, eps, x[s], v.gamma ? gamma[s] : nullptr,
                                         v.beta ? beta[s] : nullptr, y[s], mean[s], rstd[s], v.relu);
            },
            [&](bool) {
                expect_match("instance_norm_forward y", y, y_tol);
                expect_match("instance_norm_forward mean", mean, kReduction);
                expect_match("instance_norm_forward rstd", rstd, kReduction);
                expect_close("GPU mean vs host double", mean.gpu.download(), mean_host, kReduction);
                expect_close("GPU rstd vs host double", rstd.gpu.download(), rstd_host, kReduction);
            });
    }
    expect_close("CPU mean vs host double", mean.cpu.download(), mean_host, kReduction);
    expect_close("CPU rstd vs host double", rstd.cpu.download(), rstd_host, kReduction);

    // Both backends' backward read the same statistics.
    Twin stat_mean(mean_host), stat_rstd(rstd_host), dy(random_normal(n, seed + 5));
    Twin dx(n), dgamma(C), dbeta(C);
    struct Grads {
        bool gamma, dgamma, dbeta;
    };
    std::vector<Grads> backward_variants = {{true, true, true}, {false, false, false}};
    if (every_variant)
        backward_variants.insert(backward_variants.end(),
                                 {{false, true, true}, {true, false, true}, {true, true, false}});
    for (const Grads& v : backward_variants) {
        INFO("backward with" << (v.gamma ? "" : "out") << " gamma, with"
                             << (v.dgamma ? "" : "out") << " dgamma, with"
                             << (v.dbeta ? "" : "out") << " dbeta");
        const auto op = [&](Backend& be, Side s) {
            be.instance_norm_backward(N, C, HW, x[s], v.gamma ? gamma[s] : nullptr, stat_mean[s],
                                      stat_rstd[s], dy[s], dx[s], v.dgamma ? dgamma[s] : nullptr,
                                      v.dbeta ? dbeta[s] : nullptr);
        };
        // all three are poisoned; only the wanted ones are compared
        run_and_compare({&dx, &dgamma, &dbeta}, op, [&](bool) {
            expect_match("instance_norm_backward dx", dx, kReduction);
            if (v.dgamma) expect_match("instance_norm_backward dgamma", dgamma, kReduction);
            if (v.dbeta) expect_match("instance_norm_backward dbeta", dbeta, kReduction);
            if (v.dgamma && v.dbeta)
                expect_gpu_rerun_identical("instance_norm_backward", {&dx, &dgamma, &dbeta}, op);
        });
    }
}

TEST_CASE("instance norm at 1080p with an offset of 1000", "[gpu][instance_norm]") {
    check_instance_norm(1, 32, 1920 * 1080, 1000.0f, false, 1500);
}

TEST_CASE("instance norm at transformation-network and odd shapes", "[gpu][instance_norm]") {
    check_instance_norm(4, 128, 64 * 64, 0.0f, true, 1510);
    check_instance_norm(2, 3, 17 * 19, 0.0f, true, 1520);
}

// ---- losses --------------------------------------------------------------------

const float kUpstream = 0.37f;  // d(total loss)/d(this loss), read from device memory

TEST_CASE("mse and sum_squares forward and backward", "[gpu][loss]") {
    const int64_t sizes[] = {64 * 512 * 512, 1001, 1};
    uint32_t seed = 1600;
    for (int64_t n : sizes) {
        INFO("n = " << n);
        Twin a(random_normal(n, seed++)), b(random_normal(n, seed++, 0.5f, 0.1f));
        Twin dout(std::vector<float>{kUpstream});
        Twin mse(1), mse_da(n), ss(1), ss_dx(n);
        const auto forward = [&](Backend& be, Side s) {
            be.mse_loss_forward(n, a[s], b[s], mse[s]);
            be.sum_squares_forward(n, a[s], ss[s]);
        };
        run_and_compare(
            {&mse, &mse_da, &ss, &ss_dx},
            [&](Backend& be, Side s) {
                forward(be, s);
                be.mse_loss_backward(n, a[s], b[s], dout[s], mse_da[s]);
                be.sum_squares_backward(n, a[s], dout[s], ss_dx[s]);
            },
            [&](bool) {
                expect_match("mse_loss_forward", mse, kReduction);
                expect_match("mse_loss_backward", mse_da, kElementwise);
                expect_match("sum_squares_forward", ss, kReduction);
                expect_match("sum_squares_backward", ss_dx, kElementwise);
                expect_gpu_rerun_identical("mse_loss_forward and sum_squares_forward", {&mse, &ss},
                                           forward);
            });
    }
}

TEST_CASE("total variation forward and backward", "[gpu][loss]") {
    const PlaneShape shapes[] = {{64, 512, 512}, {3, 7, 11}, {2, 1, 9}, {2, 9, 1}, {1, 1, 1}};
    uint32_t seed = 1700;
    for (const PlaneShape& sh : shapes) {
        INFO("tv NC=" << sh.NC << " H=" << sh.H << " W=" << sh.W);
        const int64_t n = sh.NC * sh.H * sh.W;
        Twin x(random_normal(n, seed++)), dout(std::vector<float>{kUpstream});
        Twin tv(1), dx(n);
        const auto forward = [&](Backend& be, Side s) { be.tv_loss_forward(sh.NC, sh.H, sh.W, x[s], tv[s]); };
        run_and_compare(
            {&tv, &dx},
            [&](Backend& be, Side s) {
                forward(be, s);
                be.tv_loss_backward(sh.NC, sh.H, sh.W, x[s], dout[s], dx[s]);
            },
            [&](bool) {
                expect_match("tv_loss_forward", tv, kReduction);
                expect_match("tv_loss_backward", dx, kElementwise);
                expect_gpu_rerun_identical("tv_loss_forward", {&tv}, forward);
            });
    }
}

// ---- the fused upsampling and padding, L-BFGS's inner product, Adam ----------

TEST_CASE("upsample_pad_forward: nearest 2x and padding in one pass", "[gpu][pad]") {
    struct Case {
        int64_t NC;
        int H, W, p;
        PadMode mode;
    };
    const Case cases[] = {{2 * 64, 135, 241, 1, PadMode::Reflect},  // the native network's upsampling layers
                          {3, 17, 9, 4, PadMode::Reflect},          // amounts up to 2 * size - 1
                          {3, 17, 9, 0, PadMode::Zero},             // plain upsampling (the 16-bit path)
                          {5, 1, 1, 3, PadMode::Zero}};
    uint32_t seed = 2100;
    for (const Case& c : cases) {
        INFO("upsample_pad NC=" << c.NC << " H=" << c.H << " W=" << c.W << " p=" << c.p
                                << (c.mode == PadMode::Zero ? " zero" : " reflect"));
        const int64_t n_out = c.NC * (2 * c.H + 2 * c.p) * (2 * c.W + 2 * c.p);
        Twin x(random_normal(c.NC * c.H * c.W, seed++)), y(n_out);
        run_and_compare(
            {&y}, [&](Backend& be, Side s) { be.upsample_pad_forward(c.NC, c.H, c.W, c.p, c.mode, x[s], y[s]); },
            [&](bool) { expect_match("upsample_pad_forward", y, kExact); });
    }
}

TEST_CASE("dot, the inner products of L-BFGS", "[gpu][loss]") {
    const int64_t sizes[] = {3 * 1024 * 1024, 1001, 1, 0};
    uint32_t seed = 2200;
    for (int64_t n : sizes) {
        INFO("n = " << n);
        const int64_t stored = std::max<int64_t>(n, 1);  // a buffer is never empty
        Twin a(random_normal(stored, seed++)), b(random_normal(stored, seed++, 0.5f, 0.2f)), out(1);
        const auto op = [&](Backend& be, Side s) { be.dot(n, a[s], b[s], out[s]); };
        run_and_compare({&out}, op, [&](bool) {
            expect_match("dot", out, kReduction);
            expect_gpu_rerun_identical("dot", {&out}, op);
        });
    }
}

// In place on param, m and v (nothing to poison): the same start on both
// sides, then three steps with their bias corrections, as Adam::step takes
// them. The moment updates may contract to FMAs on the GPU: elementwise.
TEST_CASE("adam_step", "[gpu][optim]") {
    for (int64_t n : {int64_t(3 * 512 * 512), int64_t(1001), int64_t(1)}) {
        INFO("n = " << n);
        Twin param(random_normal(n, 2300, 0.5f)), m(n), v(n);
        m.cpu.upload(std::vector<float>(size_t(n), 0.f)), m.gpu.upload(std::vector<float>(size_t(n), 0.f));
        v.cpu.upload(std::vector<float>(size_t(n), 0.f)), v.gpu.upload(std::vector<float>(size_t(n), 0.f));
        const float beta1 = 0.9f, beta2 = 0.999f;
        for (int t = 1; t <= 3; ++t) {
            INFO("step " << t);
            Twin grad(random_normal(n, 2300 + uint32_t(t), t == 2 ? 1e-3f : 1.f));
            const float bc1 = 1.f - std::pow(beta1, float(t)), bc2 = 1.f - std::pow(beta2, float(t));
            for (Side s : {Side::Cpu, Side::Gpu})
                (s == Side::Cpu ? cpu_backend() : gpu_backend())
                    .adam_step(n, 0.02f, beta1, beta2, 1e-8f, bc1, bc2, grad[s], param[s], m[s], v[s]);
            expect_match("adam_step param", param, kElementwise);
            expect_match("adam_step m", m, kElementwise);
            expect_match("adam_step v", v, kElementwise);
        }
    }
}

// Bytes, so not through Twin: both sides get the same bytes, outputs
// poisoned (NaN for floats, 0xA5 and 0x5A for bytes) up to a guard tail past
// the end.
// Exact: data movement, and one correctly rounded roundf per byte.
TEST_CASE("rgb8_to_planar and planar_to_rgb8, the video frames' conversions", "[gpu][memory]") {
    for (const auto& [N, HW] : {std::pair<int, int64_t>{1, 1920 * 1080}, {3, 1001}, {1, 1}}) {
        INFO("N " << N << " HW " << HW);
        const size_t n = size_t(N) * size_t(HW) * 3, guard = 256;
        std::mt19937 rng{uint32_t(HW)};
        std::vector<uint8_t> rgb(n);
        for (uint8_t& v : rgb) v = uint8_t(rng() & 0xFF);
        // Floats with every rounding case, ties and out-of-range values included.
        std::vector<float> x = random_uniform(int64_t(n), 2400, -30.f, 285.f);
        const float special[] = {kNaN, -INFINITY, INFINITY, 0.49999997f, 0.5f, 2.5f, 254.5f, 255.f, -0.5f, 1e30f};
        for (size_t i = 0; i < n; i += 7) x[i] = special[(i / 7) % 10];
        for (int i = 0; i < 10 && size_t(i) < n; ++i) x[size_t(i)] = special[i];

        Backend& gpu = gpu_backend();
        auto* bytes = static_cast<uint8_t*>(gpu.allocate(n + guard));
        DeviceBuffer planar(gpu, int64_t(n)), floats(gpu, x);
        gpu.copy_from_host(bytes, rgb.data(), n);
        gpu.rgb8_to_planar(N, HW, bytes, planar.data());
        std::vector<float> want_planar(n);
        cpu_backend().rgb8_to_planar(N, HW, rgb.data(), want_planar.data());
        CHECK(planar.download() == want_planar);
        CHECK(planar.guard_intact());

        // Two poisons: a skipped byte whose right value is one of them shows with the other.
        std::vector<uint8_t> want(n);
        cpu_backend().planar_to_rgb8(N, HW, x.data(), want.data());
        for (const uint8_t p : {uint8_t(0xA5), uint8_t(0x5A)}) {
            const std::vector<uint8_t> poison(n + guard, p);
            gpu.copy_from_host(bytes, poison.data(), n + guard);
            gpu.planar_to_rgb8(N, HW, floats.data(), bytes);
            std::vector<uint8_t> got(n + guard);
            gpu.copy_to_host(got.data(), bytes, n + guard);
            CHECK(std::equal(want.begin(), want.end(), got.begin()));
            CHECK(std::all_of(got.begin() + std::ptrdiff_t(n), got.end(), [p](uint8_t b) { return b == p; }));
        }
        gpu.deallocate(bytes, n + guard);
    }
}

}  // namespace
