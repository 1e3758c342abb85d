// The video library's optical flow and stabilizer (video/flow.hpp) on clips
// made in memory (tests/video_clips.hpp): warp and the forward-backward
// check against flows written by hand; OpenCV's flow on a pan; the
// stabilizer moving the previous output along the motion, holding it on a
// still scene, and falling back to the fresh stylization where the scene
// changed or cut. No ffmpeg needed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.hpp"
#include "video/flow.hpp"
#include "video_clips.hpp"

using namespace nst;
using nst::test::pan;
using nst::test::textured_picture;
using nst::test::view;

namespace {

constexpr int kW = 128, kH = 96;

Flow constant_flow(int width, int height, float dx, float dy) {
    Flow f{width, height, std::vector<float>(size_t(width) * height * 2)};
    for (size_t i = 0; i < f.xy.size(); i += 2) f.xy[i] = dx, f.xy[i + 1] = dy;
    return f;
}

Frame uniform_frame(int width, int height, uint8_t value) {
    return {width, height, std::vector<uint8_t>(size_t(width) * height * 3, value)};
}

uint8_t at(const Frame& f, int x, int y, int c) { return f.rgb[(size_t(y) * f.width + x) * 3 + c]; }

// The share of the pixels with x in [x0, x1) and y in [y0, y1) where `keep` holds.
template <class Keep>
double share(int x0, int x1, int y0, int y1, Keep keep) {
    int n = 0, kept = 0;
    for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x) ++n, kept += keep(x, y);
    return double(kept) / n;
}

// Mean |a - b| over the pixels `mask` keeps, away from the left and right
// edges by `margin`; in 0..255 units.
double masked_difference(const std::vector<float>& a, const std::vector<float>& b, const std::vector<uint8_t>& mask,
                         int margin) {
    double sum = 0;
    int n = 0;
    for (int y = 0; y < kH; ++y)
        for (int x = margin; x < kW - margin; ++x) {
            const size_t i = size_t(y) * kW + x;
            if (!mask[i]) continue;
            for (int c = 0; c < 3; ++c) sum += std::fabs(a[i * 3 + c] - b[i * 3 + c]);
            n += 3;
        }
    REQUIRE(n > 0);
    return sum / n;
}

std::vector<float> as_floats(const Frame& f) { return std::vector<float>(f.rgb.begin(), f.rgb.end()); }

}  // namespace

TEST_CASE("warp moves a frame by the flow, bilinear, borders clamped") {
    const Frame frame = pan(1, 0, 20, 10, 7)[0];
    const std::vector<float> moved = warp(frame, constant_flow(20, 10, 2, 1));
    for (int y = 0; y < 10; ++y)
        for (int x = 0; x < 20; ++x)
            for (int c = 0; c < 3; ++c) {
                const int sx = std::min(x + 2, 19), sy = std::min(y + 1, 9);
                REQUIRE(moved[(size_t(y) * 20 + x) * 3 + c] == Approx(at(frame, sx, sy, c) / 255.f).margin(1e-6));
            }
    const std::vector<float> half = warp(frame, constant_flow(20, 10, 0.5f, 0));
    CHECK(half[(size_t(4) * 20 + 6) * 3 + 1] == Approx((at(frame, 6, 4, 1) + at(frame, 7, 4, 1)) / 510.f).margin(1e-6));
    CHECK_THROWS_AS(warp(frame, constant_flow(21, 10, 0, 0)), Error);
}

TEST_CASE("the forward-backward check keeps pixels whose flows agree and drops those from outside") {
    const Flow backward = constant_flow(kW, kH, 3, 0);
    const std::vector<uint8_t> agree = consistent_pixels(backward, constant_flow(kW, kH, -3, 0));
    for (int y = 0; y < kH; ++y)
        for (int x = 0; x < kW; ++x) REQUIRE(agree[size_t(y) * kW + x] == (x + 3 <= kW - 1 ? 1 : 0));
    // A forward flow that sees no motion contradicts the backward one.
    const std::vector<uint8_t> disagree = consistent_pixels(backward, constant_flow(kW, kH, 0, 0));
    CHECK(std::count(disagree.begin(), disagree.end(), 1) == 0);
}

TEST_CASE("optical flow follows a pan, and its motion marks what came into view") {
    const std::vector<Frame> clip = pan(2, 3, kW, kH, 1);
    // Frame 1's content is 3 pixels further right in frame 0.
    const Motion m = motion(clip[0], clip[1]);
    const double close = share(8, kW - 8, 8, kH - 8, [&](int x, int y) {
        const size_t i = size_t(y) * kW + x;
        return std::fabs(m.backward.xy[2 * i] - 3.f) < 0.5f && std::fabs(m.backward.xy[2 * i + 1]) < 0.5f;
    });
    CHECK(close > 0.95);
    CHECK(share(8, kW - 8, 0, kH, [&](int x, int y) { return m.mask[size_t(y) * kW + x] == 1; }) > 0.95);
    // The last 3 columns were outside frame 0.
    CHECK(share(kW - 3, kW, 0, kH, [&](int x, int y) { return m.mask[size_t(y) * kW + x] == 0; }) > 0.9);
    // A still scene has no motion.
    const Flow still = optical_flow(clip[0], clip[0]);
    CHECK(share(0, kW, 0, kH, [&](int x, int y) {
              const size_t i = size_t(y) * kW + x;
              return std::fabs(still.xy[2 * i]) < 0.1f && std::fabs(still.xy[2 * i + 1]) < 0.1f;
          }) > 0.99);
    CHECK_THROWS_AS(optical_flow(clip[0], pan(1, 0, kW, kH - 1, 1)[0]), Error);
}

TEST_CASE("the warping error is small where the output moves with the input, and NaN with nothing to compare") {
    const std::vector<Frame> clip = pan(2, 3, kW, kH, 1), painted = pan(2, 3, kW, kH, 2);
    const Motion m = motion(clip[0], clip[1]);
    const double following = warping_error(m, painted[0], painted[1]);
    const double standing = warping_error(m, painted[0], painted[0]);
    CHECK(following < standing / 10);
    Motion nothing = m;
    std::fill(nothing.mask.begin(), nothing.mask.end(), 0);
    CHECK(std::isnan(warping_error(nothing, painted[0], painted[1])));
}

TEST_CASE("the stabilizer starts with the fresh stylization") {
    const Frame input = pan(1, 0, kW, kH, 1)[0];
    const Guide guide = stabilizer_guide(nullptr, input);
    CHECK(guide.fresh);
    Stabilizer stabilizer(0.7f);
    Frame stylized = pan(1, 0, kW, kH, 2)[0];
    const Frame fresh = stylized;
    stabilizer.next(guide, stylized);
    CHECK(stylized.rgb == fresh.rgb);
}

TEST_CASE("on a still scene the stabilizer holds the previous output: 0.7 of it, 0.3 of the new") {
    const Frame input = pan(1, 0, kW, kH, 1)[0];
    Stabilizer stabilizer(0.7f);
    Frame first = uniform_frame(kW, kH, 100);
    stabilizer.next(stabilizer_guide(nullptr, input), first);
    const Guide guide = stabilizer_guide(&input, input);
    REQUIRE_FALSE(guide.fresh);
    CHECK(std::count(guide.mask.begin(), guide.mask.end(), 1) > 0.99 * kW * kH);
    Frame second = uniform_frame(kW, kH, 200);
    stabilizer.next(guide, second);
    for (size_t i = 0; i < guide.mask.size(); ++i)
        for (int c = 0; c < 3; ++c) REQUIRE(int(second.rgb[i * 3 + c]) == (guide.mask[i] ? 130 : 200));
}

TEST_CASE("on a pan the stabilizer moves the previous output along with the scene") {
    // The previous output is a painting fixed to the scene: stabilized, the
    // next frame holds it where the scene went, not where it was.
    const int picture_width = kW + 3;
    const std::vector<Frame> clip = pan(2, 3, kW, kH, 1);
    const std::vector<uint8_t> painting = textured_picture(picture_width, kH, 2);
    Stabilizer stabilizer(0.7f);
    Frame previous = view(painting, picture_width, 0, kW, kH);
    stabilizer.next(stabilizer_guide(nullptr, clip[0]), previous);
    const Guide guide = stabilizer_guide(&clip[0], clip[1]);
    REQUIRE_FALSE(guide.fresh);
    Frame out = uniform_frame(kW, kH, 128);
    stabilizer.next(guide, out);

    auto blend = [&](const Frame& held) {
        std::vector<float> b(held.rgb.size());
        for (size_t i = 0; i < b.size(); ++i) b[i] = 0.7f * held.rgb[i] + 0.3f * 128.f;
        return b;
    };
    const double moved = masked_difference(as_floats(out), blend(view(painting, picture_width, 3, kW, kH)), guide.mask, 8);
    const double unmoved = masked_difference(as_floats(out), blend(previous), guide.mask, 8);
    CHECK(moved < 2.0);
    CHECK(moved < unmoved / 4);
}

TEST_CASE("where the scene changed, or cut, the stabilizer gives the fresh stylization") {
    const Frame before = pan(1, 0, kW, kH, 1)[0];
    Frame after = before;  // a black square appears at (40..71, 30..61)
    for (int y = 30; y < 62; ++y)
        for (int x = 40; x < 72; ++x)
            for (int c = 0; c < 3; ++c) after.rgb[(size_t(y) * kW + x) * 3 + c] = 0;
    const Frame previous_output = uniform_frame(kW, kH, 100);
    const Frame stylized = pan(1, 0, kW, kH, 3)[0];

    Stabilizer stabilizer(0.7f);
    Frame first = previous_output;
    stabilizer.next(stabilizer_guide(nullptr, before), first);
    const Guide guide = stabilizer_guide(&before, after);
    REQUIRE_FALSE(guide.fresh);
    Frame out = stylized;
    stabilizer.next(guide, out);
    CHECK(share(40, 72, 30, 62, [&](int x, int y) { return guide.mask[size_t(y) * kW + x] == 0; }) == 1.0);
    for (int y = 30; y < 62; ++y)
        for (int x = 40; x < 72; ++x)
            for (int c = 0; c < 3; ++c) REQUIRE(at(out, x, y, c) == at(stylized, x, y, c));
    // Away from the square the scene stood still: the output was held.
    CHECK(share(0, kW, 0, 20, [&](int x, int y) { return at(out, x, y, 0) != at(stylized, x, y, 0); }) > 0.9);

    // Another scene altogether: a cut, where the stabilizer starts afresh.
    const Guide cut = stabilizer_guide(&before, pan(1, 0, kW, kH, 4)[0]);
    CHECK(cut.fresh);
    Frame after_cut = stylized;
    stabilizer.next(cut, after_cut);
    CHECK(after_cut.rgb == stylized.rgb);
}
