// The public API (<nst/nst.hpp>) as an embedding program uses it: only that
// header, 8-bit images, callbacks that cancel, nst::Error for every failure.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nst/nst.hpp>

#include "nets/transform_net.hpp"
#include "temp_dir.hpp"

using Catch::Matchers::Contains;

namespace {

nst::Image gradient_image(int w, int h, int seed) {
    nst::Image image;
    image.width = w, image.height = h;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            image.rgb.push_back(uint8_t((x * 255 / w + seed * 40) % 256));
            image.rgb.push_back(uint8_t(y * 255 / h));
            image.rgb.push_back(uint8_t(((x / 4 + y / 4) % 2) * 200 + seed));
        }
    return image;
}

}  // namespace

TEST_CASE("api: images round-trip through files", "[api]") {
    const nst::Image a = gradient_image(21, 13, 1);
    const std::string path = nst::test::temp_dir() + "/a.png";
    nst::save_image_file(a, path);
    const nst::Image b = nst::load_image_file(path);
    CHECK(b.width == 21);
    CHECK(b.height == 13);
    CHECK(b.rgb == a.rgb);
    nst::Image bad = a;
    bad.rgb.pop_back();
    CHECK_THROWS_AS(nst::save_image_file(bad, path), nst::Error);
    CHECK_THROWS_WITH(nst::load_image_file(path + ".missing"), Contains("a.png.missing"));
}

TEST_CASE("api: train a model, save it, load it, stylize", "[api]") {
    const std::string dir = nst::test::temp_dir() + "/api_photos";
    std::filesystem::create_directories(dir);
    for (int i = 0; i < 3; ++i) nst::save_image_file(gradient_image(40, 30, i), dir + "/p" + std::to_string(i) + ".png");
    std::FILE* broken = std::fopen((dir + "/broken.png").c_str(), "w");  // skipped, and counted
    REQUIRE(broken);
    std::fputs("not a png", broken);
    std::fclose(broken);
    nst::TrainSettings s;
    s.photos = dir;
    s.size = 32, s.batch = 2, s.steps = 3;
    s.device = "cpu";
    std::vector<nst::Progress> seen;
    const nst::StyleModel model = nst::train(gradient_image(32, 32, 7), s, [&](const nst::Progress& p) {
        seen.push_back(p);
        return true;
    });
    REQUIRE(seen.size() == 3);
    CHECK(seen[2].step == 3);
    CHECK(seen[2].steps == 3);
    CHECK(seen[0].total_loss == Approx(seen[0].content_loss + seen[0].style_loss + seen[0].tv_loss));
    CHECK(seen[2].unreadable_photos == 1);  // 6 photos drawn from 4 files: the broken one was met

    const std::string path = nst::test::temp_dir() + "/api_model.safetensors";
    model.save(path);
    const nst::StyleModel loaded = nst::StyleModel::load(path, "cpu");
    const nst::Image photo = gradient_image(27, 19, 2);  // odd sizes come back as they went in
    const nst::Image a = model.stylize(photo), b = loaded.stylize(photo), c = loaded.stylize(photo, {true, 0});
    CHECK(a.width == 27);
    CHECK(a.height == 19);
    CHECK(a.rgb == b.rgb);
    // preserve_color: the photo with its luminance moved to the stylized
    // image's (BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B), each channel
    // photo + Y(stylized) - Y(photo), which keeps the photo's chroma
    // (channel minus luma). Checked from the 8-bit images: where `a` is not
    // clamped its channels are within 0.5 of the unrounded stylized image,
    // so its luma is too (the weights sum to 1), and `c` rounds once more.
    // So a channel of `c` inside 0..255 is within 1 of photo - Y(photo) +
    // Y(a); one clamped to 0 had that value at most 1, one clamped to 255
    // at least 254. (1e-3 more for the float arithmetic.)
    REQUIRE(c.rgb.size() == a.rgb.size());
    const auto luma = [](const nst::Image& im, size_t p) {
        return 0.299 * im.rgb[3 * p] + 0.587 * im.rgb[3 * p + 1] + 0.114 * im.rgb[3 * p + 2];
    };
    const auto clamped = [](const nst::Image& im, size_t p) {
        return std::any_of(&im.rgb[3 * p], &im.rgb[3 * p + 3], [](uint8_t v) { return v == 0 || v == 255; });
    };
    size_t inside = 0, wrong = 0;
    for (size_t p = 0; p < c.rgb.size() / 3; ++p) {
        if (clamped(a, p)) continue;
        for (int k = 0; k < 3; ++k) {
            const double want = photo.rgb[3 * p + k] - luma(photo, p) + luma(a, p);
            const int got = c.rgb[3 * p + k];
            if (got == 0) wrong += want > 1.001;
            else if (got == 255) wrong += want < 253.999;
            else wrong += std::abs(got - want) > 1.001, ++inside;
        }
    }
    CHECK(wrong == 0);
    CHECK(inside >= c.rgb.size() / 4);  // enough channels held to the equality to mean something
    // In 16 bits: the same image within a few 8-bit levels.
    const nst::Image h = nst::StyleModel::load(path, "cpu", "fp16").stylize(photo);
    REQUIRE(h.rgb.size() == a.rgb.size());
    int worst = 0;
    for (size_t i = 0; i < h.rgb.size(); ++i) worst = std::max(worst, std::abs(int(h.rgb[i]) - int(a.rgb[i])));
    CHECK(worst <= 2);

    SECTION("the callback stops training") {
        int calls = 0;
        nst::train(gradient_image(32, 32, 7), s, [&](const nst::Progress&) { return ++calls < 2; });
        CHECK(calls == 2);
    }
    SECTION("failures are nst::Error") {
        CHECK_THROWS_WITH(nst::StyleModel::load(dir + "/p0.png", "cpu"), Contains("p0.png"));
        CHECK_THROWS_WITH(nst::StyleModel::load(path, "cuda:7"), Contains("not available"));
        CHECK_THROWS_WITH(nst::StyleModel::load(path, "cpu", "half"), Contains("unknown precision 'half'"));
        nst::TrainSettings bad = s;
        bad.photos = dir + "/nothing";
        CHECK_THROWS_WITH(nst::train(gradient_image(32, 32, 7), bad), Contains("not a directory"));
    }
}

TEST_CASE("api: optimize with a progress callback that cancels", "[api]") {
    nst::OptimizeSettings s;
    s.size = 32, s.scales = {32}, s.iterations = {10}, s.device = "cpu";
    int calls = 0;
    float first = 0, last = 0;
    const nst::Image out = nst::optimize(gradient_image(48, 36, 0), {gradient_image(30, 30, 3)}, s,
                                         [&](const nst::Progress& p) {
                                             (calls == 0 ? first : last) = p.total_loss;
                                             CHECK(p.steps == 10);
                                             return ++calls < 4;  // stop after the fourth iteration
                                         });
    CHECK(calls == 4);
    CHECK(last < first);
    CHECK(out.width == 32);
    CHECK(out.height == 24);
    CHECK(out.rgb.size() == size_t(32 * 24 * 3));
    CHECK_THROWS_WITH(nst::optimize(gradient_image(48, 36, 0), {}, s), Contains("no style image"));
}

TEST_CASE("api: the CLI's features: stages, blend weights, tiles, batches, plans, threads", "[api]") {
    const std::string dir = nst::test::temp_dir() + "/api_features";
    std::filesystem::create_directories(dir);
    const std::string path = dir + "/net.safetensors";
    nst::TransformNet::create(nst::TransformNetSpec{}, 5, nst::Device::cpu()).save(path);
    const nst::StyleModel model = nst::StyleModel::load(path, "cpu");
    const nst::Image photo = gradient_image(200, 150, 4);

    SECTION("tiles give the untiled image; a batch gives each image's") {
        const nst::Image whole = model.stylize(photo);
        nst::StylizeSettings tiled;
        tiled.tile = 128;
        const nst::Image in_tiles = model.stylize(photo, tiled);
        REQUIRE(in_tiles.rgb.size() == whole.rgb.size());
        int worst = 0;
        for (size_t i = 0; i < whole.rgb.size(); ++i)
            worst = std::max(worst, std::abs(int(whole.rgb[i]) - int(in_tiles.rgb[i])));
        CHECK(worst <= 1);  // float rounding of the gathered statistics, then 8 bits
        const nst::Image other = gradient_image(200, 150, 9);
        const std::vector<nst::Image> both = model.stylize(std::vector<nst::Image>{photo, other});
        REQUIRE(both.size() == 2);
        CHECK(both[0].rgb == whole.rgb);
        CHECK(both[1].rgb == model.stylize(other).rgb);
        nst::StylizeSettings tiny;
        tiny.tile = 16;
        CHECK_THROWS_WITH(model.stylize(photo, tiny), Contains("smaller than the"));
    }
    SECTION("the plan says what nst-run --plan says") {
        const nst::MemoryPlan plan = model.plan(1920, 1080, 4);
        CHECK(plan.fits);
        CHECK(plan.peak > 0);
        CHECK(plan.capacity > plan.peak);
        CHECK_THAT(plan.text, Contains("1920x1080, batch 4"));
        nst::StylizeSettings tiled;
        tiled.tile = 512;
        CHECK_THAT(model.plan(1920, 1080, 1, tiled).text, Contains("in tiles of 512"));
    }
    SECTION("the same bits at any CPU thread count") {
        const int before = nst::cpu_thread_count();
        nst::set_cpu_thread_count(1);
        CHECK(nst::cpu_thread_count() == 1);
        const nst::Image one = model.stylize(photo);
        nst::set_cpu_thread_count(2);
        const nst::Image two = model.stylize(photo);
        nst::set_cpu_thread_count(before);
        CHECK(one.rgb == two.rgb);
        CHECK_THROWS_WITH(nst::set_cpu_thread_count(-1), Contains("threads"));
    }
    SECTION("optimize: nst-run's stages by default, blend weights, the plan") {
        nst::OptimizeSettings s;
        s.size = 256, s.iterations = {2, 1}, s.device = "cpu";
        std::vector<int64_t> steps;
        nst::optimize(gradient_image(64, 48, 0), {gradient_image(30, 30, 3), gradient_image(40, 30, 5)}, s,
                      [&](const nst::Progress& p) {
                          steps.push_back(p.steps);
                          return true;
                      });
        CHECK(steps == std::vector<int64_t>{3, 3, 3});  // 128 then 256 pixels, as nst-run's default
        s.style_blend = {1.f};
        CHECK_THROWS_WITH(nst::optimize(gradient_image(64, 48, 0), {gradient_image(30, 30, 3), gradient_image(40, 30, 5)}, s),
                          Contains("1 blend weights for 2 style image(s)"));
        s.style_blend.clear();
        s.scales = {64, 128};
        CHECK_THROWS_WITH(nst::optimize(gradient_image(64, 48, 0), {gradient_image(30, 30, 3)}, s), Contains("disagree"));
        s.size = 128;
        const nst::MemoryPlan plan = nst::plan_optimize(gradient_image(64, 48, 0), {gradient_image(30, 30, 3)}, s);
        CHECK(plan.fits);
        CHECK_THAT(plan.text, Contains("stage 2/2: 128x96"));
    }
}
