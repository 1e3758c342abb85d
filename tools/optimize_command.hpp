// `nst-run optimize`: optimization-based style transfer (Gatys et al.,
// nets/gatys.hpp) from the command line, with neural-style's feature set:
// several blended styles, style scale, multi-scale, L-BFGS or Adam, original
// colours, intermediate images, a CSV log and a progress bar.
//
// Registration and running are separate so that failures reach nst-run's own
// error handling (one line "nst-run: error: ...", exit status 1) instead of
// escaping from CLI11's parse() through a subcommand callback.
#pragma once
#include <functional>

namespace CLI {
class App;
}

namespace nst_run {

struct OptimizeCommand {
    CLI::App* subcommand = nullptr;  // after parsing, `*subcommand` says whether it was chosen
    std::function<int()> run;        // runs it; returns the exit status, throws nst::Error
};

// Adds the `optimize` subcommand and its options to `app`.
OptimizeCommand add_optimize_command(CLI::App& app);

}  // namespace nst_run
