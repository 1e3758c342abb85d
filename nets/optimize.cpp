// The optimization mode's run (nets/optimize.hpp).
#include "nets/optimize.hpp"

#include <chrono>
#include <climits>
#include <cmath>
#include <memory>

#include "core/autograd.hpp"
#include "core/device.hpp"
#include "core/interrupt.hpp"
#include "core/ops.hpp"
#include "core/optim.hpp"
#include "nets/tile_ladder.hpp"
#include "nets/vgg_tiles.hpp"

namespace nst {

std::vector<int> default_scales(int size) {
    if (size < 256) return {size};
    return {size / 2, size};
}

std::vector<int> default_stage_iterations(int stages) {
    if (stages == 1) return {500};
    std::vector<int> n(size_t(stages), 250);
    n.back() = 80;
    return n;
}

namespace {

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
            check_rgb_input("initial image", o.init_image);
            check_finite_input("initial image", o.init_image);
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

Optimization::Optimization(const Vgg19& net, Tensor content, std::vector<StyleInput> styles, GatysOptions o)
    : net_(net), content_(std::move(content)), styles_(std::move(styles)), options_(std::move(o)) {
    const GatysOptions& opt = options_;
    check_rgb_input("content image", content_);
    NST_CHECK(opt.save_every >= 0, "optimize: save_every must be >= 0, got ", opt.save_every);
    NST_CHECK(opt.lbfgs_history > 0, "optimize: the L-BFGS history must be positive, got ", opt.lbfgs_history);
    NST_CHECK(std::isfinite(opt.learning_rate) && opt.learning_rate >= 0,
              "optimize: the learning rate must be positive, got ", opt.learning_rate);
    NST_CHECK(opt.tile >= 0, "optimize: the tile size must be positive, got ", opt.tile);
    if (opt.tile > 0) {
        std::vector<std::string> layers = layer_names_of(opt.content_layers);
        for (const auto& l : opt.style_layers) layers.push_back(l.layer);
        const int64_t halo = VggTiling::halo(layers);
        NST_CHECK(opt.tile >= halo, "optimize: tile ", opt.tile, " is under the ", halo,
                  " pixels that each tile reads beyond its own on every side for these layers (a tile would "
                  "read more than 9 times its own area); use at least ",
                  halo);
    }
    for (int side : opt.scales) NST_CHECK(side > 0, "optimize: scales must be positive, got ", side);
    // Each stage's size from the result's: the result is exactly the last scale's.
    const ImageSize result = opt.scales.empty() ? ImageSize{int(content_.size(2)), int(content_.size(3))}
                                                : fit_longest_side(content_.size(2), content_.size(3), opt.scales.back());
    if (opt.scales.empty()) stages_.push_back({result, 0});
    for (int side : opt.scales) stages_.push_back({fit_longest_side(result.height, result.width, side), 0});
    NST_CHECK(opt.stage_iterations.empty() || opt.stage_iterations.size() == stages_.size(), "optimize: ",
              opt.stage_iterations.size(), " iteration counts for ", stages_.size(), " stage(s)");
    for (size_t i = 0; i < stages_.size(); ++i) {
        stages_[i].iterations = opt.stage_iterations.empty() ? opt.iterations : opt.stage_iterations[i];
        NST_CHECK(stages_[i].iterations > 0, "optimize: iterations must be positive, got ", stages_[i].iterations);
        NST_CHECK(stages_[i].iterations <= INT_MAX - total_iterations_, "optimize: too many iterations");
        total_iterations_ += stages_[i].iterations;
    }
}

const std::optional<OptimizePlan>& Optimization::plan(bool asked) {
    if (planned_ && (plan_ || !asked)) return plan_;
    planned_ = true;
    const ImageSize result = size();
    const std::pair<int64_t, int64_t> hw{result.height, result.width};
    plan_ = plan_or_refuse(asked, plan_needed(net_.device(), hw, options_), [&] {
        std::vector<std::pair<int64_t, int64_t>> style_hw;
        for (const auto& s : styles_)
            if (s.image.defined() && s.image.dim() == 4) style_hw.emplace_back(s.image.size(2), s.image.size(3));
        // The content at the result's size is still to come: at print sizes
        // resizing alone takes longer than a plan should, so it waits for the run.
        const bool resized = content_.size(2) != result.height || content_.size(3) != result.width;
        return plan_optimization(net_, hw, style_hw, options_, 0,
                                 resized ? 3 * sizeof(float) * size_t(result.pixels()) : 0);
    });
    return plan_;
}

Tensor Optimization::run(const GatysCallback& callback) {
    plan();
    const GatysOptions& o = options_;
    {
        const ImageSize result = size();
        content_ = resize_image01(content_, result.height, result.width);
    }
    const float lr = o.learning_rate > 0 ? o.learning_rate : default_learning_rate(o.optimizer);
    const auto start = std::chrono::steady_clock::now();
    const Device device = net_.device();
    // The tiles and the L-BFGS history that the plan found to fit; not
    // fitting anywhere (a plan asked for), the run tries from the smallest.
    std::vector<int> first_tiles(stages_.size(), 0), histories(stages_.size(), o.lbfgs_history);
    if (plan_) {
        for (size_t i = 0; i < plan_->stages.size(); ++i) {
            const StagePlan& sp = plan_->stages[i];
            first_tiles[i] = sp.fits ? sp.tile : (o.tile > 0 ? o.tile : kMinTile);
            if (o.optimizer == GatysOptimizer::LBFGS) histories[i] = sp.fits ? std::max(1, sp.lbfgs_history) : 1;
        }
    }
    const Tensor content_device = content_.detach().to(device);
    GatysProgress p;
    p.stages = stages();
    p.total_iterations = total_iterations_;
    Tensor image;  // the previous stage's result, then the current one
    Tensor content;  // the stage's content, for finished()

    for (p.stage = 0; p.stage < p.stages; ++p.stage) {
        const Stage& st = stages_[size_t(p.stage)];
        const int height = st.size.height, width = st.size.width;
        p.height = height, p.width = width, p.iterations = st.iterations;
        std::unique_ptr<GatysObjective> made;
        try {
            made = std::make_unique<GatysObjective>(net_, resize_image01(content_device, height, width), styles_,
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
            image = p.stage == 0 ? initial_image(o, content) : resize_bilinear(image, height, width);
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

Tensor stylize_by_optimization(const Vgg19& net, const Tensor& content, const std::vector<StyleInput>& styles,
                               const GatysOptions& options, const GatysCallback& callback) {
    return Optimization(net, content, styles, options).run(callback);
}

}  // namespace nst
