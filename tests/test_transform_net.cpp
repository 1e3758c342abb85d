// The transformation network on random weights (no test data needed): output
// shapes for odd sizes under TensorFlow 'SAME' rules, range, determinism,
// save/load and TensorFlow-export round trips, and validation errors. The
// agreement with an independent implementation on the real networks is in
// tests/data_fast_style_reference.cpp.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <functional>
#include <string>

#include "core/autograd.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "core/ops.hpp"
#include "nets/transform_net.hpp"
#include "tests/tf_export_writer.hpp"
#include "weights/tf_fast_style.hpp"
#include "temp_dir.hpp"

using namespace nst;

namespace {

using nst::test::temp_dir;

TransformNetSpec small_spec(TransformNetVariant variant) {
    TransformNetSpec spec;
    spec.variant = variant;
    spec.width = 4;
    spec.residual_blocks = 2;
    return spec;
}

Tensor photo(int h, int w, uint64_t seed = 3) { return Tensor::rand({1, 3, h, w}, seed, Device::cpu(), 0.f, 255.f); }

float max_abs_diff(const Tensor& a, const Tensor& b) {
    const std::vector<float> x = a.to_vector(), y = b.to_vector();
    REQUIRE(x.size() == y.size());
    float m = 0;
    for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(x[i] - y[i]));
    return m;
}

int64_t rounded_up(int64_t n) { return 4 * ((((n + 1) / 2) + 1) / 2); }

void require_error(const std::function<void()>& f, const std::string& fragment) {
    try {
        f();
        FAIL("no error");
    } catch (const Error& e) {
        INFO(e.what());
        CHECK(std::string(e.what()).find(fragment) != std::string::npos);
    }
}

}  // namespace

TEST_CASE("transform_net: TF variant shapes follow 'SAME' on odd sizes", "[transform_net]") {
    const TransformNet net = TransformNet::create(small_spec(TransformNetVariant::TensorFlow), 1, Device::cpu());
    NoGradGuard no_grad;
    for (auto [h, w] : {std::pair{1, 1}, {5, 7}, {45, 67}, {48, 64}, {13, 2}}) {
        INFO(h << "x" << w);
        const Tensor x = photo(h, w);
        const Tensor raw = net.forward(x);
        CHECK(raw.shape() == Shape{1, 3, rounded_up(h), rounded_up(w)});
        const Tensor y = net.stylize(x);
        CHECK(y.shape() == x.shape());
        // The crop keeps the top-left of the raw output.
        CHECK(max_abs_diff(y, pad(raw, 0, -int(rounded_up(h) - h), 0, -int(rounded_up(w) - w))) == 0.f);
        // tanh * 150 + 127.5
        for (float v : raw.to_vector()) CHECK((v >= -22.5f && v <= 277.5f));
    }
}

TEST_CASE("transform_net: native variant output, range scaling, determinism", "[transform_net]") {
    for (float range : {255.f, 1.f}) {
        TransformNetSpec spec = small_spec(TransformNetVariant::Native);
        spec.value_range = range;
        const TransformNet net = TransformNet::create(spec, 5, Device::cpu());
        CHECK(net.value_range() == range);
        const Tensor x = photo(21, 30);
        const Tensor a = net.stylize(x), b = net.stylize(x);
        CHECK(a.shape() == x.shape());
        CHECK(max_abs_diff(a, b) == 0.f);  // same bits every run
        bool all_finite = true;
        for (float v : a.to_vector()) all_finite = all_finite && std::isfinite(v);
        CHECK(all_finite);
    }
    // Reflect padding needs a few pixels; a tiny image is a clear error.
    const TransformNet net = TransformNet::create(small_spec(TransformNetVariant::Native), 5, Device::cpu());
    require_error([&] { net.stylize(photo(3, 40)); }, "too small");
}

TEST_CASE("transform_net: a different image gives a different output; batches are independent",
          "[transform_net]") {
    const TransformNet net = TransformNet::create(small_spec(TransformNetVariant::TensorFlow), 2, Device::cpu());
    const Tensor a = photo(16, 20, 1), b = photo(16, 20, 2);
    const Tensor ya = net.stylize(a), yb = net.stylize(b);
    CHECK(max_abs_diff(ya, yb) > 1.f);
    // Instance norm statistics are per image: a batch of two equals two runs.
    std::vector<float> both = a.to_vector();
    const std::vector<float> bv = b.to_vector();
    both.insert(both.end(), bv.begin(), bv.end());
    const std::vector<float> batch = net.stylize(Tensor::from_vector(both, {2, 3, 16, 20})).to_vector();
    std::vector<float> expected = ya.to_vector();
    const std::vector<float> ybv = yb.to_vector();
    expected.insert(expected.end(), ybv.begin(), ybv.end());
    REQUIRE(batch.size() == expected.size());
    float diff = 0;
    for (size_t i = 0; i < batch.size(); ++i) diff = std::max(diff, std::fabs(batch[i] - expected[i]));
    CHECK(diff < 1e-3f);
}

TEST_CASE("transform_net: forward records a graph for training", "[transform_net]") {
    const TransformNet net = TransformNet::create(small_spec(TransformNetVariant::Native), 9, Device::cpu());
    std::vector<Tensor> params = net.parameters();
    CHECK(params.size() == size_t(4 * (3 + 2 * 2 + 2) + 2));  // conv_out: weight + bias only
    for (Tensor& p : params) p.set_requires_grad();
    const Tensor loss = sum_squares(net.forward(photo(12, 12)));
    loss.backward();
    for (const Tensor& p : params) CHECK(p.grad().defined());
}

TEST_CASE("transform_net: safetensors round trip keeps outputs and metadata", "[transform_net]") {
    for (TransformNetVariant v : {TransformNetVariant::TensorFlow, TransformNetVariant::Native}) {
        const TransformNet net = TransformNet::create(small_spec(v), 4, Device::cpu());
        const std::string path = temp_dir() + "/net_" + variant_name(v) + ".safetensors";
        net.save(path);
        const WeightFile w = load_safetensors(path);
        CHECK(w.metadata.at("architecture") == "nst.transformer");
        CHECK(w.metadata.at("variant") == variant_name(v));
        CHECK(w.metadata.at("norm_eps") == (v == TransformNetVariant::TensorFlow ? "0.001" : "1e-05"));
        const TransformNet back = TransformNet::load(path, Device::cpu());
        CHECK(back.variant() == v);
        CHECK(back.residual_blocks() == 2);
        const Tensor x = photo(19, 23);
        CHECK(max_abs_diff(net.stylize(x), back.stylize(x)) == 0.f);
    }
}

TEST_CASE("transform_net: TensorFlow export import matches the network it came from", "[transform_net]") {
    const TransformNetSpec spec = small_spec(TransformNetVariant::TensorFlow);
    const TransformNet net = TransformNet::create(spec, 6, Device::cpu());
    const std::string dir = temp_dir() + "/tf_export";
    ::mkdir(dir.c_str(), 0777);
    testing::write_tf_export(net.to_weights(), dir, spec.residual_blocks);
    REQUIRE(is_tf_fast_style_export(dir));
    const TransformNet imported = TransformNet::load(dir, Device::cpu());
    CHECK(imported.metadata().at("style") == "tf_export");
    const Tensor x = photo(17, 26);
    CHECK(max_abs_diff(net.stylize(x), imported.stylize(x)) == 0.f);

    SECTION("truncated variable file") {
        const std::string f = dir + "/Variable_3";
        REQUIRE(::truncate(f.c_str(), 100) == 0);
        require_error([&] { import_tf_fast_style(dir); }, "truncated file");
    }
    SECTION("missing variable file") {
        REQUIRE(::unlink((dir + "/Variable_5").c_str()) == 0);
        require_error([&] { import_tf_fast_style(dir); }, "missing file of variable Variable_5");
    }
    SECTION("manifest that is not JSON") {
        std::ofstream(dir + "/manifest.json") << "{ nope";
        require_error([&] { import_tf_fast_style(dir); }, "not a JSON object");
    }
    SECTION("a variable too few") {
        std::ofstream(dir + "/manifest.json")
            << R"({"Variable": {"filename": "Variable", "shape": [9, 9, 3, 4]}})";
        require_error([&] { import_tf_fast_style(dir); }, "triples");
    }
    SECTION("file names must stay in the directory") {
        std::ofstream(dir + "/manifest.json")
            << R"({"Variable": {"filename": "../etc/passwd", "shape": [1]}})";
        require_error([&] { import_tf_fast_style(dir); }, "invalid file name");
    }
    SECTION("not an export at all") {
        require_error([&] { import_tf_fast_style(temp_dir()); }, "no manifest.json");
    }
}

TEST_CASE("transform_net: invalid weight sets are rejected with the reason", "[transform_net]") {
    const WeightFile good = TransformNet::create(small_spec(TransformNetVariant::Native), 7, Device::cpu()).to_weights();
    auto load = [](const WeightFile& w) { TransformNet::from_weights(w, Device::cpu(), "test.safetensors"); };
    {
        WeightFile w = good;
        w.metadata["architecture"] = "vgg19";
        require_error([&] { load(w); }, "not an nst.transformer network");
    }
    {
        WeightFile w = good;
        w.metadata["variant"] = "pix2pix";
        require_error([&] { load(w); }, "unknown transformation network variant 'pix2pix'");
    }
    {
        WeightFile w = good;
        w.tensors.erase("down2.weight");
        require_error([&] { load(w); }, "missing tensor down2.weight");
    }
    {
        WeightFile w = good;
        w.tensors["extra.weight"] = Tensor::zeros({1});
        require_error([&] { load(w); }, "extra.weight");
    }
    {
        WeightFile w = good;
        w.tensors["down1.weight"] = Tensor::zeros({8, 5, 3, 3});
        require_error([&] { load(w); }, "takes 5 channels, the previous layer gives 4");
    }
    {
        WeightFile w = good;
        w.tensors["up1.norm.weight"] = Tensor::zeros({3});
        require_error([&] { load(w); }, "expected [8]");
    }
    {
        WeightFile w = good;
        w.metadata["value_range"] = "abc";
        require_error([&] { load(w); }, "not a non-negative number");
    }
    // A missing file is one readable error too.
    require_error([] { TransformNet::load("/nonexistent/model.safetensors", Device::cpu()); },
                  "no such file");
}

// Tiles with whole-image instance-norm statistics give the untiled result:
// odd sizes, tiles that do not divide the image, both variants, random norm
// parameters, and a real width (5 residual blocks: the full receptive field).
TEST_CASE("transform_net: tiled stylization matches untiled", "[transform_net]") {
    for (const TransformNetVariant variant : {TransformNetVariant::Native, TransformNetVariant::TensorFlow}) {
        TransformNetSpec spec = small_spec(variant);
        spec.residual_blocks = 5;
        WeightFile w = TransformNet::create(spec, 11, Device::cpu()).to_weights();
        uint64_t seed = 40;
        for (auto& [name, t] : w.tensors)
            if (name.find(".norm.") != std::string::npos)
                t = Tensor::randn(t.shape(), seed++, Device::cpu(), name.find("weight") != std::string::npos ? 1.f : 0.f, 0.3f);
        const TransformNet net = TransformNet::from_weights(w, Device::cpu());
        for (const auto& [h, w_, tile] : {std::tuple{203, 171, 64}, std::tuple{150, 97, 48}, std::tuple{41, 39, 100}}) {
            const Tensor image = photo(h, w_, uint64_t(h));
            const Tensor want = net.stylize(image), got = net.stylize_tiled(image, tile);
            REQUIRE(got.shape() == want.shape());
            const std::vector<float> a = got.to_vector(), b = want.to_vector();
            double mse = 0;
            for (size_t i = 0; i < a.size(); ++i) mse += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
            mse /= double(a.size());
            const double psnr = mse == 0 ? 999.0 : 10 * std::log10(255.0 * 255.0 / mse);
            INFO(variant_name(variant) << " " << w_ << "x" << h << " tiles of " << tile << ": " << psnr << " dB, max diff "
                                       << max_abs_diff(got, want));
            CHECK(psnr >= 80.0);  // the requirement is 45 dB; the method is exact up to float rounding
        }
    }
    require_error([] { TransformNet::create(small_spec(TransformNetVariant::Native), 1, Device::cpu()).stylize_tiled(photo(40, 40), 8); },
                  "too small");
}

// Inference frees each activation as soon as the next layer has what it needs
// from it: the peak, at the last upsampling of the native network, is the
// upsampled and padded activation (64 channels, made in one pass) and the
// convolution's output, and on the CPU their copies in oneDNN's blocked
// layouts for the length of the convolution (kernels/cpu/conv.cpp). Per
// pixel at width 32 in float32: 711 bytes when the upsampled activation and
// the layer's input were held through the convolution and the norm, 391 once
// they were not (2026-11-25, im2col's small column buffer not counted), 814
// with the reorders booked (2026-12-06; fp16 643: its convolutions widen to
// float32 on the CPU).
TEST_CASE("transform_net: inference holds few activations at once", "[transform_net]") {
    const TransformNet net = TransformNet::create(TransformNetSpec{}, 5, Device::cpu());
    const Tensor image = photo(128, 192);
    for (const DType type : {DType::F32, DType::F16}) {
        const TransformNet n = net.to(type);
        const size_t base = cpu_memory_stats().current;
        cpu_reset_peak_memory();
        const Tensor y = n.stylize(image);
        const double per_pixel = double(cpu_memory_stats().peak - base) / double(image.numel() / 3);
        INFO(dtype_name(type) << ": " << per_pixel << " bytes per pixel at the peak");
        CHECK(per_pixel < (type == DType::F32 ? 900 : 720));
    }
}

// Out of memory: stylize_fitting retries in tiles, with the untiled result.
// A memory limit stands in for a small GPU.
TEST_CASE("transform_net: out of memory falls back to tiles with the same result", "[transform_net]") {
    struct Limit {
        explicit Limit(size_t bytes) { cpu_set_memory_limit(bytes); }
        ~Limit() { cpu_set_memory_limit(0); }
    };
    TransformNetSpec spec = small_spec(TransformNetVariant::Native);
    spec.residual_blocks = 5;
    const TransformNet net = TransformNet::create(spec, 12, Device::cpu());
    const Tensor image = photo(500, 610);  // tiles only pay off well beyond the 76-pixel halo
    const size_t base = cpu_memory_stats().current;
    cpu_reset_peak_memory();
    const Tensor want = net.stylize(image);
    const size_t whole = cpu_memory_stats().peak - base;
    int told = 0;
    Tensor got;
    {
        const Limit limit(base + whole / 2);
        CHECK_THROWS_AS(net.stylize(image), OutOfMemoryError);
        got = net.stylize_fitting(image, [&](int) { ++told; });
    }
    CHECK(told >= 1);  // told before each try, of the fallback tiles
    CHECK(told <= int(net.fallback_tiles(500, 610).size()));
    CHECK(max_abs_diff(got, want) < 1e-3f);
    {
        const Limit limit(base + 4096);
        CHECK_THROWS_WITH(net.stylize_fitting(image), Catch::Contains("even in tiles of " + std::to_string(net.fallback_tiles(500, 610).back())));
    }
    CHECK(net.stylize(image).to_vector() == want.to_vector());  // the limit is gone
}

// What tiles cost: every norm layer needs a pass of its own over every
// tile's crop, so even one tile covering the image costs several untiled
// runs, and tiles near the halo cost tens; memory falls back only to tiles
// that pay (at most kMaxTiledWork) and read less than the whole image.
TEST_CASE("transform_net: the work of tiles, and the tiles memory falls back to", "[transform_net]") {
    TransformNetSpec spec = small_spec(TransformNetVariant::Native);
    spec.residual_blocks = 5;
    const TransformNet net = TransformNet::create(spec, 12, Device::cpu());
    const int64_t halo = net.tile_halo();
    // One tile: one pass per norm layer plus the last, each a prefix of the network.
    const double one = net.tiled_work(200, 300, 512);
    CHECK(one > 2.0);
    CHECK(one < 12.0);  // 11 norm layers: less than 12 whole passes
    double previous = one;
    for (int tile : {256, 128, 64}) {
        const double work = net.tiled_work(1000, 1200, tile);
        INFO("tiles of " << tile << ": " << work);
        CHECK(work > one);
        CHECK(work >= previous * 0.999);
        previous = work;
    }
    // The crops of tiles near the halo read about (1 + 2 halo / tile)^2 times their area.
    const double area = std::pow(1.0 + 2.0 * double(halo) / 80.0, 2);
    CHECK(net.tiled_work(4000, 4000, 80) == Approx(area * one).epsilon(0.1));
    for (const auto& [h, w] : {std::pair<int64_t, int64_t>{300, 400}, {1080, 1920}, {4000, 3000}}) {
        const std::vector<int> tiles = net.fallback_tiles(h, w);
        for (size_t i = 0; i < tiles.size(); ++i) {
            CHECK(tiles[i] < std::max(h, w));
            CHECK(net.tiled_work(h, w, tiles[i]) <= TransformNet::kMaxTiledWork);
            CHECK(net.largest_tile_crop(h, w, tiles[i]) < h * w);
            if (i > 0) CHECK(tiles[i] < tiles[i - 1]);
        }
    }
    CHECK_FALSE(net.fallback_tiles(1080, 1920).empty());
    CHECK(net.fallback_tiles(100, 120).empty());  // every crop is the whole image: nothing to gain
}

// An interrupt request (Ctrl-C in nst-run) stops a stylization between
// layers, tiled or not; training's forward never stops halfway.
TEST_CASE("transform_net: an interrupt request stops inference between layers", "[transform_net]") {
    const TransformNet net = TransformNet::create(small_spec(TransformNetVariant::Native), 14, Device::cpu());
    const Tensor image = photo(90, 120);
    request_interrupt();
    CHECK_THROWS_AS(net.stylize(image), Interrupted);
    CHECK_THROWS_AS(net.stylize_tiled(image, 48), Interrupted);
    CHECK_THROWS_AS(net.stylize_fitting(image), Interrupted);
    CHECK(net.forward(image).shape() == Shape{1, 3, 92, 120});  // a training step's forward
    clear_interrupt();
    CHECK(net.stylize(image).shape() == image.shape());
}

// An 8192x8192 image: the 32 channels after conv_in are 2^31 values, past
// the kernels' 32-bit indices however much memory there is, so
// stylize_fitting must go to tiles (which it announces; the tiled run itself
// is the test above's, and too slow here at this size).
TEST_CASE("transform_net: an activation past the 32-bit limit falls back to tiles", "[transform_net]") {
    const TransformNet net = TransformNet::create(TransformNetSpec{}, 13, Device::cpu());
    const Tensor image = Tensor::full({1, 3, 8192, 8192}, 100.f);
    CHECK_THROWS_AS(net.stylize(image), SizeLimitError);
    struct TilesChosen {};
    CHECK_THROWS_AS(net.stylize_fitting(image, [](int) { throw TilesChosen{}; }), TilesChosen);
}

// Inference leaves out the conv biases that an instance norm follows (they
// cancel in its mean); the result is the graph-recording forward's, biases
// added, up to float rounding.
TEST_CASE("transform_net: biases before a norm cancel, so inference skips them", "[transform_net]") {
    TransformNetSpec spec = small_spec(TransformNetVariant::Native);
    WeightFile w = TransformNet::create(spec, 8, Device::cpu()).to_weights();
    uint64_t seed = 90;
    for (auto& [name, t] : w.tensors)
        if (name.find(".bias") != std::string::npos || name.find(".norm.") != std::string::npos)
            t = Tensor::randn(t.shape(), seed++, Device::cpu(), name.find("norm.weight") != std::string::npos ? 1.f : 0.f, 2.f);
    const TransformNet net = TransformNet::from_weights(w, Device::cpu());
    const Tensor image = photo(37, 45);
    const Tensor with_biases = net.forward(image);  // grad mode: every bias added
    const Tensor inference = net.stylize(image);
    REQUIRE(with_biases.shape() == Shape{1, 3, 40, 48});
    const std::vector<float> a = pad(with_biases.detach(), 0, -3, 0, -3).to_vector(), b = inference.to_vector();
    double diff = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, std::fabs(double(a[i]) - b[i])), scale = std::max(scale, std::fabs(double(a[i])));
    INFO("max difference " << diff << " of " << scale);
    CHECK(diff <= 1e-4 * scale);
}
