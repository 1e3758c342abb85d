#include <cstdio>
#include <nst/nst.hpp>

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s MODEL.safetensors PHOTO OUT.png\n", argv[0]);
        return 2;
    }
    try {
        const nst::StyleModel model = nst::StyleModel::load(argv[1]);  // first GPU, else CPU
        nst::save_image_file(model.stylize(nst::load_image_file(argv[2])), argv[3]);
    } catch (const nst::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
