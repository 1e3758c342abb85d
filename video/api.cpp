// The public video API (core/include/nst/video.hpp) over the video library:
// the runs nst-run's video commands make (video/stylize_video.hpp,
// video/optimize_video.hpp), from the API's settings as nets/api.cpp makes
// the image runs. A callback's false ends a run the way Ctrl-C ends
// nst-run's (nst::Interrupted, the output discarded), which is reported
// as VideoResult::stopped.
#include <algorithm>
#include <cmath>

#include "core/device.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "nets/api_access.hpp"
#include "nets/stylize.hpp"
#include "nst/video.hpp"
#include "video/ffmpeg.hpp"
#include "video/optimize_video.hpp"
#include "video/stylize_video.hpp"

namespace nst {
namespace {

static_assert(VideoSettings{}.temporal_weight == kTemporalWeight, "nst-run's default");

// The checks both runs make before any work.
VideoInfo probe_paths(const char* what, const std::string& in, const std::string& out) {
    NST_CHECK(is_video_path(out), what, ": ", out, ": not a video file name (.mp4, .mkv, .mov, .webm, ...)");
    return probe_video(in);
}

// Progress::frames: what the input promises, 0 for unknown.
int64_t promised_frames(const VideoInfo& info) { return std::max<int64_t>(info.frames, 0); }

// result with run()'s warning; a stop (a callback's false, or a stop
// request: core/interrupt.hpp) reported as `stopped`, nothing written.
template <class Run>
VideoResult finished(VideoResult& result, Run&& run) {
    try {
        result.warning = run();
    } catch (const Interrupted&) {
        result.frames = 0, result.stopped = true;
    }
    return result;
}

}  // namespace

VideoResult stylize_video(const StyleModel& model, const std::string& in, const std::string& out,
                          const StylizeSettings& s, const VideoSettings& v, const ProgressCallback& callback) {
    return api::guarded("stylize_video", [&] {
        NST_CHECK(v.max_size >= 0 && v.batch >= 1, "stylize_video: max_size ", v.max_size, ", batch ", v.batch);
        VideoStylization video{in, out, probe_paths("stylize_video", in, out), {}, v.stabilize};
        video.frame = stylized_frame_size(video.info, v.max_size);
        const Stylizer stylizer(ModelAccess::net(model), {s.tile, v.batch, s.preserve_color});
        stylizer.plan(video.frame.height, video.frame.width);  // refuses what fits nowhere
        VideoResult result;
        VideoEvents events;
        events.written = [&](int64_t frame) {  // on the pipeline's writer thread
            result.frames = frame;
            if (!callback) return true;
            Progress p;
            p.step = p.frame = frame, p.steps = p.frames = promised_frames(video.info);
            return callback(p);
        };
        return finished(result, [&] { return nst::stylize_video(stylizer, video, events); });
    });
}

VideoResult optimize_video(const std::string& in, const std::string& out, const std::vector<Image>& style_images,
                           const OptimizeSettings& s, const VideoSettings& v, const ProgressCallback& callback) {
    return api::guarded("optimize_video", [&] {
        NST_CHECK(std::isfinite(v.temporal_weight) && v.temporal_weight >= 0, "optimize_video: temporal_weight ",
                  v.temporal_weight);
        const GatysOptions first = api::gatys_options(s);
        const std::vector<StyleInput> styles = api::style_inputs(style_images, s);
        VideoOptimization video{in, out, probe_paths("optimize_video", in, out), {}, first,
                                first.stage_iterations.back(), v.temporal_weight};
        video.frame = fit_longest_side(video.info.height, video.info.width, s.size);
        NST_CHECK(video.frame.pixels() <= kMaxImagePixels, "optimize_video: size ", s.size, " makes frames of ",
                  video.frame.width, "x", video.frame.height, ", more than the ", kMaxImagePixels,
                  " pixels nst works with");
        const Vgg19 net = api::loss_network(s.vgg, usable_device(s.device), VggPooling::Avg);
        VideoResult result;
        VideoEvents events;
        events.written = [&](int64_t frame) {
            result.frames = frame;
            return true;
        };
        const auto iteration = [&](int64_t frame, const GatysProgress& g) {
            if (!callback) return true;
            Progress p = api::progress_of(g.total_iteration, g.total_iterations, g.content_loss, g.style_loss,
                                          g.tv_loss, g.total_loss);
            p.frame = frame, p.frames = promised_frames(video.info);
            return callback(p);
        };
        return finished(result, [&] { return nst::optimize_video(video, net, styles, events, iteration); });
    });
}

}  // namespace nst
