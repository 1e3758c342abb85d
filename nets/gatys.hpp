// Optimization-based style transfer (Gatys, Ecker and Bethge, "Image Style
// Transfer Using Convolutional Neural Networks", CVPR 2016): the pixels of an
// image are optimized so that its VGG-19 features match the content photo's
// and its Gram matrices match the style images'.
//
// Losses, all on images [1, 3, H, W] RGB in 0..1:
//   content = content_weight * sum_l w_l * mse(F_l, P_l) / mean(P_l^2)
//   style   = style_weight   * sum_l w_l * mse(G_l, A_l) / mean(A_l^2)
//   tv      = tv_weight * tv_loss(image) / (3 H W)
// with F_l the image's features at layer l, P_l the content photo's,
// G_l = gram(F_l) / (C H W) and A_l the weighted sum of the style images'
// Grams (weights normalized to sum 1). Dividing each layer by its target's
// mean square makes every layer's loss a relative error (nets/loss_terms.hpp).
// TV is a mean so that its weight
// does not depend on the image size across the stages of a multi-scale run.
//
// Here: the options and the objective of one stage. The run (stages, the
// memory plan, the optimizer) is nets/optimize.hpp: each stage optimizes at
// one size, starting from the previous stage's result resized bilinearly;
// the content is resized from the result-sized content at every stage and
// the styles by `style_scale` relative to it. Targets are computed once per
// stage, without a graph.
#pragma once
#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/tensor.hpp"
#include "nets/loss_terms.hpp"
#include "nets/vgg19.hpp"

namespace nst {

struct StyleInput {
    Tensor image;       // [1, 3, h, w] RGB 0..1, any size and device
    float weight = 1.f;  // blend weight; the weights are normalized to sum 1
};

enum class GatysOptimizer { LBFGS, Adam };
enum class GatysInit { Content, Random, Image };

struct GatysOptions {
    std::vector<LayerWeight> content_layers{{"relu4_2", 1.f}};
    std::vector<LayerWeight> style_layers{
        {"relu1_1", 1.f}, {"relu2_1", 1.f}, {"relu3_1", 1.f}, {"relu4_1", 1.f}, {"relu5_1", 1.f}};
    // Balanced for the per-layer normalization above (relative errors): seen
    // to work with the random network and average pooling.
    float content_weight = 0.05f;
    float style_weight = 1.f;
    float tv_weight = 0.f;
    // Style images are resized so their longer side is style_scale times the
    // content's longer side (at every stage).
    float style_scale = 1.f;
    // Longer side of each stage, coarse to fine; empty: one stage at the
    // content's own size.
    std::vector<int> scales;
    int iterations = 500;  // per stage, unless stage_iterations lists them
    std::vector<int> stage_iterations;  // one per stage, coarse to fine
    GatysOptimizer optimizer = GatysOptimizer::LBFGS;
    float learning_rate = 0.f;  // 0: the optimizer's default (see default_learning_rate)
    int lbfgs_history = 100;
    GatysInit init = GatysInit::Content;
    Tensor init_image;  // GatysInit::Image: [1, 3, h, w] 0..1, resized to the first stage
    uint64_t seed = 0;  // GatysInit::Random
    // Luminance transfer at the end: the result's luma, the content's chroma.
    bool original_colors = false;
    // > 0: every N iterations (counted over all stages) the callback gets the
    // image as the run would return it at that point.
    int save_every = 0;
    // Video (Ruder et al., "Artistic style transfer for videos", 2016): a
    // temporal loss temporal_weight * mean(mask * (image - target)^2) that
    // holds the image to the previous frame's result moved by the optical
    // flow, where the flow holds (mask 1) and nowhere else (mask 0). Target
    // and mask [1, 3, H, W] of the content's size, so one stage only.
    Tensor temporal_target, temporal_mask;
    float temporal_weight = 0.f;
    // > 0: every step in tiles of this many pixels (rounded up to the deepest
    // layer's stride; nets/vgg_tiles.hpp): the untiled result, with a step's
    // memory bounded by the tile instead of the image. 0: untiled until
    // memory runs out, then the tile ladder (nets/tile_ladder.hpp).
    int tile = 0;
};

// 1 for L-BFGS (neural-style's), 0.02 for Adam (neural-style's 10 on 0..255,
// scaled to 0..1 and halved: steadier on the random network).
float default_learning_rate(GatysOptimizer optimizer);

// The loss of one stage: targets computed once at construction (no graph),
// evaluate() differentiable with respect to the image. Keeps a reference to
// the network, which must outlive it.
class GatysObjective {
public:
    // `content` fixes the size; everything is moved to the network's device.
    // `first_tile`: with options.tile 0, start in tiles of this size (a
    // memory plan's choice, nets/memory_plan.hpp), still smaller ones
    // when memory runs out.
    GatysObjective(const Vgg19& net, const Tensor& content, const std::vector<StyleInput>& styles,
                   const GatysOptions& options, int first_tile = 0);

    // image: [1, 3, H, W] of the content's size, on the network's device.
    // The losses as a graph (untiled).
    StyleLosses evaluate(const Tensor& image) const;
    // The losses' values (no graph) and their gradient, in image.grad()
    // (image must require grad): in tiles when the options or memory say so.
    // `may_tile` false: running out of memory is the caller's to handle
    // (L-BFGS gives up history first), no switch to smaller tiles.
    StyleLosses evaluate_with_gradient(const Tensor& image, bool may_tile = true);
    // The tile size in use (0: untiled).
    int tile() const { return tiled() ? tile_ : 0; }

    const Tensor& content() const { return content_; }
    // The blended style Gram matrix that is the target at a layer.
    const Tensor& style_target(const std::string& layer) const;
    // The style images as resized for this stage.
    const std::vector<Tensor>& resized_styles() const { return styles_; }

private:
    struct Term {
        std::string layer;
        float weight;   // layer weight * global weight
        Tensor target;  // untiled: the content's features or the blended Gram
        float factor;   // weight / mean(target^2)
        // Tiled content terms: the content's features each tile owns
        // (undefined where it owns none; nets/gatys_tiles.cpp).
        std::vector<Tensor> tile_targets;
    };
    // Runs f, and again in smaller tiles while memory runs out (unless the
    // tile size was given).
    template <class F>
    auto fitting(F&& f, bool may_tile = true);
    bool smaller_tiles();
    // Whether the steps run in tiles: a tile size smaller than the image.
    bool tiled() const { return tile_ > 0 && tile_ < std::max(content_.size(2), content_.size(3)); }
    // Every target and factor, in tiles when memory says so (nets/gatys_tiles.cpp).
    void make_targets();
    // The content terms' targets for the current tile size; their factors
    // too with `set_factors`.
    void make_content_targets(bool set_factors);
    void make_style_targets();
    StyleLosses tiled_evaluate_with_gradient(const Tensor& image) const;

    const Vgg19& net_;
    Tensor content_;
    std::vector<Tensor> styles_;
    std::vector<float> style_weights_;  // normalized blend weights
    std::vector<Term> content_terms_, style_terms_;
    std::vector<std::string> layers_;  // everything forward() must return
    float tv_factor_;
    Tensor temporal_target_, temporal_mask_;
    float temporal_factor_ = 0.f;  // temporal_weight / numel
    // The temporal term of `image` (a graph), or undefined without one.
    Tensor temporal_loss(const Tensor& image) const;
    int tile_ = 0;
    int targets_tile_ = -1;  // the tile size the content targets were made for
    bool tile_given_ = false;
};

// Checks of the optimization's input images, with the messages nst-run
// shows ("optimize: the <what> must be ..."): an RGB image [1, 3, H, W];
// finite values (read through the host).
void check_rgb_input(const char* what, const Tensor& image);
void check_finite_input(const std::string& what, const Tensor& image);

}  // namespace nst
