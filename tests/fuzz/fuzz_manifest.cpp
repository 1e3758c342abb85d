// libFuzzer target: the TensorFlow export importer; the input is the
// manifest.json of a directory holding a real (small, random) export's
// variable files, so a manifest that gets the names and shapes right reaches
// the whole importer.
#include "core/error.hpp"
#include "fuzz_input.hpp"
#include "nets/transform_net.hpp"
#include "tests/tf_export_writer.hpp"
#include "weights/tf_fast_style.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string dir = [] {
        const std::string d = nst_fuzz::scratch_path("_export");
        std::filesystem::create_directories(d);
        nst::TransformNetSpec spec;
        spec.variant = nst::TransformNetVariant::TensorFlow, spec.width = 4, spec.residual_blocks = 2;
        nst::testing::write_tf_export(nst::TransformNet::create(spec, 2, nst::Device::cpu()).to_weights(), d,
                                      spec.residual_blocks);
        return d;
    }();
    nst_fuzz::write_scratch(dir + "/manifest.json", data, size);
    try {
        nst::import_tf_fast_style(dir);
    } catch (const nst::Error&) {
    }
    return 0;
}
