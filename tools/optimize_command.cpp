// `nst-run optimize` (tools/optimize_command.hpp). Everything that can be
// checked before the (long) optimization is checked first: the device, the
// output and log paths, every image and layer name, the VGG file. The result
// and intermediate images are written atomically (core/image.hpp); the CSV
// log line by line to a temporary that replaces the file when the run ends
// with an image (CsvLog). Ctrl-C stops after the current iteration, or
// between the tiles of a tiled one, and saves the image so far.
#include "tools/optimize_command.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/image.hpp"
#include "core/interrupt.hpp"
#include "core/ops.hpp"
#include "nets/gatys.hpp"
#include "nets/optimize.hpp"
#include "nets/vgg19.hpp"
#include "tools/command_files.hpp"
#include "tools/command_helpers.hpp"
#include "tools/interrupt.hpp"
#include "tools/progress.hpp"
#include "video/ffmpeg.hpp"
#include "video/optimize_video.hpp"

namespace fs = std::filesystem;
using nst::Error;
using nst::is_video_path;
using nst::Tensor;

namespace nst_run {
namespace {

struct Settings {
    std::string content, out, optimizer = "lbfgs", pooling = "avg", init = "content", vgg, log,
                                device;
    std::vector<std::string> styles;
    std::vector<float> blend;
    std::vector<int> scales;
    LossFlags loss{0.05f, 1.f, 0.f, "relu4_2", "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1"};
    float style_scale = 1.f, lr = 0.f, temporal_weight = nst::kTemporalWeight;
    std::vector<int> iters;
    int size = 512, history = 100, save_every = 0, tile = 0;
    uint64_t seed = 0;
    bool original_colors = false, quiet = false, size_given = false, plan = false, temporal_weight_given = false;
};

Tensor load01(const std::string& path) { return nst::scale(load_input_image(path), 1.f / 255.f); }
void save01(const Tensor& image, const std::string& path) { nst::save_image(nst::scale(image, 255.f), path); }

// A video (video/optimize_video.hpp, the same run as nst::optimize_video's)
// with a progress bar of frames.
int optimize_video(const Settings& s, const nst::GatysOptions& first, const nst::Vgg19& net,
                   const std::vector<nst::StyleInput>& styles) {
    nst::VideoOptimization video{s.content, s.out, nst::probe_video(s.content), {}, first,
                                 first.stage_iterations.back(), s.temporal_weight};
    const int final_size = first.scales.back();
    video.frame = optimization_size("--size", final_size, video.info.height, video.info.width);
    const int width = video.frame.width, height = video.frame.height;
    NST_CHECK(width >= kMinInputSide && height >= kMinInputSide, s.content, ": frames of ", width, "x", height,
              " pixels at --size ", final_size, "; optimize needs at least ", kMinInputSide, "x", kMinInputSide);
    VideoProgress progress(s.quiet);
    progress.finish(nst::optimize_video(video, net, styles, progress.events()));
    return 0;
}

int run_optimize(const Settings& s) {
    // ---- everything that can fail early --------------------------------------------------
    const nst::Device device = nst::usable_device(s.device);
    const bool video = is_video_path(s.content);
    if (video) {
        NST_CHECK(is_video_path(s.out), "--out ", s.out,
                  ": the content is a video, so the output must be one too (.mp4, .mkv, .mov, .webm, ...)");
        NST_CHECK(s.log.empty() && s.save_every == 0 && !s.plan, "--log, --save-every and --plan are for images");
        NST_CHECK(s.init == "content" || s.init == "random", "--init: videos start from the content or from noise");
    } else {
        NST_CHECK(nst::is_writable_image_path(s.out), "--out ", s.out, ": cannot write images of type '",
                  fs::path(s.out).extension().string(), "' (use .png, .jpg, .jpeg, .bmp or .npy)");
        NST_CHECK(s.temporal_weight_given == false, "--temporal-weight is for videos");
    }
    check_output(s.out, "--out");
    if (!s.log.empty()) check_output(s.log, "--log");
    NST_CHECK(s.blend.empty() || s.blend.size() == s.styles.size(), "--style-blend: ", s.blend.size(),
              " weights for ", s.styles.size(), " style image(s)");
    std::vector<int> scales = s.scales;
    if (scales.empty()) scales = nst::default_scales(s.size);
    NST_CHECK(!s.size_given || scales.back() == s.size, "--size ", s.size, " and --scales (last ", scales.back(),
              ") disagree: the last scale is the final size");
    const int stages = int(scales.size());
    std::vector<int> iters = s.iters.empty() ? nst::default_stage_iterations(stages) : s.iters;
    if (iters.size() == 1) iters.assign(size_t(stages), iters[0]);
    NST_CHECK(int(iters.size()) == stages, "--iters: ", iters.size(), " counts for ", stages,
              " stages (give one, or one per stage)");
    int64_t total_iterations = 0;
    for (int n : iters) total_iterations += n;
    // out.png -> out_0100.png, zero-padded to the width of the last iteration.
    const NumberedOutputs snapshots = numbered_outputs("--save-every", s.out, "_", "",
                                                       int(std::to_string(total_iterations).size()),
                                                       std::max(1, s.save_every), total_iterations);
    CommandFiles files;
    files.reads("--content", s.content);
    for (const auto& style : s.styles) files.reads("--style", style);
    // Refining a result in place (--init X --out X) is fine: read first, replaced at the end.
    if (s.init != "random" && s.init != "content" && !same_file(s.init, s.out)) files.reads("--init", s.init);
    files.reads("--vgg", vgg_file(s.vgg));
    files.writes("--out", s.out);
    if (!s.log.empty()) files.writes("--log", s.log);
    if (s.save_every > 0) files.writes_numbered(snapshots);
    files.check();

    nst::GatysOptions o;
    o.content_layers = parse_layers("--content-layers", s.loss.content_layers);
    o.style_layers = parse_layers("--style-layers", s.loss.style_layers);
    o.content_weight = s.loss.content_weight, o.style_weight = s.loss.style_weight, o.tv_weight = s.loss.tv_weight;
    o.style_scale = s.style_scale;
    o.scales = scales;
    o.stage_iterations = iters;
    o.optimizer = s.optimizer == "adam" ? nst::GatysOptimizer::Adam : nst::GatysOptimizer::LBFGS;
    o.learning_rate = s.lr;
    o.lbfgs_history = s.history;
    o.seed = s.seed;
    o.original_colors = s.original_colors;
    o.save_every = s.save_every;
    o.tile = s.tile;
    if (s.init == "random") {
        o.init = nst::GatysInit::Random;
    } else if (s.init != "content") {
        o.init = nst::GatysInit::Image;
        o.init_image = load01(s.init);
    }

    std::vector<nst::StyleInput> styles;
    for (size_t i = 0; i < s.styles.size(); ++i)
        styles.push_back({load01(s.styles[i]), s.blend.empty() ? 1.f : s.blend[i]});
    const auto load_net = [&] {
        return load_vgg(s.vgg, device, s.pooling == "max" ? nst::VggPooling::Max : nst::VggPooling::Avg, s.quiet);
    };
    if (video) return optimize_video(s, o, load_net(), styles);
    Tensor content = load01(s.content);
    for (auto side = scales.rbegin(); side != scales.rend(); ++side)  // the final size first: it is --size's
        optimization_size(s.scales.empty() ? "--size" : "--scales", *side, content.size(2), content.size(3));
    const nst::Vgg19 net = load_net();
    nst::Optimization optimization(net, std::move(content), std::move(styles), o);
    const nst::ImageSize size = optimization.size();
    // The memory plan (nets/memory_plan.hpp): printed with --plan, and a run
    // that would not fit even in the smallest tiles refused before it starts.
    try {
        const auto& plan = optimization.plan(s.plan);
        if (s.plan) {
            std::printf("%s", nst::describe(*plan, o).c_str());
            return 0;
        }
    } catch (const nst::OutOfMemoryError& e) {
        if (s.plan) throw;
        throw nst::OutOfMemoryError(std::string(e.what()) + "; try a smaller --size" +
                                    (o.optimizer == nst::GatysOptimizer::LBFGS ? " or --optimizer adam" : ""));
    }
    CsvLog log("--log", s.log, "iteration,stage,width,height,content_loss,style_loss,tv_loss,total_loss,elapsed_s");

    // ---- the run ---------------------------------------------------------------------------
    std::unique_ptr<Progress> bar;
    int bar_stage = -1;
    auto start_stage = [&](int stage, int stages, int64_t h, int64_t w) {
        if (bar) bar->finish();
        if (!s.quiet && stages > 1)
            std::fprintf(stderr, "stage %d/%d: %lldx%lld\n", stage + 1, stages, (long long)w, (long long)h);
        bar = std::make_unique<Progress>(iters[size_t(stage)], "iteration", s.quiet);
        bar_stage = stage;
    };
    // The first bar now, so a terminal shows it during the first (slowest) iteration.
    start_stage(0, stages, optimization.stage_size(0).height, optimization.stage_size(0).width);
    int done = 0, history = s.history, tile = s.tile;
    const auto callback = [&](const nst::GatysProgress& p, const Tensor& image) {
        if (p.stage != bar_stage) start_stage(p.stage, p.stages, p.height, p.width);
        done = p.total_iteration;
        if (p.tile != tile && p.tile > 0 && s.tile == 0 && !s.quiet) {
            const std::string what = std::to_string(p.width) + "x" + std::to_string(p.height) + " in tiles of " +
                                     std::to_string(p.tile) + " pixels (the same result, slower)";
            bar->message(p.tile == p.planned_tile && p.iteration == 1
                             ? "nst-run: note: memory plan: optimizing " + what
                             : "nst-run: note: out of memory: optimizing " + what);
        }
        tile = p.tile;
        if (o.optimizer == nst::GatysOptimizer::LBFGS && p.lbfgs_history < history) {
            history = p.lbfgs_history;
            if (!s.quiet)
                bar->message("nst-run: note: out of memory: L-BFGS now keeps at most " + std::to_string(history) +
                             " of --history " + std::to_string(s.history) + " steps");
        }
        log.row("%d,%d,%lld,%lld,%.9g,%.9g,%.9g,%.9g,%.4f", p.total_iteration, p.stage + 1, (long long)p.width,
                (long long)p.height, p.content_loss, p.style_loss, p.tv_loss, p.total_loss, p.elapsed_seconds);
        char label[96];
        std::snprintf(label, sizeof label, "loss %.3g (c %.3g s %.3g tv %.3g)", p.total_loss, p.content_loss,
                      p.style_loss, p.tv_loss);
        if (p.snapshot) {
            const std::string path = snapshots.path(p.total_iteration);
            save01(image, path);
            bar->message("saved " + path);
        }
        bar->step(label);
        if (p.iteration == p.iterations && p.stage + 1 < p.stages) {  // the next bar before its first iteration
            const nst::ImageSize next = optimization.stage_size(p.stage + 1);
            start_stage(p.stage + 1, p.stages, next.height, next.width);
        }
        return !nst_run::interrupted();
    };
    Tensor result;
    try {
        result = optimization.run(callback);
    } catch (const nst::NonFiniteLossError& e) {
        bar.reset();  // ends the bar's line without a "done" summary
        if (e.last_good_iteration() == 0) throw Error(std::string(e.what()) + "; no output written");
        save01(e.last_good_image(), s.out);
        log.commit();  // it says how the saved image came to be
        throw Error(std::string(e.what()) + "; it was saved to " + s.out);
    } catch (const nst::OutOfMemoryError& e) {
        bar.reset();
        // L-BFGS has already dropped its history (core/optim.hpp): only the size helps.
        throw nst::OutOfMemoryError(std::string(e.what()) + " optimizing a " + std::to_string(size.width) + "x" +
                                    std::to_string(size.height) + " image; try a smaller --size");
    } catch (const nst::Interrupted&) {
        bar.reset();
        throw Error("interrupted before the first iteration; no output written");
    }
    if (nst_run::interrupted()) {
        bar.reset();
    } else {
        bar->finish();
    }
    save01(result, s.out);
    log.commit();
    if (nst_run::interrupted())
        throw Error("interrupted after iteration " + std::to_string(done) + " of " +
                    std::to_string(total_iterations) +
                    "; the image so far was saved to " + s.out);
    return 0;
}

}  // namespace

Command add_optimize_command(CLI::App& app) {
    auto s = std::make_shared<Settings>();
    CLI::App* cmd = app.add_subcommand(
        "optimize",
        "Optimization-based style transfer (Gatys et al.): optimize the pixels of an image so that "
        "its VGG-19 features match the content photo and its Gram matrices match the style image(s)");
    cmd->footer(
        "Each layer's content and style loss is divided by its target's mean square, so the losses "
        "are relative errors and the weights balance them. The defaults (content weight 0.05, style "
        "weight 1, no TV, average pooling, L-BFGS, 250 iterations at 256 px then 80 at 512 px) were chosen with the "
        "embedded random VGG-19; raise --content-weight to keep more of the photo. Without --vgg, weights/vgg19-dcbb9e9d.pth or "
        "weights/vgg19-d01eb7cb.pth in the current directory are used when present (fetch them with "
        "weights/fetch_vgg19.sh), else the embedded random VGG-19 (--vgg random forces it), which is far "
        "weaker than trained weights.");
    cmd->add_option("--content", s->content, "Content photo (PNG, JPEG, BMP, NPY) or video")->required();
    cmd->add_option("--style", s->styles, "Style image; repeat to blend several")->required();
    cmd->add_option("--out", s->out, "Output image (the format follows the extension), or video for a video")
        ->required();
    cmd->add_option("--style-blend", s->blend, "Blend weights of the style images, e.g. 0.7,0.3 (normalized to sum 1; default equal)")
        ->delimiter(',')
        ->check(real_number(0, false));
    cmd->add_option("--style-scale", s->style_scale, "Style images' longer side relative to the content's")
        ->capture_default_str()
        ->check(real_number(0, true, 16));
    CLI::Option* size = cmd->add_option("--size", s->size, "Longer side of the result in pixels")
                            ->capture_default_str()
                            ->transform(whole_number(kMinInputSide, nst::kMaxImageSide));
    cmd->add_option("--scales", s->scales,
                    "Longer side of each stage, coarse to fine, e.g. 256,512,1024; each stage starts from the "
                    "previous result upsampled; the last is the final size (default: half of --size, then "
                    "--size, from 256 up; --scales 512 runs one stage)")
        ->delimiter(',')
        ->transform(whole_number(kMinInputSide, nst::kMaxImageSide));
    cmd->add_option("--iters", s->iters,
                    "Iterations: one count for every stage, or one per stage (default: 250 per coarser stage and "
                    "80 at the final size; 500 for a single stage)")
        ->delimiter(',')
        ->transform(whole_number(1, kMaxIterations));
    cmd->add_option("--optimizer", s->optimizer, "lbfgs or adam")
        ->capture_default_str()
        ->check(CLI::IsMember({"lbfgs", "adam"}));
    cmd->add_option("--lr", s->lr, "Learning rate (default: 1 for lbfgs, 0.02 for adam; images are 0..1)")
        ->check(real_number(0, true));
    cmd->add_option("--tile", s->tile,
                    "Optimize in tiles of N pixels (rounded up to the deepest layer's stride, 16 for relu5_1): the untiled result with a step's memory "
                    "bounded by the tile (default 0: only when the image does not fit)")
        ->capture_default_str()
        ->transform(whole_number(0, nst::kMaxImageSide));
    cmd->add_option("--history", s->history, "L-BFGS history size")->capture_default_str()->transform(whole_number(1, 10000));
    add_loss_options(cmd, s->loss);
    cmd->add_option("--pooling", s->pooling, "VGG pooling: max or avg")
        ->capture_default_str()
        ->check(CLI::IsMember({"max", "avg"}));
    cmd->add_option("--init", s->init, "Starting image: content, random (seeded noise) or an image file")
        ->capture_default_str();
    CLI::Option* temporal = cmd->add_option("--temporal-weight", s->temporal_weight,
                    "Videos: weight of the temporal loss that holds each frame to the previous result moved by "
                    "the optical flow (0: frames optimized independently, from that moved result)")
        ->capture_default_str()
        ->check(real_number(0, false));
    cmd->add_flag("--plan", s->plan,
                  "Print the memory plan (each stage's predicted peak, untiled and in the tiles the run would "
                  "use) and exit without optimizing; nothing is written");
    cmd->add_flag("--original-colors", s->original_colors, "Keep the content's colours (luminance transfer at the end)");
    cmd->add_option("--vgg", s->vgg,
                    "VGG-19 weights: torchvision or Caffe .pth, or .safetensors (flavour from the name: "
                    "'caffe' or 'd01eb7cb' is Caffe), or 'random' for the embedded network");
    cmd->add_option("--seed", s->seed, "Seed of --init random")->capture_default_str()->transform(whole_number(0, UINT64_MAX));
    cmd->add_option("--save-every", s->save_every, "Save the image every N iterations as OUT_<iteration>.<ext>")
        ->transform(whole_number(0, kMaxIterations));
    cmd->add_option("--log", s->log, "CSV log: iteration, stage, size, each loss, elapsed seconds");
    cmd->add_option("--device", s->device, "cpu, cuda or cuda:N (default: first GPU, else CPU)");
    cmd->add_flag("--quiet,-q", s->quiet, "No progress output");
    return {cmd, [s, size, temporal] {
                s->size_given = size->count() > 0;
                s->temporal_weight_given = temporal->count() > 0;
                return run_optimize(*s);
            }};
}

}  // namespace nst_run
