// The video API (<nst/video.hpp>) on small clips made with ffmpeg's test
// source: the frames written and their size, the settings honoured, the
// callback's progress and its stop, failures as nst::Error. Skipped (with a
// warning) where ffmpeg is not installed, as the CLI scripts skip videos.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nst/video.hpp>
#include <string>
#include <vector>

#include "nets/transform_net.hpp"
#include "temp_dir.hpp"
#include "video/ffmpeg.hpp"

using Catch::Matchers::Contains;

namespace {

// false, with a warning, where ffmpeg is missing: the test is then skipped.
bool have_ffmpeg() {
    if (std::system("command -v ffmpeg > /dev/null && command -v ffprobe > /dev/null") == 0) return true;
    WARN("ffmpeg or ffprobe not on PATH: the video API is not checked");
    return false;
}

// `frames` frames of ffmpeg's test pattern, width x height at 12 frames/s (x264).
std::string make_clip(const std::string& name, int width, int height, int frames) {
    const std::string path = nst::test::temp_dir() + "/" + name;
    const std::string command = "ffmpeg -v error -y -f lavfi -i testsrc=size=" + std::to_string(width) + "x" +
                                std::to_string(height) + ":rate=12 -frames:v " + std::to_string(frames) +
                                " -pix_fmt yuv420p " + path;
    REQUIRE(std::system(command.c_str()) == 0);
    return path;
}

// Every frame of a clip, decoded at its own size.
std::vector<std::vector<uint8_t>> decode(const std::string& path, int& width, int& height) {
    const nst::VideoInfo info = nst::probe_video(path);
    width = info.width, height = info.height;
    nst::VideoReader reader(path, info, width, height);
    std::vector<std::vector<uint8_t>> frames;
    std::vector<uint8_t> rgb;
    while (reader.read(rgb)) frames.push_back(rgb);
    return frames;
}

double mean_abs_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    REQUIRE(a.size() == b.size());
    double sum = 0;
    for (size_t i = 0; i < a.size(); ++i) sum += std::abs(int(a[i]) - int(b[i]));
    return sum / double(a.size());
}

// The mean of every 4x4 block and channel of a width x height frame.
std::vector<double> block_means(const std::vector<uint8_t>& rgb, int width, int height) {
    std::vector<double> means(size_t(width / 4) * (height / 4) * 3);
    for (int y = 0; y < height / 4 * 4; ++y)
        for (int x = 0; x < width / 4 * 4; ++x)
            for (int c = 0; c < 3; ++c)
                means[(size_t(y / 4) * (width / 4) + x / 4) * 3 + c] += rgb[(size_t(y) * width + x) * 3 + c] / 16.;
    return means;
}

double mean_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
    double sum = 0;
    for (size_t i = 0; i < a.size(); ++i) sum += std::abs(a[i] - b[i]);
    return sum / double(a.size());
}

std::string contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

nst::Image gradient_image(int w, int h) {
    nst::Image image;
    image.width = w, image.height = h;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int c = 0; c < 3; ++c) image.rgb.push_back(uint8_t((x * 255 / w + c * y * 80 / h) % 256));
    return image;
}

}  // namespace

TEST_CASE("api video: stylize a clip with a StyleModel", "[api][video]") {
    if (!have_ffmpeg()) return;
    const std::string dir = nst::test::temp_dir();
    const std::string clip = make_clip("clip.mp4", 48, 36, 6);
    nst::TransformNetSpec spec;  // tanh output: images around mid-grey, not black
    spec.variant = nst::TransformNetVariant::TensorFlow;
    nst::TransformNet::create(spec, 3, nst::Device::cpu()).save(dir + "/net.safetensors");
    const nst::StyleModel model = nst::StyleModel::load(dir + "/net.safetensors", "cpu");

    SECTION("every frame, at the input's size, each its own stylization; progress per frame") {
        nst::VideoSettings v;
        v.stabilize = false, v.batch = 4;  // two passes, the second short
        std::vector<nst::Progress> seen;  // the callback runs on another thread: checked here
        const auto record = [&](const nst::Progress& p) {
            seen.push_back(p);
            return true;
        };
        const nst::VideoResult r = nst::stylize_video(model, clip, dir + "/out.mp4", {}, v, record);
        CHECK(r.frames == 6);
        CHECK_FALSE(r.stopped);
        CHECK(r.warning.empty());
        REQUIRE(seen.size() == 6);
        for (size_t i = 0; i < seen.size(); ++i) {
            CHECK(seen[i].frame == int64_t(i + 1));
            CHECK(seen[i].step == seen[i].frame);
            CHECK(seen[i].frames == 6);
            CHECK(seen[i].steps == 6);
        }
        int w = 0, h = 0, in_w = 0, in_h = 0;
        const auto out = decode(dir + "/out.mp4", w, h);
        const auto in = decode(clip, in_w, in_h);
        REQUIRE(out.size() == 6);
        REQUIRE(w == 48);
        REQUIRE(h == 36);
        REQUIRE(in.size() == 6);
        // The output holds the network's image of each frame, up to the
        // encoder's loss (which blurs a random network's noise, so compared in
        // 4x4 blocks), and not the input (measured: 3.4 to 4.1 against 98).
        for (size_t t = 0; t < out.size(); ++t) {
            const std::vector<double> blocks = block_means(out[t], w, h);
            const double to_own = mean_abs_difference(blocks, block_means(model.stylize({w, h, in[t]}).rgb, w, h));
            const double to_input = mean_abs_difference(blocks, block_means(in[t], w, h));
            CHECK(to_own < 8);
            CHECK(to_own * 5 < to_input);
        }
    }
    SECTION("max_size shrinks the frames; the stabilizer changes them") {
        nst::VideoSettings v;
        v.max_size = 32;
        REQUIRE(nst::stylize_video(model, clip, dir + "/small.mp4", {}, v).frames == 6);
        v.stabilize = false;
        REQUIRE(nst::stylize_video(model, clip, dir + "/small_raw.mp4", {}, v).frames == 6);
        int w = 0, h = 0;
        const auto stabilized = decode(dir + "/small.mp4", w, h);
        CHECK(w == 32);
        CHECK(h == 24);
        const auto raw = decode(dir + "/small_raw.mp4", w, h);
        REQUIRE(raw.size() == 6);
        REQUIRE(stabilized.size() == 6);
        // The first frame is the fresh stylization (the two encodings differ
        // by the encoder's loss, 3.8 measured); later ones follow the motion
        // further from it (11.6 at the last).
        CHECK(mean_abs_difference(stabilized.back(), raw.back()) > 2 * mean_abs_difference(stabilized[0], raw[0]));
    }
    SECTION("the callback's false stops the run: the output stays as it was") {
        write_file(dir + "/kept.mp4", "old");
        int calls = 0;
        const nst::VideoResult r = nst::stylize_video(model, clip, dir + "/kept.mp4", {}, {},
                                                      [&](const nst::Progress&) { return ++calls < 2; });
        CHECK(calls == 2);
        CHECK(r.stopped);
        CHECK(r.frames == 0);
        CHECK(contents(dir + "/kept.mp4") == "old");
    }
    SECTION("failures are nst::Error, before any output") {
        CHECK_THROWS_WITH(nst::stylize_video(model, dir + "/missing.mp4", dir + "/o.mp4"), Contains("missing.mp4"));
        CHECK_THROWS_WITH(nst::stylize_video(model, clip, dir + "/o.png"), Contains("not a video file name"));
        CHECK_THROWS_WITH(nst::stylize_video(model, clip, dir + "/nowhere/o.mp4"), Contains("nowhere"));
        nst::VideoSettings v;
        v.batch = 0;
        CHECK_THROWS_AS(nst::stylize_video(model, clip, dir + "/o.mp4", {}, v), nst::Error);
        CHECK_FALSE(std::filesystem::exists(dir + "/o.mp4"));
    }
}

TEST_CASE("api video: optimize a clip", "[api][video]") {
    if (!have_ffmpeg()) return;
    const std::string dir = nst::test::temp_dir();
    const std::string clip = make_clip("opt.mp4", 48, 36, 3);
    nst::OptimizeSettings s;
    s.size = 32, s.scales = {24, 32}, s.iterations = {2, 3}, s.device = "cpu";
    const std::vector<nst::Image> styles{gradient_image(30, 30)};

    SECTION("the first frame in the stages, the later ones in one; progress per iteration") {
        std::vector<std::pair<int64_t, int64_t>> seen;  // (frame, steps)
        const auto record = [&](const nst::Progress& p) {
            CHECK(p.frames == 3);
            CHECK(p.total_loss > 0);
            seen.emplace_back(p.frame, p.steps);
            return true;
        };
        const nst::VideoResult r = nst::optimize_video(clip, dir + "/opt_out.mp4", styles, s, {}, record);
        CHECK(r.frames == 3);
        CHECK_FALSE(r.stopped);
        // 2 + 3 iterations for the first frame, 3 (the last stage's) for each later one
        std::vector<std::pair<int64_t, int64_t>> expected(5, {1, 5});
        for (int frame = 2; frame <= 3; ++frame) expected.insert(expected.end(), 3, {frame, 3});
        CHECK(seen == expected);
        int w = 0, h = 0;
        const auto held = decode(dir + "/opt_out.mp4", w, h);
        REQUIRE(held.size() == 3);
        CHECK(w == 32);
        CHECK(h == 24);
        // Without the temporal loss (the default holds later frames to the moved previous result).
        nst::VideoSettings v;
        v.temporal_weight = 0;
        REQUIRE(nst::optimize_video(clip, dir + "/opt_free.mp4", styles, s, v).frames == 3);
        CHECK(decode(dir + "/opt_free.mp4", w, h).back() != held.back());
    }
    SECTION("the callback's false stops the run: nothing is written") {
        int calls = 0;
        const nst::VideoResult r = nst::optimize_video(clip, dir + "/opt_stopped.mp4", styles, s, {},
                                                       [&](const nst::Progress& p) { return ++calls, p.frame < 2; });
        CHECK(r.stopped);
        CHECK(calls == 6);  // the first frame's 5 iterations, and the second frame's first
        CHECK_FALSE(std::filesystem::exists(dir + "/opt_stopped.mp4"));
    }
    SECTION("failures are nst::Error") {
        nst::VideoSettings v;
        v.temporal_weight = -1;
        CHECK_THROWS_WITH(nst::optimize_video(clip, dir + "/o.mp4", styles, s, v), Contains("temporal_weight"));
        CHECK_THROWS_WITH(nst::optimize_video(clip, dir + "/o.mp4", {}, s), Contains("no style image"));
        CHECK_THROWS_WITH(nst::optimize_video(dir + "/missing.mp4", dir + "/o.mp4", styles, s),
                          Contains("missing.mp4"));
        CHECK_FALSE(std::filesystem::exists(dir + "/o.mp4"));
    }
}
