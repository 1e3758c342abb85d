#include "nets/vgg_tiles.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "core/ops.hpp"
#include "nets/vgg19.hpp"

namespace nst {
namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Stride and one-sided reach of the output of layer `index`, in image pixels.
std::pair<int64_t, int64_t> stride_and_reach(int index) {
    int64_t stride = 1, reach = 0;
    for (int i = 0; i <= index; ++i) {
        const std::string& name = Vgg19::layer_names()[size_t(i)];
        if (starts_with(name, "conv")) reach += stride;  // 3x3, padding 1: one feature each side
        if (starts_with(name, "pool")) stride *= 2;
    }
    return {stride, reach};
}

int deepest_of(const std::vector<std::string>& layers) {
    NST_CHECK(!layers.empty(), "vgg tiles: no layers");
    int deepest = 0;
    for (const auto& l : layers) deepest = std::max(deepest, Vgg19::layer_index(l));
    return deepest;
}

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// The end of the owned rows at a layer of stride s, in that layer's
// coordinates: the block's end, or the feature map's end (rounding rows
// included) for the last block.
int64_t owned_end(int64_t end, int64_t size, int64_t s) { return end == size ? size / s : end / s; }

}  // namespace

int64_t VggTiling::stride(const std::string& layer) { return stride_and_reach(Vgg19::layer_index(layer)).first; }

int64_t VggTiling::halo(const std::vector<std::string>& layers) {
    const auto [s, reach] = stride_and_reach(deepest_of(layers));
    return round_up(reach, s);
}

VggTiling::VggTiling(int64_t height, int64_t width, const std::vector<std::string>& layers, int tile)
    : height_(height), width_(width) {
    const int64_t align = stride_and_reach(deepest_of(layers)).first;
    NST_CHECK(tile > 0, "vgg tiles: the tile size must be positive, got ", tile);
    NST_CHECK(height >= align && width >= align, "vgg tiles: an image of ", width, "x", height,
              " is smaller than the deepest layer's stride ", align);
    tile_ = round_up(tile, align);
    halo_ = halo(layers);
    for (int64_t y0 = 0; y0 < height; y0 += tile_) {
        for (int64_t x0 = 0; x0 < width; x0 += tile_) {
            VggTile t;
            t.y0 = y0, t.y1 = std::min(height, y0 + tile_);
            t.x0 = x0, t.x1 = std::min(width, x0 + tile_);
            t.in_y0 = std::max<int64_t>(0, t.y0 - halo_), t.in_y1 = std::min(height, t.y1 + halo_);
            t.in_x0 = std::max<int64_t>(0, t.x0 - halo_), t.in_x1 = std::min(width, t.x1 + halo_);
            tiles_.push_back(t);
        }
    }
}

Tensor VggTiling::input(const Tensor& image, const VggTile& t) const {
    NST_CHECK(image.dim() == 4 && image.size(2) == height_ && image.size(3) == width_, "vgg tiles: image ",
              shape_str(image.shape()), " is not the tiled ", width_, "x", height_);
    if (t.in_y0 == 0 && t.in_x0 == 0 && t.in_y1 == height_ && t.in_x1 == width_) return image;
    return pad(image, -int(t.in_y0), -int(height_ - t.in_y1), -int(t.in_x0), -int(width_ - t.in_x1));
}

Tensor VggTiling::owned(const Tensor& features, const std::string& layer, const VggTile& t) const {
    const int64_t s = stride(layer);
    const int64_t top = t.y0 / s - t.in_y0 / s, left = t.x0 / s - t.in_x0 / s;
    const int64_t bottom = owned_end(t.y1, height_, s) - t.in_y0 / s;
    const int64_t right = owned_end(t.x1, width_, s) - t.in_x0 / s;
    const int64_t h = features.size(2), w = features.size(3);
    NST_CHECK(bottom <= h && right <= w, "vgg tiles: the tile's ", layer, " features ", shape_str(features.shape()),
              " end before its block (", bottom, "x", right, ")");
    if (bottom <= top || right <= left) return Tensor();
    if (top == 0 && left == 0 && bottom == h && right == w) return features;
    return pad(features, -int(top), -int(h - bottom), -int(left), -int(w - right));
}

std::pair<int64_t, int64_t> VggTiling::feature_size(const std::string& layer) const {
    const int64_t s = stride(layer);
    return {height_ / s, width_ / s};
}

}  // namespace nst
