#include "video/optimize_video.hpp"

#include <algorithm>

#include "core/interrupt.hpp"
#include "core/ops.hpp"
#include "video/flow.hpp"

namespace nst {
namespace {

// HWC floats on 0..1 (warp's output) -> [1, 3, H, W].
Tensor planar(const std::vector<float>& hwc, int height, int width) {
    std::vector<float> chw(hwc.size());
    const size_t plane = size_t(height) * width;
    for (size_t i = 0; i < plane; ++i)
        for (int c = 0; c < 3; ++c) chw[size_t(c) * plane + i] = hwc[i * 3 + c];
    return Tensor::from_vector(chw, {1, 3, height, width});
}

// An 8-bit mask (0 or 1 a pixel) -> [1, 3, H, W].
Tensor mask_tensor(const std::vector<uint8_t>& mask, int height, int width) {
    std::vector<float> m(size_t(3) * mask.size());
    for (int c = 0; c < 3; ++c)
        for (size_t i = 0; i < mask.size(); ++i) m[size_t(c) * mask.size() + i] = float(mask[i]);
    return Tensor::from_vector(m, {1, 3, height, width});
}

}  // namespace

std::string optimize_video(const VideoOptimization& v, const Vgg19& net, const std::vector<StyleInput>& styles,
                           const VideoEvents& events, const VideoIterationCallback& iteration) {
    const int width = v.frame.width, height = v.frame.height;
    VideoReader reader(v.in, v.info, width, height);
    VideoWriter writer(v.out, width, height, v.info, v.in);
    if (events.opened) events.opened(v.info.frames);
    Frame input{width, height, {}}, previous_input, result{width, height, {}};
    int64_t frame = 0;
    bool stopped = false;  // by a callback
    const auto go_on = [&](const GatysProgress& p, const Tensor&) {
        stopped = stopped || (iteration && !iteration(frame, p));
        return !stopped && !interrupt_requested();
    };
    while (reader.read(input.rgb)) {
        ++frame;
        check_interrupt();
        const Tensor content = scale(image_from_rgb8(input.rgb.data(), height, width), 1.f / 255.f);
        GatysOptions o = v.first;
        if (frame > 1) {
            // From the previous result moved by the flow, one stage at the final size.
            const Motion m = motion(previous_input, input);
            const Tensor moved = planar(warp(result, m.backward), height, width);
            o.scales = {std::max(height, width)};
            o.stage_iterations = {v.later_iterations};
            o.init = GatysInit::Image;
            o.init_image = moved;
            if (v.temporal_weight > 0) {
                o.temporal_target = moved;
                o.temporal_mask = mask_tensor(m.mask, height, width);
                o.temporal_weight = v.temporal_weight;
            }
        }
        const Tensor stylized = stylize_by_optimization(net, content, styles, o, go_on);
        // The frame is unfinished: not worth writing.
        if (stopped) throw Interrupted();
        check_interrupt();
        image_to_rgb8(scale(stylized, 255.f).cpu(), result.rgb);
        writer.write(result.rgb);
        previous_input = input;
        if (events.written && !events.written(frame)) throw Interrupted();
    }
    writer.finish();
    return reader.warning();
}

}  // namespace nst
