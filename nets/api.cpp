// The public API (core/include/nst/nst.hpp) over the engine: images cross as
// 8-bit RGB, everything else is the same code nst-run runs.
#include <algorithm>
#include <cmath>
#include <memory>
#include <new>
#include <optional>

#include "core/autograd.hpp"
#include "core/device.hpp"
#include "core/error.hpp"
#include "core/image.hpp"
#include "core/ops.hpp"
#include "nets/api_access.hpp"
#include "nets/memory_plan.hpp"
#include "nets/optimize.hpp"
#include "nets/stylize.hpp"
#include "nets/training.hpp"
#include "nets/training_data.hpp"
#include "nets/transform_net.hpp"
#include "nst/nst.hpp"

namespace nst {
namespace api {

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

Progress progress_of(int64_t step, int64_t steps, float content, float style, float tv, float total) {
    Progress p;
    p.step = step, p.steps = steps;
    p.content_loss = content, p.style_loss = style, p.tv_loss = tv, p.total_loss = total;
    return p;
}

}  // namespace api

using namespace api;

namespace {

template <class Plan, class... Describe>
MemoryPlan memory_plan_of(const Plan& plan, const Describe&... with) {
    MemoryPlan out;
    out.fits = plan.fits, out.peak = plan.peak, out.capacity = plan.capacity;
    out.text = describe(plan, with...);
    return out;
}

}  // namespace

Image load_image_file(const std::string& path) {
    return guarded("load_image_file", [&] { return to_image(load_image(path)); });
}

void save_image_file(const Image& image, const std::string& path) {
    guarded("save_image_file", [&] { save_image(to_tensor(image, "save_image_file"), path); });
}

void set_cpu_thread_count(int threads) {
    NST_CHECK(threads >= 0, "set_cpu_thread_count: ", threads, " threads");
    cpu_set_threads(threads);
}

int cpu_thread_count() { return cpu_threads(); }

// ---- StyleModel -------------------------------------------------------------------------

struct StyleModel::Impl {
    TransformNet net;
};

StyleModel::StyleModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StyleModel::StyleModel(StyleModel&&) noexcept = default;
StyleModel& StyleModel::operator=(StyleModel&&) noexcept = default;
StyleModel::~StyleModel() = default;

StyleModel ModelAccess::make(TransformNet net) {
    return StyleModel(std::unique_ptr<StyleModel::Impl>(new StyleModel::Impl{std::move(net)}));
}

const TransformNet& ModelAccess::net(const StyleModel& model) {
    NST_CHECK(model.impl_, "StyleModel: the model was moved from");
    return model.impl_->net;
}

StyleModel StyleModel::load(const std::string& path, const std::string& device, const std::string& precision) {
    return guarded("StyleModel::load", [&] {
        const DType dtype = parse_precision(precision);
        return ModelAccess::make(TransformNet::load(path, usable_device(device)).to(dtype));
    });
}

std::vector<Image> StyleModel::stylize(const std::vector<Image>& photos, const StylizeSettings& s) const {
    NST_CHECK(impl_, "StyleModel::stylize: the model was moved from");
    return guarded("StyleModel::stylize", [&] {
        NST_CHECK(!photos.empty(), "StyleModel::stylize: no photos");
        std::vector<Tensor> in;
        for (const Image& photo : photos) in.push_back(to_tensor(photo, "stylize"));
        const Stylizer stylizer(impl_->net, {s.tile, int(photos.size()), s.preserve_color});
        stylizer.plan(in.front().size(2), in.front().size(3));  // refuses what fits nowhere
        std::vector<Image> out;
        for (const Tensor& y : stylizer.run(in)) out.push_back(to_image(y));
        return out;
    });
}

Image StyleModel::stylize(const Image& photo, const StylizeSettings& settings) const {
    return std::move(stylize(std::vector<Image>{photo}, settings).front());
}

MemoryPlan StyleModel::plan(int width, int height, int batch, const StylizeSettings& s) const {
    NST_CHECK(impl_, "StyleModel::plan: the model was moved from");
    return guarded("StyleModel::plan", [&] {
        NST_CHECK(width > 0 && height > 0 && batch > 0, "StyleModel::plan: invalid size ", width, "x", height,
                  ", batch ", batch);
        const Stylizer stylizer(impl_->net, {s.tile, batch, s.preserve_color});
        return memory_plan_of(*stylizer.plan(height, width, true), impl_->net);
    });
}

void StyleModel::save(const std::string& path) const {
    NST_CHECK(impl_, "StyleModel::save: the model was moved from");
    guarded("StyleModel::save", [&] { impl_->net.save(path); });
}

// ---- optimize -------------------------------------------------------------------------------

namespace api {

GatysOptions gatys_options(const OptimizeSettings& s) {
    NST_CHECK(s.size > 0, "optimize: size must be positive");
    GatysOptions o;
    o.scales = s.scales.empty() ? default_scales(s.size) : s.scales;
    NST_CHECK(o.scales.back() == s.size, "optimize: size ", s.size, " and scales (last ", o.scales.back(),
              ") disagree: the last scale is the final size");
    o.stage_iterations = s.iterations.empty() ? default_stage_iterations(int(o.scales.size())) : s.iterations;
    if (o.stage_iterations.size() == 1) o.stage_iterations.assign(o.scales.size(), o.stage_iterations[0]);
    o.optimizer = s.adam ? GatysOptimizer::Adam : GatysOptimizer::LBFGS;
    o.learning_rate = s.learning_rate;
    o.lbfgs_history = s.lbfgs_history;
    o.content_weight = s.content_weight, o.style_weight = s.style_weight, o.tv_weight = s.tv_weight;
    o.style_scale = s.style_scale;
    o.tile = s.tile;
    o.original_colors = s.original_colors;
    return o;
}

std::vector<StyleInput> style_inputs(const std::vector<Image>& style_images, const OptimizeSettings& s) {
    NST_CHECK(!style_images.empty(), "optimize: no style image");
    NST_CHECK(s.style_blend.empty() || s.style_blend.size() == style_images.size(), "optimize: ",
              s.style_blend.size(), " blend weights for ", style_images.size(), " style image(s)");
    std::vector<StyleInput> styles;
    for (size_t i = 0; i < style_images.size(); ++i)
        styles.push_back({scale(to_tensor(style_images[i], "optimize: style"), 1.f / 255.f),
                          s.style_blend.empty() ? 1.f : s.style_blend[i]});
    return styles;
}

}  // namespace api

namespace {

// The run of nst-run optimize, its images and network made from the settings.
struct OptimizeRun {
    Vgg19 net;
    std::unique_ptr<Optimization> optimization;
    GatysOptions options;

    OptimizeRun(const Image& content_image, const std::vector<Image>& style_images, const OptimizeSettings& s)
        : net(loss_network(s.vgg, usable_device(s.device), VggPooling::Avg)), options(gatys_options(s)) {
        optimization = std::make_unique<Optimization>(
            net, scale(to_tensor(content_image, "optimize: content"), 1.f / 255.f), style_inputs(style_images, s),
            options);
    }
};

Image optimize_image(const Image& content_image, const std::vector<Image>& style_images, const OptimizeSettings& s,
                     const ProgressCallback& callback) {
    OptimizeRun run(content_image, style_images, s);
    GatysCallback progress;
    if (callback)
        progress = [&](const GatysProgress& p, const Tensor&) {
            return callback(progress_of(p.total_iteration, p.total_iterations, p.content_loss, p.style_loss,
                                        p.tv_loss, p.total_loss));
        };
    return to_image(scale(run.optimization->run(progress), 255.f));
}

}  // namespace

Image optimize(const Image& content_image, const std::vector<Image>& style_images, const OptimizeSettings& s,
               const ProgressCallback& callback) {
    return guarded("optimize", [&] { return optimize_image(content_image, style_images, s, callback); });
}

MemoryPlan plan_optimize(const Image& content, const std::vector<Image>& styles, const OptimizeSettings& s) {
    return guarded("plan_optimize", [&] {
        OptimizeRun run(content, styles, s);
        const OptimizePlan& plan = *run.optimization->plan(true);
        MemoryPlan out;
        out.fits = plan.fits, out.capacity = plan.capacity;
        for (const StagePlan& stage : plan.stages) out.peak = std::max(out.peak, stage.peak);
        out.text = describe(plan, run.options);
        return out;
    });
}

// ---- train -------------------------------------------------------------------------------------

namespace {

// The style image at the size the run uses (nst-run's --style-size).
Tensor training_style(const Image& style_image, const TrainSettings& s) {
    NST_CHECK(s.size > 0 && s.batch > 0 && s.style_size >= 0, "train: size, batch and style_size must be positive");
    const Tensor style = scale(to_tensor(style_image, "train: style"), 1.f / 255.f);
    const ImageSize size = fit_longest_side(style.size(2), style.size(3), s.style_size > 0 ? s.style_size : s.size);
    return resize_image01(style, size.height, size.width);
}

TrainingOptions training_options(const TrainSettings& s) {
    TrainingOptions o;
    o.content_weight = s.content_weight, o.style_weight = s.style_weight, o.tv_weight = s.tv_weight;
    o.learning_rate = s.learning_rate;
    return o;
}

std::optional<TrainingPlan> training_plan(const Vgg19& vgg, const Tensor& style, const TrainSettings& s, bool asked) {
    return plan_or_refuse(asked, training_plan_needed(vgg.device(), s.batch, s.size, style.size(2) * style.size(3)),
                          [&] { return plan_training(vgg, {style.size(2), style.size(3)}, training_options(s), s.batch, s.size); });
}

StyleModel train_model(const Image& style_image, const TrainSettings& s, const ProgressCallback& callback) {
    NST_CHECK(s.steps > 0, "train: steps must be positive");
    const Device device = usable_device(s.device);
    const Tensor style = training_style(style_image, s);
    TrainingImages photos(s.photos, s.size, s.batch, s.seed);
    const Vgg19 vgg = loss_network(s.vgg, device, VggPooling::Max);
    training_plan(vgg, style, s, false);  // refuses what cannot fit, before the trainer exists
    StyleTrainer trainer(TransformNet::create(TransformNetSpec{}, s.seed, device), vgg, style, training_options(s));
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

MemoryPlan plan_train(const Image& style_image, const TrainSettings& s) {
    return guarded("plan_train", [&] {
        const Tensor style = training_style(style_image, s);
        const Vgg19 vgg = loss_network(s.vgg, usable_device(s.device), VggPooling::Max);
        return memory_plan_of(*training_plan(vgg, style, s, true));
    });
}

}  // namespace nst
