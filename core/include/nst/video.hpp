// libnst's video API (installed as <nst/video.hpp>): a video stylized by a
// StyleModel or by optimization, as `nst-run stylize --in clip.mp4` and
// `nst-run optimize --content clip.mp4` do it (the same code, nst-run's
// defaults). Its functions live in the library nst_video (CMake: nst::video),
// which needs OpenCV, and ffmpeg and ffprobe on PATH at run time; a program
// that links only nst::nst has the rest of <nst/nst.hpp> without them.
//
// Every frame the file holds is stylized, in order; the output keeps the
// input's frame rate and audio, its container follows the extension (.mp4,
// .mkv, .mov, .webm, ...), and it is written to a temporary file that
// replaces `out` only once it is whole: after a failure or a stop, `out` is
// as it was.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nst/nst.hpp"

namespace nst {

// nst-run's video options and defaults.
struct VideoSettings {
    int max_size = 0;        // stylize_video: > 0 shrinks frames so that their longer side is at most this (--max-size)
    int batch = 1;           // stylize_video: frames per pass (--batch)
    bool stabilize = true;   // stylize_video: follow the input's motion, no flicker (false: --no-stabilize)
    // optimize_video: weight of the loss holding each frame to the previous
    // result moved by the optical flow (--temporal-weight; 0: none).
    float temporal_weight = 5.f;
};

struct VideoResult {
    int64_t frames = 0;    // frames written
    bool stopped = false;  // the callback stopped the run: nothing was written
    // "" or the warning nst-run prints: the input ends early (truncated?),
    // the frames there were written.
    std::string warning;
};

// The callback (called on a thread of the library's own, one call at a
// time) after every frame written: Progress::frame and step are the frames
// written, frames and steps what the input promises (0: unknown). Returning
// false stops the run.
VideoResult stylize_video(const StyleModel& model, const std::string& in, const std::string& out,
                          const StylizeSettings& settings = {}, const VideoSettings& video = {},
                          const ProgressCallback& callback = nullptr);

// The first frame is optimized as nst::optimize would (settings' stages and
// iterations), every later frame in one stage at settings.size, with
// settings.iterations' last count (80 by default), from the previous result
// moved by the optical flow. The callback after every iteration: step,
// steps and the losses are the frame's, frame the frame (1-based), frames
// what the input promises (0: unknown). Returning false stops the run.
VideoResult optimize_video(const std::string& in, const std::string& out, const std::vector<Image>& styles,
                           const OptimizeSettings& settings = {}, const VideoSettings& video = {},
                           const ProgressCallback& callback = nullptr);

// Every frame allocates and frees buffers of megabytes; this makes glibc
// keep them instead of handing them back to the kernel and faulting them in
// again (half the stabilizer's time at 1080p), holding up to 256 MB.
// Process-wide, so the program's choice: nst-run makes it for its videos.
void keep_freed_frame_memory();

}  // namespace nst
