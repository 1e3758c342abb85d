// Exact tiling of VGG-19's features, for optimization mode at sizes whose
// whole graph would not fit (nets/gatys.hpp).
//
// Each tile owns a block of the image and reads that block plus a halo. A
// feature at a layer of stride s (2 to the number of poolings before it)
// owned by a tile is the untiled one when:
//  * the halo covers its reach: each 3x3 convolution at stride s widens the
//    window an output reads by s pixels on each side, poolings do not (their
//    2x2 windows tile the grid), so relu5_1 reads 70 pixels beyond its own
//    16x16 block on every side (156 in all, its receptive field) and relu4_2
//    38 (84 in all);
//  * tile origins and the halo are multiples of the deepest layer's stride,
//    so every pooling sees the untiled grid; a tile's read window then stops
//    either at a multiple of that stride or at the image's edge, where the
//    convolutions' zero padding is the untiled one and the poolings drop the
//    same odd last row or column.
// The owned blocks partition every feature map, so sums over pixels (Gram
// matrices, squared differences) are sums over tiles, and the gradient with
// respect to the image is the sum of each tile's backward through its read
// window.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace nst {

struct VggTile {
    int64_t y0, y1, x0, x1;              // the pixels it owns
    int64_t in_y0, in_y1, in_x0, in_x1;  // the pixels it reads: owned plus halo, within the image
};

class VggTiling {
public:
    // Tiles of `tile` pixels (rounded up to the deepest layer's stride) over
    // an image of height x width, for the features at `layers`.
    VggTiling(int64_t height, int64_t width, const std::vector<std::string>& layers, int tile);

    // What a tile reads beyond its block, on every side: the deepest layer's
    // reach rounded up to its stride.
    static int64_t halo(const std::vector<std::string>& layers);
    // Pixels per feature at `layer` along each side: 1, 2, 4, 8 or 16.
    static int64_t stride(const std::string& layer);

    int64_t tile() const { return tile_; }
    const std::vector<VggTile>& tiles() const { return tiles_; }

    // The tile's read window of `image` [1, 3, H, W] (a crop: differentiable).
    Tensor input(const Tensor& image, const VggTile& t) const;
    // The features a tile owns at `layer`, cut from its features there (a
    // crop: differentiable); undefined when it owns none at that depth (a
    // last row of tiles thinner than the layer's stride).
    Tensor owned(const Tensor& features, const std::string& layer, const VggTile& t) const;
    // The untiled feature map's height and width at `layer`.
    std::pair<int64_t, int64_t> feature_size(const std::string& layer) const;

private:
    int64_t height_, width_, tile_, halo_;
    std::vector<VggTile> tiles_;
};

}  // namespace nst
