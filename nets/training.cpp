// Training (nets/training.hpp). Per step the host reads the losses (progress,
// NaN check) and one scalar per content layer (its normalizer); everything
// else stays on the device.
#include "nets/training.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "core/autograd.hpp"
#include "core/error.hpp"
#include "core/ops.hpp"

namespace nst {
namespace {

constexpr const char* kMomentPrefix[2] = {"adam.m.", "adam.v."};

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

void check_images(const char* what, const Tensor& t) {
    NST_CHECK(t.defined() && t.dim() == 4 && t.size(1) == 3, "train: ", what,
              " must be RGB images [N, 3, H, W], got ",
              t.defined() ? shape_str(t.shape()) : std::string("nothing"));
}

}  // namespace

// ---- the loss -----------------------------------------------------------------------

PerceptualLoss::PerceptualLoss(const Vgg19& net, const Tensor& style, const TrainingOptions& o)
    : net_(net), tv_weight_(o.tv_weight) {
    NoGradGuard no_grad;
    check_loss_weight("train", "the content weight", o.content_weight);
    check_loss_weight("train", "the style weight", o.style_weight);
    check_loss_weight("train", "the TV weight", o.tv_weight);
    for (const auto& l : active_layers(o.content_layers, o.content_weight, "train")) {
        content_terms_.push_back({l.layer, o.content_weight * l.weight});
        layers_.push_back(l.layer);
    }
    const std::vector<LayerWeight> style_layers = active_layers(o.style_layers, o.style_weight, "train");
    NST_CHECK(!layers_.empty() || !style_layers.empty() || o.tv_weight > 0,
              "train: nothing to train for (no content or style layer with a positive weight)");
    if (style_layers.empty()) return;
    NST_CHECK(style.defined() && style.dim() == 4 && style.size(0) == 1 && style.size(1) == 3,
              "train: the style image must be [1, 3, H, W], got ",
              style.defined() ? shape_str(style.shape()) : std::string("nothing"));
    const int64_t need = min_side_for(layer_names_of(style_layers));
    NST_CHECK(style.size(2) >= need && style.size(3) >= need, "train: the style image is ", style.size(3),
              "x", style.size(2), " pixels; its deepest style layer needs at least ", need, " per side");
    for (float v : style.to_vector())
        NST_CHECK(std::isfinite(v), "train: the style image contains NaN or infinite values");
    const auto features = net.forward(style.to(net.device()), layer_names_of(style_layers));
    for (const auto& l : style_layers) {
        const Tensor g = style_gram(features.at(l.layer));
        style_terms_.push_back({l.layer, o.style_weight * l.weight * relative_error_factor(g)});
        style_grams_.push_back(g);
        layers_.push_back(l.layer);
    }
}

const Tensor& PerceptualLoss::style_target(size_t term, int64_t n) const {
    std::vector<Tensor>& batched = batched_grams_[n];
    if (batched.empty()) {
        for (const Tensor& g : style_grams_) {
            const std::vector<float> one = g.to_vector();
            std::vector<float> all;
            for (int64_t i = 0; i < n; ++i) all.insert(all.end(), one.begin(), one.end());
            batched.push_back(Tensor::from_vector(all, {n, g.size(1), g.size(2)}, g.device()));
        }
    }
    return batched[term];
}

StyleLosses PerceptualLoss::evaluate(const Tensor& stylized, const Tensor& photos) const {
    check_images("the stylized batch", stylized);
    check_images("the photos", photos);
    NST_CHECK(stylized.shape() == photos.shape(), "train: stylized ", shape_str(stylized.shape()),
              " and photos ", shape_str(photos.shape()), " differ in shape");
    const int64_t need = min_side_for(layers_.empty() ? std::vector<std::string>{"relu1_1"} : layers_);
    NST_CHECK(photos.size(2) >= need && photos.size(3) >= need, "train: images of ", photos.size(3), "x",
              photos.size(2), " pixels are too small for the loss layers (at least ", need, " per side)");
    const Device device = net_.device();
    StyleLosses l;
    l.content = Tensor::zeros({}, device);
    l.style = Tensor::zeros({}, device);
    std::map<std::string, Tensor> targets;
    if (!content_terms_.empty()) {
        NoGradGuard no_grad;
        std::vector<std::string> names;
        for (const auto& t : content_terms_) names.push_back(t.layer);
        targets = net_.forward(photos, names);
    }
    if (!layers_.empty()) {
        const auto features = net_.forward(stylized, layers_);
        for (const auto& t : content_terms_) {
            const Tensor& target = targets.at(t.layer);
            const float k = t.factor * relative_error_factor(target);
            l.content = add(l.content, scale(mse_loss(features.at(t.layer), target), k));
        }
        for (size_t i = 0; i < style_terms_.size(); ++i) {
            const Tensor g = style_gram(features.at(style_terms_[i].layer));
            l.style = add(l.style, scale(mse_loss(g, style_target(i, g.size(0))), style_terms_[i].factor));
        }
    }
    l.tv = tv_weight_ > 0 ? scale(tv_loss(stylized), tv_weight_ / float(stylized.numel()))
                          : Tensor::zeros({}, device);
    l.total = add(add(l.content, l.style), l.tv);
    return l;
}

// ---- the trainer ------------------------------------------------------------------------

namespace {

// The network's tensors by name (sorted), made trainable: Adam's order.
std::vector<std::pair<std::string, Tensor>> trainable(const TransformNet& net) {
    std::vector<std::pair<std::string, Tensor>> params;
    for (auto& [name, t] : net.to_weights().tensors) {
        Tensor p = t;  // shares the network's tensor
        p.set_requires_grad(true);
        params.emplace_back(name, p);
    }
    return params;
}

std::vector<Tensor> tensors_of(const std::vector<std::pair<std::string, Tensor>>& named) {
    std::vector<Tensor> out;
    for (const auto& entry : named) out.push_back(entry.second);
    return out;
}

}  // namespace

StyleTrainer::StyleTrainer(TransformNet network, const Vgg19& vgg, const Tensor& style,
                           const TrainingOptions& options)
    : network_(std::move(network)),
      loss_(vgg, style, options),
      adam_([&] {
          NST_CHECK(network_.device() == vgg.device(), "train: the network is on ",
                    network_.device().str(), ", VGG-19 on ", vgg.device().str());
          NST_CHECK(std::isfinite(options.learning_rate) && options.learning_rate > 0,
                    "train: the learning rate must be positive, got ", options.learning_rate);
          const auto named = trainable(network_);
          for (const auto& entry : named) names_.push_back(entry.first);
          return tensors_of(named);
      }(),
            Adam::Options{options.learning_rate}) {}

TrainingLosses StyleTrainer::step(const Tensor& photos) {
    check_images("the photos", photos);
    const Tensor x = photos.to(network_.device());
    Tensor y = network_.forward(x);
    // Sizes that are not multiples of 4 come out rounded up: crop as stylize() does.
    if (y.size(2) != x.size(2) || y.size(3) != x.size(3))
        y = pad(y, 0, int(x.size(2) - y.size(2)), 0, int(x.size(3) - y.size(3)));
    const StyleLosses l = loss_.evaluate(scale(y, 1.f / 255.f), scale(x, 1.f / 255.f));
    TrainingLosses out{l.content.item(), l.style.item(), l.tv.item(), l.total.item()};
    NST_CHECK(std::isfinite(out.total), "train: the loss is ", out.total, " at step ", steps() + 1,
              " (content ", out.content, ", style ", out.style, ", tv ", out.tv,
              "); the network diverged: lower the learning rate or the weights");
    adam_.zero_grad();
    l.total.backward();
    NoGradGuard no_grad;
    adam_.step();
    return out;
}

WeightFile StyleTrainer::checkpoint(const std::map<std::string, std::string>& extra) const {
    WeightFile w = network_.to_weights();
    const std::vector<Tensor>* moments[2] = {&adam_.first_moments(), &adam_.second_moments()};
    for (int k = 0; k < 2; ++k)
        for (size_t i = 0; i < names_.size(); ++i) w.tensors[kMomentPrefix[k] + names_[i]] = (*moments[k])[i];
    for (const auto& [key, value] : extra) {
        NST_CHECK(starts_with(key, "train."), "StyleTrainer::checkpoint: extra key '", key,
                  "' must start with 'train.'");
        w.metadata[key] = value;
    }
    w.metadata["train.step"] = std::to_string(steps());
    return w;
}

void StyleTrainer::restore_optimizer(const WeightFile& ckpt, const std::string& source) {
    auto it = ckpt.metadata.find("train.step");
    NST_CHECK(it != ckpt.metadata.end(), source, ": not a training checkpoint (no train.step metadata)");
    char* end = nullptr;
    const long long step = std::strtoll(it->second.c_str(), &end, 10);
    NST_CHECK(!it->second.empty() && *end == '\0' && step >= 0, source, ": bad train.step '", it->second, "'");
    // Everything is checked before anything is assigned: a bad checkpoint
    // leaves the optimizer as it was.
    std::vector<Tensor>* moments[2] = {&adam_.first_moments(), &adam_.second_moments()};
    std::vector<Tensor> restored[2];
    for (int k = 0; k < 2; ++k)
        for (size_t i = 0; i < names_.size(); ++i) {
            const std::string key = kMomentPrefix[k] + names_[i];
            auto t = ckpt.tensors.find(key);
            NST_CHECK(t != ckpt.tensors.end(), source, ": missing optimizer tensor ", key);
            const Tensor& dst = (*moments[k])[i];
            NST_CHECK(t->second.shape() == dst.shape(), source, ": ", key, " has shape ",
                      shape_str(t->second.shape()), ", the network needs ", shape_str(dst.shape()));
            // A damaged moment would only show steps later, as "the network diverged".
            for (float v : t->second.to_vector())
                NST_CHECK(std::isfinite(v) && (k == 0 || v >= 0), source, ": ", key,
                          k == 0 ? " contains NaN or infinite values" : " contains NaN, infinite or negative values");
            restored[k].push_back(t->second);
        }
    for (const auto& [key, t] : ckpt.tensors) {
        if (!starts_with(key, "adam.")) continue;
        const bool known = (starts_with(key, kMomentPrefix[0]) || starts_with(key, kMomentPrefix[1])) &&
                           std::find(names_.begin(), names_.end(), key.substr(7)) != names_.end();
        NST_CHECK(known, source, ": optimizer tensor ", key, " belongs to no parameter of the network");
    }
    NoGradGuard no_grad;
    for (int k = 0; k < 2; ++k)
        for (size_t i = 0; i < names_.size(); ++i) {
            Tensor& dst = (*moments[k])[i];
            dst = restored[k][i].to(dst.device()).contiguous().clone();  // never shares the caller's storage
        }
    adam_.set_steps(step);
}

WeightFile StyleTrainer::network_weights(const WeightFile& ckpt) {
    WeightFile w;
    for (const auto& [key, t] : ckpt.tensors)
        if (!starts_with(key, "adam.")) w.tensors[key] = t;
    for (const auto& [key, value] : ckpt.metadata)
        if (!starts_with(key, "train.")) w.metadata[key] = value;
    return w;
}

}  // namespace nst
