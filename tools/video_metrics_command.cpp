// `nst-run video-metrics` (tools/video_metrics_command.hpp). Both clips are
// decoded side by side, one frame pair at a time (ffmpeg, video/ffmpeg.hpp):
// the stylized clip's frames scaled to the input's size if they differ. It
// prints the mean warping error of the stylized clip and, for scale, of the
// input clip itself (pairs across a scene cut, with no pixel in common, left
// out); --csv writes one line per frame pair.
#include "tools/video_metrics_command.hpp"

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "tools/command_files.hpp"
#include "tools/interrupt.hpp"
#include "video/ffmpeg.hpp"
#include "video/flow.hpp"

namespace nst_run {
namespace {

struct Settings {
    std::string in, stylized, csv;
};

int run_video_metrics(const Settings& s) {
    NST_CHECK(nst::is_video_path(s.in), "--in ", s.in, ": not a video (.mp4, .mkv, .mov, .webm, ...)");
    NST_CHECK(nst::is_video_path(s.stylized), "--stylized ", s.stylized, ": not a video (.mp4, .mkv, .mov, .webm, ...)");
    if (!s.csv.empty()) check_output(s.csv, "--csv");
    CommandFiles files;
    files.reads("--in", s.in);
    files.reads("--stylized", s.stylized);
    if (!s.csv.empty()) files.writes("--csv", s.csv);
    files.check();
    const nst::VideoInfo info = nst::probe_video(s.in);
    NST_CHECK(info.width >= kMinInputSide && info.height >= kMinInputSide, s.in, ": frames of ", info.width, "x",
              info.height, " pixels; video-metrics needs at least ", kMinInputSide, "x", kMinInputSide);
    const nst::VideoInfo styled_info = nst::probe_video(s.stylized);
    nst::VideoReader input(s.in, info, info.width, info.height);
    nst::VideoReader output(s.stylized, styled_info, info.width, info.height);
    CsvLog csv("--csv", s.csv, "frame,warping_error,input_warping_error");

    nst::Frame in_prev, in_now, out_prev, out_now;
    in_now.width = in_prev.width = out_now.width = out_prev.width = info.width;
    in_now.height = in_prev.height = out_now.height = out_prev.height = info.height;
    double sum = 0, input_sum = 0;
    int64_t pairs = 0, frames = 0;
    for (;;) {
        check_interrupted();
        const bool got_in = input.read(in_now.rgb), got_out = output.read(out_now.rgb);
        if (got_in != got_out) {
            // The rest of the longer clip, counted to say how far apart they are.
            nst::VideoReader& longer = got_in ? input : output;
            int64_t total = frames + 1;
            while (longer.read(got_in ? in_now.rgb : out_now.rgb)) {
                check_interrupted();
                ++total;
            }
            nst::fail("video-metrics: " + (got_in ? "--stylized " + s.stylized : "--in " + s.in) + " ends after " +
                      std::to_string(frames) + " frames, and " + (got_in ? "--in " + s.in : "--stylized " + s.stylized) +
                      " has " + std::to_string(total));
        }
        if (!got_in) break;
        if (frames > 0) {
            const nst::Motion m = nst::motion(in_prev, in_now);
            const double e = nst::warping_error(m, out_prev, out_now), e_in = nst::warping_error(m, in_prev, in_now);
            csv.row("%lld,%.9g,%.9g", (long long)frames, e, e_in);
            if (std::isfinite(e)) sum += e, input_sum += e_in, ++pairs;  // a scene cut has no pixels to compare
        }
        std::swap(in_prev.rgb, in_now.rgb);
        std::swap(out_prev.rgb, out_now.rgb);
        ++frames;
    }
    for (const nst::VideoReader* clip : {&input, &output})
        if (!clip->warning().empty()) std::fprintf(stderr, "nst-run: warning: %s\n", clip->warning().c_str());
    NST_CHECK(frames > 1, "video-metrics: ", s.in, " has ", frames, " frame(s); at least 2 are needed");
    NST_CHECK(pairs > 0, "video-metrics: no two consecutive frames of ", s.in, " share any pixel (scene cuts only)");
    csv.commit();
    std::printf("frames: %lld\nwarping error: %.4g\ninput warping error: %.4g\nratio: %.3g\n", (long long)frames,
                sum / double(pairs), input_sum / double(pairs), input_sum > 0 ? sum / input_sum : 0.0);
    return 0;
}

}  // namespace

Command add_video_metrics_command(CLI::App& app) {
    auto s = std::make_shared<Settings>();
    CLI::App* cmd = app.add_subcommand(
        "video-metrics",
        "Temporal warping error of a stylized video (flicker; Lai et al. 2018): optical flow on the input clip, "
        "occlusions from a forward-backward check, the stylized frames compared with their predecessors moved by "
        "the flow (mean squared difference on 0..1)");
    cmd->add_option("--in", s->in, "The input video (the flow is computed on it)")->required();
    cmd->add_option("--stylized", s->stylized, "The stylized video, frame for frame")->required();
    cmd->add_option("--csv", s->csv, "Per frame pair: frame, warping error, the input's own warping error");
    return {cmd, [s] { return run_video_metrics(*s); }};
}

}  // namespace nst_run
