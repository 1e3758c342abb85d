// Autograd on the GPU: the composite graph of the style losses agrees with the
// CPU, every public op's gradient on the GPU agrees with the CPU's, the
// optimizers (dot, adam_step kernels) follow the same trajectory, and the
// caching allocator keeps memory flat over 1000 forward/backward iterations.
// Tolerances: 1e-4 relative (fp32 end to end, TF32 off; different summation
// orders in convolutions and reductions across a chain of ops).
#include <catch2/catch.hpp>

#include "core/autograd.hpp"
#include "core/error.hpp"
#include "core/ops.hpp"
#include "core/optim.hpp"
#include "gpu_device.hpp"
#include "gradcheck.hpp"

using namespace nst;
using nst::test::gpu;
using nst::test::rel_error;

namespace {

struct Run {
    std::vector<float> value;
    std::vector<std::vector<float>> grads;
};

// Runs `f` on copies of `inputs` on `device` and collects output and grads.
Run run_on(Device device, const test::Fn& f, const std::vector<Tensor>& inputs, uint64_t seed) {
    std::vector<Tensor> in;
    for (const Tensor& t : inputs) {
        Tensor c = t.detach().to(device);
        if (c.device() == t.device()) c = c.clone().detach();
        in.push_back(c.set_requires_grad());
    }
    Tensor out = f(in);
    out.backward(Tensor::randn(out.shape(), seed, device));
    Run r{out.to_vector(), {}};
    for (const Tensor& t : in) r.grads.push_back(t.grad().to_vector());
    return r;
}

void compare_devices(const char* name, const test::Fn& f, const std::vector<Tensor>& inputs,
                     double tolerance = 1e-4) {
    INFO(name);
    set_allow_tf32(false);
    Run cpu = run_on(Device::cpu(), f, inputs, 7);
    Run cuda = run_on(gpu(), f, inputs, 7);
    CHECK(rel_error(cuda.value, cpu.value) < tolerance);
    for (size_t i = 0; i < inputs.size(); ++i) {
        INFO("gradient of input " << i);
        CHECK(rel_error(cuda.grads[i], cpu.grads[i]) < tolerance);
    }
}

}  // namespace

TEST_CASE("every op's forward and gradient on the GPU match the CPU") {
    auto x = Tensor::randn({2, 8, 33, 30}, 1);
    compare_devices("conv2d reflect + bias", [](const auto& in) {
        return conv2d(in[0], in[1], in[2], Conv2dOptions::padded(4, 1, PadMode::Reflect));
    }, {x, Tensor::randn({16, 8, 9, 9}, 2, Device::cpu(), 0.f, 0.1f), Tensor::randn({16}, 3)});
    compare_devices("conv2d_relu + bias", [](const auto& in) {
        return conv2d_relu(in[0], in[1], in[2], Conv2dOptions::padded(1));
    }, {x, Tensor::randn({16, 8, 3, 3}, 8, Device::cpu(), 0.f, 0.1f), Tensor::randn({16}, 9)});
    compare_devices("conv2d SAME stride 2", [](const auto& in) {
        return conv2d(in[0], in[1], Tensor(), {2, 0, 1, 0, 1, PadMode::Zero});
    }, {x, Tensor::randn({16, 8, 3, 3}, 4)});
    compare_devices("conv_transpose2d SAME + bias", [](const auto& in) {
        return conv_transpose2d(in[0], in[1], in[2], {2, 0, 1, 0, 1, 0, 0});
    }, {x, Tensor::randn({8, 4, 3, 3}, 5), Tensor::randn({4}, 6)});
    compare_devices("relu/tanh/add/mul/scale", [](const auto& in) {
        return scale(mul(relu(in[0]), add(nst::tanh(in[0]), in[1])), 0.5f);
    }, {x, Tensor::randn(x.shape(), 7)});
    compare_devices("bias_add, normalize_channels", [](const auto& in) {
        return normalize_channels(bias_add(in[0], in[1]), {1, 2, 3}, {0.5f, 0.25f, 2});
    }, {Tensor::randn({2, 3, 17, 9}, 8), Tensor::randn({3}, 9)});
    compare_devices("pools, upsampling, pads", [](const auto& in) {
        Tensor a = max_pool2x2(in[0]), b = avg_pool2x2(in[0]);
        Tensor u = add(upsample_nearest2x(a), upsample_bilinear2x(b));
        return pad(pad(u, 3, 1, 0, 2, PadMode::Reflect), -1, 2, 1, -2, PadMode::Zero);
    }, {x});
    compare_devices("matmul", [](const auto& in) { return matmul(in[0], in[1]); },
                    {Tensor::randn({65, 130}, 10), Tensor::randn({130, 33}, 11)});
    compare_devices("gram, instance_norm, losses", [](const auto& in) {
        Tensor h = instance_norm(in[0], in[1], in[2], 1e-5f);
        return add(add(mse_loss(gram(h, 990.f), gram(in[0], 990.f)), sum_squares(in[1])), tv_loss(h));
    }, {x, Tensor::randn({8}, 12), Tensor::randn({8}, 13)});
}

TEST_CASE("composite graph conv -> instance_norm -> relu -> gram -> mse on the GPU") {
    Tensor target = gram(relu(Tensor::randn({2, 64, 64, 64}, 20)), 64.f * 64 * 64);
    // No conv bias: instance norm removes it, so its true gradient is zero and
    // both devices would only report rounding noise.
    compare_devices("style loss graph", [target](const auto& in) {
        Tensor h = conv2d(in[0], in[1], Tensor(), Conv2dOptions::padded(1, 1, PadMode::Reflect));
        h = relu(instance_norm(h, in[2], in[3], 1e-5f));
        return mse_loss(gram(h, 64.f * 64 * 64), target.to(in[0].device()));
    }, {Tensor::randn({2, 32, 64, 64}, 21), Tensor::randn({64, 32, 3, 3}, 22, Device::cpu(), 0.f, 0.1f),
        Tensor::randn({64}, 24), Tensor::randn({64}, 25)});
}

TEST_CASE("1000 forward/backward iterations do not grow GPU memory") {
    const Device d = gpu();
    Tensor w = Tensor::randn({32, 3, 3, 3}, 30, d, 0.f, 0.2f).set_requires_grad();
    Tensor gamma = Tensor::full({32}, 1.f, d).set_requires_grad();
    Tensor beta = Tensor::zeros({32}, d).set_requires_grad();
    Tensor image = Tensor::rand({1, 3, 64, 64}, 31, d).set_requires_grad();
    Tensor target = gram(Tensor::randn({1, 32, 64, 64}, 32, d), 32.f * 64 * 64);
    auto step = [&] {
        Tensor h = relu(instance_norm(conv2d(image, w, Tensor(), Conv2dOptions::padded(1)), gamma, beta));
        Tensor loss = add(mse_loss(gram(h, 32.f * 64 * 64), target), scale(tv_loss(image), 1e-3f));
        loss.backward();
        for (Tensor* p : {&w, &gamma, &beta, &image}) p->zero_grad();
    };
    for (int i = 0; i < 10; ++i) step();  // let the cache and cuDNN's choices settle
    cuda_synchronize(0);
    const MemoryStats before = cuda_memory_stats(0);
    cuda_reset_peak_memory(0);
    for (int i = 0; i < 1000; ++i) step();
    cuda_synchronize(0);
    const MemoryStats after = cuda_memory_stats(0);
    INFO("current " << before.current << " -> " << after.current << ", reserved "
                    << before.reserved << " -> " << after.reserved << ", peak " << after.peak);
    CHECK(after.current == before.current);
    CHECK(after.reserved == before.reserved);
    CHECK(after.peak > after.current);  // the steps did allocate, and gave it back
}

TEST_CASE("GPU errors are nst::Error with readable messages", "[oom]") {
    const Device d = gpu();
    Tensor a = Tensor::zeros({2, 3}, d), b = Tensor::zeros({2, 3});
    CHECK_THROWS_WITH(add(a, b), Catch::Contains("add: inputs on different devices"));
    CHECK_THROWS_WITH(Tensor::zeros({1}, Device::cuda(cuda_device_count())),
                      Catch::Contains("not available"));
    // far beyond any card: a clear out-of-memory error, not a crash
    CHECK_THROWS_WITH(Tensor::empty({int64_t(1) << 45}, d), Catch::Contains("out of GPU memory"));
    // and the device still works afterwards
    CHECK(sum_squares(Tensor::full({4}, 2.f, d)).item() == Approx(16));
}

TEST_CASE("tensors move between devices bit-exactly") {
    Tensor h = Tensor::randn({3, 5, 7}, 40);
    Tensor g = h.to(gpu());
    CHECK(g.device().is_cuda());
    CHECK(g.cpu().to_vector() == h.to_vector());
    CHECK(Tensor::randn({3, 5, 7}, 40, gpu()).to_vector() == h.to_vector());
    Tensor p = g.permute({2, 0, 1}).contiguous();
    CHECK(p.to_vector() == h.permute({2, 0, 1}).contiguous().to_vector());
}

TEST_CASE("Adam and L-BFGS take the same path on the GPU as on the CPU") {
    auto optimize = [](Device d, bool use_lbfgs) {
        Tensor w = Tensor::randn({4, 3, 3, 3}, 50, d, 0.f, 0.2f);
        Tensor target = gram(Tensor::rand({1, 4, 32, 32}, 51, d), 4096.f);
        Tensor x = Tensor::rand({1, 3, 32, 32}, 52, d).set_requires_grad();
        auto evaluate = [&] {
            x.zero_grad();
            Tensor f = relu(conv2d(x, w, Tensor(), Conv2dOptions::padded(1)));
            Tensor loss = add(scale(mse_loss(gram(f, 4096.f), target), 1e3f), scale(tv_loss(x), 1e-3f));
            loss.backward();
            return loss;
        };
        std::vector<float> losses;
        if (use_lbfgs) {
            LBFGS opt(x, {1.f, 5, 1e-9f});
            for (int i = 0; i < 10; ++i) losses.push_back(opt.step(evaluate));
        } else {
            Adam opt({x}, {0.01f});
            for (int i = 0; i < 20; ++i) {
                losses.push_back(evaluate().item());
                opt.step();
            }
        }
        return std::make_pair(losses, x.to_vector());
    };
    set_allow_tf32(false);
    for (bool use_lbfgs : {false, true}) {
        INFO((use_lbfgs ? "L-BFGS" : "Adam"));
        auto cpu = optimize(Device::cpu(), use_lbfgs);
        auto cuda = optimize(gpu(), use_lbfgs);
        CHECK(cuda.first.back() < cuda.first.front());
        CHECK(rel_error(cuda.first, cpu.first) < 1e-3);
        CHECK(rel_error(cuda.second, cpu.second) < 1e-3);
    }
}
