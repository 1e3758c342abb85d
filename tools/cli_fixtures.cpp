// Writes the inputs of tests/cli_nst_run.sh and tests/cli_bad_input.sh into a
// directory: small photos of odd sizes (PNG, JPEG, BMP), a JPEG with an EXIF
// rotation, a larger photo for tiles, a random native network
// (.safetensors), a random TensorFlow-variant network as a per-variable
// export directory, and bad/: broken images and weight files.
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/image.hpp"
#include "weights/safetensors.hpp"
#include "nets/transform_net.hpp"
#include "tests/exif_writer.hpp"
#include "tests/tf_export_writer.hpp"

namespace {

// A smooth colour pattern (a photo-like input with structure at every scale).
nst::Tensor pattern(int h, int w) {
    std::vector<float> v(size_t(3) * h * w);
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                v[(size_t(c) * h + y) * w + x] =
                    127.5f + 120.f * std::sin(0.3f * float(x + 2 * c) + 0.2f * float(y * (c + 1)));
    return nst::Tensor::from_vector(v, {1, 3, h, w});
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
    if (!out) throw nst::Error("cannot write " + path);
}

// A safetensors file from its JSON header and data bytes, whatever they say.
void write_raw_safetensors(const std::string& path, const std::string& header, const std::string& data) {
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[size_t(i)] = char((uint64_t(header.size()) >> (8 * i)) & 0xff);
    write_file(path, bytes + header + data);
}

// What users hand nst-run by mistake, or what a damaged disk gives them.
void write_bad_inputs(const std::string& dir) {
    const std::string bad = dir + "/bad";
    ::mkdir(bad.c_str(), 0777);
    write_file(bad + "/empty.png", "");
    write_file(bad + "/text.png", "these are notes, not a picture\n");
    const std::string png = read_file(dir + "/photos/a.png"), jpg = read_file(dir + "/photos/b.jpg");
    write_file(bad + "/truncated.png", png.substr(0, png.size() / 2));
    write_file(bad + "/truncated.jpg", jpg.substr(0, jpg.size() / 2));
    // A PNG header claiming 100000 x 100000 pixels (30 GB as RGB), then nothing.
    const unsigned char huge[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                  0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0, 8, 2, 0, 0, 0, 0x12, 0x34, 0x56, 0x78};
    write_file(bad + "/huge.png", std::string(reinterpret_cast<const char*>(huge), sizeof huge));
    nst::save_image(nst::Tensor::full({1, 3, 1, 1}, 90.f), bad + "/one_pixel.png");
    nst::save_image(pattern(20, 200), bad + "/panorama.png");  // fine, until shrunk

    nst::TransformNetSpec spec;
    spec.width = 4, spec.residual_blocks = 1;
    nst::WeightFile w = nst::TransformNet::create(spec, 3, nst::Device::cpu()).to_weights();
    const std::string model = dir + "/native.safetensors", good = read_file(model);
    write_file(bad + "/truncated.safetensors", good.substr(0, good.size() - 100));
    write_raw_safetensors(bad + "/offsets.safetensors",
                          R"({"conv_in.weight":{"dtype":"F32","shape":[4,3,9,9],"data_offsets":[0,3888]}})",
                          std::string(1000, '\0'));  // the data section stops short of the offsets
    write_raw_safetensors(bad + "/dtype.safetensors",
                          R"({"conv_in.weight":{"dtype":"I32","shape":[4,3,9,9],"data_offsets":[0,3888]}})",
                          std::string(3888, '\0'));
    nst::WeightFile shapes = w;
    shapes.tensors["down1.weight"] = nst::Tensor::zeros({8, 5, 3, 3});  // conv_in gives 4 channels
    nst::save_safetensors(bad + "/shapes.safetensors", shapes.tensors, shapes.metadata);
    nst::WeightFile nan = w;
    std::vector<float> v = nan.tensors["conv_in.weight"].to_vector();
    v[7] = std::numeric_limits<float>::quiet_NaN();
    nan.tensors["conv_in.weight"] = nst::Tensor::from_vector(v, nan.tensors["conv_in.weight"].shape());
    nst::save_safetensors(bad + "/nan.safetensors", nan.tensors, nan.metadata);

    // Float images with a NaN and an infinity among the pixels.
    nst::save_image(pattern(20, 20), bad + "/finite.npy");
    const std::string npy = read_file(bad + "/finite.npy");
    for (const auto& [name, value] : {std::pair<const char*, float>{"nan.npy", std::nanf("")},
                                      {"inf.npy", std::numeric_limits<float>::infinity()}}) {
        std::string bytes = npy;
        std::memcpy(&bytes[bytes.size() - 4 * 30], &value, 4);
        write_file(bad + "/" + name, bytes);
    }
    std::remove((bad + "/finite.npy").c_str());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: nst_cli_fixtures DIR\n");
        return 2;
    }
    try {
        const std::string dir = argv[1];
        ::mkdir(dir.c_str(), 0777);
        ::mkdir((dir + "/photos").c_str(), 0777);
        nst::save_image(pattern(29, 37), dir + "/photos/a.png");
        nst::save_image(pattern(30, 41), dir + "/photos/b.jpg");
        nst::save_image(pattern(21, 33), dir + "/photos/c.bmp");
        nst::TransformNetSpec native;
        native.width = 4, native.residual_blocks = 1, native.value_range = 1.f;
        nst::TransformNet::create(native, 1, nst::Device::cpu()).save(dir + "/native.safetensors");
        nst::TransformNetSpec tf;
        tf.variant = nst::TransformNetVariant::TensorFlow, tf.width = 4, tf.residual_blocks = 2;
        ::mkdir((dir + "/tf_export").c_str(), 0777);
        nst::testing::write_tf_export(nst::TransformNet::create(tf, 2, nst::Device::cpu()).to_weights(),
                                      dir + "/tf_export", tf.residual_blocks);
        // A phone photo stored sideways with EXIF "rotate 90 clockwise", and
        // one large enough for tiles of at least the fixture network's halo.
        nst::save_image(pattern(24, 40), dir + "/sideways.jpg");
        write_file(dir + "/rotated.jpg", nst::test::with_orientation(read_file(dir + "/sideways.jpg"), 6, false));
        std::remove((dir + "/sideways.jpg").c_str());
        nst::save_image(pattern(24, 40), dir + "/upside_down.png");  // and a PNG with "rotate 180" (big-endian EXIF)
        write_file(dir + "/upside_down.png", nst::test::with_orientation(read_file(dir + "/upside_down.png"), 3, true));
        nst::save_image(pattern(90, 120), dir + "/large.png");
        write_bad_inputs(dir);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nst_cli_fixtures: %s\n", e.what());
        return 1;
    }
    return 0;
}
