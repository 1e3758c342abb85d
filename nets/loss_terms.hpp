// What optimization mode (nets/gatys.hpp) and training (nets/training.hpp)
// share: the style representation and the normalization that makes each
// layer's loss a relative error.
//
// A layer's loss is divided by its target's mean square. With trained VGG
// weights that changes little; with the embedded random network the layers'
// magnitudes differ by orders of magnitude, and the deepest or shallowest
// layer would otherwise decide everything. A zero target (a featureless
// image) is left unnormalized.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace nst {

struct LayerWeight {
    std::string layer;  // a Vgg19::layer_names() entry, e.g. "relu4_2"
    float weight = 1.f;
};

// The weighted loss terms (scalar tensors); total = content + style + tv
// (+ temporal: optimization mode on a video's frames; undefined elsewhere).
struct StyleLosses {
    Tensor content, style, tv, total, temporal;
};

// Gram matrix of features [N, C, H, W] divided by C*H*W: [N, C, C].
Tensor style_gram(const Tensor& features);

// 1 / mean(target^2), or 1 for a zero target. Reads one scalar to the host.
float relative_error_factor(const Tensor& target);

// The layers worth computing: names checked, weights checked (finite, >= 0);
// layers of weight 0, or all of them when `global_weight` is 0, dropped.
// `context` starts error messages ("optimize", "train").
std::vector<LayerWeight> active_layers(const std::vector<LayerWeight>& layers, float global_weight,
                                       const char* context);
std::vector<std::string> layer_names_of(const std::vector<LayerWeight>& layers);

// A loss weight must be finite and >= 0.
void check_loss_weight(const char* context, const char* what, float weight);

// The smallest image side that survives the poolings before the deepest of
// `layers` (1, 2, 4, ... 16).
int64_t min_side_for(const std::vector<std::string>& layers);

}  // namespace nst
