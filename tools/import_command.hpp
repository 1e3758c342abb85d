// `nst-run import`: a TensorFlow fast-style-transfer export (manifest.json
// and raw float32 files, weights/tf_fast_style.hpp) converted into a
// .safetensors network that stylize loads.
#pragma once
#include "tools/command_helpers.hpp"

namespace CLI {
class App;
}

namespace nst_run {

Command add_import_command(CLI::App& app);

}  // namespace nst_run
