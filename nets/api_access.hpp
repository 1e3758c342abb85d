// What the public API's implementation files share: nets/api.cpp
// (<nst/nst.hpp>) and video/api.cpp (<nst/video.hpp>, in the video library,
// so that libnst stays free of OpenCV). Not installed.
#pragma once
#include <new>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "nets/gatys.hpp"
#include "nets/transform_net.hpp"
#include "nets/vgg19.hpp"
#include "nst/nst.hpp"

namespace nst {

// A StyleModel's inside (StyleModel befriends it).
class ModelAccess {
public:
    static StyleModel make(TransformNet net);
    static const TransformNet& net(const StyleModel& model);  // throws when the model was moved from
};

namespace api {

// An Image as [1, 3, H, W] 0..255, checked (`what` names it in errors) ...
Tensor to_tensor(const Image& image, const char* what);
// ... and back.
Image to_image(const Tensor& image);

// Every failure is an nst::Error, as the header promises: a std::bad_alloc
// from anywhere in f becomes an OutOfMemoryError.
template <class F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const std::bad_alloc&) {
        throw OutOfMemoryError(std::string(what) + ": out of host memory");
    }
}

Progress progress_of(int64_t step, int64_t steps, float content, float style, float tv, float total);

// optimize()'s pieces from its settings, as nst-run makes them from its flags.
Vgg19 loss_network(const std::string& path, Device device, VggPooling pooling);
GatysOptions gatys_options(const OptimizeSettings& settings);
std::vector<StyleInput> style_inputs(const std::vector<Image>& styles, const OptimizeSettings& settings);

}  // namespace api
}  // namespace nst
