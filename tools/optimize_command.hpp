// `nst-run optimize`: optimization-based style transfer (Gatys et al.,
// nets/gatys.hpp) from the command line, with neural-style's feature set:
// several blended styles, style scale, multi-scale, L-BFGS or Adam, original
// colours, intermediate images, a CSV log and a progress bar.
#pragma once
#include "tools/command_helpers.hpp"

namespace nst_run {

// Adds the `optimize` subcommand and its options to `app`.
Command add_optimize_command(CLI::App& app);

}  // namespace nst_run
