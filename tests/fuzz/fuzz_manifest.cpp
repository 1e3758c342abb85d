// libFuzzer target: the TensorFlow export importer; the input is the
// manifest.json of a directory whose variable files are a few float32 values.
#include <sys/stat.h>

#include "core/error.hpp"
#include "fuzz_input.hpp"
#include "weights/tf_fast_style.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string dir = [] {
        const std::string d = nst_fuzz::scratch_path("_export");
        ::mkdir(d.c_str(), 0700);
        const float values[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        for (const char* name : {"/Variable", "/Variable_1", "/Variable_2"})
            nst_fuzz::write_scratch(d + name, reinterpret_cast<const uint8_t*>(values), sizeof values);
        return d;
    }();
    nst_fuzz::write_scratch(dir + "/manifest.json", data, size);
    try {
        nst::import_tf_fast_style(dir);
    } catch (const nst::Error&) {
    }
    return 0;
}
