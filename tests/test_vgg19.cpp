// VGG-19 loss network (nets/vgg19.cpp): layer names and shapes, stopping at
// the deepest requested layer, frozen weights, the gradient with respect to
// the image, the two weight flavours' input handling, and loading from each
// file format (checkpoints assembled by tests/pth_writer.hpp).
#include <catch2/catch.hpp>

#include <cmath>

#include "core/error.hpp"
#include "core/ops.hpp"
#include "weights/safetensors.hpp"
#include "gradcheck.hpp"
#include "nets/vgg19.hpp"
#include "pth_writer.hpp"

using namespace nst;
using namespace nst::test;
using Catch::Matchers::Contains;

namespace {

// A random network's weights under torchvision's keys (random biases too),
// plus a classifier tensor that loaders must ignore. Made once: tests copy the
// map (tensor handles) before changing it.
const std::map<std::string, Tensor>& random_state_dict() {
    static const std::map<std::string, Tensor> sd = [] {
        const Vgg19 net = Vgg19::random(31);
        std::map<std::string, Tensor> m;
        for (int i = 0; i < 16; ++i) {
            m[Vgg19::weight_key(i)] = net.weight(i);
            m[Vgg19::bias_key(i)] =
                Tensor::randn({Vgg19::conv_channels(i)}, 500 + uint64_t(i), Device::cpu(), 0.f, 0.1f);
        }
        m["classifier.0.bias"] = Tensor::zeros({7});
        return m;
    }();
    return sd;
}

CheckpointSpec spec_of(const std::map<std::string, Tensor>& sd) {
    CheckpointSpec spec;
    spec.with_epoch_entry = false;
    int key = 0;
    for (const auto& [name, t] : sd) {
        const std::string k = std::to_string(key++);
        spec.storages[k] = {"FloatStorage", 4, raw_bytes(t.to_vector())};
        Shape stride(t.shape().size(), 1);
        for (size_t d = stride.size(); d-- > 1;) stride[d - 1] = stride[d] * t.shape()[d];
        spec.tensors.push_back({name, k, 0, t.shape(), stride});
    }
    return spec;
}

void check_same_weights(const Vgg19& net, const std::map<std::string, Tensor>& sd) {
    for (int i = 0; i < 16; ++i) {
        INFO("conv " << i);
        CHECK(net.weight(i).to_vector() == sd.at(Vgg19::weight_key(i)).to_vector());
        CHECK(net.bias(i).to_vector() == sd.at(Vgg19::bias_key(i)).to_vector());
        CHECK_FALSE(net.weight(i).requires_grad());
    }
}

}  // namespace

TEST_CASE("vgg19: layer names and torchvision keys", "[vgg19]") {
    const auto& names = Vgg19::layer_names();
    REQUIRE(names.size() == 37);  // 16 conv + 16 relu + 5 pool
    CHECK(names.front() == "conv1_1");
    CHECK(names[4] == "pool1");
    CHECK(Vgg19::layer_index("relu4_2") == 22);
    CHECK(Vgg19::layer_index("relu5_1") == 29);
    CHECK(names.back() == "pool5");
    CHECK_THROWS_WITH(Vgg19::layer_index("relu6_1"), Contains("relu6_1") && Contains("relu5_4"));
    const int expected_index[16] = {0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34};
    for (int i = 0; i < 16; ++i) CHECK(Vgg19::weight_key(i) == "features." + std::to_string(expected_index[i]) + ".weight");
    CHECK(Vgg19::bias_key(15) == "features.34.bias");
    CHECK(Vgg19::conv_channels(0) == 64);
    CHECK(Vgg19::conv_channels(4) == 256);
    CHECK(Vgg19::conv_channels(15) == 512);
    CHECK(guess_vgg_flavor("models/vgg19-d01eb7cb.pth") == VggFlavor::Caffe);
    CHECK(guess_vgg_flavor("/x/VGG_Caffe.safetensors") == VggFlavor::Caffe);
    CHECK(guess_vgg_flavor("/caffe/vgg19-dcbb9e9d.pth") == VggFlavor::Torchvision);  // the file name decides
}

TEST_CASE("vgg19: shapes, and nothing past the deepest requested layer is computed", "[vgg19]") {
    const Vgg19 net = Vgg19::random(1);
    const Tensor image = Tensor::rand({1, 3, 32, 32}, 2);
    const auto all = net.forward(image, {"relu1_1", "pool1", "relu2_1", "relu3_1", "relu4_1", "relu4_2",
                                         "relu5_1", "pool5"});
    CHECK(all.at("relu1_1").shape() == Shape{1, 64, 32, 32});
    CHECK(all.at("pool1").shape() == Shape{1, 64, 16, 16});
    CHECK(all.at("relu2_1").shape() == Shape{1, 128, 16, 16});
    CHECK(all.at("relu3_1").shape() == Shape{1, 256, 8, 8});
    CHECK(all.at("relu4_1").shape() == Shape{1, 512, 4, 4});
    CHECK(all.at("relu4_2").shape() == Shape{1, 512, 4, 4});
    CHECK(all.at("relu5_1").shape() == Shape{1, 512, 2, 2});
    CHECK(all.at("pool5").shape() == Shape{1, 512, 1, 1});

    int64_t before = net.layers_evaluated();
    const auto shallow = net.forward(image, {"relu2_1"});
    CHECK(net.layers_evaluated() - before == 7);  // conv1_1 relu1_1 conv1_2 relu1_2 pool1 conv2_1 relu2_1
    REQUIRE(shallow.size() == 1);
    CHECK(shallow.at("relu2_1").to_vector() == all.at("relu2_1").to_vector());

    before = net.layers_evaluated();
    const auto two = net.forward(image, {"relu3_1", "conv1_1"});
    CHECK(net.layers_evaluated() - before == 12);
    CHECK(two.size() == 2);

    for (float v : all.at("relu3_1").to_vector()) REQUIRE(v >= 0.f);
    CHECK_THROWS_WITH(net.forward(Tensor::rand({1, 1, 8, 8}, 3), {"relu1_1"}), Contains("[1, 1, 8, 8]"));
    CHECK_THROWS_AS(net.forward(image, {}), Error);
}

TEST_CASE("vgg19: frozen weights get no gradient, the image does", "[vgg19]") {
    const Vgg19 net = Vgg19::random(4);
    Tensor image = Tensor::rand({1, 3, 16, 16}, 5);
    image.set_requires_grad();
    const auto f = net.forward(image, {"relu1_1", "relu2_1"});
    Tensor loss = add(sum_squares(f.at("relu1_1")), sum_squares(f.at("relu2_1")));
    loss.backward();
    REQUIRE(image.grad().defined());
    double norm = 0;
    for (float g : image.grad().to_vector()) norm += double(g) * g;
    CHECK(norm > 0);
    for (int i = 0; i < 16; ++i) {
        CHECK_FALSE(net.weight(i).requires_grad());
        CHECK_FALSE(net.weight(i).grad().defined());
        CHECK_FALSE(net.bias(i).grad().defined());
    }
}

// VGG is piecewise linear in its input: finite differences are exact inside
// one linear piece, but a step large enough to rise far above float32
// rounding crosses ReLU and max-pooling kinks, and then the difference
// quotient is off. So the steps are small (1e-4, where the quotients were
// seen to converge), the elementwise check stops at pool1, and deeper layers
// are checked through directional derivatives, whose errors are judged
// against |grad| |d|.
TEST_CASE("vgg19: gradient with respect to the input matches finite differences", "[vgg19]") {
    for (VggPooling pooling : {VggPooling::Avg, VggPooling::Max}) {
        INFO((pooling == VggPooling::Avg ? "avg" : "max") << " pooling");
        const Vgg19 net = Vgg19::random(6, Device::cpu(), pooling);
        Tensor image = Tensor::rand({1, 3, 8, 8}, 7);
        image.set_requires_grad();
        gradcheck([&](const std::vector<Tensor>& in) { return net.forward(in[0], {"pool1"}).at("pool1"); },
                  {image}, 1e-4, 0.05, 64);

        for (const char* layer : {"relu2_1", "relu3_1"}) {
            INFO(layer);
            image.zero_grad();
            Tensor out = net.forward(image, {layer}).at(layer);
            const std::vector<float> r = Tensor::randn(out.shape(), 8).to_vector();
            out.backward(Tensor::from_vector(r, out.shape()));
            const std::vector<float> g = image.grad().to_vector(), x = image.to_vector();
            const double g_norm = std::sqrt(dot(g, g));
            REQUIRE(g_norm > 0);
            // along the gradient itself, and along a random direction
            for (const std::vector<float>& d : {g, Tensor::randn(image.shape(), 9).to_vector()}) {
                auto objective = [&](float t) {
                    NoGradGuard no_grad;
                    std::vector<float> moved(x.size());
                    for (size_t i = 0; i < x.size(); ++i) moved[i] = x[i] + t * d[i];
                    const Tensor f = net.forward(Tensor::from_vector(moved, image.shape()), {layer}).at(layer);
                    return dot(f.to_vector(), r);
                };
                const double d_norm = std::sqrt(dot(d, d)), step = 1e-4 / d_norm * std::sqrt(double(d.size()));
                const double numeric = (objective(float(step)) - objective(float(-step))) / (2 * step);
                const double analytic = dot(g, d);
                INFO("numeric " << numeric << " analytic " << analytic);
                CHECK(std::fabs(numeric - analytic) <= 1e-2 * g_norm * d_norm);
            }
        }
    }
}

TEST_CASE("vgg19: the random default is deterministic and He-initialized", "[vgg19]") {
    const Vgg19 a = Vgg19::random(11), b = Vgg19::random(11), c = Vgg19::random(12);
    for (int i = 0; i < 16; ++i) CHECK(a.weight(i).to_vector() == b.weight(i).to_vector());
    CHECK(a.weight(3).to_vector() != c.weight(3).to_vector());
    const Tensor image = Tensor::rand({1, 3, 16, 16}, 8);
    CHECK(a.forward(image, {"relu3_1"}).at("relu3_1").to_vector() ==
          b.forward(image, {"relu3_1"}).at("relu3_1").to_vector());
    // std sqrt(2 / fan_in): conv5_4 has fan_in 512 * 9 and 2.4M samples
    const std::vector<float> w = a.weight(15).to_vector();
    double sq = 0;
    for (float v : w) sq += double(v) * v;
    CHECK(std::sqrt(sq / double(w.size())) == Approx(std::sqrt(2.0 / (512 * 9))).epsilon(0.01));
    for (float v : a.bias(15).to_vector()) CHECK(v == 0.f);
    CHECK(a.flavor() == VggFlavor::Torchvision);
}

TEST_CASE("vgg19: input handling of the torchvision and Caffe flavours", "[vgg19]") {
    const auto sd = random_state_dict();
    const Tensor w = sd.at("features.0.weight"), b = sd.at("features.0.bias");
    const int64_t H = 6, W = 5, plane = H * W;
    const Tensor image = Tensor::rand({1, 3, H, W}, 22);
    const std::vector<float> rgb = image.to_vector();

    SECTION("torchvision: ImageNet mean and std on RGB 0..1") {
        const float mean[3] = {0.485f, 0.456f, 0.406f}, stdev[3] = {0.229f, 0.224f, 0.225f};
        std::vector<float> x(rgb.size());
        for (int64_t c = 0; c < 3; ++c)
            for (int64_t i = 0; i < plane; ++i) x[size_t(c * plane + i)] = (rgb[size_t(c * plane + i)] - mean[c]) / stdev[c];
        const Tensor want = conv2d(Tensor::from_vector(x, {1, 3, H, W}), w, b, Conv2dOptions::padded(1));
        const Vgg19 net = Vgg19::from_state_dict(sd, VggFlavor::Torchvision);
        CHECK(rel_error(net.forward(image, {"conv1_1"}).at("conv1_1").to_vector(), want.to_vector()) < 1e-5);
    }
    SECTION("Caffe: BGR 0..255 minus the mean pixel, with the file's own conv1_1") {
        const float mean_bgr[3] = {103.939f, 116.779f, 123.68f};
        std::vector<float> bgr(rgb.size());
        for (int64_t c = 0; c < 3; ++c)  // channel c of BGR is channel 2 - c of RGB
            for (int64_t i = 0; i < plane; ++i)
                bgr[size_t(c * plane + i)] = rgb[size_t((2 - c) * plane + i)] * 255.f - mean_bgr[c];
        const Tensor want = conv2d(Tensor::from_vector(bgr, {1, 3, H, W}), w, b, Conv2dOptions::padded(1));
        const Vgg19 net = Vgg19::from_state_dict(sd, VggFlavor::Caffe);
        CHECK(net.flavor() == VggFlavor::Caffe);
        CHECK(rel_error(net.forward(image, {"conv1_1"}).at("conv1_1").to_vector(), want.to_vector()) < 1e-5);
        // deeper layers use the file's weights unchanged
        CHECK(net.weight(1).to_vector() == sd.at("features.2.weight").to_vector());
    }
}

TEST_CASE("vgg19: state dicts are validated against the architecture", "[vgg19]") {
    auto sd = random_state_dict();
    check_same_weights(Vgg19::from_state_dict(sd, VggFlavor::Torchvision), sd);

    SECTION("a prefix such as module. is accepted") {
        std::map<std::string, Tensor> prefixed;
        for (const auto& [k, t] : sd) prefixed["module." + k] = t;
        check_same_weights(Vgg19::from_state_dict(prefixed, VggFlavor::Torchvision), sd);
    }
    SECTION("missing tensor") {
        sd.erase("features.34.bias");
        CHECK_THROWS_WITH(Vgg19::from_state_dict(sd, VggFlavor::Torchvision, Device::cpu(), VggPooling::Max, "w.pth"),
                          Contains("w.pth") && Contains("features.34.bias") && Contains("conv5_4"));
    }
    SECTION("wrong shape") {
        sd["features.5.weight"] = Tensor::zeros({128, 64, 5, 5});
        CHECK_THROWS_WITH(Vgg19::from_state_dict(sd, VggFlavor::Torchvision),
                          Contains("conv2_1") && Contains("[128, 64, 5, 5]") && Contains("expected [128, 64, 3, 3]"));
    }
    SECTION("vgg19_bn") {
        sd.erase("features.2.weight");
        sd["features.1.running_mean"] = Tensor::zeros({64});
        CHECK_THROWS_WITH(Vgg19::from_state_dict(sd, VggFlavor::Torchvision), Contains("batch normalization"));
    }
    SECTION("not a VGG") {
        CHECK_THROWS_WITH(Vgg19::from_state_dict({{"conv.weight", Tensor::zeros({1})}}, VggFlavor::Torchvision),
                          Contains("features.0.weight") && Contains("conv.weight"));
    }
}

TEST_CASE("vgg19: loading weight files of every format", "[vgg19]") {
    const auto sd = random_state_dict();
    const CheckpointSpec spec = spec_of(sd);

    SECTION("legacy .pth (torchvision's vgg19-dcbb9e9d.pth layout)") {
        TempFile file(legacy_checkpoint(spec));
        check_same_weights(Vgg19::load(file.path(), VggFlavor::Torchvision), sd);
    }
    SECTION("tar .pth (the Caffe vgg19-d01eb7cb.pth layout), Caffe flavour") {
        TempFile file(tar_checkpoint(spec));
        const Vgg19 net = Vgg19::load(file.path(), VggFlavor::Caffe, Device::cpu(), VggPooling::Avg);
        CHECK(net.pooling() == VggPooling::Avg);
        const std::vector<float> w = sd.at("features.0.weight").to_vector(), got = net.weight(0).to_vector();
        for (size_t k = 0; k < 64; ++k)
            for (size_t c = 0; c < 3; ++c)
                for (size_t j = 0; j < 9; ++j) CHECK(got[(k * 3 + c) * 9 + j] == w[(k * 3 + 2 - c) * 9 + j]);
        CHECK(net.weight(15).to_vector() == sd.at("features.34.weight").to_vector());
    }
#ifdef NST_HAVE_LIBZIP
    SECTION("zip .pth (PyTorch >= 1.6)") {
        TempFile file(zip_checkpoint(spec));
        check_same_weights(Vgg19::load(file.path(), VggFlavor::Torchvision), sd);
    }
#endif
    SECTION("safetensors (timm's vgg19.tv_in1k keys)") {
        TempFile file("", ".safetensors");
        save_safetensors(file.path(), sd);
        check_same_weights(Vgg19::load(file.path(), VggFlavor::Torchvision), sd);
    }
    SECTION("not a weight file") {
        TempFile file("this is no weight file at all");
        CHECK_THROWS_WITH(Vgg19::load(file.path(), VggFlavor::Torchvision), Contains(file.path()));
    }
}
