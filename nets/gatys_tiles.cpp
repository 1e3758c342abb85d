// Optimization mode's targets and its loss and gradient, whole or in tiles
// (GatysObjective, nets/gatys.hpp; the tile geometry in nets/vgg_tiles.hpp).
//
// A tiled step gives the untiled losses and gradient up to float rounding,
// in two passes over the tiles:
//  1. without a graph: each tile's owned features add their share to every
//     style layer's Gram matrix and every content layer's sum of squared
//     differences. That gives the losses, and each style loss's gradient
//     with respect to its Gram matrix, dL/dG = 2 w (G - A) / C^2, which
//     needs the whole image's G;
//  2. with a graph, one tile at a time: the tile's forward, then one
//     backward from all its roots at once (core/autograd.hpp): each style
//     layer's Gram of the owned features seeded with dL/dG, each content
//     layer's share of its loss seeded with 1. The tile's input is a crop of
//     the image, so the backward adds the tile's gradient, halo included,
//     into image.grad().
// A step costs two forwards and one backward per tile, over the tiles' halos
// too, and holds one tile's graph. Total variation and the temporal loss of
// video frames are cheap (3 values per pixel) and computed on the whole image.
//
// Targets: the content's features are made tile by tile and kept per tile
// (what each owns, 32 bytes per pixel at relu4_2); the style images' Grams
// are summed over their own tiles.
#include <algorithm>
#include <new>

#include "core/autograd.hpp"
#include "core/device.hpp"
#include "core/interrupt.hpp"
#include "core/ops.hpp"
#include "nets/gatys.hpp"
#include "nets/tile_ladder.hpp"
#include "nets/vgg_tiles.hpp"

namespace nst {
namespace {

// The Gram matrix of a whole feature map, from a tile's owned part: the
// whole map's normalization, C * H * W.
Tensor owned_gram(const Tensor& owned, const VggTiling& tiling, const std::string& layer) {
    const auto [h, w] = tiling.feature_size(layer);
    return gram(owned, float(owned.size(1) * h * w));
}

void accumulate(Tensor& sum, const Tensor& term) { sum = sum.defined() ? add(sum, term) : term; }

int64_t feature_numel(const VggTiling& tiling, const std::string& layer, int64_t channels) {
    const auto [h, w] = tiling.feature_size(layer);
    return channels * h * w;
}

// Style transfer's Gram of an image at `layers`: whole, or summed over tiles.
std::map<std::string, Tensor> grams_of(const Vgg19& net, const Tensor& image, const std::vector<std::string>& layers,
                                       int tile) {
    NoGradGuard no_grad;
    std::map<std::string, Tensor> out;
    if (tile == 0) {
        const auto features = net.forward(image, layers);
        for (const auto& l : layers) out[l] = style_gram(features.at(l));
        return out;
    }
    const VggTiling tiling(image.size(2), image.size(3), layers, tile);
    for (const VggTile& t : tiling.tiles()) {
        check_interrupt();
        const auto features = net.forward(tiling.input(image, t), layers);
        for (const auto& l : layers) {
            const Tensor owned = tiling.owned(features.at(l), l, t);
            if (owned.defined()) accumulate(out[l], owned_gram(owned, tiling, l));
        }
    }
    return out;
}

bool out_of_memory(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const OutOfMemoryError&) {
        return true;
    } catch (const SizeLimitError&) {
        return true;
    } catch (const std::bad_alloc&) {
        return true;
    } catch (...) {
        return false;
    }
}

}  // namespace

template <class F>
auto GatysObjective::fitting(F&& f, bool may_tile) {
    for (;;) {
        try {
            return f();
        } catch (...) {
            if (!may_tile || !out_of_memory(std::current_exception()) || !smaller_tiles()) throw;
        }
    }
}

// The next rung of the tile ladder (nets/tile_ladder.hpp) below the current tile.
bool GatysObjective::smaller_tiles() {
    if (tile_given_) return false;
    int next = 0;
    for (int t : tile_ladder(kLargestOptimizeTile, std::max(content_.size(2), content_.size(3))))
        if (tile_ == 0 || t < tile_) {
            next = t;
            break;
        }
    if (next == 0) return false;
    tile_ = next;
    // The untiled targets go; what the failed attempt left cached is given back.
    for (Term& t : content_terms_) t.target = Tensor();
    if (content_.device().is_cuda()) cuda_empty_cache(content_.device().index);
    return true;
}

void GatysObjective::make_targets() {
    fitting([&] {
        make_content_targets(true);
        make_style_targets();
        return 0;
    });
}

void GatysObjective::make_content_targets(bool set_factors) {
    NoGradGuard no_grad;
    targets_tile_ = -1;
    if (content_terms_.empty()) {
        targets_tile_ = tile_;
        return;
    }
    std::vector<std::string> names;
    for (const Term& t : content_terms_) names.push_back(t.layer);
    if (!tiled()) {
        const auto features = net_.forward(content_, names);
        for (Term& t : content_terms_) {
            t.target = features.at(t.layer);
            t.tile_targets.clear();
            if (set_factors) t.factor = t.weight * relative_error_factor(t.target);
        }
        targets_tile_ = tile_;
        return;
    }
    // The tiling of the steps (over every layer, so the same blocks), reading
    // only as deep as the content layers.
    const VggTiling tiling(content_.size(2), content_.size(3), layers_, tile_);
    std::vector<Tensor> sums(content_terms_.size());
    for (Term& t : content_terms_) t.target = Tensor(), t.tile_targets.clear();
    for (const VggTile& tile : tiling.tiles()) {
        check_interrupt();
        const auto features = net_.forward(tiling.input(content_, tile), names);
        for (size_t k = 0; k < content_terms_.size(); ++k) {
            Term& t = content_terms_[k];
            Tensor owned = tiling.owned(features.at(t.layer), t.layer, tile);
            t.tile_targets.push_back(owned);
            if (owned.defined()) accumulate(sums[k], sum_squares(owned));
        }
    }
    if (set_factors) {
        for (size_t k = 0; k < content_terms_.size(); ++k) {
            Term& t = content_terms_[k];
            const float n = float(feature_numel(tiling, t.layer, t.tile_targets.front().size(1)));
            const float ms = sums[k].item() / n;
            t.factor = t.weight * (ms > 0 ? 1.f / ms : 1.f);
        }
    }
    targets_tile_ = tile_;
}

void GatysObjective::make_style_targets() {
    if (style_terms_.empty()) return;
    NoGradGuard no_grad;
    std::vector<std::string> names;
    for (const Term& t : style_terms_) names.push_back(t.layer);
    std::map<std::string, Tensor> blended;
    for (size_t i = 0; i < styles_.size(); ++i) {
        const Tensor& style = styles_[i];
        const int side = int(std::max(style.size(2), style.size(3)));
        const auto grams = grams_of(net_, style, names, tile_ >= side ? 0 : tile_);
        for (const auto& [layer, g] : grams) accumulate(blended[layer], scale(g, style_weights_[i]));
    }
    for (Term& t : style_terms_) {
        t.target = blended.at(t.layer);
        t.factor = t.weight * relative_error_factor(t.target);
    }
}

StyleLosses GatysObjective::evaluate_with_gradient(const Tensor& image_in, bool may_tile) {
    NST_CHECK(image_in.defined() && image_in.requires_grad() && !image_in.grad_fn(),
              "optimize: evaluate_with_gradient needs the image as a leaf that requires grad");
    Tensor image = image_in;  // the same tensor: zero_grad is not const
    return fitting([&] {
        image.zero_grad();
        if (targets_tile_ != tile_) make_content_targets(false);
        if (!tiled()) {
            StyleLosses l = evaluate(image);
            l.total.backward();
            return l;
        }
        return tiled_evaluate_with_gradient(image);
    }, may_tile);
}

StyleLosses GatysObjective::tiled_evaluate_with_gradient(const Tensor& image) const {
    NST_CHECK(image.shape() == content_.shape(), "optimize: image ", shape_str(image.shape()),
              " does not match the content ", shape_str(content_.shape()));
    const Device device = content_.device();
    StyleLosses l;
    l.content = Tensor::zeros({}, device);
    l.style = Tensor::zeros({}, device);
    l.tv = Tensor::zeros({}, device);
    if (!layers_.empty()) {
        const VggTiling tiling(content_.size(2), content_.size(3), layers_, tile_);
        const std::vector<VggTile>& tiles = tiling.tiles();
        // Pass 1: the sums over the tiles, without a graph.
        std::vector<Tensor> content_sums(content_terms_.size()), grams(style_terms_.size());
        {
            NoGradGuard no_grad;
            const Tensor x = image.detach();
            for (size_t i = 0; i < tiles.size(); ++i) {
                check_interrupt();  // a print-size step takes minutes; a tile, seconds
                const auto features = net_.forward(tiling.input(x, tiles[i]), layers_);
                for (size_t k = 0; k < content_terms_.size(); ++k) {
                    const Term& t = content_terms_[k];
                    const Tensor owned = tiling.owned(features.at(t.layer), t.layer, tiles[i]);
                    if (owned.defined())
                        accumulate(content_sums[k],
                                   scale(mse_loss(owned, t.tile_targets[i]), float(owned.numel())));
                }
                for (size_t k = 0; k < style_terms_.size(); ++k) {
                    const Term& t = style_terms_[k];
                    const Tensor owned = tiling.owned(features.at(t.layer), t.layer, tiles[i]);
                    if (owned.defined()) accumulate(grams[k], owned_gram(owned, tiling, t.layer));
                }
            }
        }
        // The losses, and dL/dG for every style layer.
        std::vector<float> content_scale(content_terms_.size());
        std::vector<Tensor> gram_grads(style_terms_.size());
        {
            NoGradGuard no_grad;
            for (size_t k = 0; k < content_terms_.size(); ++k) {
                const Term& t = content_terms_[k];
                content_scale[k] =
                    t.factor / float(feature_numel(tiling, t.layer, t.tile_targets.front().size(1)));
                l.content = add(l.content, scale(content_sums[k], content_scale[k]));
            }
            for (size_t k = 0; k < style_terms_.size(); ++k) {
                const Term& t = style_terms_[k];
                l.style = add(l.style, scale(mse_loss(grams[k], t.target), t.factor));
                gram_grads[k] = scale(add(grams[k], scale(t.target, -1.f)), 2.f * t.factor / float(t.target.numel()));
            }
        }
        // Pass 2: each tile's gradient, through its crop into image.grad().
        for (size_t i = 0; i < tiles.size(); ++i) {
            check_interrupt();
            const auto features = net_.forward(tiling.input(image, tiles[i]), layers_);
            std::vector<Tensor> roots, seeds;
            for (size_t k = 0; k < content_terms_.size(); ++k) {
                const Term& t = content_terms_[k];
                const Tensor owned = tiling.owned(features.at(t.layer), t.layer, tiles[i]);
                if (!owned.defined()) continue;
                roots.push_back(scale(mse_loss(owned, t.tile_targets[i]), content_scale[k] * float(owned.numel())));
                seeds.emplace_back();
            }
            for (size_t k = 0; k < style_terms_.size(); ++k) {
                const Term& t = style_terms_[k];
                const Tensor owned = tiling.owned(features.at(t.layer), t.layer, tiles[i]);
                if (!owned.defined()) continue;
                roots.push_back(owned_gram(owned, tiling, t.layer));
                seeds.push_back(gram_grads[k]);
            }
            if (!roots.empty()) run_backward(roots, seeds);
        }
    }
    if (tv_factor_ > 0) {
        Tensor tv = scale(tv_loss(image), tv_factor_);
        tv.backward();
        l.tv = tv.detach();
    }
    if (Tensor temporal = temporal_loss(image); temporal.defined()) {
        temporal.backward();
        l.temporal = temporal.detach();
    }
    NoGradGuard no_grad;
    l.total = add(add(l.content, l.style), l.tv);
    if (l.temporal.defined()) l.total = add(l.total, l.temporal);
    return l;
}

}  // namespace nst
