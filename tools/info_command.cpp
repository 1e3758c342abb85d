// `nst-run info` (tools/info_command.hpp). A .safetensors file is described
// from its header alone (no tensor is read), except that an nst network
// ("architecture" = "nst.transformer") is loaded too, to say whether it is
// valid; an export directory is imported in memory.
#include "tools/info_command.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/device.hpp"
#include "core/error.hpp"
#include "core/tensor.hpp"
#include "nets/transform_net.hpp"
#include "weights/safetensors.hpp"
#include "weights/tf_fast_style.hpp"

namespace nst_run {
namespace {

int run_info(const std::string& path) {
    std::vector<nst::SafetensorsEntry> entries;
    std::map<std::string, std::string> metadata;
    if (is_directory(path)) {
        const nst::WeightFile w = nst::import_tf_fast_style(path);
        for (const auto& [name, t] : w.tensors)
            entries.push_back({name, "F32", t.shape(), 0, uint64_t(t.numel()) * 4});
        metadata = w.metadata;
        std::printf("%s: TensorFlow fast-style-transfer export, %zu tensors after import\n", path.c_str(),
                    entries.size());
    } else {
        const nst::SafetensorsHeader h = nst::read_safetensors_header(path);
        entries = h.entries;
        metadata = h.metadata;
        std::printf("%s: safetensors, %s, %zu tensors\n", path.c_str(), nst::format_bytes(h.file_size).c_str(),
                    entries.size());
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
        for (const auto& [key, value] : metadata) std::printf("  %s = %s\n", key.c_str(), value.c_str());
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
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

}  // namespace

Command add_info_command(CLI::App& app) {
    auto path = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand("info", "List a weights file's tensors, shapes and metadata");
    cmd->add_option("file", *path, ".safetensors file or TensorFlow export directory")->required();
    return {cmd, [path] { return run_info(*path); }};
}

}  // namespace nst_run
