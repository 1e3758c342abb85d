#include "tools/optimize_video.hpp"

#include "nets/optimize.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/image.hpp"
#include "core/ops.hpp"
#include "nets/optimize.hpp"
#include "tools/command_helpers.hpp"
#include "tools/interrupt.hpp"
#include "tools/progress.hpp"
#include "video/ffmpeg.hpp"
#include "video/flow.hpp"

namespace nst_run {
namespace {

// HWC floats on 0..1 (warp's output) or an 8-bit mask -> [1, 3, H, W].
nst::Tensor planar(const std::vector<float>& hwc, int height, int width) {
    std::vector<float> chw(hwc.size());
    const size_t plane = size_t(height) * width;
    for (size_t i = 0; i < plane; ++i)
        for (int c = 0; c < 3; ++c) chw[size_t(c) * plane + i] = hwc[i * 3 + c];
    return nst::Tensor::from_vector(chw, {1, 3, height, width});
}

nst::Tensor mask_tensor(const std::vector<uint8_t>& mask, int height, int width) {
    std::vector<float> m(size_t(3) * mask.size());
    for (int c = 0; c < 3; ++c)
        for (size_t i = 0; i < mask.size(); ++i) m[size_t(c) * mask.size() + i] = float(mask[i]);
    return nst::Tensor::from_vector(m, {1, 3, height, width});
}

}  // namespace

int optimize_video(const VideoOptimization& v, const nst::Vgg19& net, const std::vector<nst::StyleInput>& styles) {
    const nst::VideoInfo info = nst::probe_video(v.in);
    const auto [height, width] = optimization_size("--size", v.size, info.height, info.width);
    NST_CHECK(width >= kMinInputSide && height >= kMinInputSide, v.in, ": frames of ", width, "x", height,
              " pixels at --size ", v.size, "; optimize needs at least ", kMinInputSide, "x", kMinInputSide);
    nst::VideoReader reader(v.in, info, width, height);
    nst::VideoWriter writer(v.out, width, height, info, v.in);
    Progress progress(info.frames, "frame", v.quiet);
    nst::Frame input{width, height, {}}, previous_input, result{width, height, {}};
    const auto stop = [](const nst::GatysProgress&, const nst::Tensor&) { return !interrupted(); };
    for (int64_t frame = 0; reader.read(input.rgb); ++frame) {
        check_interrupted();
        const nst::Tensor content = nst::scale(nst::image_from_rgb8(input.rgb.data(), height, width), 1.f / 255.f);
        nst::GatysOptions o = v.first;
        if (frame > 0) {
            // From the previous result moved by the flow, one stage at the final size.
            const nst::Motion m = nst::motion(previous_input, input);
            const nst::Tensor moved = planar(nst::warp(result, m.backward), height, width);
            o.scales = {std::max(height, width)};
            o.stage_iterations = {v.later_iterations};
            o.init = nst::GatysInit::Image;
            o.init_image = moved;
            if (v.temporal_weight > 0) {
                o.temporal_target = moved;
                o.temporal_mask = mask_tensor(m.mask, height, width);
                o.temporal_weight = v.temporal_weight;
            }
        }
        const nst::Tensor stylized = nst::stylize_by_optimization(net, content, styles, o, stop);
        check_interrupted();  // the frame is unfinished: not worth writing
        nst::image_to_rgb8(nst::scale(stylized, 255.f).cpu(), result.rgb);
        writer.write(result.rgb);
        previous_input = input;
        progress.step();
    }
    writer.finish();
    if (!reader.warning().empty()) progress.message("nst-run: warning: " + reader.warning());
    progress.finish();
    return 0;
}

}  // namespace nst_run
