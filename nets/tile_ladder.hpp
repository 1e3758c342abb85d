// The tile sizes a run falls back to when an image does not fit in memory,
// one ladder for every mode: halving from the largest down to kMinTile
// pixels, only sizes smaller than the image (a tile as large as the image
// is no tile). Below 64 pixels the halo a tile reads around itself costs
// more than the tile (nets/vgg_tiles.hpp, nets/transform_net.hpp).
#pragma once
#include <cstdint>
#include <vector>

namespace nst {

constexpr int kMinTile = 64;
// An optimization step (VGG-19 and its gradient) at 2048 pixels needs a
// few GiB; a stylization's passes at 1024 about as much.
constexpr int kLargestOptimizeTile = 2048;
constexpr int kLargestStylizeTile = 1024;

// Largest first, for an image whose longer side is `side`.
inline std::vector<int> tile_ladder(int largest, int64_t side) {
    std::vector<int> tiles;
    for (int tile = largest; tile >= kMinTile; tile /= 2)
        if (tile < side) tiles.push_back(tile);
    return tiles;
}

}  // namespace nst
