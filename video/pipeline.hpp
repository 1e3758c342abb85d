// Stylizing a video in three stages that overlap, so that decoding,
// stylization and encoding each keep their own pace instead of waiting for
// one another:
//
//   reader thread:   ffmpeg's frames -> batches; each frame's stabilizer
//                    guide (video/flow.hpp) goes to a pool of workers
//   calling thread:  stylizes each batch (the only thread that touches the
//                    device)
//   writer thread:   stabilizes each frame with its guide -> ffmpeg
//
// The guides need only the input frames, two at a time, so they are
// computed for several frames at once, beside the stylization: the optical
// flow is the costliest part of the stabilizer and its frames are
// independent, while the blend that follows depends on the previous output
// and stays in order on the writer. At most two batches and a frame a core
// are between reading and writing, and one guide a core in the works:
// memory stays flat however long the video, and a slow stage makes the
// others wait rather than pile up frames. After an error, every stage stops
// at its next frame. Frames stay 8-bit RGB until the device
// (core/image.hpp: images_from_rgb8). The first error of any stage stops
// the others and is rethrown on the calling thread, so the output file is
// discarded as for any other failure (video/ffmpeg.hpp: the writer is not
// finished). A stop asked for (nst::request_interrupt, core/interrupt.hpp:
// nst-run's Ctrl-C) ends the reader at its next frame and the calling
// thread at its next batch, which throws nst::Interrupted.
#pragma once
#include <cstdint>
#include <functional>
#include <future>
#include <vector>

#include "nst/video.hpp"
#include "video/flow.hpp"

namespace nst {

// Consecutive frames of one video on their way through.
struct FrameBatch {
    int count = 0;
    std::vector<uint8_t> input;     // count frames of 8-bit RGB, one after another
    std::vector<uint8_t> stylized;  // the same, once stylized
    std::vector<std::shared_future<Guide>> guides;  // one per frame, when stabilizing
};

struct VideoPipelineOptions {
    int width = 0, height = 0;  // of the frames the reader gives
    int batch = 1;              // frames per batch
    bool stabilize = true;
    float stabilize_weight = 0.7f;
};

// Where frames come from and go: ffmpeg (video/ffmpeg.hpp) in nst-run,
// memory in bench/video_bench and tests/test_video. read: false at the end.
struct FrameSource {
    std::function<bool(std::vector<uint8_t>& rgb)> read;
};
struct FrameSink {
    std::function<void(const std::vector<uint8_t>& rgb)> write;
};

// Runs the pipeline until the source's last frame is written; `stylize`
// fills a batch's `stylized` from its `input`. `frame_written` (may be
// empty) is called on the writer thread after each frame.
void run_video_pipeline(const FrameSource& source, const FrameSink& sink, const VideoPipelineOptions& options,
                        const std::function<void(FrameBatch&)>& stylize,
                        const std::function<void()>& frame_written = {});

// keep_freed_frame_memory() (<nst/video.hpp>, defined in pipeline.cpp):
// glibc keeps the frames' buffers of megabytes instead of faulting them in
// again (a 1080p flow is 16 MB; blocks up to 32 MB come from the heap, up
// to 256 MB are kept), the program's choice, made before its first video
// (nst-run stylize does, and so does bench/video_bench, to time what
// nst-run does).

}  // namespace nst
