// The video pipeline's throughput (video/pipeline.hpp), codecs aside:
// a clip made in memory (a pan of 3 pixels a frame over a textured picture
// or over --image) goes through run_video_pipeline with memory in place of
// the ffmpeg pipes, so what is timed is what nst-run adds to decoding and
// encoding. Rows, in frames per second:
//
//   stylize             the device stage alone: 8-bit frames to the device,
//                       the network, 8-bit frames back, one batch after another
//   host, stabilized    the pipeline with the network replaced by a copy: the
//                       stabilizer's guides (optical flow) and blend, the
//                       frames' hand-offs; what the host can feed a device
//   pipeline            the whole pipeline, frame by frame (--no-stabilize)
//   pipeline, stabilized  and stabilized (nst-run's default)
//
// Before timing, it checks that the pipeline's frames equal the sequential
// stabilizer's byte for byte (guides computed in order, one frame at a time)
// and that the stylized frames are the network's own output.
//
// usage: video_bench [--device D] [--width W] [--height H] [--frames N] [--batch N]
//                    [--precision fp32|fp16|bf16] [--model net.safetensors] [--image photo.jpg]
//                    [--host-only]   (the host side alone: for CPUs, where the network is slow)
// Output: one JSON object. Weights are seeded random unless --model is given
// (the speed does not depend on their values).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/device.hpp"
#include "core/error.hpp"
#include "core/image.hpp"
#include "nets/transform_net.hpp"
#include "video/flow.hpp"
#include "video/pipeline.hpp"

using namespace nst;

namespace {

struct Args {
    std::string device, precision = "fp32", model, image;
    int width = 1920, height = 1080, frames = 60, batch = 1;
    bool host_only = false;
};

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        auto value = [&]() -> std::string {
            NST_CHECK(i + 1 < argc, flag, " needs a value");
            return argv[++i];
        };
        auto number = [&] {
            const std::string v = value();
            char* end = nullptr;
            const long n = std::strtol(v.c_str(), &end, 10);
            NST_CHECK(!v.empty() && *end == '\0' && n >= 1 && n <= 65535, flag, ": '", v, "' is not a size");
            return int(n);
        };
        if (flag == "--device") a.device = value();
        else if (flag == "--width") a.width = number();
        else if (flag == "--height") a.height = number();
        else if (flag == "--frames") a.frames = number();
        else if (flag == "--batch") a.batch = number();
        else if (flag == "--precision") a.precision = value();
        else if (flag == "--model") a.model = value();
        else if (flag == "--image") a.image = value();
        else if (flag == "--host-only") a.host_only = true;
        else fail("unknown option " + flag + " (see bench/video_bench.cpp)");
    }
    NST_CHECK(a.frames >= 2, "--frames: at least 2");
    return a;
}

// The clip's frames, 8-bit RGB: crops of a picture (height x width + 3 per
// frame) moving 3 pixels a frame.
std::vector<std::vector<uint8_t>> make_clip(const Args& a) {
    const int W = a.width + 3 * a.frames, H = a.height;
    std::vector<uint8_t> picture;
    if (!a.image.empty()) {
        images_to_rgb8(resize_image(load_image(a.image), H, W), picture);
    } else {
        // Structure at several scales and some noise: the flow has texture to follow.
        picture.resize(size_t(W) * H * 3);
        uint32_t noise = 12345;
        for (int y = 0; y < H; ++y)
            for (int x = 0; x < W; ++x)
                for (int c = 0; c < 3; ++c) {
                    noise = noise * 1664525u + 1013904223u;
                    const float v = 128.f + 50.f * std::sin(0.045f * x + 0.7f * c) * std::cos(0.031f * y) +
                                    35.f * std::sin(0.0013f * float(x) * float(y % 97 + 11) / 10.f + c) +
                                    float(noise >> 28);
                    picture[(size_t(y) * W + x) * 3 + c] = uint8_t(std::fmin(255.f, std::fmax(0.f, v)));
                }
    }
    std::vector<std::vector<uint8_t>> clip(size_t(a.frames));
    for (int t = 0; t < a.frames; ++t) {
        clip[size_t(t)].resize(size_t(a.width) * a.height * 3);
        for (int y = 0; y < a.height; ++y)
            std::memcpy(clip[size_t(t)].data() + size_t(y) * a.width * 3,
                        picture.data() + (size_t(y) * W + size_t(3 * t)) * 3, size_t(a.width) * 3);
    }
    return clip;
}

std::string fixed2(double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%.2f", v);
    return text;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Args a = parse(argc, argv);
        const Device device = usable_device(a.device);
        set_allow_tf32(true);  // as nst-run stylize
        keep_freed_frame_memory();  // as nst-run stylize: timed as it runs there
        const TransformNet net = (a.model.empty() ? TransformNet::create(TransformNetSpec{}, 1, device)
                                                  : TransformNet::load(a.model, device))
                                     .to(parse_precision(a.precision));
        const std::vector<std::vector<uint8_t>> clip = make_clip(a);
        const size_t frame_bytes = clip[0].size();

        auto network = [&](FrameBatch& b) {
            images_to_rgb8(net.stylize(images_from_rgb8(b.input.data(), b.count, a.height, a.width, device)),
                           b.stylized);
        };
        auto copy = [](FrameBatch& b) { b.stylized = b.input; };
        // The pipeline over the clip; its output frames.
        auto pipeline = [&](bool stabilize, const std::function<void(FrameBatch&)>& stylize) {
            std::vector<std::vector<uint8_t>> out;
            size_t next = 0;
            VideoPipelineOptions o;
            o.width = a.width, o.height = a.height, o.batch = a.batch, o.stabilize = stabilize;
            run_video_pipeline(
                {[&](std::vector<uint8_t>& rgb) { return next < clip.size() && (rgb = clip[next++], true); }},
                {[&](const std::vector<uint8_t>& rgb) { out.push_back(rgb); }}, o, stylize);
            return out;
        };

        // Checks. The network's frames, one at a time, against the pipeline's
        // (batched) frames; the sequential stabilizer against the pipeline's.
        const std::function<void(FrameBatch&)> stylize = a.host_only ? std::function<void(FrameBatch&)>(copy)
                                                                     : std::function<void(FrameBatch&)>(network);
        const std::vector<std::vector<uint8_t>> raw = pipeline(false, stylize);
        NST_CHECK(raw.size() == clip.size(), "pipeline wrote ", raw.size(), " frames of ", clip.size());
        for (size_t t = 0; t < clip.size() && !a.host_only; t += clip.size() - 1) {
            std::vector<uint8_t> want;
            images_to_rgb8(net.stylize(images_from_rgb8(clip[t].data(), 1, a.height, a.width, device)), want);
            NST_CHECK(raw[t] == want, "frame ", t, ": the pipeline's stylized frame is not the network's");
        }
        const std::vector<std::vector<uint8_t>> stabilized = pipeline(true, stylize);
        Stabilizer stabilizer(VideoPipelineOptions{}.stabilize_weight);
        for (size_t t = 0; t < clip.size(); ++t) {
            Frame previous{a.width, a.height, t ? clip[t - 1] : std::vector<uint8_t>()};
            Frame frame{a.width, a.height, raw[t]};
            stabilizer.next(stabilizer_guide(t ? &previous : nullptr, {a.width, a.height, clip[t]}), frame);
            NST_CHECK(stabilized[t] == frame.rgb, "frame ", t, ": the pipeline's stabilized frame is not the ",
                      "sequential stabilizer's");
        }

        // Timings (the checks above were the warm-up).
        auto fps = [&](auto&& run) {
            const auto start = std::chrono::steady_clock::now();
            run();
            return double(clip.size()) / seconds_since(start);
        };
        const double host_fps = fps([&] { pipeline(true, copy); });
        std::string rows = "\"host_stabilized\": " + fixed2(host_fps);
        if (!a.host_only) {
            const double stylize_fps = fps([&] {
                for (size_t t = 0; t < clip.size(); t += size_t(a.batch)) {
                    FrameBatch b;
                    b.count = int(std::min(clip.size() - t, size_t(a.batch)));
                    for (int i = 0; i < b.count; ++i)
                        b.input.insert(b.input.end(), clip[t + size_t(i)].begin(), clip[t + size_t(i)].end());
                    network(b);
                }
            });
            const double pipeline_fps = fps([&] { pipeline(false, network); });
            const double stabilized_fps = fps([&] { pipeline(true, network); });
            rows = "\"stylize\": " + fixed2(stylize_fps) + ", " + rows + ", \"pipeline\": " +
                   fixed2(pipeline_fps) + ", \"pipeline_stabilized\": " + fixed2(stabilized_fps);
        }
        std::printf("{\"engine\": \"nst\", \"bench\": \"video\", \"device\": \"%s\", \"width\": %d, \"height\": %d, "
                    "\"frames\": %d, \"batch\": %d, \"precision\": \"%s\", \"threads\": %d, \"frame_bytes\": %zu, "
                    "\"fps\": {%s}, \"checks\": \"passed\"}\n",
                    device.str().c_str(), a.width, a.height, a.frames, a.batch, a.precision.c_str(), cpu_threads(),
                    frame_bytes, rows.c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "video_bench: %s\n", e.what());
        return 1;
    }
}
