// One forward for both variants: the variant only picks how a layer pads and
// how it upsamples, and the output transform. Padding is computed per call
// from the actual input size (TensorFlow 'SAME' depends on it), so any size,
// odd ones included, runs without resizing the image.
#include "nets/transform_net.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <utility>

#include "core/autograd.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "core/ops.hpp"
#include "weights/tf_fast_style.hpp"

namespace nst {
namespace {

constexpr const char* kArchitecture = "nst.transformer";
constexpr const char* kTfVariant = "tf-fast-style-transfer";
constexpr const char* kNativeVariant = "native";

// TensorFlow 'SAME': output ceil(in / stride); the total padding is split
// with the odd pixel at the end (bottom/right).
void same_padding(int64_t in, int k, int stride, int& before, int& after) {
    const int64_t out = (in + stride - 1) / stride;
    const int64_t total = std::max<int64_t>((out - 1) * stride + k - in, 0);
    before = int(total / 2);
    after = int(total - total / 2);
}

float parse_float(const std::string& source, const std::string& key, const std::string& text) {
    char* end = nullptr;
    const float v = std::strtof(text.c_str(), &end);
    NST_CHECK(!text.empty() && end && *end == '\0' && std::isfinite(v) && v >= 0, source,
              ": metadata ", key, " = '", text, "' is not a non-negative number");
    return v;
}

}  // namespace

const char* variant_name(TransformNetVariant variant) {
    return variant == TransformNetVariant::TensorFlow ? kTfVariant : kNativeVariant;
}

TransformNet TransformNet::from_weights(const WeightFile& weights, Device device,
                                      const std::string& source) {
    const auto& meta = weights.metadata;
    auto get = [&](const std::string& key) {
        auto it = meta.find(key);
        return it == meta.end() ? std::string() : it->second;
    };
    NST_CHECK(get("architecture") == kArchitecture, source, ": not an ", kArchitecture,
              " network (metadata architecture = '", get("architecture"), "')");
    TransformNet net;
    net.device_ = device;
    const std::string variant = get("variant");
    if (variant == kTfVariant) {
        net.variant_ = TransformNetVariant::TensorFlow;
        net.norm_eps_ = 1e-3f;
    } else {
        NST_CHECK(variant == kNativeVariant, source, ": unknown transformation network variant '", variant,
                  "' (expected ", kTfVariant, " or ", kNativeVariant, ")");
        net.variant_ = TransformNetVariant::Native;
    }
    if (!get("norm_eps").empty()) net.norm_eps_ = parse_float(source, "norm_eps", get("norm_eps"));
    if (!get("value_range").empty())
        net.value_range_ = parse_float(source, "value_range", get("value_range"));
    NST_CHECK(net.value_range_ == 255.f ||
                  (net.value_range_ == 1.f && net.variant_ == TransformNetVariant::Native),
              source, ": value_range ", net.value_range_, " not supported (255, or 1 for ",
              kNativeVariant, ")");
    for (const auto& [key, value] : meta)
        if (key != "architecture" && key != "variant" && key != "norm_eps" && key != "value_range")
            net.metadata_[key] = value;

    std::set<std::string> used;
    const bool tf = net.variant_ == TransformNetVariant::TensorFlow;
    int64_t channels = 3;  // flowing through the network, checked layer by layer
    auto layer = [&](const std::string& name, int stride, bool upsample, int level) {
        auto find = [&](const std::string& suffix) {
            auto it = weights.tensors.find(name + suffix);
            if (it == weights.tensors.end()) return Tensor();
            used.insert(it->first);
            for (float v : it->second.to_vector())
                NST_CHECK(std::isfinite(v), source, ": ", it->first, " contains NaN or infinite values");
            return it->second.to(device);
        };
        Layer l;
        l.name = name, l.stride = stride, l.upsample = upsample, l.level = level;
        l.weight = find(".weight"), l.bias = find(".bias");
        l.gamma = find(".norm.weight"), l.beta = find(".norm.bias");
        NST_CHECK(l.weight.defined(), source, ": missing tensor ", name, ".weight");
        const Shape& w = l.weight.shape();
        NST_CHECK(w.size() == 4 && w[2] == w[3] && w[2] % 2 == 1, source, ": ", name,
                  ".weight has shape ", shape_str(w), ", expected [out, in, k, k] with odd k");
        // The TF variant's upsampling layers are transposed convs: [in, out, k, k].
        const bool transposed = tf && upsample;
        const int64_t in = transposed ? w[0] : w[1], out = transposed ? w[1] : w[0];
        NST_CHECK(in == channels, source, ": ", name, ".weight ", shape_str(w), " takes ", in,
                  " channels, the previous layer gives ", channels);
        NST_CHECK(out > 0, source, ": ", name, ".weight has no output channels");
        for (const Tensor* t : {&l.bias, &l.gamma, &l.beta})
            NST_CHECK(!t->defined() || t->shape() == Shape{out}, source, ": ", name,
                      " bias/norm tensor has shape ", shape_str(t->shape()), ", expected [", out, "]");
        NST_CHECK(l.gamma.defined() == l.beta.defined(), source, ": ", name,
                  " needs both .norm.weight and .norm.bias, or neither");
        channels = out;
        return l;
    };
    net.down_.push_back(layer("conv_in", 1, false, 0));
    net.down_.push_back(layer("down1", 2, false, 1));
    net.down_.push_back(layer("down2", 2, false, 2));
    for (int i = 1; weights.tensors.count("res" + std::to_string(i) + ".conv1.weight"); ++i) {
        const int64_t block_in = channels;
        const std::string prefix = "res" + std::to_string(i);
        Layer a = layer(prefix + ".conv1", 1, false, 2);
        Layer b = layer(prefix + ".conv2", 1, false, 2);
        NST_CHECK(channels == block_in, source, ": residual block ", prefix, " maps ", block_in,
                  " channels to ", channels, "; a residual block must keep them");
        net.residual_.emplace_back(std::move(a), std::move(b));
    }
    net.up_.push_back(layer("up1", 1, true, 1));
    net.up_.push_back(layer("up2", 1, true, 0));
    net.up_.push_back(layer("conv_out", 1, false, 0));
    NST_CHECK(channels == 3, source, ": conv_out gives ", channels, " channels, expected 3");

    std::string unknown;
    for (const auto& entry : weights.tensors)
        if (!used.count(entry.first)) unknown += (unknown.empty() ? "" : ", ") + entry.first;
    NST_CHECK(unknown.empty(), source, ": tensors not part of an ", kArchitecture,
              " network: ", unknown);
    return net;
}

TransformNet TransformNet::load(const std::string& path, Device device) {
    struct stat st;
    NST_CHECK(::stat(path.c_str(), &st) == 0, path, ": no such file or directory");
    if (S_ISDIR(st.st_mode)) return from_weights(import_tf_fast_style(path), device, path);
    return from_weights(load_safetensors(path), device, path);
}

TransformNet TransformNet::create(const TransformNetSpec& spec, uint64_t seed, Device device) {
    NST_CHECK(spec.width > 0 && spec.residual_blocks >= 0, "TransformNet::create: invalid spec (width ",
              spec.width, ", ", spec.residual_blocks, " residual blocks)");
    const bool tf = spec.variant == TransformNetVariant::TensorFlow;
    WeightFile w;
    w.metadata = {{"architecture", kArchitecture},
                  {"variant", variant_name(spec.variant)},
                  {"value_range", spec.value_range == 1.f ? "1" : "255"},
                  {"norm_eps", tf ? "0.001" : "1e-05"}};
    uint64_t stream = seed * 1000;
    auto add_layer = [&](const std::string& name, int64_t in, int64_t out, int k, bool transposed,
                         bool norm) {
        const float std = std::sqrt(2.f / float(in * k * k));
        const Shape shape = transposed ? Shape{in, out, k, k} : Shape{out, in, k, k};
        w.tensors[name + ".weight"] = Tensor::randn(shape, stream++, device, 0.f, std);
        if (!tf) w.tensors[name + ".bias"] = Tensor::zeros({out}, device);
        if (norm) {
            w.tensors[name + ".norm.weight"] = Tensor::full({out}, 1.f, device);
            w.tensors[name + ".norm.bias"] = Tensor::zeros({out}, device);
        }
    };
    const int c1 = spec.width, c2 = 2 * spec.width, c3 = 4 * spec.width;
    add_layer("conv_in", 3, c1, 9, false, true);
    add_layer("down1", c1, c2, 3, false, true);
    add_layer("down2", c2, c3, 3, false, true);
    for (int i = 1; i <= spec.residual_blocks; ++i) {
        add_layer("res" + std::to_string(i) + ".conv1", c3, c3, 3, false, true);
        add_layer("res" + std::to_string(i) + ".conv2", c3, c3, 3, false, true);
    }
    add_layer("up1", c3, c2, 3, tf, true);
    add_layer("up2", c2, c1, 3, tf, true);
    add_layer("conv_out", c1, 3, 9, false, tf);
    return from_weights(w, device, "TransformNet::create");
}

std::vector<const TransformNet::Layer*> TransformNet::layers() const {
    std::vector<const Layer*> all;
    for (const Layer& l : down_) all.push_back(&l);
    for (const auto& block : residual_) all.insert(all.end(), {&block.first, &block.second});
    for (const Layer& l : up_) all.push_back(&l);
    return all;
}

TransformNet TransformNet::to(DType dtype) const {
    TransformNet net = *this;
    auto convert = [dtype](Layer& l) {
        for (Tensor* t : {&l.weight, &l.bias, &l.gamma, &l.beta})
            if (t->defined()) *t = t->to(dtype);
    };
    for (Layer& l : net.down_) convert(l);
    for (auto& [conv1, conv2] : net.residual_) convert(conv1), convert(conv2);
    for (Layer& l : net.up_) convert(l);
    return net;
}

WeightFile TransformNet::to_weights() const {
    WeightFile w;
    w.metadata = metadata_;
    w.metadata["architecture"] = kArchitecture;
    w.metadata["variant"] = variant_name(variant_);
    w.metadata["value_range"] = value_range_ == 1.f ? "1" : "255";
    // The shortest text that reads back as the same float ("0.001", not
    // "0.00100000005").
    char eps[32];
    std::snprintf(eps, sizeof eps, "%g", double(norm_eps_));
    if (std::strtof(eps, nullptr) != norm_eps_) std::snprintf(eps, sizeof eps, "%.9g", double(norm_eps_));
    w.metadata["norm_eps"] = eps;
    for (const Layer* l : layers()) {
        w.tensors[l->name + ".weight"] = l->weight.to(DType::F32);
        if (l->bias.defined()) w.tensors[l->name + ".bias"] = l->bias.to(DType::F32);
        if (l->gamma.defined()) {
            w.tensors[l->name + ".norm.weight"] = l->gamma.to(DType::F32);
            w.tensors[l->name + ".norm.bias"] = l->beta.to(DType::F32);
        }
    }
    return w;
}

void TransformNet::save(const std::string& path) const {
    const WeightFile w = to_weights();
    save_safetensors(path, w.tensors, w.metadata);
}

std::vector<Tensor> TransformNet::parameters() const {
    std::vector<Tensor> params;
    for (const Layer* l : layers())
        for (const Tensor* t : {&l->weight, &l->bias, &l->gamma, &l->beta})
            if (t->defined()) params.push_back(*t);
    return params;
}

Tensor TransformNet::apply(const Layer& l, Tensor x, bool then_relu, TilePass* tile) const {
    const int k = int(l.weight.size(2));
    // A per-channel bias right before an instance norm cancels in the norm's
    // mean, so inference skips that pass over the activation (training keeps
    // it: the bias is a parameter, and its gradient, zero, is checked).
    const Tensor bias = l.gamma.defined() && !grad_enabled() ? Tensor() : l.bias;
    Tensor y;
    if (variant_ == TransformNetVariant::TensorFlow) {
        if (l.upsample) {
            // The data gradient of a stride-2 'SAME' conv from 2n to n: its
            // padding, cropped from the full (n-1)*2 + k output, leaves 2n.
            ConvTranspose2dOptions o;
            o.stride = 2;
            const int total = std::max(k - 2, 0);
            o.pad_top = o.pad_left = total / 2;
            o.pad_bottom = o.pad_right = total - total / 2;
            o.output_padding_h = o.output_padding_w = std::max(2 - k, 0);
            y = conv_transpose2d(x, l.weight, bias, o);
        } else {
            Conv2dOptions o;
            o.stride = l.stride;
            same_padding(x.size(2), k, l.stride, o.pad_top, o.pad_bottom);
            same_padding(x.size(3), k, l.stride, o.pad_left, o.pad_right);
            y = conv2d(x, l.weight, bias, o);
        }
    } else {
        // The padded input replaces x, so without a graph the unpadded one is
        // gone before the convolution allocates its output, and the upsampled
        // one is never made (bench/RESULTS.md: the peak of inference at 1080p).
        const int p = k / 2;
        const int64_t h = x.size(2) << int(l.upsample), w = x.size(3) << int(l.upsample);
        NST_CHECK(h > p && w > p, "transform_net: the image is too small: layer ", l.name, " gets ", w, "x",
                  h, " pixels and its reflect padding needs more than ", p);
        x = l.upsample ? upsample_pad(x, p, PadMode::Reflect) : pad(x, p, p, p, p, PadMode::Reflect);
        y = conv2d(x, l.weight, bias, Conv2dOptions::padded(0, l.stride));
    }
    x = Tensor();  // without a graph, the input is free before the norm runs
    if (!l.gamma.defined()) return then_relu ? relu(y) : y;
    if (tile) {
        y = tile_norm(*tile, l, y);
        return then_relu && !tile_pass_done(*tile) ? relu(y) : y;
    }
    // The norm and the ReLU in one pass over the activation.
    return then_relu ? instance_norm_relu(y, l.gamma, l.beta, norm_eps_) : instance_norm(y, l.gamma, l.beta, norm_eps_);
}

Tensor TransformNet::forward(const Tensor& x) const { return run(x, nullptr, false); }

Tensor TransformNet::run(const Tensor& x, TilePass* tile, bool interruptible) const {
    NST_CHECK(x.defined() && x.dim() == 4 && x.size(1) == 3,
              "transform_net: expected images [N, 3, H, W], got ",
              x.defined() ? shape_str(x.shape()) : "an undefined tensor");
    NST_CHECK(x.device() == device_, "transform_net: input on ", x.device().str(),
              ", network on ", device_.str());
    NST_CHECK(x.dtype() == DType::F32, "transform_net: expected float32 images, got ", x.str());
    auto stopped = [&] {
        if (interruptible) check_interrupt();  // a layer at 4K takes up to a second on a CPU
        return tile && tile_pass_done(*tile);
    };
    // Each assignment to h drops the previous activation: without a graph
    // (NoGradGuard) nothing else holds it, so it is freed right away.
    // A 16-bit network computes in its storage type from here to its last
    // conv; the scalings and the output transform stay float32.
    Tensor h = (value_range_ == 255.f ? x : scale(x, value_range_ / 255.f)).to(dtype());
    for (const Layer& l : down_) {
        h = apply(l, std::move(h), true, tile);
        if (stopped()) return Tensor();
    }
    for (const auto& [conv1, conv2] : residual_) {
        Tensor r = apply(conv1, h, true, tile);
        if (stopped()) return Tensor();
        r = apply(conv2, std::move(r), false, tile);
        if (stopped()) return Tensor();
        h = add(h, r);
    }
    for (size_t i = 0; i < up_.size(); ++i) {
        h = apply(up_[i], std::move(h), i + 1 < up_.size(), tile);
        if (stopped()) return Tensor();
    }
    h = h.to(DType::F32);
    if (variant_ == TransformNetVariant::TensorFlow) {
        const int64_t C = h.size(1);
        return bias_add(scale(tanh(h), 150.f), Tensor::full({C}, 127.5f, device_));
    }
    return value_range_ == 255.f ? h : scale(h, 255.f / value_range_);
}

Tensor TransformNet::stylize(const Tensor& image) const {
    NoGradGuard no_grad;
    check_interrupt();
    Tensor y = run(image, nullptr, true);
    const int64_t extra_h = y.size(2) - image.size(2), extra_w = y.size(3) - image.size(3);
    if (extra_h || extra_w) y = pad(y, 0, -int(extra_h), 0, -int(extra_w));
    return checked(y);
}

Tensor TransformNet::checked(const Tensor& y) const {
    if (dtype() == DType::F32) return y;  // finite weights on finite images stay finite
    // NaN and infinity reach the sum; one reduction on the device.
    NoGradGuard no_grad;
    NST_CHECK(std::isfinite(sum_squares(y).item()), "transform_net: the output is not finite in ", dtype_name(dtype()),
              dtype() == DType::F16 ? ": an activation passed 65504, float16's largest value; use --precision bf16 or fp32"
                                    : "; use --precision fp32");
    return y;
}

}  // namespace nst
