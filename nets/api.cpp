// The public API (core/include/nst/nst.hpp) over the engine: images cross as
// 8-bit RGB, everything else is the same code nst-run runs.
#include <algorithm>
#include <cmath>
#include <new>

#include "core/autograd.hpp"
#include "core/device.hpp"
#include "core/error.hpp"
#include "core/image.hpp"
#include "core/ops.hpp"
#include "nets/gatys.hpp"
#include "nets/training.hpp"
#include "nets/training_data.hpp"
#include "nets/transform_net.hpp"
#include "nst/nst.hpp"

namespace nst {
namespace {

Tensor to_tensor(const Image& image, const char* what) {
    NST_CHECK(image.width > 0 && image.height > 0 && image.width <= kMaxImageSide && image.height <= kMaxImageSide,
              what, ": invalid size ", image.width, "x", image.height);
    NST_CHECK(image.rgb.size() == size_t(image.width) * size_t(image.height) * 3, what, ": ", image.rgb.size(),
              " bytes for ", image.width, "x", image.height, " RGB (need ",
              size_t(image.width) * size_t(image.height) * 3, ")");
    return image_from_rgb8(image.rgb.data(), image.height, image.width);
}

Image to_image(const Tensor& t) {
    Image image;
    image.height = int(t.size(2)), image.width = int(t.size(3));
    image_to_rgb8(t, image.rgb);
    return image;
}

Vgg19 loss_network(const std::string& path, Device device, VggPooling pooling) {
    if (path.empty()) return Vgg19::random(19, device, pooling);
    return Vgg19::load(path, guess_vgg_flavor(path), device, pooling);
}

// Every failure is an nst::Error, as the header promises: a std::bad_alloc
// from anywhere becomes an OutOfMemoryError.
template <class F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const std::bad_alloc&) {
        throw OutOfMemoryError(std::string(what) + ": out of host memory");
    }
}

Progress progress_of(int64_t step, int64_t steps, float content, float style, float tv, float total) {
    Progress p;
    p.step = step, p.steps = steps;
    p.content_loss = content, p.style_loss = style, p.tv_loss = tv, p.total_loss = total;
    return p;
}

}  // namespace

Image load_image_file(const std::string& path) {
    return guarded("load_image_file", [&] { return to_image(load_image(path)); });
}

void save_image_file(const Image& image, const std::string& path) {
    guarded("save_image_file", [&] { save_image(to_tensor(image, "save_image_file"), path); });
}

// ---- StyleModel -------------------------------------------------------------------------

struct StyleModel::Impl {
    TransformNet net;
};

StyleModel::StyleModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StyleModel::StyleModel(StyleModel&&) noexcept = default;
StyleModel& StyleModel::operator=(StyleModel&&) noexcept = default;
StyleModel::~StyleModel() = default;

// Builds StyleModels inside the library (train() needs it).
class ModelAccess {
public:
    static StyleModel make(TransformNet net) {
        return StyleModel(std::unique_ptr<StyleModel::Impl>(new StyleModel::Impl{std::move(net)}));
    }
};

StyleModel StyleModel::load(const std::string& path, const std::string& device, const std::string& precision) {
    return guarded("StyleModel::load", [&] {
        const DType dtype = parse_precision(precision);
        return ModelAccess::make(TransformNet::load(path, usable_device(device)).to(dtype));
    });
}

Image StyleModel::stylize(const Image& photo, bool preserve_color) const {
    NST_CHECK(impl_, "StyleModel::stylize: the model was moved from");
    return guarded("StyleModel::stylize", [&] {
        const Tensor x = to_tensor(photo, "stylize").to(impl_->net.device());
        Tensor y = impl_->net.stylize_fitting(x);  // tiles, with the same result, when it must
        if (preserve_color) {
            NoGradGuard no_grad;
            y = luminance_transfer(y, x);
        }
        return to_image(y);
    });
}

void StyleModel::save(const std::string& path) const {
    NST_CHECK(impl_, "StyleModel::save: the model was moved from");
    guarded("StyleModel::save", [&] { impl_->net.save(path); });
}

// ---- optimize -------------------------------------------------------------------------------

namespace {

Image optimize_image(const Image& content_image, const std::vector<Image>& style_images, const OptimizeSettings& s,
                     const ProgressCallback& callback) {
    NST_CHECK(s.size > 0 && s.iterations > 0, "optimize: size and iterations must be positive");
    NST_CHECK(!style_images.empty(), "optimize: no style image");
    const Device device = usable_device(s.device);
    Tensor content = scale(to_tensor(content_image, "optimize: content"), 1.f / 255.f);
    const auto [h, w] = fit_longest_side(content.size(2), content.size(3), s.size);
    content = resize_image01(content, h, w);
    std::vector<StyleInput> styles;
    for (const Image& style : style_images) styles.push_back({scale(to_tensor(style, "optimize: style"), 1.f / 255.f), 1.f});

    GatysOptions o;
    o.iterations = s.iterations;
    o.optimizer = s.adam ? GatysOptimizer::Adam : GatysOptimizer::LBFGS;
    o.content_weight = s.content_weight, o.style_weight = s.style_weight, o.tv_weight = s.tv_weight;
    o.original_colors = s.original_colors;
    const Vgg19 net = loss_network(s.vgg, device, VggPooling::Avg);
    GatysCallback progress;
    if (callback)
        progress = [&](const GatysProgress& p, const Tensor&) {
            return callback(progress_of(p.total_iteration, p.total_iterations, p.content_loss, p.style_loss,
                                        p.tv_loss, p.total_loss));
        };
    return to_image(scale(stylize_by_optimization(net, content, styles, o, progress), 255.f));
}

}  // namespace

Image optimize(const Image& content_image, const std::vector<Image>& style_images, const OptimizeSettings& s,
               const ProgressCallback& callback) {
    return guarded("optimize", [&] { return optimize_image(content_image, style_images, s, callback); });
}

// ---- train -------------------------------------------------------------------------------------

namespace {

StyleModel train_model(const Image& style_image, const TrainSettings& s, const ProgressCallback& callback) {
    NST_CHECK(s.steps > 0, "train: steps must be positive");
    const Device device = usable_device(s.device);
    Tensor style = scale(to_tensor(style_image, "train: style"), 1.f / 255.f);
    const auto [h, w] = fit_longest_side(style.size(2), style.size(3), s.size);
    style = resize_image01(style, h, w);
    TrainingOptions o;
    o.content_weight = s.content_weight, o.style_weight = s.style_weight, o.tv_weight = s.tv_weight;
    o.learning_rate = s.learning_rate;
    TrainingImages photos(s.photos, s.size, s.batch, s.seed);
    const Vgg19 vgg = loss_network(s.vgg, device, VggPooling::Max);
    StyleTrainer trainer(TransformNet::create(TransformNetSpec{}, s.seed, device), vgg, style, o);
    while (trainer.steps() < s.steps) {
        const TrainingLosses l = trainer.step(photos.next());
        if (!callback) continue;
        Progress p = progress_of(trainer.steps(), s.steps, l.content, l.style, l.tv, l.total);
        p.unreadable_photos = int64_t(photos.skipped());
        if (!callback(p)) break;
    }
    return ModelAccess::make(trainer.network());
}

}  // namespace

StyleModel train(const Image& style, const TrainSettings& settings, const ProgressCallback& callback) {
    return guarded("train", [&] { return train_model(style, settings, callback); });
}

}  // namespace nst
