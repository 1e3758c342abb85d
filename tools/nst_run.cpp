// nst-run: the command-line front end. One file per command, this one
// registers them and handles what they share (--threads, NST_MEMORY_LIMIT,
// errors):
//   nst-run stylize ...         (tools/stylize_command.hpp)
//   nst-run optimize ...        (tools/optimize_command.hpp)
//   nst-run train ...           (tools/train_command.hpp)
//   nst-run video-metrics ...   (tools/video_metrics_command.hpp)
//   nst-run import ...          (tools/import_command.hpp)
//   nst-run info ...            (tools/info_command.hpp)
// Every failure is one line "nst-run: error: ..." on stderr and exit status 1
// (2 for a malformed command line); outputs are written atomically, so a
// failure never leaves a half-written file. Ctrl-C stops within a second or
// so (tools/interrupt.hpp), removing the partial output.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <vector>

#include "core/device.hpp"
#include "core/error.hpp"
#include "tools/command_helpers.hpp"
#include "tools/import_command.hpp"
#include "tools/info_command.hpp"
#include "tools/interrupt.hpp"
#include "tools/optimize_command.hpp"
#include "tools/stylize_command.hpp"
#include "tools/train_command.hpp"
#include "tools/video_metrics_command.hpp"

namespace {

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

    const nst_run::Command import = nst_run::add_import_command(app);
    const nst_run::Command info = nst_run::add_info_command(app);
    const nst_run::Command stylize = nst_run::add_stylize_command(app);
    const nst_run::Command optimize = nst_run::add_optimize_command(app);
    const nst_run::Command train = nst_run::add_train_command(app);
    const nst_run::Command video_metrics = nst_run::add_video_metrics_command(app);

    const std::vector<const CLI::App*> commands{import.subcommand,   info.subcommand,  stylize.subcommand,
                                                optimize.subcommand, train.subcommand, video_metrics.subcommand};
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
        if (*import.subcommand) return import.run();
        if (*info.subcommand) return info.run();
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
