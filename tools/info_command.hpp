// `nst-run info`: a weights file's tensors, shapes and metadata (a
// .safetensors file, or a TensorFlow export directory as import would read
// it), and whether an nst network in it loads.
#pragma once
#include "tools/command_helpers.hpp"

namespace CLI {
class App;
}

namespace nst_run {

Command add_info_command(CLI::App& app);

}  // namespace nst_run
