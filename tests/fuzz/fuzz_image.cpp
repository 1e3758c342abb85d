// libFuzzer target: image decoding (stb behind our header checks). The
// first byte picks the extension, so PNG, JPEG, BMP and .npy paths all run.
#include "core/error.hpp"
#include "core/image.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const char* kinds[4] = {".png", ".jpg", ".bmp", ".npy"};
    if (size == 0) return 0;
    const std::string path = nst_fuzz::scratch_path(kinds[data[0] % 4]);
    nst_fuzz::write_scratch(path, data + 1, size - 1);
    try {
        nst::load_image(path);
    } catch (const nst::Error&) {
    }
    return 0;
}
