// Optimizers on the CPU: Adam against its formula written out, L-BFGS on
// problems with known minima, and the dot/adam_step kernels against direct
// loops.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/autograd.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/ops.hpp"
#include "core/optim.hpp"
#include "gradcheck.hpp"

using namespace nst;

TEST_CASE("dot and adam_step kernels match direct loops") {
    Backend& cpu = backend(Device::cpu());
    auto a = Tensor::randn({1001}, 1).to_vector(), b = Tensor::randn({1001}, 2).to_vector();
    double want = 0;
    for (size_t i = 0; i < a.size(); ++i) want += double(a[i]) * b[i];
    float got = 0;
    cpu.dot(int64_t(a.size()), a.data(), b.data(), &got);
    CHECK(got == Approx(want).epsilon(1e-6));

    auto p = a, m = b, v = Tensor::rand({1001}, 3).to_vector(), g = Tensor::randn({1001}, 4).to_vector();
    auto p0 = p, m0 = m, v0 = v;
    cpu.adam_step(1001, 0.1f, 0.9f, 0.99f, 1e-8f, 0.19f, 0.0199f, g.data(), p.data(), m.data(), v.data());
    for (size_t i = 0; i < p.size(); i += 97) {
        const double mi = 0.9 * m0[i] + 0.1 * g[i], vi = 0.99 * v0[i] + 0.01 * double(g[i]) * g[i];
        CHECK(m[i] == Approx(mi).margin(1e-6));
        CHECK(v[i] == Approx(vi).margin(1e-6));
        CHECK(p[i] == Approx(p0[i] - 0.1 / 0.19 * mi / (std::sqrt(vi / 0.0199) + 1e-8)).margin(1e-5));
    }
}

TEST_CASE("Adam follows PyTorch's update rule") {
    // minimize sum((x - 3)^2) from x = 0: the first Adam step moves every
    // coordinate by exactly lr (m_hat / sqrt(v_hat) = sign(g)).
    Tensor x = Tensor::zeros({4}).set_requires_grad();
    Tensor target = Tensor::full({4}, 3.f);
    Adam adam({x}, {0.1f, 0.9f, 0.999f, 1e-8f});
    mse_loss(x, target).backward();
    adam.step();
    for (float v : x.to_vector()) CHECK(v == Approx(0.1f).epsilon(1e-5));
    for (int i = 0; i < 300; ++i) {
        adam.zero_grad();
        mse_loss(x, target).backward();
        adam.step();
    }
    for (float v : x.to_vector()) CHECK(v == Approx(3.f).margin(0.05));
    CHECK(adam.steps() == 301);
}

TEST_CASE("L-BFGS solves a convolutional least-squares problem") {
    // min ||conv(x, w) - y||^2, whose minimum value is 0 (at x = truth, and
    // anything differing from it in w's null space)
    Tensor w = Tensor::randn({3, 3, 3, 3}, 5, Device::cpu(), 0.f, 0.2f);
    Tensor truth = Tensor::rand({1, 3, 16, 16}, 6);
    Tensor y;
    {
        NoGradGuard no_grad;
        y = conv2d(truth, w, Tensor(), Conv2dOptions::padded(1, 1, PadMode::Reflect));
    }
    Tensor x = Tensor::full({1, 3, 16, 16}, 0.5f).set_requires_grad();
    LBFGS lbfgs(x, {1.f, 10, 1e-12f});
    auto evaluate = [&] {
        x.zero_grad();
        Tensor loss = sum_squares(add(conv2d(x, w, Tensor(), Conv2dOptions::padded(1, 1, PadMode::Reflect)),
                                      scale(y, -1.f)));
        loss.backward();
        return loss;
    };
    const float first = lbfgs.step(evaluate);
    float last = first;
    bool converged = false;
    for (int i = 0; i < 200 && !converged; ++i) last = lbfgs.step(evaluate, &converged);
    INFO("loss " << first << " -> " << last);
    CHECK(last < first * 1e-6f);
}

TEST_CASE("L-BFGS's first step is the gradient scaled by its L1 norm, as in Torch and PyTorch") {
    // loss = sum((x - c)^2): g = 2 (x - c); first step x1 = x0 - min(1, 1 / |g|_1) * lr * g
    const std::vector<float> x0{0.5f, -1.f, 2.f, 0.25f}, c{0.f, 1.f, -1.f, 0.5f};
    Tensor x = Tensor::from_vector(x0, {4}).set_requires_grad();
    const Tensor target = Tensor::from_vector(c, {4});
    LBFGS lbfgs(x, {0.5f, 10, 1e-12f});
    lbfgs.step([&] {
        x.zero_grad();
        Tensor loss = sum_squares(add(x, scale(target, -1.f)));
        loss.backward();
        return loss;
    });
    double l1 = 0;
    for (size_t i = 0; i < 4; ++i) l1 += std::fabs(2.0 * (x0[i] - c[i]));
    const double t = std::min(1.0, 1.0 / l1) * 0.5;
    const std::vector<float> x1 = x.to_vector();
    for (size_t i = 0; i < 4; ++i) CHECK(x1[i] == Approx(x0[i] - t * 2.0 * (x0[i] - c[i])).epsilon(1e-6));
}

TEST_CASE("optimizers reject parameters they cannot update") {
    Tensor no_grad = Tensor::zeros({3});
    CHECK_THROWS_AS(Adam({no_grad}, {}), Error);
    CHECK_THROWS_AS(LBFGS(no_grad, {}), Error);
    Tensor x = Tensor::zeros({3}).set_requires_grad();
    LBFGS lbfgs(x, {});
    // a loss that does not depend on x
    Tensor other = Tensor::full({2}, 1.f).set_requires_grad();
    CHECK_THROWS_WITH(lbfgs.step([&] {
        Tensor loss = sum_squares(other);
        loss.backward();
        return loss;
    }),
                      Catch::Contains("does not depend"));
}

TEST_CASE("L-BFGS drops its oldest history when memory runs short") {
    struct Limit {
        explicit Limit(size_t bytes) { cpu_set_memory_limit(bytes); }
        ~Limit() { cpu_set_memory_limit(0); }
    };
    // sum((x - c)^2) over 3x64x64: every step's curvature pair is kept.
    const Tensor target = Tensor::rand({1, 3, 64, 64}, 7);
    Tensor x = Tensor::zeros({1, 3, 64, 64}).set_requires_grad();
    auto evaluate = [&] {
        x.zero_grad();
        Tensor loss = sum_squares(add(x, scale(target, -1.f)));
        loss.backward();
        return loss;
    };
    const size_t copy = size_t(x.numel()) * 4;
    float first = 0, last = 0;
    int history = 0;
    {
        const Limit limit(cpu_memory_stats().current + 40 * copy);  // room for some 15 of 50 pairs
        LBFGS lbfgs(x, {0.5f, 50, 1e-12f});
        first = lbfgs.step(evaluate);
        for (int i = 0; i < 60; ++i) last = lbfgs.step(evaluate);
        history = lbfgs.history();
    }
    INFO("history " << history << ", loss " << first << " -> " << last);
    CHECK(history > 4);
    CHECK(history < 30);
    CHECK(last < first * 1e-6f);
    {
        const Limit limit(cpu_memory_stats().current + copy);  // not even for the step's own copies
        LBFGS lbfgs(x, {0.5f, 50, 1e-12f});
        CHECK_THROWS_AS(lbfgs.step(evaluate), OutOfMemoryError);
    }
}
