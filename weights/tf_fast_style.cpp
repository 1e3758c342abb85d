// The manifest is trusted for nothing: names must be Variable..Variable_N
// without gaps, shapes must fit the triple structure, file names must stay
// inside the export directory and each file must hold exactly its shape's
// bytes. The architecture itself (channel counts flowing from layer to layer)
// is then checked by TransformNet::from_weights, which every import goes
// through before use.
#include "weights/tf_fast_style.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.hpp"
#include "core/files.hpp"

namespace nst {
namespace {

using json = nlohmann::json;

struct Variable {
    std::string filename;
    Shape shape;
};

// "Variable" -> 0, "Variable_12" -> 12, anything else -> -1.
int variable_index(const std::string& name) {
    if (name == "Variable") return 0;
    const std::string prefix = "Variable_";
    if (name.compare(0, prefix.size(), prefix) != 0 || name.size() == prefix.size() ||
        name.size() > prefix.size() + 6)
        return -1;
    int v = 0;
    for (size_t i = prefix.size(); i < name.size(); ++i) {
        if (name[i] < '0' || name[i] > '9') return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v > 0 && name[prefix.size()] != '0' ? v : -1;
}

std::vector<Variable> read_manifest(const std::string& dir) {
    const std::string path = dir + "/manifest.json";
    require_regular_file(path);
    std::ifstream in(path);
    NST_CHECK(in.is_open(), path, ": cannot open: ", std::strerror(errno));
    const json manifest = json::parse(in, nullptr, /*allow_exceptions=*/false);
    NST_CHECK(!manifest.is_discarded() && manifest.is_object(), path,
              ": not a JSON object of variables");
    // Names first, so that a gap is reported as the variable that is missing.
    size_t count = 0;
    for (const auto& item : manifest.items()) {
        const int index = variable_index(item.key());
        NST_CHECK(index >= 0 && size_t(index) < 1000, path, ": unexpected variable '", item.key(),
                  "' (expected Variable, Variable_1, Variable_2, ...)");
        count = std::max(count, size_t(index) + 1);
    }
    std::vector<Variable> vars(count);
    std::vector<bool> seen(count, false);
    for (const auto& item : manifest.items()) {
        const std::string& name = item.key();
        const json& v = item.value();
        const size_t index = size_t(variable_index(name));
        seen[index] = true;
        NST_CHECK(v.is_object() && v.contains("filename") && v["filename"].is_string() &&
                      v.contains("shape") && v["shape"].is_array(),
                  path, ": ", name, " needs a string \"filename\" and an array \"shape\"");
        Variable& var = vars[index];
        var.filename = v["filename"].get<std::string>();
        NST_CHECK(!var.filename.empty() && var.filename.find('/') == std::string::npos &&
                      var.filename != "." && var.filename != "..",
                  path, ": ", name, " has an invalid file name '", var.filename, "'");
        for (const json& d : v["shape"]) {
            NST_CHECK(d.is_number_unsigned() && d.get<uint64_t>() <= (uint64_t(1) << 31), path,
                      ": ", name, " has an invalid shape ", v["shape"].dump());
            var.shape.push_back(d.get<int64_t>());
        }
    }
    const size_t missing = size_t(std::find(seen.begin(), seen.end(), false) - seen.begin());
    NST_CHECK(missing == count, path, ": ", missing == 0 ? "Variable" : "Variable_" + std::to_string(missing),
              " is missing (the manifest goes up to Variable_", count - 1, ")");
    return vars;
}

// The raw file, checked against the shape, as a tensor in TF's layout.
Tensor read_variable(const std::string& dir, const std::string& name, const Variable& var) {
    const std::string path = dir + "/" + var.filename;
    struct stat st;
    NST_CHECK(::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode), path,
              ": missing file of variable ", name);
    const uint64_t expected = uint64_t(shape_numel(var.shape)) * 4;
    NST_CHECK(uint64_t(st.st_size) == expected, path, ": ", name, " has ", st.st_size,
              " bytes, but its shape ", shape_str(var.shape), " needs ", expected,
              uint64_t(st.st_size) < expected ? " (truncated file)" : "");
    std::vector<float> values(size_t(shape_numel(var.shape)));
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(values.data()), std::streamsize(expected));
    NST_CHECK(in.good() || expected == 0, path, ": cannot read ", name);
    return Tensor::from_vector(values, var.shape);
}

}  // namespace

bool is_tf_fast_style_export(const std::string& dir) {
    struct stat st;
    return ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
           ::stat((dir + "/manifest.json").c_str(), &st) == 0;
}

WeightFile import_tf_fast_style(const std::string& dir_in) {
    std::string dir = dir_in;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    NST_CHECK(is_tf_fast_style_export(dir), dir,
              ": not a TensorFlow fast-style-transfer export (no manifest.json)");
    const std::vector<Variable> vars = read_manifest(dir);
    const size_t triples = vars.size() / 3;
    NST_CHECK(vars.size() % 3 == 0 && triples >= 6 && (triples - 6) % 2 == 0, dir,
              "/manifest.json: ", vars.size(),
              " variables do not form (filter, beta, gamma) triples for 3 down convs, "
              "residual blocks of 2 convs, 2 transposed convs and the output conv");
    std::vector<std::string> layers = {"conv_in", "down1", "down2"};
    for (size_t i = 1; i <= (triples - 6) / 2; ++i) {
        layers.push_back("res" + std::to_string(i) + ".conv1");
        layers.push_back("res" + std::to_string(i) + ".conv2");
    }
    layers.insert(layers.end(), {"up1", "up2", "conv_out"});

    WeightFile out;
    for (size_t t = 0; t < triples; ++t) {
        const std::string names[3] = {
            t == 0 ? "Variable" : "Variable_" + std::to_string(3 * t),
            "Variable_" + std::to_string(3 * t + 1), "Variable_" + std::to_string(3 * t + 2)};
        const Variable& filter = vars[3 * t];
        NST_CHECK(filter.shape.size() == 4, dir, ": ", names[0], " (filter of ", layers[t],
                  ") has shape ", shape_str(filter.shape), ", expected [kh, kw, in, out]");
        const int64_t out_channels = layers[t].rfind("up", 0) == 0 ? filter.shape[2] : filter.shape[3];
        for (int j = 1; j < 3; ++j)
            NST_CHECK(vars[3 * t + j].shape == Shape{out_channels}, dir, ": ", names[j], " (",
                      j == 1 ? "beta" : "gamma", " of ", layers[t], ") has shape ",
                      shape_str(vars[3 * t + j].shape), ", expected [", out_channels, "]");
        out.tensors[layers[t] + ".weight"] =
            read_variable(dir, names[0], filter).permute({3, 2, 0, 1}).contiguous();
        out.tensors[layers[t] + ".norm.bias"] = read_variable(dir, names[1], vars[3 * t + 1]);
        out.tensors[layers[t] + ".norm.weight"] = read_variable(dir, names[2], vars[3 * t + 2]);
    }
    const size_t slash = dir.find_last_of('/');
    out.metadata = {{"architecture", "nst.transformer"},
                    {"variant", "tf-fast-style-transfer"},
                    {"value_range", "255"},
                    {"norm_eps", "0.001"},
                    {"source", "TensorFlow fast-style-transfer, per-variable export"},
                    {"style", slash == std::string::npos ? dir : dir.substr(slash + 1)}};
    return out;
}

}  // namespace nst
