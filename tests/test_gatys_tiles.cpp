// Tiled optimization mode (nets/vgg_tiles.hpp, nets/gatys_tiles.cpp): the
// tiles' owned blocks partition every feature map; a tiled step's losses and
// gradient are the untiled ones within 1e-5 (relative, L2) at odd sizes, with
// tiles that do not divide the image and tiles smaller than the halo, for
// both poolings, several layer sets and blended styles, and with a video
// frame's temporal loss; a few tiled L-BFGS iterations give the untiled
// image; running out of memory switches to tiles by itself.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "core/autograd.hpp"
#include "core/device.hpp"
#include "core/error.hpp"
#include "core/ops.hpp"
#include "nets/gatys.hpp"
#include "nets/optimize.hpp"
#include "nets/vgg_tiles.hpp"

using namespace nst;

namespace {

// Smooth colour waves plus seeded noise: every layer sees structure.
Tensor picture(int h, int w, uint64_t seed) {
    std::vector<float> v(size_t(3) * h * w);
    const std::vector<float> noise = Tensor::randn({1, 3, h, w}, seed, Device::cpu(), 0.f, 0.05f).to_vector();
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) {
                const size_t i = (size_t(c) * h + y) * w + x;
                v[i] = 0.5f + 0.3f * std::sin(0.21f * float(x + 7 * c) + 0.13f * float(y) * float(seed % 3 + 1)) + noise[i];
            }
    return Tensor::from_vector(v, {1, 3, h, w});
}

const Vgg19& net(VggPooling pooling) {
    static const Vgg19 avg = Vgg19::random(19, Device::cpu(), VggPooling::Avg);
    static const Vgg19 max = Vgg19::random(19, Device::cpu(), VggPooling::Max);
    return pooling == VggPooling::Avg ? avg : max;
}

double relative_l2(const Tensor& a, const Tensor& b) {
    const std::vector<float> x = a.to_vector(), y = b.to_vector();
    REQUIRE(x.size() == y.size());
    double d = 0, n = 0;
    for (size_t i = 0; i < x.size(); ++i) d += double(x[i] - y[i]) * (x[i] - y[i]), n += double(y[i]) * y[i];
    return std::sqrt(d / std::max(n, 1e-300));
}

struct Step {
    StyleLosses losses;
    Tensor grad;
};

Step step(const Vgg19& vgg, const Tensor& content, const std::vector<StyleInput>& styles, GatysOptions o,
          const Tensor& image, int tile) {
    o.tile = tile;
    GatysObjective objective(vgg, content, styles, o);
    CHECK(objective.tile() == (tile < std::max(content.size(2), content.size(3)) ? tile : 0));
    Tensor x = image.clone().set_requires_grad(true);
    Step s;
    s.losses = objective.evaluate_with_gradient(x);
    s.grad = x.grad().clone();
    return s;
}

}  // namespace

TEST_CASE("vgg tiles: the owned blocks partition every feature map", "[gatys_tiles]") {
    CHECK(VggTiling::halo({"relu5_1"}) == 80);  // reach 70, stride 16
    CHECK(VggTiling::halo({"relu4_2"}) == 40);  // reach 38, stride 8
    CHECK(VggTiling::halo({"relu1_1", "relu3_1"}) == 12);
    CHECK(VggTiling::stride("relu5_1") == 16);
    CHECK(VggTiling::stride("pool1") == 2);
    const std::vector<std::string> layers{"relu1_1", "relu2_1", "relu3_1", "relu4_2", "relu5_1"};
    for (auto [h, w, tile] : {std::tuple{97, 83, 16}, {100, 77, 40}, {64, 64, 64}, {131, 45, 33}}) {
        const VggTiling tiling(h, w, layers, tile);
        CHECK(tiling.tile() % 16 == 0);
        for (const auto& layer : layers) {
            const auto [fh, fw] = tiling.feature_size(layer);
            std::vector<int> owners(size_t(fh * fw), 0);
            // Tag every owned feature with the tile's own index through a crop of an index map.
            for (const VggTile& t : tiling.tiles()) {
                const int64_t s = VggTiling::stride(layer);
                CHECK(t.in_y0 % 16 == 0);
                CHECK(t.in_x0 % 16 == 0);
                const int64_t th = (t.in_y1 - t.in_y0) / s, tw = (t.in_x1 - t.in_x0) / s;
                std::vector<float> index(size_t(th * tw));
                for (int64_t y = 0; y < th; ++y)
                    for (int64_t x = 0; x < tw; ++x) index[size_t(y * tw + x)] = float((t.in_y0 / s + y) * fw + t.in_x0 / s + x);
                const Tensor owned = tiling.owned(Tensor::from_vector(index, {1, 1, th, tw}), layer, t);
                if (!owned.defined()) continue;
                for (float i : owned.to_vector()) ++owners[size_t(i)];
            }
            for (int n : owners) REQUIRE(n == 1);
        }
    }
}

TEST_CASE("gatys tiles: a tiled step is the untiled one", "[gatys_tiles]") {
    struct Case {
        const char* what;
        int h, w, tile;
        VggPooling pooling;
        std::vector<LayerWeight> content_layers, style_layers;
        float tv_weight;
        int styles;
    };
    const std::vector<LayerWeight> deep{{"relu1_1", 1}, {"relu2_1", 1}, {"relu3_1", 1}, {"relu4_1", 1}, {"relu5_1", 1}};
    const std::vector<LayerWeight> shallow{{"relu1_1", 1}, {"relu2_1", 0.5f}, {"relu3_1", 2}};
    // Tiles under the halo are tested with shallow layers: with relu5_1's
    // halo of 80, every tile of a small image would read all of it.
    const std::vector<Case> cases{
        {"default layers, avg pooling, tiles of 48 (not dividing 97x83)", 97, 83, 48, VggPooling::Avg,
         {{"relu4_2", 1}}, deep, 0.f, 1},
        {"default layers, max pooling, tiles of 64, TV, two styles", 100, 75, 64, VggPooling::Max,
         {{"relu4_2", 1}}, deep, 1e-2f, 2},
        {"shallow layers (halo 12), max pooling, tiles of 8, content at relu2_2 and relu3_1", 61, 59, 8,
         VggPooling::Max, {{"relu2_2", 1}, {"relu3_1", 0.5f}}, shallow, 0.f, 2},
        {"style only, tiles of 32", 77, 90, 32, VggPooling::Avg, {}, shallow, 0.f, 1},
    };
    for (const Case& c : cases) {
        SECTION(c.what) {
            GatysOptions o;
            o.content_layers = c.content_layers;
            o.style_layers = c.style_layers;
            o.tv_weight = c.tv_weight;
            if (c.content_layers.empty()) o.content_weight = 0;
            const Tensor content = picture(c.h, c.w, 1);
            std::vector<StyleInput> styles{{picture(67, 75, 2), 1.f}};
            if (c.styles == 2) styles.push_back({picture(80, 52, 3), 0.4f});
            const Tensor image = add(content, scale(picture(c.h, c.w, 4), 0.3f));
            const Vgg19& vgg = net(c.pooling);
            const Step whole = step(vgg, content, styles, o, image, 0);
            const Step tiled = step(vgg, content, styles, o, image, c.tile);
            INFO("content " << whole.losses.content.item() << " / " << tiled.losses.content.item() << ", style "
                            << whole.losses.style.item() << " / " << tiled.losses.style.item());
            CHECK(whole.losses.total.item() > 0);
            CHECK(std::fabs(tiled.losses.content.item() - whole.losses.content.item()) <=
                  1e-5 * std::fabs(whole.losses.content.item()));
            CHECK(std::fabs(tiled.losses.style.item() - whole.losses.style.item()) <=
                  1e-5 * whole.losses.style.item());
            CHECK(tiled.losses.tv.item() == whole.losses.tv.item());
            const double d = relative_l2(tiled.grad, whole.grad);
            INFO("gradient: relative L2 difference " << d);
            CHECK(d < 1e-5);
        }
    }
}

// L-BFGS carries rounding differences from one iteration to the next, so
// the images could drift apart; after 5 iterations they agree to 136 dB
// (measured with the default layers). Held to 100 dB: a difference of 1e-5 of the range, far below
// one 8-bit level, while a wrong halo or a missing tile is far above it.
// Layers up to relu3_1 (a halo of 12 pixels: smaller tiles than the
// halo are refused), so that tiles of 32 split the image into nine.
TEST_CASE("gatys tiles: a tiled optimization gives the untiled image", "[gatys_tiles]") {
    GatysOptions o;
    o.iterations = 5;
    o.content_layers = {{"relu2_2", 1}};
    o.style_layers = {{"relu1_1", 1}, {"relu2_1", 1}, {"relu3_1", 1}};
    const Tensor content = picture(70, 66, 5);
    const std::vector<StyleInput> styles{{picture(64, 64, 6), 1.f}};
    const Vgg19& vgg = net(VggPooling::Avg);
    const Tensor whole = stylize_by_optimization(vgg, content, styles, o);
    o.tile = 32;
    int tiles_seen = -1;
    const Tensor tiled = stylize_by_optimization(vgg, content, styles, o, [&](const GatysProgress& p, const Tensor&) {
        tiles_seen = p.tile;
        return true;
    });
    CHECK(tiles_seen == 32);
    const std::vector<float> a = whole.to_vector(), b = tiled.to_vector();
    double mse = 0;
    for (size_t i = 0; i < a.size(); ++i) mse += double(a[i] - b[i]) * (a[i] - b[i]) / double(a.size());
    const double psnr = 10 * std::log10(1.0 / std::max(mse, 1e-30));
    INFO("PSNR " << psnr << " dB");
    CHECK(psnr > 100);
    CHECK(relative_l2(whole, content) > 1e-3);  // it did move
}

// Shallow layers (a halo of 12 pixels), so that tiles of a small image
// need much less memory than the whole.
TEST_CASE("gatys tiles: running out of memory switches to tiles", "[gatys_tiles]") {
    GatysOptions o;
    o.content_layers = {{"relu2_2", 1}};
    o.style_layers = {{"relu1_1", 1}, {"relu2_1", 1}, {"relu3_1", 1}};
    const Tensor content = picture(200, 184, 7);
    const std::vector<StyleInput> styles{{picture(64, 64, 8), 1.f}};
    const Tensor image = add(content, scale(picture(200, 184, 9), 0.2f));
    const Vgg19& vgg = net(VggPooling::Avg);
    const Step whole = step(vgg, content, styles, o, image, 0);

    // Measure the untiled step's peak, then cap the memory below it.
    GatysObjective objective(vgg, content, styles, o);
    Tensor x = image.clone().set_requires_grad(true);
    cpu_empty_cache();
    const size_t base = cpu_memory_stats().current;
    cpu_reset_peak_memory();
    objective.evaluate_with_gradient(x);
    const size_t untiled_peak = cpu_memory_stats().peak - base;
    x.zero_grad();
    cpu_empty_cache();
    cpu_set_memory_limit(cpu_memory_stats().current + untiled_peak / 2);
    StyleLosses l;
    try {
        l = objective.evaluate_with_gradient(x);
    } catch (...) {
        cpu_set_memory_limit(0);
        throw;
    }
    cpu_set_memory_limit(0);
    INFO("untiled peak " << untiled_peak);
    CHECK(objective.tile() > 0);
    CHECK(objective.tile() < 200);
    CHECK(std::fabs(l.total.item() - whole.losses.total.item()) <= 1e-5 * whole.losses.total.item());
    CHECK(relative_l2(x.grad(), whole.grad) < 1e-5);
}

// Video frames (GatysOptions::temporal_*): the temporal loss, on the whole
// image, adds the same to a tiled step as to an untiled one.
TEST_CASE("gatys tiles: a tiled step with a temporal loss is the untiled one", "[gatys_tiles]") {
    GatysOptions o;
    o.content_layers = {{"relu2_2", 1}};
    o.style_layers = {{"relu1_1", 1}, {"relu2_1", 1}, {"relu3_1", 1}};
    const Tensor content = picture(70, 90, 11);
    std::vector<float> mask(size_t(3) * 70 * 90);
    for (size_t i = 0; i < mask.size(); ++i) mask[i] = float((i / 7) % 3 != 0);
    o.temporal_target = add(content, scale(picture(70, 90, 12), 0.1f));
    o.temporal_mask = Tensor::from_vector(mask, {1, 3, 70, 90});
    o.temporal_weight = 3.f;
    const std::vector<StyleInput> styles{{picture(64, 64, 13), 1.f}};
    const Tensor image = add(content, scale(picture(70, 90, 14), 0.2f));
    const Step whole = step(net(VggPooling::Avg), content, styles, o, image, 0);
    const Step tiled = step(net(VggPooling::Avg), content, styles, o, image, 24);
    REQUIRE(whole.losses.temporal.defined());
    CHECK(whole.losses.temporal.item() > 0);
    CHECK(tiled.losses.temporal.item() == whole.losses.temporal.item());
    CHECK(std::fabs(tiled.losses.total.item() - whole.losses.total.item()) <= 1e-5 * whole.losses.total.item());
    CHECK(relative_l2(tiled.grad, whole.grad) < 1e-5);
    // Without the loss the gradient differs: the term is really there.
    o.temporal_weight = 0;
    CHECK(relative_l2(step(net(VggPooling::Avg), content, styles, o, image, 0).grad, whole.grad) > 1e-3);
}
