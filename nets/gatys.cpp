// Optimization-based style transfer (nets/gatys.hpp). The optimized image is
// a leaf tensor on the network's device; per iteration the only host traffic
// is the loss scalars (progress, NaN check) and L-BFGS's inner products. The
// last image with a finite loss is kept by a device-to-device copy, so a NaN
// costs nothing but the iterations since.
#include "nets/gatys.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <map>
#include <memory>

#include "core/autograd.hpp"
#include "core/image.hpp"
#include "core/interrupt.hpp"
#include "core/ops.hpp"
#include "core/optim.hpp"
#include "nets/memory_plan.hpp"

namespace nst {
namespace {

void check_image(const char* what, const Tensor& image) {
    NST_CHECK(image.defined() && image.dim() == 4 && image.size(0) == 1 && image.size(1) == 3,
              "optimize: the ", what, " must be an RGB image [1, 3, H, W], got ",
              image.defined() ? shape_str(image.shape()) : std::string("nothing"));
}

// A feature map must survive the poolings before the deepest layer used.
void check_min_size(const char* what, const Tensor& image, const std::vector<std::string>& layers) {
    const int64_t need = min_side_for(layers);
    int deepest = 0;
    for (const auto& l : layers) deepest = std::max(deepest, Vgg19::layer_index(l));
    NST_CHECK(image.size(2) >= need && image.size(3) >= need, "optimize: the ", what, " is ",
              image.size(3), "x", image.size(2), " pixels; layer ", Vgg19::layer_names()[size_t(deepest)],
              " needs at least ", need, " per side");
}

// Checked up front: ReLU maps NaN to 0, so a NaN pixel would otherwise
// silently corrupt a target instead of surfacing as a NaN loss.
void check_finite(const std::string& what, const Tensor& image) {
    for (float v : image.to_vector())
        NST_CHECK(std::isfinite(v), "optimize: the ", what, " contains NaN or infinite values");
}

void check_weight(const char* what, float w) { check_loss_weight("optimize", what, w); }

}  // namespace

float default_learning_rate(GatysOptimizer optimizer) {
    return optimizer == GatysOptimizer::LBFGS ? 1.f : 0.02f;
}

std::pair<int, int> fit_longest_side(int64_t height, int64_t width, int side) {
    NST_CHECK(height > 0 && width > 0 && side > 0, "optimize: invalid size ", width, "x", height,
              " -> longest side ", side);
    const double k = double(side) / double(std::max(height, width));
    return {std::max(1, int(std::lround(double(height) * k))),
            std::max(1, int(std::lround(double(width) * k)))};
}

Tensor resize_bilinear(const Tensor& image, int height, int width) {
    check_image("image to resize", image);
    NST_CHECK(height > 0 && width > 0, "resize_bilinear: invalid size ", width, "x", height);
    const int H = int(image.size(2)), W = int(image.size(3));
    if (H == height && W == width) return image.detach().clone();
    const std::vector<float> in = image.to_vector();
    std::vector<float> out(size_t(3) * height * width);
    // Source coordinate of each destination row/column, as PyTorch computes it.
    auto taps = [](int in_size, int out_size, std::vector<int>& i0, std::vector<int>& i1,
                   std::vector<float>& frac) {
        const double scale = double(in_size) / double(out_size);
        for (int o = 0; o < out_size; ++o) {
            const double src = std::max(0.0, scale * (o + 0.5) - 0.5);
            i0.push_back(std::min(int(src), in_size - 1));
            i1.push_back(std::min(i0.back() + 1, in_size - 1));
            frac.push_back(float(src - i0.back()));
        }
    };
    std::vector<int> y0, y1, x0, x1;
    std::vector<float> fy, fx;
    taps(H, height, y0, y1, fy);
    taps(W, width, x0, x1, fx);
    for (int c = 0; c < 3; ++c) {
        const float* p = in.data() + size_t(c) * H * W;
        float* q = out.data() + size_t(c) * height * width;
        for (int y = 0; y < height; ++y) {
            const float* r0 = p + size_t(y0[y]) * W;
            const float* r1 = p + size_t(y1[y]) * W;
            for (int x = 0; x < width; ++x) {
                const float top = r0[x0[x]] + fx[x] * (r0[x1[x]] - r0[x0[x]]);
                const float bottom = r1[x0[x]] + fx[x] * (r1[x1[x]] - r1[x0[x]]);
                q[size_t(y) * width + x] = top + fy[y] * (bottom - top);
            }
        }
    }
    return Tensor::from_vector(out, {1, 3, height, width}, image.device());
}

Tensor resize_image01(const Tensor& image, int height, int width) {
    check_image("image to resize", image);
    if (image.size(2) == height && image.size(3) == width) return image;
    NoGradGuard no_grad;
    return scale(resize_image(scale(image, 255.f), height, width), 1.f / 255.f);
}

// ---- the objective ---------------------------------------------------------------------

GatysObjective::GatysObjective(const Vgg19& net, const Tensor& content,
                               const std::vector<StyleInput>& styles, const GatysOptions& o, int first_tile)
    : net_(net), tile_(o.tile > 0 ? o.tile : std::max(first_tile, 0)), tile_given_(o.tile > 0) {
    NoGradGuard no_grad;
    check_image("content image", content);
    check_finite("content image", content);
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
            check_image("style image", styles[i].image);
            check_finite("style image " + std::to_string(i + 1), styles[i].image);
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
        check_finite("temporal target", o.temporal_target);
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

// ---- the run ------------------------------------------------------------------------------

namespace {

struct Stage {
    int height, width, iterations;
};

Tensor initial_image(const GatysOptions& o, const Tensor& content) {
    NoGradGuard no_grad;
    const int h = int(content.size(2)), w = int(content.size(3));
    switch (o.init) {
        case GatysInit::Content: return content.clone();
        case GatysInit::Random: {
            // Noise around the ImageNet mean colour: the network's neutral input.
            const Tensor noise = Tensor::randn({1, 3, h, w}, o.seed, content.device(), 0.f, 0.1f);
            return normalize_channels(noise, {-0.485f, -0.456f, -0.406f}, {1.f, 1.f, 1.f});
        }
        case GatysInit::Image:
            check_image("initial image", o.init_image);
            check_finite("initial image", o.init_image);
            return resize_image01(o.init_image.to(content.device()), h, w).clone();
    }
    fail("optimize: unknown init");
}

// What the run returns: the image, with the content's chroma if asked.
Tensor finished(const Tensor& image, const Tensor& content, bool original_colors) {
    NoGradGuard no_grad;
    // Luminance transfer is linear without offsets, so 0..1 works as 0..255 does.
    return original_colors ? luminance_transfer(image.detach(), content) : image.detach().clone();
}

std::string number(float v) { return std::isnan(v) ? "nan" : detail::concat(v); }

std::string loss_text(const GatysProgress& p) {
    return "content " + number(p.content_loss) + ", style " + number(p.style_loss) + ", tv " + number(p.tv_loss);
}

}  // namespace

Tensor stylize_by_optimization(const Vgg19& net, const Tensor& content_in,
                               const std::vector<StyleInput>& styles, const GatysOptions& o,
                               const GatysCallback& callback, const OptimizePlan* given_plan) {
    check_image("content image", content_in);
    NST_CHECK(o.save_every >= 0, "optimize: save_every must be >= 0, got ", o.save_every);
    NST_CHECK(o.lbfgs_history > 0, "optimize: the L-BFGS history must be positive, got ", o.lbfgs_history);
    NST_CHECK(std::isfinite(o.learning_rate) && o.learning_rate >= 0,
              "optimize: the learning rate must be positive, got ", o.learning_rate);
    const float lr = o.learning_rate > 0 ? o.learning_rate : default_learning_rate(o.optimizer);

    std::vector<Stage> stages;
    if (o.scales.empty()) stages.push_back({int(content_in.size(2)), int(content_in.size(3)), 0});
    for (int side : o.scales) {
        NST_CHECK(side > 0, "optimize: scales must be positive, got ", side);
        const auto [h, w] = fit_longest_side(content_in.size(2), content_in.size(3), side);
        stages.push_back({h, w, 0});
    }
    NST_CHECK(o.stage_iterations.empty() || o.stage_iterations.size() == stages.size(), "optimize: ",
              o.stage_iterations.size(), " iteration counts for ", stages.size(), " stage(s)");
    int total_iterations = 0;
    for (size_t i = 0; i < stages.size(); ++i) {
        stages[i].iterations = o.stage_iterations.empty() ? o.iterations : o.stage_iterations[i];
        NST_CHECK(stages[i].iterations > 0, "optimize: iterations must be positive, got ", stages[i].iterations);
        NST_CHECK(stages[i].iterations <= INT_MAX - total_iterations, "optimize: too many iterations");
        total_iterations += stages[i].iterations;
    }

    const auto start = std::chrono::steady_clock::now();
    const Device device = net.device();
    // Where the run could come near the memory: the tiles and the L-BFGS
    // history that a plan finds to fit.
    std::vector<int> first_tiles(stages.size(), 0), histories(stages.size(), o.lbfgs_history);
    if (given_plan || plan_needed(device, {content_in.size(2), content_in.size(3)}, o)) {
        OptimizePlan plan;
        if (given_plan) {
            plan = *given_plan;
        } else {
            std::vector<std::pair<int64_t, int64_t>> style_hw;
            for (const auto& s : styles)
                if (s.image.defined() && s.image.dim() == 4) style_hw.emplace_back(s.image.size(2), s.image.size(3));
            try {
                plan = plan_optimization(net, {content_in.size(2), content_in.size(3)}, style_hw, o);
            } catch (const OutOfMemoryError&) {
                // Not even the measuring steps fit: the run's own fallbacks (tiles, history) go on from here.
            }
        }
        for (size_t i = 0; i < plan.stages.size(); ++i) {
            const StagePlan& sp = plan.stages[i];
            // Not fitting anywhere: try anyway from the smallest tiles and history.
            first_tiles[i] = sp.fits ? sp.tile : (o.tile > 0 ? o.tile : kMinOptimizeTile);
            if (o.optimizer == GatysOptimizer::LBFGS) histories[i] = sp.fits ? std::max(1, sp.lbfgs_history) : 1;
        }
    }
    const Tensor content_device = content_in.detach().to(device);
    GatysProgress p;
    p.stages = int(stages.size());
    p.total_iterations = total_iterations;
    Tensor image;  // the previous stage's result, then the current one
    Tensor content;  // the stage's content, for finished()

    for (p.stage = 0; p.stage < p.stages; ++p.stage) {
        const Stage& st = stages[size_t(p.stage)];
        p.height = st.height, p.width = st.width, p.iterations = st.iterations;
        std::unique_ptr<GatysObjective> made;
        try {
            made = std::make_unique<GatysObjective>(net, resize_image01(content_device, st.height, st.width), styles,
                                                    o, first_tiles[size_t(p.stage)]);
        } catch (const Interrupted&) {
            // Between the tiles of the stage's targets: the previous stage's
            // result is the run's, as when stopped after its last iteration.
            if (p.stage == 0) throw;
            return finished(image, content, o.original_colors);
        }
        GatysObjective& objective = *made;
        content = objective.content();
        {
            NoGradGuard no_grad;
            image = p.stage == 0 ? initial_image(o, content) : resize_bilinear(image, st.height, st.width);
            image = image.detach().contiguous().clone();
        }
        image.set_requires_grad();
        Tensor last_good = finished(image, content, false);
        int last_good_iteration = p.total_iteration;

        std::unique_ptr<Adam> adam;
        std::unique_ptr<LBFGS> lbfgs;
        float lbfgs_scale = 0;  // set at the stage's first evaluation
        if (o.optimizer == GatysOptimizer::Adam) {
            adam = std::make_unique<Adam>(std::vector<Tensor>{image}, Adam::Options{lr, 0.9f, 0.999f, 1e-8f});
        } else {
            lbfgs = std::make_unique<LBFGS>(image, LBFGS::Options{lr, histories[size_t(p.stage)], 1e-9f});
        }

        // The losses and the gradient (in tiles if need be), checked. Out of
        // memory, L-BFGS gives up history first (core/optim.hpp); without
        // history, the objective goes to smaller tiles.
        p.planned_tile = objective.tile();
        auto evaluate = [&]() -> Tensor {
            const StyleLosses l = objective.evaluate_with_gradient(image, !lbfgs || lbfgs->pairs() == 0);
            p.tile = objective.tile();
            p.content_loss = l.content.item(), p.style_loss = l.style.item(), p.tv_loss = l.tv.item();
            p.temporal_loss = l.temporal.defined() ? l.temporal.item() : 0.f;
            p.total_loss = l.total.item();
            if (!std::isfinite(p.total_loss)) {
                throw NonFiniteLossError(
                    detail::concat("optimize: the loss is not finite at iteration ", p.total_iteration + 1,
                                   " (", loss_text(p),
                                   "); stopped, ",
                                   last_good_iteration == 0 ? std::string("before any step")
                                                            : detail::concat("keeping the image of iteration ",
                                                                             last_good_iteration)),
                    finished(last_good, content, o.original_colors), last_good_iteration);
            }
            axpby(1.f, image, 0.f, last_good);  // last_good = image, in its own memory
            last_good_iteration = p.total_iteration;
            if (!lbfgs) return l.total;
            // L-BFGS (PyTorch's algorithm) is scale-invariant but for its
            // first step, min(1, 1/|g|) * lr, and its absolute thresholds
            // (a curvature pair counts only if y.s > 1e-10): with the small
            // normalized losses it would crawl by gradient descent for tens
            // of iterations. Scaling the loss so that the stage's first
            // gradient has unit norm makes it independent of the loss scale.
            if (lbfgs_scale == 0) {
                const float norm = std::sqrt(sum_squares(image.grad()).item());
                lbfgs_scale = norm > 0 && std::isfinite(norm) ? 1.f / norm : 1.f;
            }
            Tensor g = image.grad();
            axpby(lbfgs_scale, g, 0.f, g);
            NoGradGuard no_grad;
            return scale(l.total.detach(), lbfgs_scale);
        };

        for (p.iteration = 1; p.iteration <= st.iterations; ++p.iteration) {
            bool converged = false;
            try {
                if (adam) {
                    evaluate();
                    adam->step();
                } else {
                    lbfgs->step(evaluate, &converged);
                }
            } catch (const Interrupted&) {
                // Between the tiles of a step (core/interrupt.hpp): a step
                // moves the image only after its evaluation, so `image` is
                // the last completed iteration's, which is what stopping
                // between iterations returns too. None completed: nothing.
                if (p.total_iteration == 0) throw;
                return finished(image, content, o.original_colors);
            }
            if (converged) break;  // L-BFGS made no progress: the image did not move
            ++p.total_iteration;
            p.lbfgs_history = lbfgs ? lbfgs->history() : 0;
            p.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            p.snapshot = o.save_every > 0 && p.total_iteration % o.save_every == 0;
            if (callback) {
                const Tensor shown = p.snapshot ? finished(image, content, o.original_colors) : Tensor();
                if (!callback(p, shown)) return finished(image, content, o.original_colors);
            }
        }
        if (p.stage + 1 == p.stages) return finished(image, content, o.original_colors);
    }
    fail("optimize: no stages");
}

}  // namespace nst
