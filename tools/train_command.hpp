// `nst-run train`: trains a native transformation network for one style
// (nets/training.hpp) on a directory of photos (nets/training_data.hpp), with
// checkpoints that resume exactly, Ctrl-C that saves one, a CSV log, sample
// images and a progress bar. The result runs with `nst-run stylize`.
#pragma once
#include "tools/command_helpers.hpp"

namespace nst_run {

// Adds the `train` subcommand and its options to `app`.
Command add_train_command(CLI::App& app);

}  // namespace nst_run
