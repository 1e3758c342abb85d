// `nst-run video-metrics`: the temporal warping error of a stylized clip
// against the clip it was made from (video/flow.hpp).
#pragma once
#include "tools/command_helpers.hpp"

namespace CLI {
class App;
}

namespace nst_run {

Command add_video_metrics_command(CLI::App& app);

}  // namespace nst_run
