// Video frames made in memory for the video library's tests: a picture
// with structure at several scales, which optical flow can follow, and
// views of it that pan across it as a camera would.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "video/flow.hpp"

namespace nst::test {

// width x height RGB: soft blobs at seeded places and sizes on a slow
// gradient, each channel its own; no two seeds alike.
inline std::vector<uint8_t> textured_picture(int width, int height, uint32_t seed) {
    uint32_t state = seed * 2654435761u + 1;
    auto uniform = [&] {  // 0..1
        state = state * 1664525u + 1013904223u;
        return float(state >> 8) / float(1u << 24);
    };
    struct Blob {
        float x, y, radius, weight[3];
    };
    std::vector<Blob> blobs(size_t(width) * height / 60);
    for (Blob& b : blobs) {
        b.x = uniform() * float(width), b.y = uniform() * float(height), b.radius = 2.f + 6.f * uniform();
        for (float& w : b.weight) w = 160.f * (uniform() - 0.5f);
    }
    std::vector<float> sum(size_t(width) * height * 3);
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x)
            for (int c = 0; c < 3; ++c)
                sum[(size_t(y) * width + x) * 3 + c] = 60.f + 120.f * float(x + c * y) / float(width + 2 * height);
    for (const Blob& b : blobs) {
        const int r = int(3 * b.radius);
        for (int y = std::max(0, int(b.y) - r); y < std::min(height, int(b.y) + r + 1); ++y)
            for (int x = std::max(0, int(b.x) - r); x < std::min(width, int(b.x) + r + 1); ++x) {
                const float dx = float(x) - b.x, dy = float(y) - b.y;
                const float g = std::exp(-(dx * dx + dy * dy) / (2 * b.radius * b.radius));
                for (int c = 0; c < 3; ++c) sum[(size_t(y) * width + x) * 3 + c] += b.weight[c] * g;
            }
    }
    std::vector<uint8_t> rgb(sum.size());
    for (size_t i = 0; i < sum.size(); ++i) rgb[i] = uint8_t(std::lround(std::clamp(sum[i], 0.f, 255.f)));
    return rgb;
}

// The width x height part of `picture` (picture_width wide) whose left edge
// is at column x0.
inline Frame view(const std::vector<uint8_t>& picture, int picture_width, int x0, int width, int height) {
    Frame f{width, height, std::vector<uint8_t>(size_t(width) * height * 3)};
    for (int y = 0; y < height; ++y)
        std::memcpy(&f.rgb[size_t(y) * width * 3], &picture[(size_t(y) * picture_width + x0) * 3], size_t(width) * 3);
    return f;
}

// A camera panning right over a textured picture, `step` pixels a frame:
// frame t shows columns step * t onwards, so its content moves left.
inline std::vector<Frame> pan(int frames, int step, int width, int height, uint32_t seed) {
    const int picture_width = width + step * frames;
    const std::vector<uint8_t> picture = textured_picture(picture_width, height, seed);
    std::vector<Frame> clip;
    for (int t = 0; t < frames; ++t) clip.push_back(view(picture, picture_width, step * t, width, height));
    return clip;
}

}  // namespace nst::test
