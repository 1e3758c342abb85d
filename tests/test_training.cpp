// Training mode on the CPU (nets/training.hpp, nets/training_data.hpp): the
// perceptual loss's gradient against finite differences, a tiny network
// whose loss falls, checkpoints that resume with bit-identical losses, and
// the photo stream (order, coverage, resume, unreadable files). The hidden
// test "[.reference]" writes the inputs for tools/reference/train_reference.py.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "core/autograd.hpp"
#include "core/error.hpp"
#include "core/image.hpp"
#include "core/ops.hpp"
#include "weights/safetensors.hpp"
#include "gradcheck.hpp"
#include "nets/training.hpp"
#include "nets/training_data.hpp"
#include "temp_dir.hpp"

using namespace nst;
using Catch::Matchers::Contains;

namespace {

// Smooth colour fields with a disc, different for every `seed`, 0..1.
Tensor photo(int h, int w, int seed) {
    std::vector<float> v(size_t(3) * h * w);
    const size_t plane = size_t(h) * w;
    const float cy = h * (0.3f + 0.1f * float(seed % 4)), cx = w * (0.6f - 0.1f * float(seed % 3));
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const bool disc = (y - cy) * (y - cy) + (x - cx) * (x - cx) < float(h * h) / 12.f;
            const size_t i = size_t(y) * w + x;
            v[i] = disc ? 0.9f : float(x) / float(w);
            v[plane + i] = disc ? 0.2f + 0.1f * float(seed % 5) : float(y) / float(h);
            v[2 * plane + i] = disc ? 0.1f : 0.3f + 0.1f * float(seed % 3);
        }
    return Tensor::from_vector(v, {1, 3, h, w});
}

Tensor stripes(int h, int w) {  // red and blue diagonal stripes, 0..1
    std::vector<float> v(size_t(3) * h * w);
    const size_t plane = size_t(h) * w;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const bool red = (x + y) / 3 % 2 == 0;
            const size_t i = size_t(y) * w + x;
            v[i] = red ? 0.9f : 0.1f, v[plane + i] = red ? 0.1f : 0.2f, v[2 * plane + i] = red ? 0.1f : 0.85f;
        }
    return Tensor::from_vector(v, {1, 3, h, w});
}

// Batch i of a fixed sequence: n photos, 0..255.
Tensor batch_of(int i, int n, int size) {
    std::vector<float> all;
    for (int k = 0; k < n; ++k) {
        const std::vector<float> p = scale(photo(size, size, i * n + k), 255.f).to_vector();
        all.insert(all.end(), p.begin(), p.end());
    }
    return Tensor::from_vector(all, {n, 3, size, size});
}

const Vgg19& vgg() {
    static const Vgg19 n = Vgg19::random(19, Device::cpu(), VggPooling::Max);
    return n;
}

TransformNetSpec tiny() {
    TransformNetSpec spec;
    spec.width = 4;
    spec.residual_blocks = 1;
    return spec;
}

TrainingOptions quick_options() {
    TrainingOptions o;
    o.style_layers = {{"relu1_2", 1.f}, {"relu2_2", 1.f}, {"relu3_3", 1.f}};
    o.tv_weight = 0.1f;
    o.learning_rate = 1e-2f;
    return o;
}

}  // namespace

// The whole loss through VGG-19 in float32 is too noisy for one-element
// finite differences, so the gradient is checked along random directions:
// <grad, d> against (L(x + h d) - L(x - h d)) / 2h, which averages over every
// element. The random VGG has many pre-activations near ReLU's kink, so h is
// small; average pooling, because max pooling over ReLU's zeros has ties
// where the loss has no derivative (the PyTorch reference checks max).
TEST_CASE("training: the perceptual loss's gradient matches finite differences", "[training]") {
    {
        const Vgg19 net = Vgg19::random(19, Device::cpu(), VggPooling::Avg);
        TrainingOptions o;  // the default style layers (relu4_3 is 3x3 here)
        o.content_layers = {{"relu2_2", 1.f}, {"relu3_3", 0.5f}};
        o.tv_weight = 0.5f;
        const PerceptualLoss loss(net, stripes(24, 24), o);
        const Tensor photos = Tensor::rand({2, 3, 24, 24}, 3);  // no flat areas: fewer kinks
        Tensor x = add(photos, Tensor::randn(photos.shape(), 6, Device::cpu(), 0.f, 0.05f)).set_requires_grad();
        const StyleLosses l = loss.evaluate(x, photos);
        INFO("content " << l.content.item() << " style " << l.style.item() << " tv " << l.tv.item());
        REQUIRE(l.content.item() > 0);
        REQUIRE(l.style.item() > 0);
        REQUIRE(l.tv.item() > 0);
        l.total.backward();
        const std::vector<float> g = x.grad().to_vector();
        for (uint64_t seed : {11, 12, 13}) {
            const Tensor d = Tensor::randn(x.shape(), seed);
            const double analytic = test::dot(g, d.to_vector());
            const float h = 3e-4f;
            auto at = [&](float t) {
                NoGradGuard no_grad;
                return double(loss.evaluate(add(x.detach(), scale(d, t)), photos).total.item());
            };
            const double numeric = (at(h) - at(-h)) / (2 * double(h));
            INFO("direction " << seed << ": analytic " << analytic << " numeric " << numeric);
            CHECK(std::fabs(analytic - numeric) <= 2e-2 * std::fabs(numeric));
        }
    }
}

TEST_CASE("training: the loss's terms and their weights", "[training]") {
    TrainingOptions o;
    const Tensor photos = batch_of(0, 2, 32);
    const Tensor same = scale(photos, 1.f / 255.f);
    const PerceptualLoss loss(vgg(), scale(photos.permute({1, 0, 2, 3}).contiguous().reshape({1, 3, 64, 32}), 1.f / 255.f), o);
    // The photos stylized as themselves: no content loss, no TV (weight 0).
    const StyleLosses l = loss.evaluate(same, same);
    CHECK(l.content.item() == 0.f);
    CHECK(l.tv.item() == 0.f);
    CHECK(l.style.item() > 0.f);
    CHECK(l.total.item() == Approx(l.style.item()));

    SECTION("doubling a weight doubles its term") {
        TrainingOptions o2 = o;
        o2.style_weight *= 2;
        const PerceptualLoss twice(vgg(), stripes(32, 32), o2), once(vgg(), stripes(32, 32), o);
        CHECK(twice.evaluate(same, same).style.item() == Approx(2 * once.evaluate(same, same).style.item()).epsilon(1e-5));
    }
    SECTION("bad settings are refused") {
        TrainingOptions bad = o;
        bad.style_layers = {{"relu9_9", 1.f}};
        CHECK_THROWS_WITH(PerceptualLoss(vgg(), stripes(32, 32), bad), Contains("relu9_9"));
        bad = o;
        bad.content_weight = -1;
        CHECK_THROWS_WITH(PerceptualLoss(vgg(), stripes(32, 32), bad), Contains("content weight"));
        CHECK_THROWS_WITH(PerceptualLoss(vgg(), stripes(4, 4), o), Contains("style image is 4x4"));
        CHECK_THROWS_WITH(loss.evaluate(same, scale(batch_of(0, 1, 32), 1.f / 255.f)), Contains("differ"));
    }
}

TEST_CASE("training: a tiny network's loss falls", "[training]") {
    StyleTrainer trainer(TransformNet::create(tiny(), 3, Device::cpu()), vgg(), stripes(32, 32), quick_options());
    std::vector<float> losses;
    for (int i = 0; i < 30; ++i) losses.push_back(trainer.step(batch_of(i % 4, 2, 32)).total);
    CHECK(trainer.steps() == 30);
    const float first = losses[0] + losses[1] + losses[2] + losses[3];
    const float last = losses[26] + losses[27] + losses[28] + losses[29];
    INFO("first four " << first << ", last four " << last);
    CHECK(last < 0.7f * first);
    // The parameters moved and are still finite.
    for (const auto& [name, t] : trainer.network().to_weights().tensors)
        for (float v : t.to_vector()) REQUIRE(std::isfinite(v));
}

TEST_CASE("training: a checkpoint resumes with bit-identical losses", "[training]") {
    const TrainingOptions o = quick_options();
    auto fresh = [&] { return StyleTrainer(TransformNet::create(tiny(), 8, Device::cpu()), vgg(), stripes(32, 32), o); };
    StyleTrainer straight = fresh();
    std::vector<float> want;
    for (int i = 0; i < 6; ++i) want.push_back(straight.step(batch_of(i, 2, 32)).total);

    StyleTrainer first = fresh();
    for (int i = 0; i < 3; ++i) REQUIRE(first.step(batch_of(i, 2, 32)).total == want[size_t(i)]);
    const std::string path = test::temp_dir() + "/resume.ckpt.safetensors";
    const WeightFile saved = first.checkpoint({{"train.position", "6"}});
    save_safetensors(path, saved.tensors, saved.metadata);

    const WeightFile ckpt = load_safetensors(path);
    CHECK(ckpt.metadata.at("train.step") == "3");
    CHECK(ckpt.metadata.at("train.position") == "6");
    StyleTrainer second(TransformNet::from_weights(StyleTrainer::network_weights(ckpt), Device::cpu(), path), vgg(),
                        stripes(32, 32), o);
    second.restore_optimizer(ckpt, path);
    CHECK(second.steps() == 3);
    for (int i = 3; i < 6; ++i) CHECK(second.step(batch_of(i, 2, 32)).total == want[size_t(i)]);
    const auto a = straight.network().to_weights().tensors, b = second.network().to_weights().tensors;
    for (const auto& [name, t] : a) CHECK(t.to_vector() == b.at(name).to_vector());

    SECTION("the network part alone runs as a model") {
        CHECK_NOTHROW(TransformNet::from_weights(StyleTrainer::network_weights(ckpt), Device::cpu()));
        CHECK_THROWS_WITH(TransformNet::from_weights(ckpt, Device::cpu(), "ckpt"), Contains("adam.m."));
    }
    SECTION("broken checkpoints are refused") {
        StyleTrainer t = fresh();
        WeightFile bad = ckpt;
        bad.tensors.erase("adam.v.conv_in.weight");
        CHECK_THROWS_WITH(t.restore_optimizer(bad, "x"), Contains("missing optimizer tensor adam.v.conv_in.weight"));
        bad = ckpt;
        bad.tensors["adam.m.conv_in.weight"] = Tensor::zeros({1});
        CHECK_THROWS_WITH(t.restore_optimizer(bad, "x"), Contains("has shape [1]"));
        bad = ckpt;
        bad.tensors["adam.m.nothing"] = Tensor::zeros({1});
        CHECK_THROWS_WITH(t.restore_optimizer(bad, "x"), Contains("belongs to no parameter"));
        bad = ckpt;
        bad.metadata.erase("train.step");
        CHECK_THROWS_WITH(t.restore_optimizer(bad, "x"), Contains("not a training checkpoint"));
        bad = ckpt;
        bad.metadata["train.step"] = "-2";
        CHECK_THROWS_WITH(t.restore_optimizer(bad, "x"), Contains("bad train.step"));
        // Damaged moments would only show steps later, as a diverged loss.
        for (const char* key : {"adam.m.down1.weight", "adam.v.down1.weight"})
            for (const float v : {std::nanf(""), INFINITY}) {
                bad = ckpt;
                std::vector<float> values = bad.tensors.at(key).to_vector();
                values[3] = v;
                bad.tensors[key] = Tensor::from_vector(values, bad.tensors.at(key).shape());
                CHECK_THROWS_WITH(t.restore_optimizer(bad, "x"), Contains(key) && Contains("NaN"));
            }
        bad = ckpt;
        std::vector<float> values = bad.tensors.at("adam.v.up1.weight").to_vector();
        values[0] = -1.f;
        bad.tensors["adam.v.up1.weight"] = Tensor::from_vector(values, bad.tensors.at("adam.v.up1.weight").shape());
        CHECK_THROWS_WITH(t.restore_optimizer(bad, "x"), Contains("negative"));
        const WeightFile nan_network = [&] {
            WeightFile w = ckpt;
            std::vector<float> v = w.tensors.at("down1.weight").to_vector();
            v[1] = std::nanf("");
            w.tensors["down1.weight"] = Tensor::from_vector(v, w.tensors.at("down1.weight").shape());
            return w;
        }();
        CHECK_THROWS_WITH(TransformNet::from_weights(StyleTrainer::network_weights(nan_network), Device::cpu(), "x"),
                          Contains("NaN"));
    }
}

TEST_CASE("training: a NaN loss stops without touching the network", "[training]") {
    StyleTrainer trainer(TransformNet::create(tiny(), 3, Device::cpu()), vgg(), stripes(32, 32), quick_options());
    trainer.step(batch_of(0, 2, 32));
    const auto before = trainer.network().to_weights().tensors.at("conv_in.weight").to_vector();
    std::vector<float> v = batch_of(1, 2, 32).to_vector();
    v[17] = std::nanf("");
    CHECK_THROWS_WITH(trainer.step(Tensor::from_vector(v, {2, 3, 32, 32})), Contains("diverged"));
    CHECK(trainer.steps() == 1);
    CHECK(trainer.network().to_weights().tensors.at("conv_in.weight").to_vector() == before);
}

// ---- the photo stream -----------------------------------------------------------------

namespace {

// A folder of flat-colour photos whose red value (10, 20, ...) names them,
// of different sizes, in two levels, plus files that are not images.
std::string make_photo_dir(const std::string& name, int n) {
    const std::string dir = test::temp_dir() + "/" + name;
    std::filesystem::create_directories(dir + "/sub");
    for (int i = 0; i < n; ++i) {
        const int h = 20 + 7 * (i % 3), w = 30 - 5 * (i % 2);
        std::vector<float> v(size_t(3) * h * w, 100.f);
        std::fill(v.begin(), v.begin() + h * w, float(10 * (i + 1)));
        const std::string sub = i % 2 ? "/sub/" : "/";
        save_image(Tensor::from_vector(v, {1, 3, h, w}), dir + sub + "p" + std::to_string(i) + (i % 3 ? ".png" : ".jpg"));
    }
    std::FILE* f = std::fopen((dir + "/notes.txt").c_str(), "w");
    std::fputs("not a photo", f);
    std::fclose(f);
    return dir;
}

// The photos' names (red / 10 - 1) in stream order.
std::vector<int> names_in(TrainingImages& data, int batches) {
    std::vector<int> names;
    for (int b = 0; b < batches; ++b) {
        const Tensor t = data.next();
        const std::vector<float> v = t.to_vector();
        const size_t plane = size_t(t.size(2) * t.size(3));
        for (int64_t i = 0; i < t.size(0); ++i) names.push_back(int(std::lround(v[size_t(i) * 3 * plane] / 10.f)) - 1);
    }
    return names;
}

}  // namespace

TEST_CASE("training data: every photo once per epoch, in a seeded order", "[training]") {
    const std::string dir = make_photo_dir("photos", 7);
    TrainingImages data(dir, 16, 7, 42);
    CHECK(data.files() == 7);  // notes.txt is not counted
    const std::vector<int> epoch1 = names_in(data, 1), epoch2 = names_in(data, 1);
    CHECK(std::set<int>(epoch1.begin(), epoch1.end()).size() == 7);
    CHECK(std::set<int>(epoch2.begin(), epoch2.end()).size() == 7);
    CHECK(epoch1 != epoch2);  // reshuffled
    CHECK(data.position() == 14);

    SECTION("the same seed gives the same order whatever the thread count; another seed another") {
        TrainingImages one(dir, 16, 7, 42, 0, 1), many(dir, 16, 7, 42, 0, 5), other(dir, 16, 7, 43);
        CHECK(names_in(one, 1) == epoch1);
        CHECK(names_in(many, 2) == [&] { auto v = epoch1; v.insert(v.end(), epoch2.begin(), epoch2.end()); return v; }());
        CHECK(names_in(other, 1) != epoch1);
    }
    SECTION("batches run across epochs, and a position resumes the stream") {
        TrainingImages threes(dir, 16, 3, 42);
        const std::vector<int> stream = names_in(threes, 4);  // 12 samples: epoch 1 and part of 2
        CHECK(std::vector<int>(stream.begin(), stream.begin() + 7) == epoch1);
        TrainingImages resumed(dir, 16, 3, 42, 6);
        CHECK(names_in(resumed, 2) == std::vector<int>(stream.begin() + 6, stream.end()));
    }
    SECTION("photos come at the requested size") {  // which pixels: "training data: the centre square"
        const Tensor b = TrainingImages(dir, 12, 2, 1).next();
        CHECK(b.shape() == Shape{2, 3, 12, 12});
    }
}

TEST_CASE("training data: the centre square", "[training]") {
    // Every pixel says where it is: red 7 x column, green 8 x row, blue 50
    // (8-bit exact). An image whose sides differ by an odd number loses one
    // pixel more at the end than at the start; a square of the short side
    // is resized to itself, untouched, so the kept pixels are compared
    // exactly.
    const auto saved = [](int h, int w) {
        std::vector<float> v(size_t(3) * h * w, 50.f);
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) {
                v[size_t(y) * w + x] = 7.f * float(x);
                v[size_t(h) * w + size_t(y) * w + x] = 8.f * float(y);
            }
        const std::string path = test::temp_dir() + "/where_" + std::to_string(w) + "x" + std::to_string(h) + ".png";
        save_image(Tensor::from_vector(v, {1, 3, h, w}), path);
        return path;
    };
    // Every image of `squares` is the side x side square at (top, left).
    const auto check_kept = [](const Tensor& squares, int side, int top, int left) {
        REQUIRE(squares.dim() == 4);
        REQUIRE(squares.shape() == Shape{squares.size(0), 3, side, side});
        const std::vector<float> v = squares.to_vector();
        const size_t plane = size_t(side) * side;
        int wrong = 0;
        for (int64_t n = 0; n < squares.size(0); ++n)
            for (int y = 0; y < side; ++y)
                for (int x = 0; x < side; ++x) {
                    const size_t i = size_t(n) * 3 * plane + size_t(y) * side + x;
                    wrong += v[i] != 7.f * float(left + x) || v[plane + i] != 8.f * float(top + y) ||
                             v[2 * plane + i] != 50.f;
                }
        CHECK(wrong == 0);
    };
    SECTION("wide: the middle columns, 6 cut on the left and 7 on the right") {
        check_kept(TrainingImages::load_square(saved(20, 33), 20), 20, 0, 6);
    }
    SECTION("tall: the middle rows, 5 cut above and 6 below") {
        check_kept(TrainingImages::load_square(saved(31, 20), 20), 20, 5, 0);
    }
    SECTION("the photo stream serves the same squares") {
        const std::string dir = test::temp_dir() + "/one_wide";
        std::filesystem::create_directories(dir);
        std::filesystem::copy_file(saved(20, 33), dir + "/p.png", std::filesystem::copy_options::overwrite_existing);
        const Tensor batch = TrainingImages(dir, 20, 2, 1).next();
        CHECK(batch.size(0) == 2);
        check_kept(batch, 20, 0, 6);
    }
    SECTION("and resized: a smaller square of the same middle") {
        // Resampling blurs, but the left column of the result is near the
        // kept square's left edge (columns 6 and 7 of the image: red
        // 42 and 49), not the image's (red 0).
        const std::vector<float> v = TrainingImages::load_square(saved(20, 33), 10).to_vector();
        CHECK(v[0] == Approx(7.f * 6.5f).margin(7.f));
        CHECK(v[9] == Approx(7.f * 24.5f).margin(7.f));
    }
}

TEST_CASE("training data: unreadable files are skipped once and counted", "[training]") {
    const std::string dir = make_photo_dir("with_bad", 3);
    for (const char* bad : {"/broken.png", "/sub/empty.jpg"}) {
        std::FILE* f = std::fopen((dir + bad).c_str(), "w");
        if (bad[1] == 'b') std::fputs("\x89PNG\r\n\x1a\n garbage", f);
        std::fclose(f);
    }
    TrainingImages data(dir, 8, 3, 7);
    CHECK(data.files() == 5);
    std::vector<std::string> warned;
    data.on_skip([&](const std::string& path, const std::string& why) {
        CHECK(!why.empty());
        warned.push_back(path);
    });
    const std::vector<int> names = names_in(data, 4);  // four epochs' worth of good photos
    for (int i = 0; i < 3; ++i) CHECK(std::count(names.begin(), names.end(), i) == 4);
    CHECK(warned.size() == 2);
    CHECK(data.skipped() == 2);

    SECTION("nothing readable is an error, not a hang") {
        const std::string all_bad = test::temp_dir() + "/all_bad";
        std::filesystem::create_directories(all_bad);
        std::FILE* f = std::fopen((all_bad + "/x.png").c_str(), "w");
        std::fclose(f);
        TrainingImages none(all_bad, 8, 2, 0);
        CHECK_THROWS_WITH(none.next(), Contains("none of the 1 image files"));
    }
    SECTION("a folder without images") {
        const std::string empty = test::temp_dir() + "/no_images";
        std::filesystem::create_directories(empty);
        CHECK_THROWS_WITH(TrainingImages(empty, 8, 2, 0), Contains("no images"));
        CHECK_THROWS_WITH(TrainingImages(empty + "/missing", 8, 2, 0), Contains("not a directory"));
    }
}

// ---- exchange with tools/reference/train_reference.py ---------------------------------
// NST_TRAIN_REF_OUT=DIR [NST_TRAIN_REF_DEVICE=cuda] test_training "[.reference]" writes
// DIR/vgg19.safetensors (random weights and biases, torchvision keys) and, for
// max and average pooling, DIR/<pooling>/network.safetensors (a small native
// network, every tensor random), inputs.safetensors (photos 0..255, style
// 0..1), config.json and engine.safetensors: the losses of one training step
// and the gradient of the total loss with respect to every parameter
// ("grad.<name>").
TEST_CASE("training: write the reference comparison's inputs and the engine's numbers", "[.reference]") {
    const char* out_env = std::getenv("NST_TRAIN_REF_OUT");
    if (!out_env) FAIL("set NST_TRAIN_REF_OUT to the output directory");
    const std::string out = out_env;
    std::filesystem::create_directories(out);
    const char* device_env = std::getenv("NST_TRAIN_REF_DEVICE");
    const Device device = device_env ? Device::parse(device_env) : default_device();
    std::printf("writing %s on %s\n", out.c_str(), device.str().c_str());

    std::map<std::string, Tensor> vgg_weights;
    const Vgg19 random = Vgg19::random(19);
    for (int i = 0; i < 16; ++i) {
        vgg_weights[Vgg19::weight_key(i)] = random.weight(i);
        vgg_weights[Vgg19::bias_key(i)] = Tensor::randn({Vgg19::conv_channels(i)}, 900 + uint64_t(i), Device::cpu(), 0.f, 0.05f);
    }
    save_safetensors(out + "/vgg19.safetensors", vgg_weights);

    // Every tensor random (biases, gammas, betas too), so every path counts.
    TransformNetSpec spec;
    spec.width = 8;
    spec.residual_blocks = 2;
    WeightFile w = TransformNet::create(spec, 5, Device::cpu()).to_weights();
    uint64_t seed = 300;
    for (auto& [name, t] : w.tensors) {
        const bool gamma = name.size() > 12 && name.compare(name.size() - 12, 12, ".norm.weight") == 0;
        if (name.find(".bias") != std::string::npos || gamma)
            t = Tensor::randn(t.shape(), seed++, Device::cpu(), gamma ? 1.f : 0.f, 0.2f);
    }

    // 36 pixels: 18, 9, then 18 and 36 again. Two cases: average pooling, and max pooling, whose gradient jumps where
    // two values of a window tie. Flat areas make near-ties, where float32
    // and float64 route the gradient to different pixels (one such window in
    // 40000 moves the gradient by 5e-3), so the photos carry noise and the
    // script checks that no window is that close to a tie.
    const Tensor photos = add(batch_of(3, 2, 36), Tensor::randn({2, 3, 36, 36}, 34, Device::cpu(), 0.f, 20.f));
    const Tensor style = stripes(40, 44);
    for (const VggPooling pooling : {VggPooling::Max, VggPooling::Avg}) {
        const std::string dir = out + (pooling == VggPooling::Max ? "/max" : "/avg");
        std::filesystem::create_directories(dir);
        save_safetensors(dir + "/network.safetensors", w.tensors, w.metadata);
        save_safetensors(dir + "/inputs.safetensors", {{"photos", photos}, {"style", style}});
        const Vgg19 net = Vgg19::from_state_dict(vgg_weights, VggFlavor::Torchvision, device, pooling);
        TrainingOptions o;
        o.content_layers = {{"relu2_2", 1.f}, {"relu3_3", 0.5f}};
        o.style_layers = {{"relu1_2", 1.f}, {"relu2_2", 0.7f}, {"relu3_3", 1.f}, {"relu4_3", 2.f}};
        o.content_weight = 1.5f;
        o.style_weight = 5.f;
        o.tv_weight = 0.3f;
        const TransformNet network = TransformNet::from_weights(w, device);
        Tensor x = photos.to(device);
        std::map<std::string, Tensor> params;
        for (auto& [name, t] : network.to_weights().tensors) {
            t.zero_grad();  // on the CPU the network shares `w`'s tensors, and so do both cases
            params[name] = t.set_requires_grad(true);
        }
        const PerceptualLoss loss(net, style, o);
        const StyleLosses l = loss.evaluate(scale(network.forward(x), 1.f / 255.f), scale(x, 1.f / 255.f));
        l.total.backward();
        std::map<std::string, Tensor> engine{{"loss_content", l.content.detach().reshape({1}).cpu()},
                                             {"loss_style", l.style.detach().reshape({1}).cpu()},
                                             {"loss_tv", l.tv.detach().reshape({1}).cpu()},
                                             {"loss_total", l.total.detach().reshape({1}).cpu()}};
        for (const auto& [name, t] : params) engine["grad." + name] = t.grad().cpu();
        save_safetensors(dir + "/engine.safetensors", engine);

        auto layers_json = [](const std::vector<LayerWeight>& layers) {
            std::string s = "[";
            for (size_t i = 0; i < layers.size(); ++i)
                s += detail::concat(i ? ", " : "", "[\"", layers[i].layer, "\", ", layers[i].weight, "]");
            return s + "]";
        };
        std::FILE* f = std::fopen((dir + "/config.json").c_str(), "w");
        REQUIRE(f);
        std::fputs(detail::concat("{\n  \"flavor\": \"torchvision\",\n  \"pooling\": \"",
                                  pooling == VggPooling::Max ? "max" : "avg", "\",\n  \"content_layers\": ",
                                  layers_json(o.content_layers), ",\n  \"style_layers\": ", layers_json(o.style_layers),
                                  ",\n  \"content_weight\": ", o.content_weight, ",\n  \"style_weight\": ",
                                  o.style_weight, ",\n  \"tv_weight\": ", o.tv_weight, ",\n  \"engine_device\": \"",
                                  device.str(), "\"\n}\n")
                       .c_str(),
                   f);
        REQUIRE(std::fclose(f) == 0);
        std::printf("%s: content %.6g style %.6g tv %.6g total %.6g\n", dir.c_str(), l.content.item(),
                    l.style.item(), l.tv.item(), l.total.item());
    }
}
