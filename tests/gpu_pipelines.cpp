// The pipelines on the GPU against the CPU: a training step (losses, every
// parameter's gradient through the network and VGG-19, and the Adam update),
// tiled stylization against untiled, and channel_affine. Tolerances as in
// gpu_autograd: 1e-4 relative, fp32 end to end with TF32 off (max pooling is
// avoided where a near-tie could route a gradient differently; see
// tools/reference/train_reference.py); each exception says why.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/autograd.hpp"
#include "core/image.hpp"
#include "core/ops.hpp"
#include "gpu_device.hpp"
#include "gradcheck.hpp"
#include "nets/training.hpp"
#include "nets/transform_net.hpp"

using namespace nst;
using nst::test::gpu;
using nst::test::rel_error;

namespace {

TransformNetSpec small() {
    TransformNetSpec spec;
    spec.width = 8;
    spec.residual_blocks = 2;
    return spec;
}

}  // namespace

TEST_CASE("gpu pipelines: a training step agrees with the CPU", "[gpu]") {
    set_allow_tf32(false);
    const Tensor style = Tensor::rand({1, 3, 40, 44}, 1);
    const Tensor photos = Tensor::rand({2, 3, 36, 36}, 2, Device::cpu(), 0.f, 255.f);
    TrainingOptions o;
    o.tv_weight = 0.3f;
    struct Result {
        TrainingLosses losses;
        std::map<std::string, std::vector<float>> grads, after;
    };
    auto run = [&](Device d) {
        const Vgg19 vgg = Vgg19::random(19, d, VggPooling::Avg);
        const TransformNet net = TransformNet::create(small(), 4, d);
        const auto params = net.to_weights().tensors;
        StyleTrainer trainer(net, vgg, style, o);
        Result r;
        r.losses = trainer.step(photos);
        for (const auto& [name, t] : params) {
            r.grads[name] = t.grad().to_vector();
            r.after[name] = t.to_vector();
        }
        return r;
    };
    const Result cpu = run(Device::cpu()), cuda = run(gpu());
    CHECK(cuda.losses.content == Approx(cpu.losses.content).epsilon(1e-4));
    CHECK(cuda.losses.style == Approx(cpu.losses.style).epsilon(1e-4));
    CHECK(cuda.losses.tv == Approx(cpu.losses.tv).epsilon(1e-4));
    // Some gradients are zero in exact arithmetic: the conv biases an
    // instance norm follows, and the betas the next norm cancels. In float
    // they are rounding noise, 1e-9 of the largest gradient or less, which
    // any change of summation order replaces (scaling the photos by
    // 1 + 2^-22 on the CPU alone moves them by 100% and more), while every
    // real gradient here is above 2e-3 of the largest (measured on the CPU).
    // Those are skipped, in both checks.
    auto norm = [](const std::vector<float>& v) {
        double s = 0;
        for (float x : v) s += double(x) * x;
        return std::sqrt(s);
    };
    double largest = 0;
    for (const auto& [name, g] : cpu.grads) largest = std::max(largest, norm(g));
    int compared = 0;
    for (const auto& [name, g] : cpu.grads) {
        INFO(name);
        if (norm(g) < 1e-6 * largest) continue;
        ++compared;
        CHECK(rel_error(cuda.grads.at(name), g) < 1e-4);
        // Adam's first step moves each weight by about lr * sign(g): where a
        // gradient is within the two sides' rounding of zero its sign, and so
        // the step, may differ. Only weights with a clear gradient (above
        // 1e-2 of the tensor's RMS, a hundred times the 1e-4 agreement above)
        // are held to the CPU's update.
        const double rms = norm(g) / std::sqrt(double(g.size()));
        std::vector<float> want, got;
        for (size_t i = 0; i < g.size(); ++i)
            if (std::fabs(g[i]) > 1e-2 * rms) want.push_back(cpu.after.at(name)[i]), got.push_back(cuda.after.at(name)[i]);
        CHECK(rel_error(got, want) < 1e-5);
    }
    CHECK(compared == 27);  // the 38 tensors but the 11 whose gradient is zero
}

// Tiles and the whole image are different convolution shapes, for which
// cuDNN may pick different algorithms: each convolution's rounding then
// differs, by up to 5e-5 relative (the README's convolution tolerance), and
// the network amplifies a change at that scale about ten times (on the CPU,
// scaling the input by 1 + 2^-22 moves the output by 2.2e-6). Hence 5e-4; a
// tiling mistake (a halo too short, a wrong norm statistic) is far larger.
TEST_CASE("gpu pipelines: tiled stylization equals untiled", "[gpu]") {
    set_allow_tf32(false);
    for (const TransformNetVariant variant : {TransformNetVariant::Native, TransformNetVariant::TensorFlow}) {
        TransformNetSpec spec = small();
        spec.variant = variant;
        spec.residual_blocks = 5;
        const TransformNet net = TransformNet::create(spec, 9, gpu());
        const Tensor image = Tensor::rand({1, 3, 301, 257}, 3, gpu(), 0.f, 255.f);
        const std::vector<float> want = net.stylize(image).to_vector(), got = net.stylize_tiled(image, 96).to_vector();
        INFO(variant_name(variant));
        CHECK(rel_error(got, want) < 5e-4);
    }
}

// Video frames cross as bytes and are converted on the device
// (core/image.hpp): the same tensors and bytes as on the CPU, 16-bit included.
TEST_CASE("gpu pipelines: 8-bit frames to images on the device and back", "[gpu]") {
    std::vector<uint8_t> rgb(size_t(2) * 67 * 45 * 3);
    for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t((i * 37 + i / 5) & 0xFF);
    const Tensor on_gpu = images_from_rgb8(rgb.data(), 2, 45, 67, gpu());
    REQUIRE(on_gpu.device() == gpu());
    CHECK(on_gpu.to_vector() == images_from_rgb8(rgb.data(), 2, 45, 67, Device::cpu()).to_vector());
    for (DType t : {DType::F32, DType::F16, DType::BF16}) {
        std::vector<uint8_t> back;
        images_to_rgb8(on_gpu.to(t), back);
        CHECK(back == rgb);
    }
    const Tensor noisy = Tensor::rand({2, 3, 45, 67}, 8, Device::cpu(), -40.f, 300.f);
    std::vector<uint8_t> from_gpu, from_cpu;
    images_to_rgb8(noisy.to(gpu()), from_gpu);
    images_to_rgb8(noisy, from_cpu);
    CHECK(from_gpu == from_cpu);
}

TEST_CASE("gpu pipelines: upsample_pad forward and backward", "[gpu]") {
    for (const PadMode mode : {PadMode::Reflect, PadMode::Zero}) {
        const Tensor x = Tensor::randn({2, 64, 135, 241}, 5), g = Tensor::randn({2, 64, 272, 484}, 6);
        Tensor xc = x.clone().set_requires_grad(), xg = x.to(gpu()).set_requires_grad();
        const Tensor yc = upsample_pad(xc, 1, mode), yg = upsample_pad(xg, 1, mode);
        CHECK(yg.to_vector() == yc.to_vector());  // data movement: exact
        sum_squares(mul(yc, g)).backward();
        sum_squares(mul(yg, g.to(gpu()))).backward();
        CHECK(rel_error(xg.grad().to_vector(), xc.grad().to_vector()) < 1e-5);
    }
}

TEST_CASE("gpu pipelines: channel_affine", "[gpu]") {
    const Tensor x = Tensor::randn({2, 5, 7, 9}, 4);
    const std::vector<float> scale{1.f, -2.f, 0.f, 0.5f, 3.f}, shift{0.f, 1.f, -1.f, 2.f, 0.25f};
    CHECK(rel_error(channel_affine(x.to(gpu()), scale, shift).to_vector(), channel_affine(x, scale, shift).to_vector()) <
          1e-6);
}
