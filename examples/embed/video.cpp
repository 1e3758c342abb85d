// Stylizes a video through the installed libnst's video API (<nst/video.hpp>,
// CMake target nst::video), as nst-run does:
//   embed_video MODEL CLIP OUT.mp4 [--max-size N] [--batch N] [--no-stabilize]
//       (nst-run stylize --model MODEL --in CLIP --out OUT.mp4 ...)
//   embed_video --optimize STYLE CLIP OUT.mp4 [--size N] [--iters N]
//       (nst-run optimize --style STYLE --content CLIP --out OUT.mp4 ...)
// The callback reports progress; returning false would stop the run, and
// nothing would be written.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nst/video.hpp>

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr,
                     "usage: %s MODEL CLIP OUT.mp4 [--max-size N] [--batch N] [--no-stabilize]\n"
                     "       %s --optimize STYLE CLIP OUT.mp4 [--size N] [--iters N]\n",
                     argv[0], argv[0]);
        return 2;
    }
    const bool optimize = std::strcmp(argv[1], "--optimize") == 0;
    const int first_option = optimize ? 5 : 4;
    if (argc < first_option) {
        std::fprintf(stderr, "error: --optimize takes STYLE CLIP OUT.mp4\n");
        return 2;
    }
    const char *in = argv[first_option - 2], *out = argv[first_option - 1];
    nst::VideoSettings video;
    nst::OptimizeSettings optimization;
    for (int i = first_option; i < argc; ++i) {
        const bool has_value = i + 1 < argc;
        if (std::strcmp(argv[i], "--no-stabilize") == 0) {
            video.stabilize = false;
        } else if (std::strcmp(argv[i], "--max-size") == 0 && has_value) {
            video.max_size = std::atoi(argv[++i]);
        } else if (std::strcmp(argv[i], "--batch") == 0 && has_value) {
            video.batch = std::atoi(argv[++i]);
        } else if (std::strcmp(argv[i], "--size") == 0 && has_value) {
            optimization.size = std::atoi(argv[++i]);
        } else if (std::strcmp(argv[i], "--iters") == 0 && has_value) {
            optimization.iterations = {std::atoi(argv[++i])};
        } else {
            std::fprintf(stderr, "error: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    // Called after every frame (stylize) or iteration (optimize); false would stop.
    const auto progress = [](const nst::Progress& p) {
        if (p.step == p.steps) std::fprintf(stderr, "frame %lld of %lld\n", (long long)p.frame, (long long)p.frames);
        return true;
    };
    nst::keep_freed_frame_memory();  // faster frames, as nst-run chooses for its videos
    try {
        const nst::VideoResult result =
            optimize ? nst::optimize_video(in, out, {nst::load_image_file(argv[2])}, optimization, video, progress)
                     : nst::stylize_video(nst::StyleModel::load(argv[1]), in, out, {}, video, progress);
        if (!result.warning.empty()) std::fprintf(stderr, "warning: %s\n", result.warning.c_str());
        std::printf("%lld frames written to %s\n", (long long)result.frames, out);
    } catch (const nst::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
