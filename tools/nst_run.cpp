// nst-run: the command-line front end.
//   nst-run import --from DIR --out model.safetensors
//   nst-run info FILE
//   nst-run stylize --model M --in PATH --out PATH [--device D] [--max-size N]
//                   [--preserve-color] [--quiet]
//   nst-run optimize ...   (tools/optimize_command.hpp)
//   nst-run train ...      (tools/train_command.hpp)
// Every failure is one line "nst-run: error: ..." on stderr and exit status 1
// (2 for a malformed command line); outputs are written atomically, so a
// failure never leaves a half-written file. Ctrl-C stops between items and
// frames, removing the partial output.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "core/autograd.hpp"
#include "core/error.hpp"
#include "core/image.hpp"
#include "core/safetensors.hpp"
#include "nets/transformer.hpp"
#include "tools/command_helpers.hpp"
#include "tools/interrupt.hpp"
#include "tools/optimize_command.hpp"
#include "tools/progress.hpp"
#include "tools/train_command.hpp"
#include "tools/video.hpp"
#include "weights/tf_fast_style.hpp"

namespace fs = std::filesystem;
using nst::Error;
using nst::Tensor;

namespace {

void check_interrupted() {
    if (nst_run::interrupted()) throw Error("interrupted");
}

// Errors are one line, whatever the message holds.
std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    return text;
}

void print_error(const std::string& message) {
    std::fprintf(stderr, "nst-run: error: %s\n", one_line(message).c_str());
}

bool is_directory(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string human_bytes(uint64_t bytes) {
    char buf[32];
    if (bytes >= (1u << 20)) {
        std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1 << 20));
    } else if (bytes >= 1024) {
        std::snprintf(buf, sizeof buf, "%.1f KiB", double(bytes) / 1024);
    } else {
        std::snprintf(buf, sizeof buf, "%llu bytes", (unsigned long long)bytes);
    }
    return buf;
}

// ---- import ------------------------------------------------------------------------
int run_import(const std::string& from, const std::string& out) {
    // Through the network's validation: a file we write is a file we can run.
    const nst::Transformer net =
        nst::Transformer::from_weights(nst::import_tf_fast_style(from), nst::Device::cpu(), from);
    net.save(out);
    std::printf("%s: %s network, %d residual blocks, from %s\n", out.c_str(),
                nst::variant_name(net.variant()), net.residual_blocks(), from.c_str());
    return 0;
}

// ---- info --------------------------------------------------------------------------
int run_info(const std::string& path) {
    std::vector<nst::SafetensorsEntry> entries;
    std::map<std::string, std::string> metadata;
    if (is_directory(path)) {
        const nst::WeightFile w = nst::import_tf_fast_style(path);
        for (const auto& [name, t] : w.tensors)
            entries.push_back({name, "F32", t.shape(), 0, uint64_t(t.numel()) * 4});
        metadata = w.metadata;
        std::printf("%s: TensorFlow fast-style-transfer export, %zu tensors after import\n",
                    path.c_str(), entries.size());
    } else {
        const nst::SafetensorsHeader h = nst::read_safetensors_header(path);
        entries = h.entries;
        metadata = h.metadata;
        std::printf("%s: safetensors, %s, %zu tensors\n", path.c_str(),
                    human_bytes(h.file_size).c_str(), entries.size());
    }
    int64_t parameters = 0;
    size_t name_width = 4;
    for (const auto& e : entries) {
        parameters += nst::shape_numel(e.shape);
        name_width = std::max(name_width, e.name.size());
    }
    std::printf("parameters: %lld\n", (long long)parameters);
    if (!metadata.empty()) {
        std::printf("metadata:\n");
        for (const auto& [key, value] : metadata)
            std::printf("  %s = %s\n", key.c_str(), value.c_str());
    }
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    std::printf("tensors:\n");
    for (const auto& e : entries)
        std::printf("  %-*s  %-4s  %s\n", int(name_width), e.name.c_str(), e.dtype.c_str(),
                    nst::shape_str(e.shape).c_str());
    if (metadata.count("architecture") && metadata.at("architecture") == "nst.transformer") {
        const nst::Transformer net = nst::Transformer::load(path, nst::Device::cpu());
        std::printf("network: nst.transformer, variant %s, %d residual blocks: valid\n",
                    nst::variant_name(net.variant()), net.residual_blocks());
    }
    return 0;
}

// ---- stylize -----------------------------------------------------------------------
struct StylizeOptions {
    std::string model, in, out, device;
    int max_size = 0;
    bool preserve_color = false, quiet = false;
};

class Stylizer {
public:
    Stylizer(const nst::Transformer& net, const StylizeOptions& o) : net_(net), o_(o) {}

    // A photo [1, 3, H, W] on the CPU -> the stylized image on the device.
    Tensor run(const Tensor& photo_cpu) const {
        const Tensor photo = photo_cpu.to(net_.device());
        Tensor y = net_.stylize(photo);
        if (o_.preserve_color) {
            nst::NoGradGuard no_grad;
            y = nst::luminance_transfer(y, photo);
        }
        return y;
    }

    void image(const std::string& in, const std::string& out) const {
        Tensor photo = nst_run::load_input_image(in);
        if (o_.max_size > 0) photo = nst::limit_image_size(photo, o_.max_size);
        const Tensor result = run(photo);
        check_interrupted();  // not worth saving: the user asked to stop
        nst::save_image(result, out);
    }

private:
    const nst::Transformer& net_;
    const StylizeOptions& o_;
};

std::string extension_of(const std::string& path) { return fs::path(path).extension().string(); }

int stylize_image(const Stylizer& s, const StylizeOptions& o) {
    NST_CHECK(nst::is_writable_image_path(o.out), o.out, ": cannot write images of type '",
              extension_of(o.out), "' (use .png, .jpg, .jpeg, .bmp or .npy)");
    NST_CHECK(!nst_run::same_file(o.in, o.out), o.out, ": is the input image; choose another output");
    nst_run::Progress progress(1, "image", o.quiet);
    s.image(o.in, o.out);
    progress.step(fs::path(o.in).filename().string());
    progress.finish();
    return 0;
}

int stylize_directory(const Stylizer& s, const StylizeOptions& o) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(o.in)) {
        const std::string name = entry.path().filename().string();
        // Hidden files include our own temporaries (core/atomic_file).
        if (name.empty() || name[0] == '.' || !entry.is_regular_file()) continue;
        if (nst::is_image_path(name)) names.push_back(name);
    }
    NST_CHECK(!names.empty(), o.in, ": no images (.png, .jpg, .jpeg, .bmp, .npy) in the directory");
    std::sort(names.begin(), names.end());
    NST_CHECK(!fs::exists(o.out) || is_directory(o.out), o.out,
              ": exists and is not a directory (the input is a directory)");
    NST_CHECK(!nst_run::same_file(o.in, o.out), o.out,
              ": is the input directory; the photos would be overwritten");
    std::error_code ec;
    fs::create_directories(o.out, ec);
    NST_CHECK(!ec, o.out, ": cannot create the directory: ", ec.message());

    nst_run::Progress progress(int64_t(names.size()), "image", o.quiet);
    int failed = 0;
    for (const std::string& name : names) {
        check_interrupted();
        try {
            s.image((fs::path(o.in) / name).string(), (fs::path(o.out) / name).string());
        } catch (const Error& e) {
            // One bad file does not stop the batch; the exit status says it.
            progress.message("nst-run: error: " + one_line(e.what()));
            ++failed;
        }
        progress.step(name);
    }
    progress.finish();
    if (failed) {
        print_error(std::to_string(failed) + " of " + std::to_string(names.size()) +
                    " images failed");
        return 1;
    }
    return 0;
}

int stylize_video(const Stylizer& s, const StylizeOptions& o) {
    NST_CHECK(nst_run::is_video_path(o.out), o.out,
              ": the input is a video, so the output must be one too (.mp4, .mkv, .mov, .webm, ...)");
    NST_CHECK(!nst_run::same_file(o.in, o.out), o.out, ": is the input video; choose another output");
    const nst_run::VideoInfo info = nst_run::probe_video(o.in);
    int width = info.width, height = info.height;
    if (o.max_size > 0 && std::max(width, height) > o.max_size) {
        const double k = double(o.max_size) / std::max(width, height);
        width = std::max(1, int(std::lround(width * k)));
        height = std::max(1, int(std::lround(height * k)));
    }
    NST_CHECK(width >= nst_run::kMinInputSide && height >= nst_run::kMinInputSide, o.in, ": frames of ", width,
              "x", height, " pixels; nst-run needs at least ", nst_run::kMinInputSide, "x", nst_run::kMinInputSide);
    nst_run::VideoReader reader(o.in, info, width, height);
    nst_run::VideoWriter writer(o.out, width, height, info.frame_rate,
                                info.has_audio ? o.in : std::string());
    nst_run::Progress progress(info.frames, "frame", o.quiet);
    std::vector<uint8_t> rgb;
    while (reader.read(rgb)) {
        check_interrupted();
        nst::image_to_rgb8(s.run(nst::image_from_rgb8(rgb.data(), height, width)), rgb);
        writer.write(rgb);
        progress.step();
    }
    writer.finish();
    progress.finish();
    return 0;
}

int run_stylize(const StylizeOptions& o) {
    const nst::Device device = nst::usable_device(o.device);
    struct stat st;
    NST_CHECK(::stat(o.in.c_str(), &st) == 0, o.in, ": no such file or directory");
    const bool directory = S_ISDIR(st.st_mode);
    const bool video = !directory && nst_run::is_video_path(o.in);
    NST_CHECK(directory || video || nst::is_image_path(o.in), o.in,
              ": not an image (.png, .jpg, .jpeg, .bmp, .npy), a video or a directory");
    if (!directory)
        NST_CHECK(!is_directory(o.out), o.out, ": is a directory; give an output file name");
    const nst::Transformer net = nst::Transformer::load(o.model, device);
    const Stylizer stylizer(net, o);
    if (directory) return stylize_directory(stylizer, o);
    if (video) return stylize_video(stylizer, o);
    return stylize_image(stylizer, o);
}

}  // namespace

int main(int argc, char** argv) {
    // A dead ffmpeg must surface as a write error, not kill us.
    std::signal(SIGPIPE, SIG_IGN);
    nst_run::install_interrupt_handlers();

    CLI::App app{"nst-run: neural style transfer: feed-forward (stylize), by optimization (optimize), and training feed-forward networks (train)"};
    app.require_subcommand(1);

    std::string import_from, import_out;
    CLI::App* import = app.add_subcommand(
        "import", "Convert a TensorFlow fast-style-transfer export (manifest.json + raw float32 "
                  "files) into a .safetensors network");
    import->add_option("--from", import_from, "Export directory (holds manifest.json)")->required();
    import->add_option("--out", import_out, "Output .safetensors file")->required();

    std::string info_path;
    CLI::App* info = app.add_subcommand("info", "List a weights file's tensors, shapes and metadata");
    info->add_option("file", info_path, ".safetensors file or TensorFlow export directory")->required();

    StylizeOptions so;
    CLI::App* stylize = app.add_subcommand("stylize", "Stylize an image, a directory of images or a video");
    stylize->add_option("--model", so.model, ".safetensors network or TensorFlow export directory")
        ->required();
    stylize->add_option("--in", so.in, "Image (PNG, JPEG, BMP, NPY), directory of images, or video")
        ->required();
    stylize->add_option("--out", so.out,
                        "Output image (format from the extension), directory, or video")
        ->required();
    stylize->add_option("--device", so.device, "cpu, cuda or cuda:N (default: first GPU, else CPU)");
    stylize->add_option("--max-size", so.max_size, "Shrink inputs so the longer side is at most N pixels")
        ->check(CLI::PositiveNumber);
    stylize->add_flag("--preserve-color", so.preserve_color,
                      "Keep the photo's colours (transfer luminance only)");
    stylize->add_flag("--quiet,-q", so.quiet, "No progress output");

    const nst_run::Command optimize = nst_run::add_optimize_command(app);
    const nst_run::Command train = nst_run::add_train_command(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help
        print_error(std::string(e.what()) + " (see nst-run --help)");
        return 2;
    }

    try {
        if (*import) return run_import(import_from, import_out);
        if (*info) return run_info(info_path);
        if (*optimize.subcommand) return optimize.run();
        if (*train.subcommand) return train.run();
        return run_stylize(so);
    } catch (const std::bad_alloc&) {
        print_error("out of memory (try a smaller --max-size or --size)");
    } catch (const std::exception& e) {
        print_error(e.what());
    } catch (...) {
        print_error("unexpected failure");
    }
    return 1;
}
