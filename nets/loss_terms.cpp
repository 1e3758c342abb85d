#include "nets/loss_terms.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/ops.hpp"
#include "nets/vgg19.hpp"

namespace nst {

Tensor style_gram(const Tensor& features) {
    return gram(features, float(features.size(1) * features.size(2) * features.size(3)));
}

float relative_error_factor(const Tensor& target) {
    const float ms = sum_squares(target).item() / float(target.numel());
    return ms > 0 ? 1.f / ms : 1.f;
}

void check_loss_weight(const char* context, const char* what, float weight) {
    NST_CHECK(std::isfinite(weight) && weight >= 0, context, ": ", what, " must be finite and >= 0, got ",
              weight);
}

std::vector<LayerWeight> active_layers(const std::vector<LayerWeight>& layers, float global_weight,
                                       const char* context) {
    std::vector<LayerWeight> out;
    for (const auto& l : layers) {
        Vgg19::layer_index(l.layer);  // throws, listing the names, if unknown
        check_loss_weight(context, ("the weight of layer " + l.layer).c_str(), l.weight);
        if (l.weight > 0 && global_weight > 0) out.push_back(l);
    }
    return out;
}

std::vector<std::string> layer_names_of(const std::vector<LayerWeight>& layers) {
    std::vector<std::string> names;
    for (const auto& l : layers) names.push_back(l.layer);
    return names;
}

int64_t min_side_for(const std::vector<std::string>& layers) {
    int deepest = 0;
    for (const auto& l : layers) deepest = std::max(deepest, Vgg19::layer_index(l));
    int pools = 0;
    for (int i = 0; i < deepest; ++i) pools += Vgg19::layer_names()[size_t(i)].rfind("pool", 0) == 0;
    return int64_t(1) << pools;
}

}  // namespace nst
