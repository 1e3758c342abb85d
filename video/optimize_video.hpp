// Optimization mode on a video (Ruder, Dosovitskiy and Brox, "Artistic
// style transfer for videos", 2016), as `nst-run optimize --content
// clip.mp4` and nst::optimize_video (<nst/video.hpp>) both run it: the
// first frame is optimized as an image; every later frame starts from the
// previous frame's result moved by the input's optical flow
// (video/flow.hpp) and adds a temporal loss that holds it there where the
// flow holds (GatysOptions::temporal_weight), in one stage at the final
// size. The callers check their own way what they take (file names, the
// frame size) before calling it.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/image.hpp"
#include "nets/gatys.hpp"
#include "nets/optimize.hpp"
#include "video/events.hpp"
#include "video/ffmpeg.hpp"

namespace nst {

// The temporal loss's weight nst-run and the API use by default, chosen by
// measurement (README, video).
constexpr float kTemporalWeight = 5.f;

struct VideoOptimization {
    std::string in, out;
    VideoInfo info;               // probe_video(in)
    ImageSize frame;              // the frames' size: the final stage's
    GatysOptions first;           // the first frame's options (stages, iterations, ...)
    int later_iterations = 80;    // each later frame's
    float temporal_weight = 0.f;  // 0: frames optimized independently (from the warped previous result)
};

// Called after every iteration of frame `frame` (1-based). false stops the
// run, as events.written's false does.
using VideoIterationCallback = std::function<bool(int64_t frame, const GatysProgress& progress)>;

// Writes `out` (frame rate and audio kept; only once it is whole:
// video/ffmpeg.hpp); returns "" or the reader's warning for the user (the
// input ends early: VideoReader). A stop request (core/interrupt.hpp) or a
// callback's false throws nst::Interrupted: a frame half optimized is not
// written, and nothing is.
std::string optimize_video(const VideoOptimization& video, const Vgg19& net, const std::vector<StyleInput>& styles,
                           const VideoEvents& events = {}, const VideoIterationCallback& iteration = nullptr);

}  // namespace nst
