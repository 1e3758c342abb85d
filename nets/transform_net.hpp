// The feed-forward transformation network of Johnson et al. (2016): conv 9x9,
// two stride-2 convs, residual blocks, two 2x upsampling stages, conv 9x9,
// with instance norm and ReLU between. One class, one forward; what differs
// between the networks we run is a property of the loaded weights:
//
//  * variant "tf-fast-style-transfer" (the imported TensorFlow checkpoints):
//    zero padding by TensorFlow's 'SAME' rule (the odd pixel at the
//    bottom/right), transposed convs that exactly double the size, output
//    tanh(x) * 150 + 127.5.
//  * variant "native" (networks we train): reflect padding, nearest 2x
//    upsampling + conv (no checkerboard artifacts), linear output; the
//    network works in 0..1 or 0..255 ("value_range" in the metadata).
//
// Widths, kernel sizes, the number of residual blocks, conv biases and
// whether a layer has instance norm are all read from the tensors' shapes and
// presence, so the same code runs a slimmer network.
//
// Weights live in safetensors files (weights/safetensors.hpp) with metadata
// "architecture" = "nst.transformer", "variant", "value_range", "norm_eps".
// Tensor names: conv_in, down1, down2, res{i}.conv1, res{i}.conv2 (i from 1),
// up1, up2, conv_out, each with .weight, optional .bias, and optional
// .norm.weight / .norm.bias (instance-norm gamma / beta). Conv weights are
// [out, in, k, k]; the TensorFlow variant's up1/up2 are transposed-conv
// weights [in, out, k, k].
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "weights/safetensors.hpp"
#include "core/tensor.hpp"

namespace nst {

enum class TransformNetVariant { TensorFlow, Native };
const char* variant_name(TransformNetVariant variant);

// What a freshly initialised network looks like (for training and tests).
struct TransformNetSpec {
    TransformNetVariant variant = TransformNetVariant::Native;
    int width = 32;  // channels after conv_in; down1 doubles them, down2 again
    int residual_blocks = 5;
    float value_range = 255.f;  // native only: 1 or 255
};

class TransformNet {
public:
    // Validates names, shapes and metadata; `source` names the file in errors.
    static TransformNet from_weights(const WeightFile& weights, Device device,
                                    const std::string& source = "weights");
    // A .safetensors file, or a directory holding a TensorFlow per-variable
    // export (manifest.json), imported on the fly.
    static TransformNet load(const std::string& path, Device device);
    // He-initialised weights (seeded, deterministic), instance norm at gamma 1,
    // beta 0; the native variant leaves conv_out without norm, as Johnson's does.
    static TransformNet create(const TransformNetSpec& spec, uint64_t seed, Device device);

    // The same network with its weights stored as `dtype`: F16 or BF16 for
    // faster inference (each op computes in fp32 and rounds its output once;
    // images go in and come out float32), F32 for the original.
    TransformNet to(DType dtype) const;
    DType dtype() const { return down_.front().weight.dtype(); }

    WeightFile to_weights() const;  // float32 tensors on the network's device
    void save(const std::string& path) const;

    // x [N, 3, H, W], 0..255 -> the raw network output, 0..255 nominal (not
    // clamped), [N, 3, 4*ceil(ceil(H/2)/2), same for W]. Records the graph
    // when grad mode is on (training); inference wraps it in NoGradGuard, and
    // then each activation is freed as soon as the next layer has consumed it.
    Tensor forward(const Tensor& x) const;
    // Inference on an image [N, 3, H, W], 0..255: forward without autograd,
    // cropped back to H x W (the strided path rounds sizes up to multiples of
    // 4, padding at the bottom/right, so the top-left crop is aligned).
    Tensor stylize(const Tensor& image) const;
    // stylize() for images too large for memory, in tiles of about
    // tile x tile pixels (nets/transform_net_tiles.cpp): each tile runs with a
    // halo wider than the network's receptive field, and the instance norms
    // use the whole image's statistics, gathered tile by tile and layer by
    // layer, so the result equals stylize()'s up to float rounding. Costs
    // one pass over the tiles per norm layer and a last one: tiled_work().
    // Images [1, 3, H, W]. Stylization stops between layers once an
    // interrupt is requested (core/interrupt.hpp).
    Tensor stylize_tiled(const Tensor& image, int tile) const;
    // stylize() of one image [1, 3, H, W], and when that runs out of memory
    // (OutOfMemoryError or std::bad_alloc) or an activation would pass the
    // kernels' 32-bit limit (SizeLimitError), stylize_tiled() with the
    // largest of fallback_tiles() that fits; `on_tiles` is told the tile
    // size before each try. Throws OutOfMemoryError when nothing fits.
    // `first_tile` > 0 (a memory plan's choice): no untiled try, and tiles
    // of at most that size.
    Tensor stylize_fitting(const Tensor& image, const std::function<void(int tile)>& on_tiles = nullptr,
                           int first_tile = 0) const;
    // The pixels stylize_tiled() reads around each tile (on every side): a
    // tile smaller than this does more work on its halo than on itself.
    int tile_halo() const;
    // stylize_tiled()'s work on a height x width image in tiles of `tile`,
    // as a multiple of stylize()'s: the multiply-adds of every pass over
    // every tile's crop (the tile and its halo) against one pass over the
    // image. Each norm layer needs a pass of its own, so even large tiles
    // cost several times the untiled work (about 10 for this family of
    // networks); small tiles multiply it by their halo's area.
    double tiled_work(int64_t height, int64_t width, int tile) const;
    // The largest crop (in pixels) a tile of stylize_tiled() reads: what a
    // tiled run's memory grows with.
    int64_t largest_tile_crop(int64_t height, int64_t width, int tile) const;
    // Tiles that pay for themselves: at most this multiple of the untiled work.
    static constexpr double kMaxTiledWork = 32;
    // The tile sizes memory can fall back to for a height x width image,
    // largest first: the tile ladder (nets/tile_ladder.hpp), each
    // reading less than the whole image and costing at most kMaxTiledWork.
    // Empty when no tile helps: then only a smaller image does.
    std::vector<int> fallback_tiles(int64_t height, int64_t width) const;

    std::vector<Tensor> parameters() const;
    TransformNetVariant variant() const { return variant_; }
    float value_range() const { return value_range_; }
    Device device() const { return device_; }
    int residual_blocks() const { return int(residual_.size()); }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

private:
    TransformNet() = default;  // only through from_weights: always a complete network
    struct Layer {
        std::string name;
        Tensor weight, bias, gamma, beta;  // bias, gamma, beta may be undefined
        int stride = 1;
        bool upsample = false;  // 2x: transposed conv (TF) or nearest + conv (native)
        int level = 0;          // its output is 2^level times smaller than the image
    };
    struct TilePass;  // one tile's pass of stylize_tiled (nets/transform_net_tiles.cpp)
    // The layer's conv and norm, then a ReLU when then_relu. x by value: the
    // caller moves its activation in, so that without a graph it is freed as
    // soon as the layer has made what it needs from it.
    Tensor apply(const Layer& layer, Tensor x, bool then_relu, TilePass* tile = nullptr) const;
    // forward(); with a tile pass, instance norms use its statistics, and the
    // pass may stop early (then the result is undefined). Interruptible:
    // checks for an interrupt request before each layer (inference only:
    // a training step is never left halfway).
    Tensor run(const Tensor& x, TilePass* tile, bool interruptible) const;
    // stylize_tiled()'s tiles: each one's interior and the crop it reads.
    struct TileRect {
        int64_t y0, y1, x0, x1, cy0, cy1, cx0, cx1;
    };
    std::vector<TileRect> tile_layout(int64_t height, int64_t width, int tile) const;
    static Tensor tile_norm(TilePass& tile, const Layer& layer, const Tensor& y);  // an instance norm in a tile pass
    static bool tile_pass_done(const TilePass& tile);
    // y, after checking that a 16-bit network's output is finite (fp16
    // overflows past 65504): an error says which precision to use instead.
    Tensor checked(const Tensor& y) const;
    int receptive_radius() const;  // in image pixels, an upper bound
    std::vector<const Layer*> layers() const;

    TransformNetVariant variant_ = TransformNetVariant::Native;
    float value_range_ = 255.f;
    float norm_eps_ = 1e-5f;
    Device device_;
    std::vector<Layer> down_;                         // conv_in, down1, down2
    std::vector<std::pair<Layer, Layer>> residual_;   // res{i}.conv1, res{i}.conv2
    std::vector<Layer> up_;                           // up1, up2, conv_out
    std::map<std::string, std::string> metadata_;     // everything else (style, source)
};

}  // namespace nst
