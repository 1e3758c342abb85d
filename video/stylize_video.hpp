// A video through a feed-forward network, as `nst-run stylize --in
// clip.mp4` and nst::stylize_video (<nst/video.hpp>) both run it: every
// frame read by ffmpeg at the size asked for, stylized in the Stylizer's
// batches (nets/stylize.hpp), stabilized along the input's motion
// (video/flow.hpp) unless asked not to, and written at the input's frame
// rate with its audio (video/ffmpeg.hpp); decoding, stylization and
// encoding overlap (video/pipeline.hpp). The callers check their own way
// what they take (file names, the memory plan) before calling it.
#pragma once
#include <string>

#include "core/image.hpp"
#include "nets/stylize.hpp"
#include "video/events.hpp"
#include "video/ffmpeg.hpp"

namespace nst {

// The stabilizer's weight of the moved previous output (video/flow.hpp),
// chosen by measurement (README, video).
constexpr float kStabilizeWeight = 0.7f;

// The size a video's frames are stylized at: as displayed, shrunk so that
// the longer side is at most max_size when max_size > 0.
ImageSize stylized_frame_size(const VideoInfo& info, int max_size);

struct VideoStylization {
    std::string in, out;
    VideoInfo info;          // probe_video(in)
    ImageSize frame;         // stylized_frame_size(info, ...)
    bool stabilize = true;   // false: every frame stylized on its own
};

// Writes `out` (only once it is whole: video/ffmpeg.hpp); returns "" or the
// reader's warning for the user (the input ends early: VideoReader). A stop
// request (core/interrupt.hpp) or events.written's false throws
// nst::Interrupted and writes nothing.
std::string stylize_video(const Stylizer& stylizer, const VideoStylization& video, const VideoEvents& events = {});

}  // namespace nst
