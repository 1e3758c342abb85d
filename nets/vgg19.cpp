// VGG-19 feature extractor (nets/vgg19.hpp). The layer list is generated from
// the block structure (2, 2, 4, 4, 4 convolutions) so names, torchvision's
// nn.Sequential indices and channel counts cannot drift apart.
#include "nets/vgg19.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/ops.hpp"
#include "weights/pth.hpp"
#include "weights/safetensors.hpp"

namespace nst {

namespace {

constexpr int kConvs = 16;
constexpr int kBlockConvs[5] = {2, 2, 4, 4, 4};
constexpr int64_t kBlockChannels[5] = {64, 128, 256, 512, 512};

enum class Op { Conv, Relu, Pool };
struct Layer {
    std::string name;
    Op op;
    int conv;  // index 0..15 for Conv
};

const std::vector<Layer>& layers() {
    static const std::vector<Layer> list = [] {
        std::vector<Layer> l;
        int conv = 0;
        for (int b = 0; b < 5; ++b) {
            for (int j = 0; j < kBlockConvs[b]; ++j, ++conv) {
                const std::string suffix = std::to_string(b + 1) + "_" + std::to_string(j + 1);
                l.push_back({"conv" + suffix, Op::Conv, conv});
                l.push_back({"relu" + suffix, Op::Relu, -1});
            }
            l.push_back({"pool" + std::to_string(b + 1), Op::Pool, -1});
        }
        return l;
    }();
    return list;
}

// torchvision's nn.Sequential index of convolution i: each conv and ReLU
// takes one slot, each pooling one more.
int feature_index(int conv) {
    int index = 0, c = 0;
    for (int b = 0; b < 5; ++b) {
        for (int j = 0; j < kBlockConvs[b]; ++j, ++c) {
            if (c == conv) return index;
            index += 2;
        }
        index += 1;
    }
    fail(detail::concat("vgg19: no convolution ", conv));
}

const std::string& conv_layer_name(int conv) {
    for (const auto& l : layers())
        if (l.op == Op::Conv && l.conv == conv) return l.name;
    fail(detail::concat("vgg19: no convolution ", conv));
}

int64_t in_channels(int conv) { return conv == 0 ? 3 : Vgg19::conv_channels(conv - 1); }

// safetensors: an 8-byte little-endian header length, then the JSON header.
bool looks_like_safetensors(const std::string& path) {
    require_regular_file(path);
    std::FILE* f = std::fopen(path.c_str(), "rb");
    NST_CHECK(f, "vgg19: cannot open weight file ", path);
    unsigned char head[9] = {};
    const size_t n = std::fread(head, 1, sizeof head, f);
    std::fclose(f);
    return n == sizeof head && head[8] == '{';
}

// The key prefix in front of "features.0.weight" ("" for torchvision's own
// files, "module." after DataParallel, "state_dict." for nested checkpoints).
std::string find_prefix(const std::map<std::string, Tensor>& tensors, const std::string& source) {
    const std::string first = Vgg19::weight_key(0);
    if (tensors.count(first)) return "";
    std::vector<std::string> candidates;
    for (const auto& kv : tensors) {
        const std::string& k = kv.first;
        if (k.size() > first.size() && k.compare(k.size() - first.size(), first.size(), first) == 0 &&
            k[k.size() - first.size() - 1] == '.')
            candidates.push_back(k.substr(0, k.size() - first.size()));
    }
    if (candidates.size() == 1) return candidates[0];
    NST_CHECK(candidates.empty(), "vgg19: ", source, " holds several networks (", candidates[0],
              first, ", ", candidates[1], first, ", ...); expected one VGG-19");
    std::string some;
    int shown = 0;
    for (const auto& kv : tensors) {
        if (shown++ == 6) {
            some += ", ...";
            break;
        }
        some += (shown > 1 ? ", " : "") + kv.first;
    }
    fail(detail::concat("vgg19: ", source, " has no tensor ", first,
                        " (conv1_1): not a VGG-19 state dict in torchvision's naming; its ",
                        tensors.size(), " tensors are ", tensors.empty() ? "none" : some));
}

}  // namespace

const char* vgg_flavor_name(VggFlavor flavor) {
    return flavor == VggFlavor::Caffe ? "caffe" : "torchvision";
}

VggFlavor guess_vgg_flavor(const std::string& path) {
    std::string lower = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    const bool caffe = lower.find("d01eb7cb") != std::string::npos || lower.find("caffe") != std::string::npos;
    return caffe ? VggFlavor::Caffe : VggFlavor::Torchvision;
}

const std::vector<std::string>& Vgg19::layer_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> n;
        for (const auto& l : layers()) n.push_back(l.name);
        return n;
    }();
    return names;
}

int Vgg19::layer_index(const std::string& name) {
    const auto& names = layer_names();
    const auto it = std::find(names.begin(), names.end(), name);
    if (it != names.end()) return int(it - names.begin());
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : " ") + n;
    fail(detail::concat("vgg19: unknown layer '", name, "'; the layers are: ", all));
}

std::string Vgg19::weight_key(int conv) { return "features." + std::to_string(feature_index(conv)) + ".weight"; }
std::string Vgg19::bias_key(int conv) { return "features." + std::to_string(feature_index(conv)) + ".bias"; }

int64_t Vgg19::conv_channels(int conv) {
    NST_CHECK(conv >= 0 && conv < kConvs, "vgg19: no convolution ", conv);
    int c = 0;
    for (int b = 0; b < 5; ++b) {
        c += kBlockConvs[b];
        if (conv < c) return kBlockChannels[b];
    }
    return 0;
}

Vgg19 Vgg19::random(uint64_t seed, Device device, VggPooling pooling) {
    std::vector<Tensor> w, b;
    for (int i = 0; i < kConvs; ++i) {
        const int64_t K = conv_channels(i), C = in_channels(i);
        const float std = std::sqrt(2.f / float(C * 9));
        // seed * 64 + i: distinct (seed, layer) pairs get distinct streams
        w.push_back(Tensor::randn({K, C, 3, 3}, seed * 64 + uint64_t(i), device, 0.f, std));
        b.push_back(Tensor::zeros({K}, device));
    }
    return Vgg19(std::move(w), std::move(b), VggFlavor::Torchvision, pooling);
}

Vgg19 Vgg19::from_state_dict(const std::map<std::string, Tensor>& tensors, VggFlavor flavor,
                             Device device, VggPooling pooling, const std::string& source) {
    const std::string prefix = find_prefix(tensors, source);
    std::vector<Tensor> w, b;
    for (int i = 0; i < kConvs; ++i) {
        const std::string& conv_name = conv_layer_name(i);
        const std::string wk = prefix + weight_key(i), bk = prefix + bias_key(i);
        const Shape want_w{conv_channels(i), in_channels(i), 3, 3}, want_b{conv_channels(i)};
        auto wit = tensors.find(wk), bit = tensors.find(bk);
        if (wit == tensors.end()) {
            NST_CHECK(!tensors.count(prefix + "features.1.running_mean"), "vgg19: ", source,
                      " is VGG-19 with batch normalization (vgg19_bn), which is not supported; "
                      "use plain VGG-19 weights");
            fail(detail::concat("vgg19: ", source, " has no tensor ", wk, " (", conv_name, ")"));
        }
        NST_CHECK(bit != tensors.end(), "vgg19: ", source, " has no tensor ", bk, " (", conv_name, " bias)");
        NST_CHECK(wit->second.shape() == want_w, "vgg19: ", source, ": ", wk, " (", conv_name, ") has shape ",
                  shape_str(wit->second.shape()), ", expected ", shape_str(want_w));
        NST_CHECK(bit->second.shape() == want_b, "vgg19: ", source, ": ", bk, " (", conv_name,
                  " bias) has shape ", shape_str(bit->second.shape()), ", expected ", shape_str(want_b));
        Tensor weight = wit->second.detach();
        if (i == 0 && flavor == VggFlavor::Caffe) {
            // Caffe's conv1_1 reads BGR: reversing its input channels lets it read RGB.
            std::vector<float> v = weight.to_vector(), r(v.size());
            const size_t K = size_t(want_w[0]), plane = 9;
            for (size_t k = 0; k < K; ++k)
                for (size_t c = 0; c < 3; ++c)
                    std::copy_n(&v[(k * 3 + c) * plane], plane, &r[(k * 3 + (2 - c)) * plane]);
            weight = Tensor::from_vector(r, want_w, device);
        }
        w.push_back(weight.to(device).contiguous());
        b.push_back(bit->second.detach().to(device).contiguous());
    }
    return Vgg19(std::move(w), std::move(b), flavor, pooling);
}

Vgg19 Vgg19::load(const std::string& path, VggFlavor flavor, Device device, VggPooling pooling) {
    std::map<std::string, Tensor> tensors;
    if (looks_like_safetensors(path)) {
        tensors = load_safetensors(path, Device::cpu()).tensors;
    } else {
        // Only the convolutions: the classifier is 80% of torchvision's file.
        tensors = load_pth(path, Device::cpu(), [](const std::string& name) {
            return name.find("features.") != std::string::npos;
        });
    }
    return from_state_dict(tensors, flavor, device, pooling, path);
}

Device Vgg19::device() const { return weights_.front().device(); }

Tensor Vgg19::preprocess(const Tensor& image) const {
    NST_CHECK(image.defined() && image.dim() == 4 && image.size(1) == 3,
              "vgg19: expected an RGB image batch [N, 3, H, W], got ",
              image.defined() ? shape_str(image.shape()) : std::string("an undefined tensor"));
    if (flavor_ == VggFlavor::Caffe) {
        // 255 * x - mean, with the mean pixel in RGB order (Caffe lists it as BGR)
        const float s = 1.f / 255.f;
        return normalize_channels(image, {123.68f * s, 116.779f * s, 103.939f * s}, {s, s, s});
    }
    return normalize_channels(image, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f});
}

std::map<std::string, Tensor> Vgg19::forward(const Tensor& image,
                                             const std::vector<std::string>& requested) const {
    NST_CHECK(!requested.empty(), "vgg19: no layers requested");
    std::vector<bool> wanted(layers().size(), false);
    int deepest = 0;
    for (const auto& name : requested) {
        const int i = layer_index(name);
        wanted[size_t(i)] = true;
        deepest = std::max(deepest, i);
    }
    NST_CHECK(image.defined() && image.device() == device(), "vgg19: image on ",
              image.defined() ? image.device().str() : std::string("nothing"), ", weights on ",
              device().str());
    std::map<std::string, Tensor> out;
    Tensor x = preprocess(image);
    for (int i = 0; i <= deepest; ++i) {
        const Layer& layer = layers()[size_t(i)];
        switch (layer.op) {
            case Op::Conv: {
                const Tensor& w = weights_[size_t(layer.conv)];
                const Tensor& b = biases_[size_t(layer.conv)];
                // A convolution whose own output nobody asked for goes with
                // the ReLU after it in one pass (always the next layer).
                if (!wanted[size_t(i)] && i < deepest && layers()[size_t(i) + 1].op == Op::Relu) {
                    x = conv2d_relu(x, w, b, Conv2dOptions::padded(1));
                    ++layers_evaluated_, ++i;
                } else {
                    x = conv2d(x, w, b, Conv2dOptions::padded(1));
                }
                break;
            }
            case Op::Relu: x = relu(x); break;
            case Op::Pool: x = pooling_ == VggPooling::Max ? max_pool2x2(x) : avg_pool2x2(x); break;
        }
        ++layers_evaluated_;
        if (wanted[size_t(i)]) out[layers()[size_t(i)].name] = x;
    }
    return out;
}

}  // namespace nst
