// Stylizes a photo with a trained network through the installed libnst:
//   embed_example MODEL PHOTO OUT.png [--tile N] [--threads N] [--plan]
// --plan prints the memory plan (as nst-run stylize --plan does) instead.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nst/nst.hpp>

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s MODEL.safetensors PHOTO OUT.png [--tile N] [--threads N] [--plan]\n", argv[0]);
        return 2;
    }
    nst::StylizeSettings settings;
    bool plan = false;
    try {
        for (int i = 4; i < argc; ++i) {
            if (std::strcmp(argv[i], "--plan") == 0) {
                plan = true;
            } else if (std::strcmp(argv[i], "--tile") == 0 && i + 1 < argc) {
                settings.tile = std::atoi(argv[++i]);
            } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
                nst::set_cpu_thread_count(std::atoi(argv[++i]));
            } else {
                std::fprintf(stderr, "error: unknown argument %s\n", argv[i]);
                return 2;
            }
        }
        const nst::StyleModel model = nst::StyleModel::load(argv[1]);  // first GPU, else CPU
        const nst::Image photo = nst::load_image_file(argv[2]);
        if (plan) {
            std::printf("%s", model.plan(photo.width, photo.height, 1, settings).text.c_str());
            return 0;
        }
        nst::save_image_file(model.stylize(photo, settings), argv[3]);
    } catch (const nst::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
