// Test support: writes an nst.transformer weight set of the TensorFlow variant
// back out in the TensorFlow fast-style-transfer per-variable format
// (manifest.json + raw float32 files, TF filter layouts), so the importer can
// be tested on networks of known weights without the shared data.
#pragma once
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "weights/safetensors.hpp"

namespace nst::testing {

inline void write_tf_export(const WeightFile& w, const std::string& dir, int residual_blocks) {
    std::vector<std::string> layers = {"conv_in", "down1", "down2"};
    for (int i = 1; i <= residual_blocks; ++i) {
        layers.push_back("res" + std::to_string(i) + ".conv1");
        layers.push_back("res" + std::to_string(i) + ".conv2");
    }
    layers.insert(layers.end(), {"up1", "up2", "conv_out"});
    std::string manifest = "{";
    int index = 0;
    auto put = [&](const Tensor& t) {
        const std::string name = index == 0 ? "Variable" : "Variable_" + std::to_string(index);
        ++index;
        const std::vector<float> v = t.to_vector();
        std::ofstream(dir + "/" + name, std::ios::binary)
            .write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * 4));
        std::string shape;
        for (int64_t d : t.shape()) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
        manifest += std::string(index > 1 ? ", " : "") + "\"" + name + "\": {\"filename\": \"" +
                    name + "\", \"shape\": [" + shape + "]}";
    };
    for (const std::string& l : layers) {
        // ours [out, in, kh, kw] (or [in, out, kh, kw]) -> TF [kh, kw, in, out] (or [kh, kw, out, in])
        put(w.tensors.at(l + ".weight").permute({2, 3, 1, 0}).contiguous());
        put(w.tensors.at(l + ".norm.bias"));
        put(w.tensors.at(l + ".norm.weight"));
    }
    std::ofstream(dir + "/manifest.json") << manifest << "}\n";
}

}  // namespace nst::testing
