// The video pipeline (video/pipeline.hpp) with frames from and to memory:
// order, count and batches; stabilized frames byte for byte the sequential
// stabilizer's; the first error of any stage rethrown, with every stage
// stopped within the frame budget; a stop asked for through
// core/interrupt.hpp ending it with nst::Interrupted. No ffmpeg needed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <vector>

#include "core/device.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "video/pipeline.hpp"
#include "video_clips.hpp"

using namespace nst;

namespace {

constexpr int kW = 32, kH = 24;
using Bytes = std::vector<uint8_t>;

// Frame t of a plain clip: every byte its own, and no two frames alike.
Bytes numbered_frame(int t) {
    Bytes rgb(size_t(kW) * kH * 3);
    for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t((size_t(t) * 7 + i) % 251);
    return rgb;
}

Bytes inverted(Bytes rgb) {
    for (uint8_t& v : rgb) v = uint8_t(255 - v);
    return rgb;
}

// A clip of `frames` numbered frames that counts what was read from it;
// `on_read(t)`, if given, runs before frame t is handed over.
struct CountedSource {
    explicit CountedSource(int count) : frames(count) {}
    int frames, reads = 0;  // reads: on the reader thread, looked at after the run
    std::function<void(int)> on_read;
    FrameSource source() {
        return {[this](Bytes& rgb) {
            if (reads == frames) return false;
            if (on_read) on_read(reads);
            rgb = numbered_frame(reads++);
            return true;
        }};
    }
};

// What a run wrote, and the batches it stylized.
struct Outcome {
    std::vector<Bytes> written;
    std::vector<int> batches;
    int frames_reported = 0;
};

// Runs the pipeline over `source` at kW x kH, the stylization inverting
// every byte after `before_batch(n)` (n counts the batches from 0).
Outcome run(CountedSource& source, int batch, const std::function<void(int)>& before_batch = {}) {
    Outcome out;
    VideoPipelineOptions o;
    o.width = kW, o.height = kH, o.batch = batch, o.stabilize = false;
    run_video_pipeline(
        source.source(), {[&](const Bytes& rgb) { out.written.push_back(rgb); }}, o,
        [&](FrameBatch& b) {
            if (before_batch) before_batch(int(out.batches.size()));
            out.batches.push_back(b.count);
            b.stylized = inverted(b.input);
        },
        [&] { ++out.frames_reported; });
    return out;
}

// Clears a stop asked for, however the test ends.
struct ClearInterrupt {
    ClearInterrupt() { clear_interrupt(); }
    ~ClearInterrupt() { clear_interrupt(); }
};

}  // namespace

TEST_CASE("every frame comes out once, in order, in batches of the size asked") {
    for (const auto& [batch, sizes] : std::vector<std::pair<int, std::vector<int>>>{
             {1, std::vector<int>(10, 1)}, {3, {3, 3, 3, 1}}, {4, {4, 4, 2}}, {16, {10}}}) {
        CAPTURE(batch);
        CountedSource source{10};
        const Outcome out = run(source, batch);
        CHECK(out.batches == sizes);
        REQUIRE(out.written.size() == 10);
        for (int t = 0; t < 10; ++t) REQUIRE(out.written[size_t(t)] == inverted(numbered_frame(t)));
        CHECK(out.frames_reported == 10);
    }
    CountedSource empty{0};
    CHECK(run(empty, 2).written.empty());
}

TEST_CASE("stabilized, the pipeline's frames are the sequential stabilizer's") {
    const int w = 64, h = 48, frames = 6;
    const std::vector<Frame> clip = test::pan(frames, 3, w, h, 5);
    // A flickering stylization: each frame's brightness its own.
    auto stylize = [&](const Bytes& in, int t) {
        Bytes out(in);
        for (uint8_t& v : out) v = uint8_t(std::min(255, v / 2 + (t * 37) % 60));
        return out;
    };
    std::vector<Bytes> raw, sequential;
    Stabilizer stabilizer(0.7f);
    for (int t = 0; t < frames; ++t) {
        raw.push_back(stylize(clip[size_t(t)].rgb, t));
        Frame frame{w, h, raw.back()};
        stabilizer.next(stabilizer_guide(t ? &clip[size_t(t) - 1] : nullptr, clip[size_t(t)]), frame);
        sequential.push_back(frame.rgb);
    }
    REQUIRE(sequential != raw);  // else this test could not tell stabilizing from not

    for (const bool stabilize : {true, false})
        for (const int batch : {1, 4}) {
            CAPTURE(stabilize, batch);
            size_t next = 0;
            int stylized = 0;
            std::vector<Bytes> written;
            VideoPipelineOptions o;
            o.width = w, o.height = h, o.batch = batch, o.stabilize = stabilize, o.stabilize_weight = 0.7f;
            run_video_pipeline(
                {[&](Bytes& rgb) { return next < clip.size() && (rgb = clip[next++].rgb, true); }},
                {[&](const Bytes& rgb) { written.push_back(rgb); }}, o, [&](FrameBatch& b) {
                    CHECK(b.guides.size() == (stabilize ? size_t(b.count) : 0));
                    const size_t bytes = size_t(w) * h * 3;
                    b.stylized.clear();
                    for (int i = 0; i < b.count; ++i) {
                        const Bytes one = stylize(Bytes(b.input.begin() + std::ptrdiff_t(i * bytes),
                                                        b.input.begin() + std::ptrdiff_t((i + 1) * bytes)),
                                                  stylized++);
                        b.stylized.insert(b.stylized.end(), one.begin(), one.end());
                    }
                });
            CHECK(written == (stabilize ? sequential : raw));
        }
}

TEST_CASE("the first error of any stage is rethrown, and every stage stops within the frame budget") {
    const int batch = 2;
    // Frames read but not written are at most 2 batches and a frame a core.
    const int in_flight = 2 * batch + cpu_threads();

    SECTION("the stylization fails") {
        CountedSource source{10000};
        CHECK_THROWS_WITH(run(source, batch,
                                    [](int n) {
                                        if (n == 2) throw Error("the device is on fire");
                                    }),
                          "the device is on fire");
        CHECK(source.reads <= 2 * batch + in_flight);  // two batches written at most
    }
    SECTION("the source fails") {
        CountedSource source{10000};
        source.on_read = [](int t) {
            if (t == 5) throw Error("damaged video data");
        };
        CHECK_THROWS_WITH(run(source, batch), "damaged video data");
        CHECK(source.reads == 5);
    }
    SECTION("the sink fails") {
        CountedSource source{10000};
        VideoPipelineOptions o;
        o.width = kW, o.height = kH, o.batch = batch, o.stabilize = false;
        int written = 0;
        CHECK_THROWS_WITH(run_video_pipeline(
                              source.source(), {[&](const Bytes&) {
                                  if (++written == 3) throw Error("no space left on device");
                              }},
                              o, [](FrameBatch& b) { b.stylized = b.input; }),
                          "no space left on device");
        CHECK(written == 3);
        CHECK(source.reads <= 2 + in_flight);  // two frames written
    }
    SECTION("a frame of the wrong size") {
        VideoPipelineOptions o;
        o.width = kW, o.height = kH, o.batch = batch;
        CHECK_THROWS_WITH(run_video_pipeline({[](Bytes& rgb) { return rgb.assign(10, 0), true; }},
                                             {[](const Bytes&) {}}, o, [](FrameBatch&) {}),
                          Catch::Contains("video: a frame of 10 bytes, expected 2304"));
    }
}

TEST_CASE("a stop asked for through nst::request_interrupt ends the pipeline with nst::Interrupted") {
    ClearInterrupt clear;
    SECTION("asked during the stylization: no batch after it") {
        CountedSource source{10000};
        int batches = 0;
        CHECK_THROWS_AS(run(source, 3,
                            [&](int n) {
                                batches = n + 1;
                                if (n == 1) request_interrupt();
                            }),
                        Interrupted);
        CHECK(batches == 2);
    }
    SECTION("asked while reading: the clip is not whole, so no success") {
        CountedSource source{20};
        source.on_read = [](int t) {
            if (t == 5) request_interrupt();
        };
        CHECK_THROWS_AS(run(source, 1), Interrupted);
        CHECK(source.reads == 6);
    }
    SECTION("asked before: nothing is read or stylized") {
        request_interrupt();
        CountedSource source{10};
        int batches = 0;
        CHECK_THROWS_AS(run(source, 1, [&](int) { ++batches; }), Interrupted);
        CHECK(source.reads == 0);
        CHECK(batches == 0);
        // Cleared, the same clip goes through whole.
        clear_interrupt();
        CHECK(run(source, 1).written.size() == 10);
    }
}
