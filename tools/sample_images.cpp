// Writes the quick start's two sample images, drawn here so that nothing
// has to be downloaded or shipped: DIR/content.png, a landscape "photo"
// (sky, sun, hills, a lake, a house: smooth areas and edges at several
// scales), and DIR/style.png, a "painting" of swirling strokes in a
// night-sky palette (texture and colour for the style to carry).
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "core/image.hpp"

namespace {

float smooth(float edge0, float edge1, float x) {
    const float t = std::fmin(std::fmax((x - edge0) / (edge1 - edge0), 0.f), 1.f);
    return t * t * (3 - 2 * t);
}

// A cheap smooth value noise (sum of sines), deterministic.
float wave_noise(float x, float y) {
    return 0.5f * std::sin(1.7f * x + 0.3f * std::sin(2.3f * y)) + 0.3f * std::sin(3.1f * y - 1.3f * x) +
           0.2f * std::sin(5.3f * x + 4.7f * y);
}

nst::Tensor draw(int w, int h, void (*pixel)(float u, float v, float rgb[3])) {
    std::vector<float> data(size_t(3) * w * h);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            float rgb[3];
            pixel((x + 0.5f) / float(w), (y + 0.5f) / float(h), rgb);
            for (int c = 0; c < 3; ++c)
                data[(size_t(c) * h + y) * w + x] = 255.f * std::fmin(std::fmax(rgb[c], 0.f), 1.f);
        }
    return nst::Tensor::from_vector(data, {1, 3, h, w});
}

void landscape(float u, float v, float* p) {
    // sky: blue to warm near the horizon, with a sun
    const float horizon = 0.55f;
    for (int c = 0; c < 3; ++c) p[c] = (float[]){0.35f, 0.55f, 0.85f}[c] * (1 - v) + (float[]){0.95f, 0.8f, 0.6f}[c] * v;
    const float sun = std::hypot(u - 0.72f, (v - 0.25f) * 0.75f);
    const float glow = std::exp(-sun * 9.f);
    p[0] += 0.5f * glow, p[1] += 0.4f * glow, p[2] += 0.1f * glow;
    if (sun < 0.06f) p[0] = 1.f, p[1] = 0.93f, p[2] = 0.7f;
    // hills: two layers
    const float far = horizon - 0.08f - 0.05f * std::sin(u * 7.f) - 0.03f * std::sin(u * 17.f + 1.f);
    if (v > far) p[0] = 0.35f, p[1] = 0.45f, p[2] = 0.55f - 0.1f * (v - far);
    const float near = horizon + 0.02f - 0.08f * std::exp(-40.f * (u - 0.25f) * (u - 0.25f));
    if (v > near) {
        const float grass = 0.5f + 0.5f * wave_noise(u * 40.f, v * 40.f);
        p[0] = 0.2f + 0.1f * grass, p[1] = 0.45f + 0.15f * grass, p[2] = 0.15f;
    }
    // a lake with the sky's reflection, rippled
    if (v > 0.72f && std::fabs(u - 0.65f) < 0.3f - 0.4f * (v - 0.72f)) {
        const float ripple = 0.05f * std::sin(v * 300.f + 3.f * std::sin(u * 30.f));
        p[0] = 0.4f + ripple, p[1] = 0.6f + ripple, p[2] = 0.85f + ripple;
    }
    // a house: walls, roof, door and window
    if (u > 0.18f && u < 0.34f && v > 0.5f && v < 0.66f) p[0] = 0.9f, p[1] = 0.85f, p[2] = 0.75f;
    if (v > 0.4f && v <= 0.5f && std::fabs(u - 0.26f) < (v - 0.4f) * 0.9f) p[0] = 0.65f, p[1] = 0.2f, p[2] = 0.15f;
    if (u > 0.24f && u < 0.28f && v > 0.58f && v < 0.66f) p[0] = 0.35f, p[1] = 0.2f, p[2] = 0.1f;
    if (u > 0.3f && u < 0.33f && v > 0.53f && v < 0.57f) p[0] = 0.3f, p[1] = 0.5f, p[2] = 0.8f;
}

void swirls(float u, float v, float* p) {
    // Strokes are stripes of a plane twirled around a few centres (each point
    // rotated about a centre by an angle that fades with the distance), so
    // they swirl without any seam.
    const float centres[3][3] = {{0.3f, 0.3f, 5.f}, {0.72f, 0.45f, -4.f}, {0.45f, 0.78f, 4.5f}};
    float x = u, y = v;
    for (const auto& c : centres) {
        const float dx = x - c[0], dy = y - c[1], angle = c[2] * std::exp(-std::hypot(dx, dy) * 7.f);
        x = c[0] + dx * std::cos(angle) - dy * std::sin(angle);
        y = c[1] + dx * std::sin(angle) + dy * std::cos(angle);
    }
    const float phase = 40.f * (x + 0.3f * y) + 1.5f * wave_noise(u * 8.f, v * 8.f);
    const float stroke = 0.5f + 0.5f * std::sin(phase + 2.f * wave_noise(u * 40.f, v * 40.f));
    const float band = smooth(0.2f, 0.8f, 0.5f + 0.5f * std::sin(6.f * y + 2.f * std::sin(5.f * x)));
    // night-sky palette: deep blue, cobalt, pale yellow highlights
    const float dark[3] = {0.05f, 0.1f, 0.3f}, mid[3] = {0.15f, 0.35f, 0.7f}, light[3] = {0.95f, 0.85f, 0.35f};
    const float highlight = 0.7f * stroke * stroke * stroke * (0.3f + 0.7f * band);
    for (int c = 0; c < 3; ++c) p[c] = (dark[c] * (1 - band) + mid[c] * band) * (1 - highlight) + light[c] * highlight;
    const float star = std::fmax(0.f, 1.f - std::hypot(u - 0.82f, v - 0.18f) * 10.f);
    for (int c = 0; c < 3; ++c) p[c] += star * (light[c] - p[c]);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: nst_sample_images DIR\n");
        return 2;
    }
    try {
        const std::string dir = argv[1];
        ::mkdir(dir.c_str(), 0777);
        nst::save_image(draw(640, 480, landscape), dir + "/content.png");
        nst::save_image(draw(512, 512, swirls), dir + "/style.png");
        std::printf("%s/content.png and %s/style.png written\n", dir.c_str(), dir.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nst_sample_images: %s\n", e.what());
        return 1;
    }
    return 0;
}
