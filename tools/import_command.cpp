// `nst-run import` (tools/import_command.hpp). The imported weights go
// through the network's own validation before they are written, so a file
// import writes is a file stylize can run.
#include "tools/import_command.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "core/device.hpp"
#include "nets/transform_net.hpp"
#include "tools/command_files.hpp"
#include "weights/tf_fast_style.hpp"

namespace nst_run {
namespace {

struct Settings {
    std::string from, out;
};

int run_import(const Settings& s) {
    check_output(s.out, "--out");
    CommandFiles files;
    files.reads_directory("--from", s.from);
    files.writes("--out", s.out);
    files.check();
    const nst::TransformNet net =
        nst::TransformNet::from_weights(nst::import_tf_fast_style(s.from), nst::Device::cpu(), s.from);
    net.save(s.out);
    std::printf("%s: %s network, %d residual blocks, from %s\n", s.out.c_str(), nst::variant_name(net.variant()),
                net.residual_blocks(), s.from.c_str());
    return 0;
}

}  // namespace

Command add_import_command(CLI::App& app) {
    auto s = std::make_shared<Settings>();
    CLI::App* cmd = app.add_subcommand(
        "import", "Convert a TensorFlow fast-style-transfer export (manifest.json + raw float32 "
                  "files) into a .safetensors network");
    cmd->add_option("--from", s->from, "Export directory (holds manifest.json)")->required();
    cmd->add_option("--out", s->out, "Output .safetensors file")->required();
    return {cmd, [s] { return run_import(*s); }};
}

}  // namespace nst_run
