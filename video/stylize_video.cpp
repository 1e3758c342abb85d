#include "video/stylize_video.hpp"

#include "core/interrupt.hpp"
#include "video/pipeline.hpp"

namespace nst {

ImageSize stylized_frame_size(const VideoInfo& info, int max_size) {
    return max_size > 0 ? limit_longest_side(info.height, info.width, max_size) : ImageSize{info.height, info.width};
}

std::string stylize_video(const Stylizer& stylizer, const VideoStylization& v, const VideoEvents& events) {
    const int width = v.frame.width, height = v.frame.height;
    VideoReader reader(v.in, v.info, width, height);
    VideoWriter writer(v.out, width, height, v.info, v.in);
    if (events.opened) events.opened(v.info.frames);
    VideoPipelineOptions options;
    options.width = width, options.height = height, options.batch = stylizer.options().batch;
    options.stabilize = v.stabilize, options.stabilize_weight = kStabilizeWeight;
    int64_t written = 0;
    run_video_pipeline(
        {[&](std::vector<uint8_t>& rgb) { return reader.read(rgb); }},
        {[&](const std::vector<uint8_t>& rgb) { writer.write(rgb); }}, options,
        [&](FrameBatch& frames) {
            stylizer.run_rgb8(frames.input.data(), frames.count, height, width, frames.stylized);
        },
        [&] {  // on the pipeline's writer thread: its error stops the others and reaches this thread
            ++written;
            if (events.written && !events.written(written)) throw Interrupted();
        });
    writer.finish();
    return reader.warning();
}

}  // namespace nst
