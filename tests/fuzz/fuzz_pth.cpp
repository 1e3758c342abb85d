// libFuzzer target: the PyTorch checkpoint reader (zip, legacy pickle
// stream, tar; the unpickler), from bytes in memory.
#include "core/error.hpp"
#include "weights/pth.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        nst::load_pth_bytes(data, size, "fuzz.pth");
    } catch (const nst::Error&) {
    }
    return 0;
}
