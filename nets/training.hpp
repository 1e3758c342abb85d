// Training a transformation network (nets/transform_net.hpp) for one style:
// Johnson, Alahi and Fei-Fei, "Perceptual Losses for Real-Time Style Transfer
// and Super-Resolution" (ECCV 2016). Each step stylizes a batch of photos,
// measures the result with VGG-19 (content against the photos themselves,
// style against the style image's Gram matrices) and updates the network
// with Adam.
//
// The losses, with images in 0..1 and y the network's output for photos x:
//   content = content_weight * sum_l w_l * mse(F_l(y), F_l(x)) / mean(F_l(x)^2)
//   style   = style_weight   * sum_l w_l * mse(G_l(y), A_l) / mean(A_l^2)
//   tv      = tv_weight * tv_loss(y) / numel(y)
// G = gram / (C H W), A_l the style image's Gram, the same for every image of
// the batch. As in optimization mode each layer's loss is a relative error
// (nets/loss_terms.hpp); the content normalizer is the batch's own (a
// constant for the gradient, computed without a graph).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/optim.hpp"
#include "weights/safetensors.hpp"
#include "core/tensor.hpp"
#include "nets/loss_terms.hpp"
#include "nets/transform_net.hpp"
#include "nets/vgg19.hpp"

namespace nst {

struct TrainingOptions {
    // The layers of the PyTorch example and of Johnson's paper.
    std::vector<LayerWeight> content_layers{{"relu2_2", 1.f}};
    std::vector<LayerWeight> style_layers{
        {"relu1_2", 1.f}, {"relu2_2", 1.f}, {"relu3_3", 1.f}, {"relu4_3", 1.f}};
    float content_weight = 1.f;
    float style_weight = 5.f;
    float tv_weight = 0.f;
    float learning_rate = 1e-3f;
};

class PerceptualLoss {
public:
    // style: [1, 3, h, w] RGB 0..1, any device; its Grams are computed once.
    // Keeps a reference to the network, which must outlive it.
    PerceptualLoss(const Vgg19& net, const Tensor& style, const TrainingOptions& options);

    // stylized, photos: [N, 3, H, W] 0..1 on the network's device;
    // differentiable with respect to `stylized`.
    StyleLosses evaluate(const Tensor& stylized, const Tensor& photos) const;

private:
    struct Term {
        std::string layer;
        float factor;  // layer weight * global weight (style: / mean(target^2))
    };
    // The style target repeated to a batch of n, made once per batch size.
    const Tensor& style_target(size_t term, int64_t n) const;

    const Vgg19& net_;
    std::vector<Term> content_terms_, style_terms_;
    std::vector<Tensor> style_grams_;  // [1, C, C], one per style term
    mutable std::map<int64_t, std::vector<Tensor>> batched_grams_;
    std::vector<std::string> layers_;
    float tv_weight_;
};

// The losses of one step, read back to the host.
struct TrainingLosses {
    float content = 0, style = 0, tv = 0, total = 0;
};

class StyleTrainer {
public:
    // The network's parameters become trainable (requires_grad); they are
    // updated in place.
    StyleTrainer(TransformNet network, const Vgg19& vgg, const Tensor& style,
                 const TrainingOptions& options);

    // One Adam step on photos [N, 3, H, W] 0..255 (any device). Returns the
    // losses before the update. A NaN or infinite loss throws nst::Error and
    // leaves the network and the optimizer as they were.
    TrainingLosses step(const Tensor& photos);

    const TransformNet& network() const { return network_; }
    int64_t steps() const { return adam_.steps(); }

    // Everything a resumed run needs from the trainer: the network's tensors
    // under their own names, Adam's moments as "adam.m.<name>" and
    // "adam.v.<name>", metadata "train.step" plus `extra` (the caller's data
    // position, seed, ...), and the network's metadata.
    WeightFile checkpoint(const std::map<std::string, std::string>& extra = {}) const;
    // Adam's moments and step count from a checkpoint of this network's shape.
    void restore_optimizer(const WeightFile& checkpoint, const std::string& source);

    // The network part of a checkpoint (no "adam." tensors, no "train."
    // metadata): what TransformNet::from_weights accepts.
    static WeightFile network_weights(const WeightFile& checkpoint);

private:
    TransformNet network_;
    std::vector<std::string> names_;  // parameter names, in Adam's order
    PerceptualLoss loss_;
    Adam adam_;
};

}  // namespace nst
