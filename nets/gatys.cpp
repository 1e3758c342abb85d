// The optimization mode's objective (nets/gatys.hpp); its untiled targets
// and evaluation here, the tiled ones in nets/gatys_tiles.cpp.
#include "nets/gatys.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "core/autograd.hpp"
#include "core/image.hpp"
#include "core/ops.hpp"

namespace nst {

void check_rgb_input(const char* what, const Tensor& image) {
    NST_CHECK(image.defined() && image.dim() == 4 && image.size(0) == 1 && image.size(1) == 3,
              "optimize: the ", what, " must be an RGB image [1, 3, H, W], got ",
              image.defined() ? shape_str(image.shape()) : std::string("nothing"));
}

// Checked up front: ReLU maps NaN to 0, so a NaN pixel would otherwise
// silently corrupt a target instead of surfacing as a NaN loss.
void check_finite_input(const std::string& what, const Tensor& image) {
    for (float v : image.to_vector())
        NST_CHECK(std::isfinite(v), "optimize: the ", what, " contains NaN or infinite values");
}

namespace {

// A feature map must survive the poolings before the deepest layer used.
void check_min_size(const char* what, const Tensor& image, const std::vector<std::string>& layers) {
    const int64_t need = min_side_for(layers);
    int deepest = 0;
    for (const auto& l : layers) deepest = std::max(deepest, Vgg19::layer_index(l));
    NST_CHECK(image.size(2) >= need && image.size(3) >= need, "optimize: the ", what, " is ",
              image.size(3), "x", image.size(2), " pixels; layer ", Vgg19::layer_names()[size_t(deepest)],
              " needs at least ", need, " per side");
}

void check_weight(const char* what, float w) { check_loss_weight("optimize", what, w); }

}  // namespace

float default_learning_rate(GatysOptimizer optimizer) {
    return optimizer == GatysOptimizer::LBFGS ? 1.f : 0.02f;
}

// ---- the objective ---------------------------------------------------------------------

GatysObjective::GatysObjective(const Vgg19& net, const Tensor& content,
                               const std::vector<StyleInput>& styles, const GatysOptions& o, int first_tile)
    : net_(net), tile_(o.tile > 0 ? o.tile : std::max(first_tile, 0)), tile_given_(o.tile > 0) {
    NoGradGuard no_grad;
    check_rgb_input("content image", content);
    check_finite_input("content image", content);
    check_weight("the content weight", o.content_weight);
    check_weight("the style weight", o.style_weight);
    check_weight("the TV weight", o.tv_weight);
    NST_CHECK(std::isfinite(o.style_scale) && o.style_scale > 0,
              "optimize: the style scale must be positive, got ", o.style_scale);
    NST_CHECK(o.tile >= 0, "optimize: the tile size must be >= 0, got ", o.tile);
    const Device device = net.device();
    content_ = content.detach().to(device).contiguous();

    const std::vector<LayerWeight> content_layers = active_layers(o.content_layers, o.content_weight, "optimize");
    const std::vector<LayerWeight> style_layers = active_layers(o.style_layers, o.style_weight, "optimize");
    for (const auto& l : content_layers) layers_.push_back(l.layer);
    for (const auto& l : style_layers) layers_.push_back(l.layer);
    NST_CHECK(!layers_.empty() || o.tv_weight > 0,
              "optimize: nothing to optimize (no content or style layer with a positive weight)");
    if (!layers_.empty()) check_min_size("content image", content_, layers_);
    for (const auto& l : content_layers) content_terms_.push_back({l.layer, o.content_weight * l.weight, {}, 0, {}});

    if (!style_layers.empty()) {
        NST_CHECK(!styles.empty(), "optimize: no style image (the style weight is positive)");
        double weight_sum = 0;
        for (const auto& s : styles) {
            check_weight("a style blend weight", s.weight);
            weight_sum += s.weight;
        }
        NST_CHECK(weight_sum > 0, "optimize: the style blend weights are all zero");
        const int side = int(std::lround(o.style_scale * double(std::max(content_.size(2), content_.size(3)))));
        for (size_t i = 0; i < styles.size(); ++i) {
            check_rgb_input("style image", styles[i].image);
            check_finite_input("style image " + std::to_string(i + 1), styles[i].image);
            const auto [h, w] = fit_longest_side(styles[i].image.size(2), styles[i].image.size(3), std::max(side, 1));
            Tensor style = resize_image01(styles[i].image, h, w).to(device).contiguous();
            const std::string what = "style image " + std::to_string(i + 1) + " (after the style scale)";
            check_min_size(what.c_str(), style, layer_names_of(style_layers));
            styles_.push_back(style);
            style_weights_.push_back(float(styles[i].weight / weight_sum));
        }
        for (const auto& l : style_layers) style_terms_.push_back({l.layer, o.style_weight * l.weight, {}, 0, {}});
    }
    tv_factor_ = o.tv_weight / float(content_.numel());
    check_weight("the temporal weight", o.temporal_weight);
    if (o.temporal_weight > 0) {
        for (const Tensor* t : {&o.temporal_target, &o.temporal_mask})
            NST_CHECK(t->defined() && t->shape() == content_.shape(), "optimize: the temporal target and mask must be ",
                      shape_str(content_.shape()), " (the stage's size), got ",
                      t->defined() ? shape_str(t->shape()) : std::string("nothing"));
        check_finite_input("temporal target", o.temporal_target);
        temporal_target_ = o.temporal_target.detach().to(device).contiguous();
        temporal_mask_ = o.temporal_mask.detach().to(device).contiguous();
        temporal_factor_ = o.temporal_weight / float(content_.numel());
    }
    make_targets();
}

const Tensor& GatysObjective::style_target(const std::string& layer) const {
    for (const auto& t : style_terms_)
        if (t.layer == layer) return t.target;
    fail("optimize: no style target at layer " + layer);
}

StyleLosses GatysObjective::evaluate(const Tensor& image) const {
    NST_CHECK(image.defined() && image.shape() == content_.shape(), "optimize: image ",
              image.defined() ? shape_str(image.shape()) : std::string("undefined"),
              " does not match the content ", shape_str(content_.shape()));
    NST_CHECK(!tiled(), "optimize: evaluate() is untiled; this objective runs in tiles of ", tile_,
              " (evaluate_with_gradient)");
    const Device device = content_.device();
    StyleLosses l;
    l.content = Tensor::zeros({}, device);
    l.style = Tensor::zeros({}, device);
    if (!layers_.empty()) {
        const auto features = net_.forward(image, layers_);
        for (const auto& t : content_terms_)
            l.content = add(l.content, scale(mse_loss(features.at(t.layer), t.target), t.factor));
        for (const auto& t : style_terms_)
            l.style = add(l.style, scale(mse_loss(style_gram(features.at(t.layer)), t.target), t.factor));
    }
    l.tv = tv_factor_ > 0 ? scale(tv_loss(image), tv_factor_) : Tensor::zeros({}, device);
    l.total = add(add(l.content, l.style), l.tv);
    l.temporal = temporal_loss(image);
    if (l.temporal.defined()) l.total = add(l.total, l.temporal);
    return l;
}

Tensor GatysObjective::temporal_loss(const Tensor& image) const {
    if (temporal_factor_ <= 0) return Tensor();
    return scale(sum_squares(mul(temporal_mask_, add(image, scale(temporal_target_, -1.f)))), temporal_factor_);
}

}  // namespace nst
