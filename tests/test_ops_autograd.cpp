// The op layer and autograd on the CPU: every op's gradient against central
// finite differences (through the public op API, so the compositions the op
// layer adds, such as asymmetric/reflect padding in conv2d and cropping in
// conv_transpose2d, are covered), composite ops against direct formulas, and
// the tape's semantics.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "core/autograd.hpp"
#include "core/error.hpp"
#include "core/ops.hpp"
#include "gradcheck.hpp"

using namespace nst;
using nst::test::gradcheck;
using nst::test::param;
using nst::test::rel_error;

namespace {

// Values bounded away from 0 by `margin`, so finite differences never step
// across a kink (relu, max pool ties).
Tensor away_from_zero(const Shape& shape, uint64_t seed, float margin = 0.1f) {
    std::vector<float> v = Tensor::randn(shape, seed).to_vector();
    for (float& x : v) x += x >= 0 ? margin : -margin;
    Tensor t = Tensor::from_vector(v, shape);
    t.set_requires_grad();
    return t;
}

// Distinct values 0.05 apart in a seeded order: no ties within a pool window.
Tensor distinct(const Shape& shape, uint64_t seed) {
    const int64_t n = shape_numel(shape);
    std::vector<float> keys = Tensor::rand({n}, seed).to_vector(), v(static_cast<size_t>(n));
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return keys[size_t(a)] < keys[size_t(b)]; });
    for (int64_t r = 0; r < n; ++r) v[size_t(order[size_t(r)])] = 0.05f * float(r - n / 2);
    Tensor t = Tensor::from_vector(v, shape);
    t.set_requires_grad();
    return t;
}

// Direct definition of a cross-correlation with arbitrary zero padding.
std::vector<float> naive_conv(const Tensor& x, const Tensor& w, int stride, int pt, int pb, int pl,
                              int pr) {
    const auto xs = x.shape(), ws = w.shape();
    const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], K = ws[0], R = ws[2], S = ws[3];
    const int64_t P = (H + pt + pb - R) / stride + 1, Q = (W + pl + pr - S) / stride + 1;
    const auto xv = x.to_vector(), wv = w.to_vector();
    std::vector<float> y(size_t(N * K * P * Q));
    for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k)
            for (int64_t p = 0; p < P; ++p)
                for (int64_t q = 0; q < Q; ++q) {
                    double acc = 0;
                    for (int64_t c = 0; c < C; ++c)
                        for (int64_t r = 0; r < R; ++r)
                            for (int64_t s = 0; s < S; ++s) {
                                const int64_t h = p * stride + r - pt, ww = q * stride + s - pl;
                                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                                acc += double(xv[size_t(((n * C + c) * H + h) * W + ww)]) *
                                       wv[size_t(((k * C + c) * R + r) * S + s)];
                            }
                    y[size_t(((n * K + k) * P + p) * Q + q)] = float(acc);
                }
    return y;
}

// Direct definition of a transposed convolution: scatter every input pixel
// through the kernel, then crop.
std::vector<float> naive_conv_transpose(const Tensor& x, const Tensor& w, int stride, int pt, int pb,
                                        int pl, int pr, int oph, int opw, Shape* shape) {
    const auto xs = x.shape(), ws = w.shape();
    const int64_t N = xs[0], Ci = xs[1], H = xs[2], W = xs[3], Co = ws[1], R = ws[2], S = ws[3];
    const int64_t Hf = (H - 1) * stride + R + oph, Wf = (W - 1) * stride + S + opw;
    const auto xv = x.to_vector(), wv = w.to_vector();
    std::vector<double> full(size_t(N * Co * Hf * Wf), 0.0);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t ci = 0; ci < Ci; ++ci)
            for (int64_t h = 0; h < H; ++h)
                for (int64_t ww = 0; ww < W; ++ww)
                    for (int64_t co = 0; co < Co; ++co)
                        for (int64_t r = 0; r < R; ++r)
                            for (int64_t s = 0; s < S; ++s)
                                full[size_t(((n * Co + co) * Hf + h * stride + r) * Wf + ww * stride + s)] +=
                                    double(xv[size_t(((n * Ci + ci) * H + h) * W + ww)]) *
                                    wv[size_t(((ci * Co + co) * R + r) * S + s)];
    const int64_t Ho = Hf - pt - pb, Wo = Wf - pl - pr;
    *shape = {N, Co, Ho, Wo};
    std::vector<float> y(size_t(N * Co * Ho * Wo));
    for (int64_t nc = 0; nc < N * Co; ++nc)
        for (int64_t h = 0; h < Ho; ++h)
            for (int64_t ww = 0; ww < Wo; ++ww)
                y[size_t((nc * Ho + h) * Wo + ww)] = float(full[size_t((nc * Hf + h + pt) * Wf + ww + pl)]);
    return y;
}

}  // namespace

TEST_CASE("conv2d with asymmetric and reflect padding matches the direct definition") {
    Tensor x = Tensor::randn({2, 3, 11, 8}, 1), w = Tensor::randn({4, 3, 3, 3}, 2);
    SECTION("asymmetric zero padding, stride 2 (TensorFlow SAME)") {
        Conv2dOptions o{2, 0, 1, 1, 2, PadMode::Zero};
        Tensor y = conv2d(x, w, Tensor(), o);
        CHECK(rel_error(y.to_vector(), naive_conv(x, w, 2, 0, 1, 1, 2)) < 1e-5);
    }
    SECTION("reflect padding equals an explicit reflect pad then a valid conv") {
        Tensor y = conv2d(x, w, Tensor(), Conv2dOptions::padded(2, 1, PadMode::Reflect));
        Tensor xp = pad(x, 2, 2, 2, 2, PadMode::Reflect);
        CHECK(y.shape() == Shape{2, 4, 13, 10});
        CHECK(rel_error(y.to_vector(), naive_conv(xp, w, 1, 0, 0, 0, 0)) < 1e-5);
        // numpy 'reflect': row -1 is row 1, row -2 is row 2
        auto xv = x.to_vector(), pv = xp.to_vector();
        CHECK(pv[size_t(0 * 12 + 2)] == xv[size_t(2 * 8 + 0)]);
        CHECK(pv[size_t(1 * 12 + 3)] == xv[size_t(1 * 8 + 1)]);
    }
    SECTION("bias") {
        Tensor b = Tensor::randn({4}, 3);
        Tensor y = conv2d(x, w, b, Conv2dOptions::padded(1));
        auto ref = naive_conv(x, w, 1, 1, 1, 1, 1);
        auto bv = b.to_vector();
        for (size_t i = 0; i < ref.size(); ++i) ref[i] += bv[(i / (11 * 8)) % 4];
        CHECK(rel_error(y.to_vector(), ref) < 1e-5);
    }
}

TEST_CASE("conv_transpose2d matches the direct scatter definition") {
    Tensor x = Tensor::randn({2, 3, 5, 6}, 4), w = Tensor::randn({3, 2, 3, 3}, 5);
    struct Case { int stride, pt, pb, pl, pr, oph, opw; };
    for (Case c : {Case{2, 0, 1, 0, 1, 0, 0},   // TensorFlow SAME: exactly 2x
                   Case{2, 1, 1, 1, 1, 1, 1},   // PyTorch padding=1, output_padding=1
                   Case{1, 1, 1, 0, 2, 0, 0}, Case{3, 2, 0, 0, 0, 2, 1}}) {
        ConvTranspose2dOptions o{c.stride, c.pt, c.pb, c.pl, c.pr, c.oph, c.opw};
        Tensor y = conv_transpose2d(x, w, Tensor(), o);
        Shape shape;
        auto ref = naive_conv_transpose(x, w, c.stride, c.pt, c.pb, c.pl, c.pr, c.oph, c.opw, &shape);
        INFO("stride " << c.stride << " pads " << c.pt << c.pb << c.pl << c.pr);
        CHECK(y.shape() == shape);
        CHECK(rel_error(y.to_vector(), ref) < 1e-5);
    }
    // TensorFlow SAME transposed conv doubles the size exactly
    Tensor y = conv_transpose2d(x, w, Tensor(), {2, 0, 1, 0, 1, 0, 0});
    CHECK(y.shape() == Shape{2, 2, 10, 12});
}

TEST_CASE("gradients of convolutions against finite differences") {
    SECTION("conv2d symmetric, bias") {
        gradcheck([](const auto& in) { return conv2d(in[0], in[1], in[2], Conv2dOptions::padded(1)); },
                  {param({2, 3, 7, 6}, 1), param({4, 3, 3, 3}, 2), param({4}, 3)});
    }
    SECTION("conv2d_relu, bias") {
        gradcheck([](const auto& in) { return conv2d_relu(in[0], in[1], in[2], Conv2dOptions::padded(1)); },
                  {param({2, 3, 7, 6}, 12), param({4, 3, 3, 3}, 13), param({4}, 14)});
    }
    SECTION("conv2d stride 2, asymmetric") {
        gradcheck([](const auto& in) { return conv2d(in[0], in[1], Tensor(), {2, 0, 1, 1, 0, PadMode::Zero}); },
                  {param({1, 2, 9, 8}, 4), param({3, 2, 3, 3}, 5)});
    }
    SECTION("conv2d reflect, 5x5") {
        gradcheck([](const auto& in) { return conv2d(in[0], in[1], in[2], Conv2dOptions::padded(2, 1, PadMode::Reflect)); },
                  {param({1, 2, 6, 7}, 6), param({2, 2, 5, 5}, 7), param({2}, 8)});
    }
    SECTION("conv_transpose2d SAME and output padding, bias") {
        gradcheck([](const auto& in) { return conv_transpose2d(in[0], in[1], in[2], {2, 0, 1, 0, 1, 0, 0}); },
                  {param({2, 3, 4, 5}, 9), param({3, 2, 3, 3}, 10), param({2}, 11)});
        gradcheck([](const auto& in) { return conv_transpose2d(in[0], in[1], Tensor(), {2, 1, 1, 1, 1, 1, 1}); },
                  {param({1, 2, 3, 4}, 12), param({2, 3, 3, 3}, 13)});
    }
}

TEST_CASE("gradients of elementwise and per-channel ops") {
    gradcheck([](const auto& in) { return relu(in[0]); }, {away_from_zero({2, 3, 4, 5}, 1)});
    gradcheck([](const auto& in) { return nst::tanh(in[0]); }, {param({2, 3, 4, 5}, 2)}, 1e-3);
    gradcheck([](const auto& in) { return add(in[0], in[1]); }, {param({3, 4}, 3), param({3, 4}, 4)});
    gradcheck([](const auto& in) { return mul(in[0], in[1]); }, {param({3, 4}, 5), param({3, 4}, 6)});
    gradcheck([](const auto& in) { return scale(in[0], -2.5f); }, {param({7}, 7)});
    gradcheck([](const auto& in) { return bias_add(in[0], in[1]); }, {param({2, 3, 4, 5}, 8), param({3}, 9)});
    gradcheck([](const auto& in) { return normalize_channels(in[0], {0.5f, 0.4f, 0.3f}, {0.2f, 0.25f, 0.3f}); },
              {param({2, 3, 4, 5}, 10)});
    gradcheck([](const auto& in) { return channel_affine(in[0], {2.f, 0.f, -0.5f}, {1.f, -3.f, 0.25f}); },
              {param({2, 3, 4, 5}, 12)});
    // a tensor used twice: the two paths' gradients add up
    gradcheck([](const auto& in) { return mul(in[0], add(in[0], in[0])); }, {param({5}, 11)});
}

TEST_CASE("gradients of spatial ops") {
    gradcheck([](const auto& in) { return max_pool2x2(in[0]); }, {distinct({2, 2, 7, 6}, 1)});
    gradcheck([](const auto& in) { return avg_pool2x2(in[0]); }, {param({2, 2, 7, 5}, 2)});
    gradcheck([](const auto& in) { return upsample_nearest2x(in[0]); }, {param({1, 2, 3, 5}, 3)});
    gradcheck([](const auto& in) { return upsample_bilinear2x(in[0]); }, {param({1, 2, 4, 3}, 4)});
    gradcheck([](const auto& in) { return pad(in[0], 1, 2, 0, 3, PadMode::Zero); }, {param({1, 2, 4, 5}, 5)});
    gradcheck([](const auto& in) { return pad(in[0], -1, 0, 2, -2, PadMode::Zero); }, {param({1, 2, 4, 5}, 6)});
    gradcheck([](const auto& in) { return pad(in[0], 3, 1, 2, 4, PadMode::Reflect); }, {param({2, 1, 4, 5}, 7)});
    gradcheck([](const auto& in) { return upsample_pad(in[0], 3, PadMode::Reflect); }, {param({1, 2, 3, 4}, 8)});
    gradcheck([](const auto& in) { return upsample_pad(in[0], 2, PadMode::Zero); }, {param({2, 1, 2, 3}, 9)});
}

TEST_CASE("gradients of matmul, gram, instance_norm") {
    gradcheck([](const auto& in) { return matmul(in[0], in[1]); }, {param({3, 5}, 1), param({5, 4}, 2)});
    gradcheck([](const auto& in) { return gram(in[0], 20.f); }, {param({2, 3, 4, 5}, 3)});
    gradcheck([](const auto& in) { return instance_norm_relu(in[0], in[1], in[2], 1e-5f); },
              {param({2, 3, 4, 5}, 7), param({3}, 8), param({3}, 9)});
    gradcheck([](const auto& in) { return instance_norm(in[0], in[1], in[2], 1e-5f); },
              {param({2, 3, 4, 5}, 4), param({3}, 5), param({3}, 6)}, 1e-3);
    gradcheck([](const auto& in) { return instance_norm(in[0], Tensor(), Tensor(), 1e-3f); },
              {param({1, 2, 3, 3}, 7)}, 1e-3);
}

TEST_CASE("gradients of losses") {
    gradcheck([](const auto& in) { return mse_loss(in[0], in[1]); }, {param({2, 3, 4}, 1), param({2, 3, 4}, 2)});
    gradcheck([](const auto& in) { return sum_squares(in[0]); }, {param({17}, 3)});
    gradcheck([](const auto& in) { return tv_loss(in[0]); }, {param({2, 3, 5, 4}, 4)});
}

TEST_CASE("forward values of the losses and gram") {
    Tensor a = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2});
    Tensor b = Tensor::from_vector({1, 0, 3, 0}, {1, 1, 2, 2});
    CHECK(mse_loss(a, b).item() == Approx((4.0 + 16.0) / 4));
    CHECK(sum_squares(a).item() == Approx(30));
    // vertical: (3-1)^2 + (4-2)^2, horizontal: (2-1)^2 + (4-3)^2
    CHECK(tv_loss(a).item() == Approx(10));
    Tensor f = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {1, 2, 1, 3});
    auto g = gram(f, 2.f).to_vector();
    CHECK(g == std::vector<float>{7.f, 16.f, 16.f, 38.5f});
}

TEST_CASE("autograd through a composite graph: conv -> instance_norm -> relu -> gram -> mse") {
    Tensor target = gram(relu(Tensor::randn({1, 4, 6, 6}, 50)), 144.f).detach();
    auto graph = [target](const std::vector<Tensor>& in) {
        Tensor h = conv2d(in[0], in[1], in[2], Conv2dOptions::padded(1, 1, PadMode::Reflect));
        h = relu(instance_norm(h, in[3], in[4], 1e-5f));
        return mse_loss(gram(h, 144.f), target);
    };
    std::vector<Tensor> in{param({1, 3, 6, 6}, 1), param({4, 3, 3, 3}, 2, Device::cpu(), 0.3f),
                           param({4}, 3), param({4}, 4), param({4}, 5)};
    gradcheck(graph, in, 1e-3, 3e-2);
}

TEST_CASE("autograd semantics") {
    SECTION("gradients accumulate until zero_grad") {
        Tensor x = param({3}, 1);
        sum_squares(x).backward();
        auto g1 = x.grad().to_vector();
        sum_squares(x).backward();
        auto g2 = x.grad().to_vector();
        for (size_t i = 0; i < 3; ++i) CHECK(g2[i] == Approx(2 * g1[i]));
        x.zero_grad();
        CHECK_FALSE(x.grad().defined());
    }
    SECTION("no-grad scope records nothing") {
        Tensor x = param({3}, 2);
        NoGradGuard guard;
        Tensor y = sum_squares(x);
        CHECK_FALSE(y.requires_grad());
        CHECK(y.grad_fn() == nullptr);
    }
    SECTION("a graph is consumed by backward") {
        Tensor x = param({3}, 3);
        Tensor y = sum_squares(relu(x));
        y.backward();
        CHECK_THROWS_AS(y.backward(), Error);
    }
    SECTION("saved activations are freed as the backward pass consumes them") {
        Tensor x = param({1, 2, 8, 8}, 4), w = param({2, 2, 3, 3}, 5);
        std::weak_ptr<Storage> activation;
        Tensor loss;
        {
            Tensor h = relu(conv2d(x, w, Tensor(), Conv2dOptions::padded(1)));
            activation = h.impl()->storage;
            loss = sum_squares(h);
        }
        CHECK_FALSE(activation.expired());  // saved by relu's and sum_squares' backward
        loss.backward();
        CHECK(activation.expired());
        CHECK(w.grad().defined());
    }
    SECTION("frozen weights get no gradient") {
        Tensor x = param({1, 2, 5, 5}, 6);
        Tensor w = Tensor::randn({2, 2, 3, 3}, 7);
        sum_squares(conv2d(x, w)).backward();
        CHECK(x.grad().defined());
        CHECK_FALSE(w.grad().defined());
    }
    SECTION("views: reshape, permute, contiguous") {
        Tensor x = param({2, 3, 4}, 8);
        gradcheck([](const auto& in) { return in[0].permute({2, 0, 1}).contiguous().reshape({4, 6}); }, {x});
        Tensor p = x.detach().permute({1, 0, 2});
        CHECK_FALSE(p.is_contiguous());
        auto xv = x.to_vector(), pv = p.to_vector();
        CHECK(pv[size_t(1 * 8 + 1 * 4 + 2)] == xv[size_t(1 * 12 + 1 * 4 + 2)]);
    }
}

TEST_CASE("tensors: deterministic seeded init, devices, errors") {
    CHECK(Tensor::randn({100}, 7).to_vector() == Tensor::randn({100}, 7).to_vector());
    CHECK(Tensor::randn({100}, 7).to_vector() != Tensor::randn({100}, 8).to_vector());
    auto v = Tensor::randn({20000}, 3).to_vector();
    double mean = 0, sq = 0;
    for (float x : v) mean += x, sq += double(x) * x;
    mean /= double(v.size());
    CHECK(std::fabs(mean) < 0.03);
    CHECK(std::sqrt(sq / double(v.size()) - mean * mean) == Approx(1.0).epsilon(0.03));

    CHECK(Device::parse("cuda:1").index == 1);
    CHECK(Device::parse("cpu").is_cpu());
    CHECK_THROWS_AS(Device::parse("gpu"), Error);
    if (cuda_device_count() == 0) {
        CHECK(default_device().is_cpu());
        CHECK_THROWS_WITH(Tensor::zeros({2}, Device::cuda(0)), Catch::Contains("cuda:0"));
    }

    // errors name the op and the shapes
    Tensor x = Tensor::zeros({1, 3, 8, 8}), w = Tensor::zeros({4, 2, 3, 3});
    CHECK_THROWS_WITH(conv2d(x, w), Catch::Contains("conv2d") && Catch::Contains("[1, 3, 8, 8]"));
    CHECK_THROWS_WITH(add(Tensor::zeros({2}), Tensor::zeros({3})), Catch::Contains("add: shapes differ: [2] and [3]"));
    CHECK_THROWS_WITH(pad(x, 8, 0, 0, 0, PadMode::Reflect), Catch::Contains("pad"));
    CHECK_THROWS_AS(Tensor::zeros({-1, 3}), Error);
    CHECK_THROWS_AS(Tensor::zeros({int64_t(1) << 40, int64_t(1) << 30}), Error);
}

TEST_CASE("channel_affine scales and shifts each channel") {
    const Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 1, 2});  // n, c, h, w
    const std::vector<float> y = channel_affine(x, {2.f, -1.f}, {0.5f, 10.f}).to_vector();
    CHECK(y == std::vector<float>{2.5f, 4.5f, 7.f, 6.f, 10.5f, 12.5f, 3.f, 2.f});
    CHECK_THROWS_WITH(channel_affine(x, {1.f}, {0.f}), Catch::Contains("channel_affine"));
}
