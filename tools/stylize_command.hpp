// `nst-run stylize`: feed-forward stylization (nets/transform_net.hpp) of an
// image, every image of a directory, or a video's frames (ffmpeg pipes), in
// batches, in tiles when an image does not fit in memory, with the photo's
// colours kept on request.
#pragma once
#include "tools/command_helpers.hpp"

namespace nst_run {

// Adds the `stylize` subcommand and its options to `app`.
Command add_stylize_command(CLI::App& app);

}  // namespace nst_run
