// nst-run: the command-line front end.
//   nst-run import --from DIR --out model.safetensors
//   nst-run info FILE
//   nst-run stylize ...    (tools/stylize_command.hpp)
//   nst-run optimize ...   (tools/optimize_command.hpp)
//   nst-run train ...      (tools/train_command.hpp)
// Every failure is one line "nst-run: error: ..." on stderr and exit status 1
// (2 for a malformed command line); outputs are written atomically, so a
// failure never leaves a half-written file. Ctrl-C stops within a second or
// so (tools/interrupt.hpp), removing the partial output.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "core/autograd.hpp"
#include "core/device.hpp"
#include "core/error.hpp"
#include "core/image.hpp"
#include "weights/safetensors.hpp"
#include "nets/transform_net.hpp"
#include "tools/command_files.hpp"
#include "tools/command_helpers.hpp"
#include "tools/interrupt.hpp"
#include "tools/optimize_command.hpp"
#include "tools/stylize_command.hpp"
#include "tools/train_command.hpp"
#include "tools/video_metrics_command.hpp"
#include "weights/tf_fast_style.hpp"

namespace fs = std::filesystem;
using nst::Error;
using nst::Tensor;

namespace {

// ---- import ------------------------------------------------------------------------
int run_import(const std::string& from, const std::string& out) {
    nst_run::check_output(out, "--out");
    nst_run::CommandFiles files;
    files.reads_directory("--from", from);
    files.writes("--out", out);
    files.check();
    // Through the network's validation: a file we write is a file we can run.
    const nst::TransformNet net =
        nst::TransformNet::from_weights(nst::import_tf_fast_style(from), nst::Device::cpu(), from);
    net.save(out);
    std::printf("%s: %s network, %d residual blocks, from %s\n", out.c_str(),
                nst::variant_name(net.variant()), net.residual_blocks(), from.c_str());
    return 0;
}

// ---- info --------------------------------------------------------------------------
int run_info(const std::string& path) {
    std::vector<nst::SafetensorsEntry> entries;
    std::map<std::string, std::string> metadata;
    if (nst_run::is_directory(path)) {
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
                    nst::format_bytes(h.file_size).c_str(), entries.size());
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
        const nst::TransformNet net = nst::TransformNet::load(path, nst::Device::cpu());
        std::printf("network: nst.transformer, variant %s, %d residual blocks: valid\n",
                    nst::variant_name(net.variant()), net.residual_blocks());
    }
    return 0;
}

// A command's options go after its name; before it CLI11 would take them
// for nst-run's own and then say the command lacks them ("--model is
// required"). nst-run's own option, --threads, goes anywhere. Returns the
// message for the first misplaced option, or "".
std::string misplaced_option(int argc, char** argv, const std::vector<const CLI::App*>& commands) {
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--threads") {
            ++i;
            continue;
        }
        if (arg.rfind("--threads=", 0) == 0 || arg == "-h" || arg == "--help") continue;
        for (const CLI::App* c : commands)
            if (arg == c->get_name()) return "";
        if (arg.empty() || arg[0] != '-') return "";  // CLI11 names what is wrong
        for (int j = i + 1; j < argc; ++j)
            for (const CLI::App* c : commands)
                if (c->get_name() == argv[j])
                    return arg.substr(0, arg.find('=')) + " is an option of '" + c->get_name() +
                           "' and goes after it: nst-run " + c->get_name() + " " + arg + " ...";
        return "";
    }
    return "";
}

}  // namespace

int main(int argc, char** argv) {
    // A dead ffmpeg must surface as a write error, not kill us.
    std::signal(SIGPIPE, SIG_IGN);
    nst_run::install_interrupt_handlers();

    CLI::App app{"nst-run: neural style transfer: feed-forward (stylize), by optimization (optimize), and training feed-forward networks (train)"};
    app.require_subcommand(1);
    // Given before or after the command's own options: the commands hand
    // what they do not know to nst-run itself.
    app.fallthrough();
    int threads = 0;
    app.add_option("--threads", threads,
                   "CPU threads (oneDNN and nst's own loops; default: NST_NUM_THREADS, else every core)")
        ->transform(nst_run::whole_number(1, 1024));

    std::string import_from, import_out;
    CLI::App* import = app.add_subcommand(
        "import", "Convert a TensorFlow fast-style-transfer export (manifest.json + raw float32 "
                  "files) into a .safetensors network");
    import->add_option("--from", import_from, "Export directory (holds manifest.json)")->required();
    import->add_option("--out", import_out, "Output .safetensors file")->required();

    std::string info_path;
    CLI::App* info = app.add_subcommand("info", "List a weights file's tensors, shapes and metadata");
    info->add_option("file", info_path, ".safetensors file or TensorFlow export directory")->required();

    const nst_run::Command stylize = nst_run::add_stylize_command(app);
    const nst_run::Command optimize = nst_run::add_optimize_command(app);
    const nst_run::Command train = nst_run::add_train_command(app);
    const nst_run::Command video_metrics = nst_run::add_video_metrics_command(app);

    const std::vector<const CLI::App*> commands{import, info, stylize.subcommand, optimize.subcommand, train.subcommand,
                                                video_metrics.subcommand};
    if (const std::string m = misplaced_option(argc, argv, commands); !m.empty()) {
        nst_run::print_error(m);
        return 2;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help
        nst_run::print_error(std::string(e.what()) + " (see nst-run --help)");
        return 2;
    }

    try {
        // NST_NUM_THREADS and NST_MEMORY_LIMIT, which the library reads
        // (core/device.hpp), asked for first: a bad value is the first error.
        nst::device_environment();
        if (threads > 0) nst::cpu_set_threads(threads);
        if (*import) return run_import(import_from, import_out);
        if (*info) return run_info(info_path);
        if (*optimize.subcommand) return optimize.run();
        if (*train.subcommand) return train.run();
        if (*video_metrics.subcommand) return video_metrics.run();
        return stylize.run();
    } catch (const nst::OutOfMemoryError& e) {
        const std::string m = e.what();  // the command may have said what to try already
        nst_run::print_error(m.find("; try ") != std::string::npos
                        ? m
                        : m + "; try smaller images (stylize --max-size, optimize --size, train --batch or --size)");
    } catch (const std::bad_alloc&) {
        nst_run::print_error("out of memory (try a smaller --max-size or --size)");
    } catch (const std::exception& e) {
        nst_run::print_error(e.what());
    } catch (...) {
        nst_run::print_error("unexpected failure");
    }
    return 1;
}
