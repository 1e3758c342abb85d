// Writes the inputs of tests/cli_nst_run.sh into a directory: small photos of
// odd sizes (PNG, JPEG, BMP), a random native network (.safetensors) and a
// random TensorFlow-variant network as a per-variable export directory.
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "core/image.hpp"
#include "nets/transformer.hpp"
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
        nst::TransformerSpec native;
        native.width = 4, native.residual_blocks = 1, native.value_range = 1.f;
        nst::Transformer::create(native, 1, nst::Device::cpu()).save(dir + "/native.safetensors");
        nst::TransformerSpec tf;
        tf.variant = nst::TransformerVariant::TensorFlow, tf.width = 4, tf.residual_blocks = 2;
        ::mkdir((dir + "/tf_export").c_str(), 0777);
        nst::testing::write_tf_export(nst::Transformer::create(tf, 2, nst::Device::cpu()).to_weights(),
                                      dir + "/tf_export", tf.residual_blocks);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nst_cli_fixtures: %s\n", e.what());
        return 1;
    }
    return 0;
}
