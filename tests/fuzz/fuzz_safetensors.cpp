// libFuzzer target: the safetensors reader (header validation, then data).
#include "core/error.hpp"
#include "weights/safetensors.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = nst_fuzz::scratch_path(".safetensors");
    nst_fuzz::write_scratch(path, data, size);
    try {
        nst::load_safetensors(path);
    } catch (const nst::Error&) {
    }
    return 0;
}
