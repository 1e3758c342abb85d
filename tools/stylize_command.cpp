// `nst-run stylize` (tools/stylize_command.hpp). Every image is checked and
// written atomically; in directory mode one bad file is reported and the
// others go on (the exit status says how many failed); Ctrl-C stops between
// layers (core/interrupt.hpp), removing a partial video.
//
// Batches: --batch N stylizes N images of the same size in one pass (video
// frames always are; a directory's images are grouped in sorted order while
// their sizes agree). Memory, tiles and the plan: nets/stylize.hpp, the
// same run as the public API's; a video: video/stylize_video.hpp, the same
// as nst::stylize_video's.
#include "tools/stylize_command.hpp"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/autograd.hpp"
#include "core/device.hpp"
#include "core/error.hpp"
#include "core/image.hpp"
#include "core/ops.hpp"
#include "nets/stylize.hpp"
#include "tools/command_files.hpp"
#include "tools/progress.hpp"
#include "video/ffmpeg.hpp"
#include "video/pipeline.hpp"
#include "video/stylize_video.hpp"

namespace fs = std::filesystem;
using nst::Error;
using nst::is_video_path;
using nst::probe_video;
using nst::Tensor;

namespace nst_run {
namespace {

struct Settings {
    std::string model, in, out, device, precision = "fp32";
    int max_size = 0, batch = 1, tile = 0;
    bool preserve_color = false, quiet = false, plan = false, no_stabilize = false;
};

std::string size_str(const Tensor& t) { return std::to_string(t.size(3)) + "x" + std::to_string(t.size(2)); }

// What a run of nst::Stylizer (nets/stylize.hpp) needs from the command
// line: its notes printed, out of memory answered with the flags that help.
class CliStylizer {
public:
    CliStylizer(const nst::TransformNet& net, const Settings& s)
        : s_(s), stylizer_(net, {s.tile, s.batch, s.preserve_color}, [quiet = s.quiet](const std::string& note) {
              if (!quiet) std::fprintf(stderr, "nst-run: note: %s\n", note.c_str());
          }) {}
    const nst::Stylizer& stylizer() const { return stylizer_; }

    std::vector<Tensor> run(const std::vector<Tensor>& photos) const {
        return hinted(photos.front().size(2), photos.front().size(3), [&] { return stylizer_.run(photos); });
    }

    Tensor load(const std::string& path) const {
        Tensor photo = load_input_image(path);
        if (s_.max_size > 0) {
            photo = nst::limit_image_size(photo, s_.max_size);
            // A panorama's short side can fall under what nst-run takes as input.
            NST_CHECK(photo.size(2) >= kMinInputSide && photo.size(3) >= kMinInputSide, path, ": --max-size ",
                      s_.max_size, " shrinks it to ", size_str(photo), " pixels; nst-run needs at least ",
                      kMinInputSide, "x", kMinInputSide, " (use a larger --max-size)");
        }
        stylizer_.check_tiles(photo.size(2), photo.size(3));
        return photo;
    }

    // The memory plan (nets/memory_plan.hpp) of images of height x width:
    // printed with --plan (then true: the command is done); a run that fits
    // nowhere refused before it starts.
    bool plan_or_refuse(int64_t height, int64_t width) const {
        const auto plan = hinted(height, width, [&] { return stylizer_.plan(height, width, s_.plan); });
        if (s_.plan) std::printf("%s", nst::describe(*plan, stylizer_.net()).c_str());
        return s_.plan;
    }

    // f(), out of memory answered with the flags that help (images of height x width).
    template <class F>
    auto hinted(int64_t height, int64_t width, F&& f) const -> decltype(f()) {
        try {
            return f();
        } catch (const nst::OutOfMemoryError& e) {
            throw nst::OutOfMemoryError(std::string(e.what()) + "; try --max-size " +
                                        std::to_string(std::max(height, width) / 2) +
                                        (s_.batch > 1 ? " or a smaller --batch" : ""));
        }
    }

private:
    const Settings& s_;
    nst::Stylizer stylizer_;
};

std::string extension_of(const std::string& path) { return fs::path(path).extension().string(); }

// Each mode adds its files to `files` (which holds the model) and checks them before any work.
int stylize_image(const CliStylizer& s, const Settings& o, CommandFiles& files) {
    NST_CHECK(nst::is_writable_image_path(o.out), o.out, ": cannot write images of type '",
              extension_of(o.out), "' (use .png, .jpg, .jpeg, .bmp or .npy)");
    check_output(o.out, "--out");
    files.reads("--in", o.in);
    files.writes("--out", o.out);
    files.check();
    const Tensor photo = s.load(o.in);
    if (s.plan_or_refuse(photo.size(2), photo.size(3))) return 0;
    Progress progress(1, "image", o.quiet);
    const Tensor result = s.run({photo}).front();
    check_interrupted();  // not worth saving: the user asked to stop
    nst::save_image(result, o.out);
    progress.step(fs::path(o.in).filename().string());
    progress.finish();
    return 0;
}

int stylize_directory(const CliStylizer& s, const Settings& o, CommandFiles& files) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(o.in)) {
        const std::string name = entry.path().filename().string();
        // Hidden files include our own temporaries (core/files.hpp).
        if (name.empty() || name[0] == '.' || !entry.is_regular_file()) continue;
        if (nst::is_image_path(name)) names.push_back(name);
    }
    NST_CHECK(!names.empty(), o.in, ": no images (.png, .jpg, .jpeg, .bmp, .npy) in the directory");
    std::sort(names.begin(), names.end());
    // A directory called styled.png would be a mistake the run makes for good.
    NST_CHECK(is_directory(o.out) || !(nst::is_image_path(o.out) || is_video_path(o.out)), "--out ", o.out,
              ": the input is a directory, so the output is a directory of images, and this is a file name; give "
              "a directory (it is created)");
    NST_CHECK(!fs::exists(o.out) || is_directory(o.out), o.out,
              ": exists and is not a directory (the input is a directory)");
    NST_CHECK(!same_file(o.in, o.out), o.out, ": is the input directory; the photos would be overwritten");
    for (const std::string& name : names) {
        files.reads_in("--in", o.in, (fs::path(o.in) / name).string());
        files.writes("--out", (fs::path(o.out) / name).string());
    }
    files.check();
    std::error_code ec;
    fs::create_directories(o.out, ec);
    NST_CHECK(!ec, o.out, ": cannot create the directory: ", ec.message());

    Progress progress(int64_t(names.size()), "image", o.quiet);
    int failed = 0;
    auto report = [&](const std::string& name, const Error& e) {
        // One bad file does not stop the others; the exit status says it.
        progress.message("nst-run: error: " + (std::strstr(e.what(), name.c_str()) ? std::string(e.what())
                                                                                     : name + ": " + e.what()));
        ++failed;
    };
    // Consecutive images of one size go through the network together.
    std::vector<std::string> group;
    std::vector<Tensor> photos;
    auto flush = [&] {
        if (group.empty()) return;
        check_interrupted();
        try {
            const std::vector<Tensor> results = s.run(photos);
            for (size_t i = 0; i < group.size(); ++i) {
                try {
                    nst::save_image(results[i], (fs::path(o.out) / group[i]).string());
                } catch (const Error& e) {
                    report(group[i], e);
                }
                progress.step(group[i]);
            }
        } catch (const Error& e) {  // out of memory included: the next images may be smaller
            for (const std::string& name : group) {
                report(name, e);
                progress.step(name);
            }
        }
        group.clear(), photos.clear();
    };
    for (const std::string& name : names) {
        check_interrupted();
        Tensor photo;
        try {
            photo = s.load((fs::path(o.in) / name).string());
        } catch (const Error& e) {
            report(name, e);
            progress.step(name);
            continue;
        }
        if (!photos.empty() && photos.front().shape() != photo.shape()) flush();
        group.push_back(name), photos.push_back(photo);
        if (int(group.size()) == o.batch) flush();
    }
    flush();
    progress.finish();
    if (failed) {
        print_error(std::to_string(failed) + " of " + std::to_string(names.size()) + " images failed");
        return 1;
    }
    return 0;
}

int stylize_video(const CliStylizer& s, const Settings& o, CommandFiles& files) {
    NST_CHECK(is_video_path(o.out), o.out,
              ": the input is a video, so the output must be one too (.mp4, .mkv, .mov, .webm, ...)");
    check_output(o.out, "--out");
    files.reads("--in", o.in);
    files.writes("--out", o.out);
    files.check();
    nst::VideoStylization video{o.in, o.out, probe_video(o.in), {}, !o.no_stabilize};
    video.frame = nst::stylized_frame_size(video.info, o.max_size);
    const int width = video.frame.width, height = video.frame.height;
    if (s.plan_or_refuse(height, width)) return 0;
    NST_CHECK(width >= kMinInputSide && height >= kMinInputSide, o.in, ": frames of ", width, "x", height,
              " pixels; nst-run needs at least ", kMinInputSide, "x", kMinInputSide);
    nst::keep_freed_frame_memory();  // process-wide: <nst/video.hpp> says why
    VideoProgress progress(o.quiet);
    const auto run = [&] { return nst::stylize_video(s.stylizer(), video, progress.events()); };
    progress.finish(s.hinted(height, width, run));
    return 0;
}

int run_stylize(const Settings& o) {
    const nst::Device device = nst::usable_device(o.device);
    struct stat st;
    NST_CHECK(::stat(o.in.c_str(), &st) == 0, o.in, ": no such file or directory");
    const bool directory = S_ISDIR(st.st_mode);
    const bool video = !directory && is_video_path(o.in);
    NST_CHECK(directory || video || nst::is_image_path(o.in), o.in,
              ": not an image (.png, .jpg, .jpeg, .bmp, .npy), a video or a directory");
    if (!directory) NST_CHECK(!is_directory(o.out), o.out, ": is a directory; give an output file name");
    const nst::DType dtype = nst::parse_precision(o.precision);
    // fp32 convolutions may use TF32 tensor cores, as PyTorch's do by default:
    // inference at 10 mantissa bits with fp32 sums stays far above the 50 dB
    // the outputs are held to (16-bit storage, coarser still, measures 59 dB
    // and more after 8-bit quantization).
    nst::set_allow_tf32(true);
    const nst::TransformNet net = nst::TransformNet::load(o.model, device).to(dtype);
    NST_CHECK(!directory || !o.plan, "--plan takes an image or a video (a directory's images have sizes of their own)");
    if (dtype != nst::DType::F32 && device.is_cpu() && !o.quiet)
        std::fprintf(stderr, "nst-run: note: %s on the CPU is emulated and slower than fp32; it pays off on GPUs\n",
                     o.precision.c_str());
    const CliStylizer stylizer(net, o);
    CommandFiles files;
    if (is_directory(o.model)) {
        files.reads_directory("--model", o.model);
    } else {
        files.reads("--model", o.model);
    }
    if (directory) return stylize_directory(stylizer, o, files);
    if (video) return stylize_video(stylizer, o, files);
    return stylize_image(stylizer, o, files);
}

}  // namespace

Command add_stylize_command(CLI::App& app) {
    auto s = std::make_shared<Settings>();
    CLI::App* cmd = app.add_subcommand("stylize", "Stylize an image, a directory of images or a video");
    cmd->add_option("--model", s->model, ".safetensors network or TensorFlow export directory")->required();
    cmd->add_option("--in", s->in, "Image (PNG, JPEG, BMP, NPY), directory of images, or video")->required();
    cmd->add_option("--out", s->out, "Output image (format from the extension), directory, or video")->required();
    cmd->add_option("--device", s->device, "cpu, cuda or cuda:N (default: first GPU, else CPU)");
    cmd->add_option("--max-size", s->max_size, "Shrink inputs so the longer side is at most N pixels")
        ->transform(whole_number(kMinInputSide, nst::kMaxImageSide));
    cmd->add_option("--batch", s->batch,
                    "Images per pass: video frames, or a directory's images of the same size")
        ->capture_default_str()
        ->transform(whole_number(1, 1024));
    cmd->add_option("--tile", s->tile,
                    "Stylize in tiles of N pixels (same result, less memory; default: only when an image "
                    "does not fit)")
        ->transform(whole_number(kMinInputSide, nst::kMaxImageSide));
    cmd->add_option("--precision", s->precision,
                    "fp32 (TF32 convs where the GPU has them), or fp16 / bf16 storage with fp32 math")
        ->capture_default_str()
        ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
    cmd->add_flag("--preserve-color", s->preserve_color, "Keep the photo's colours (transfer luminance only)");
    cmd->add_flag("--no-stabilize", s->no_stabilize,
                  "Videos: stylize every frame on its own (by default the output follows the input's optical "
                  "flow where the scene stays visible, so the painted texture does not flicker)");
    cmd->add_flag("--plan", s->plan,
                  "Print the memory plan (the predicted peak, and whether the run goes one image at a time or in "
                  "tiles) and exit without stylizing; nothing is written");
    cmd->add_flag("--quiet,-q", s->quiet, "No progress output");
    return {cmd, [s] { return run_stylize(*s); }};
}

}  // namespace nst_run
