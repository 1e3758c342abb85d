// VGG-19's convolutional stack, the loss network of optimization-based style
// transfer (Gatys et al.): 16 3x3 convolutions (padding 1) each followed by a
// ReLU, with 2x2 pooling after conv1_2, conv2_2, conv3_4, conv4_4 and conv5_4.
// Layers are addressed by their usual names (conv1_1, relu1_1, ..., pool5),
// and a forward pass stops at the deepest layer asked for.
//
// The weights are frozen: plain tensors without requires_grad, so autograd
// records only what the gradient with respect to the image needs.
//
// Two flavours of pretrained weights exist, trained on differently prepared
// images, and the network takes care of that so callers always pass RGB in
// 0..1:
//  * torchvision (vgg19-dcbb9e9d.pth, timm's vgg19.tv_in1k safetensors):
//    RGB 0..1 normalized with the ImageNet mean and std;
//  * Caffe (vgg19-d01eb7cb.pth, converted from the original VGG release and
//    used by neural-style / neural-style-pt): BGR 0..255 minus the mean
//    pixel [103.939, 116.779, 123.68]. The channel swap is folded into
//    conv1_1's weights at load time (their input channels reversed), which
//    computes exactly the same thing as swapping the image's channels.
// Both use the same state-dict keys: features.N.weight / features.N.bias with
// N the index in torchvision's nn.Sequential (0, 2, 5, 7, 10, ..., 34).
//
// Without a file, the embedded default is the same architecture with
// deterministically seeded He-initialized weights (zero biases, torchvision
// input handling): far weaker than trained weights, but it still transfers
// colour and fine texture.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace nst {

enum class VggPooling { Max, Avg };
enum class VggFlavor { Torchvision, Caffe };

const char* vgg_flavor_name(VggFlavor flavor);  // "torchvision", "caffe"
// The flavour a weight file most likely is, by name: the Caffe conversion is
// vgg19-d01eb7cb.pth, so names containing "d01eb7cb" or "caffe" (any case)
// are Caffe; everything else is torchvision.
VggFlavor guess_vgg_flavor(const std::string& path);

class Vgg19 {
public:
    // The embedded default: He-initialized (std sqrt(2 / fan_in)), zero biases.
    static Vgg19 random(uint64_t seed = 19, Device device = Device::cpu(),
                        VggPooling pooling = VggPooling::Max);
    // From a PyTorch checkpoint (zip, legacy or tar; weights/pth.hpp) or a
    // safetensors file, recognized by content. Keys other than the 32
    // features.N tensors (the classifier) are ignored; a common prefix such
    // as "module." or "state_dict." is accepted.
    static Vgg19 load(const std::string& path, VggFlavor flavor, Device device = Device::cpu(),
                      VggPooling pooling = VggPooling::Max);
    // From tensors already in memory; `source` names them in error messages.
    static Vgg19 from_state_dict(const std::map<std::string, Tensor>& tensors, VggFlavor flavor,
                                 Device device = Device::cpu(), VggPooling pooling = VggPooling::Max,
                                 const std::string& source = "state dict");

    // conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ..., relu5_4, pool5
    static const std::vector<std::string>& layer_names();
    // Position in layer_names(); throws nst::Error listing the names if unknown.
    static int layer_index(const std::string& name);
    // The state-dict key of convolution i (0..15): "features.<N>.weight".
    static std::string weight_key(int conv);
    static std::string bias_key(int conv);
    // Output channels of convolution i.
    static int64_t conv_channels(int conv);

    // image: [N, 3, H, W] RGB in 0..1, any device matching the weights.
    // Returns the requested layers' activations (differentiable with respect
    // to the image); nothing past the deepest of them is computed.
    std::map<std::string, Tensor> forward(const Tensor& image,
                                          const std::vector<std::string>& layers) const;
    // The flavour's input normalization alone (first step of forward).
    Tensor preprocess(const Tensor& image) const;

    VggFlavor flavor() const { return flavor_; }
    VggPooling pooling() const { return pooling_; }
    Device device() const;
    // Weights of convolution i as the network uses them ([K, C, 3, 3], [K]).
    const Tensor& weight(int conv) const { return weights_.at(size_t(conv)); }
    const Tensor& bias(int conv) const { return biases_.at(size_t(conv)); }

    // How many layers (of layer_names()) forward passes have evaluated in
    // total, so tests can see that a shallow request stops early. Not
    // synchronized: a diagnostic, not an API for concurrent callers.
    int64_t layers_evaluated() const { return layers_evaluated_; }

private:
    Vgg19(std::vector<Tensor> weights, std::vector<Tensor> biases, VggFlavor flavor,
          VggPooling pooling)
        : weights_(std::move(weights)), biases_(std::move(biases)), flavor_(flavor), pooling_(pooling) {}

    std::vector<Tensor> weights_, biases_;  // 16 each
    VggFlavor flavor_;
    VggPooling pooling_;
    mutable int64_t layers_evaluated_ = 0;
};

}  // namespace nst
