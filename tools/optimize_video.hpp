// `nst-run optimize` on a video (Ruder, Dosovitskiy and Brox, "Artistic
// style transfer for videos", 2016): the first frame is optimized as an
// image; every later frame starts from the previous frame's result moved by
// the input's optical flow (video/flow.hpp) and adds a temporal loss
// that holds it there where the flow holds (GatysOptions::temporal_weight),
// in one stage at the final size.
#pragma once
#include <string>
#include <vector>

#include "nets/gatys.hpp"

namespace nst_run {

struct VideoOptimization {
    std::string in, out;
    int size = 512;               // longer side of the frames
    nst::GatysOptions first;      // the first frame's options (stages, iterations, ...)
    int later_iterations = 80;    // each later frame's
    float temporal_weight = 0.f;  // 0: frames optimized independently (from the warped previous result)
    bool quiet = false;
};

// Writes the stylized video (frame rate and audio kept); returns 0.
int optimize_video(const VideoOptimization& v, const nst::Vgg19& net, const std::vector<nst::StyleInput>& styles);

}  // namespace nst_run
