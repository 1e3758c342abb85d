// Tiled stylization (TransformNet::stylize_tiled, nets/transform_net.hpp).
//
// Without instance norm, tiling would be easy: a tile with a halo wider than
// the receptive field gives exactly the untiled values in its interior. The
// norms break that: each normalizes with the mean and variance of its whole
// channel, over the whole image. So the statistics are gathered first, one
// norm layer at a time: with the statistics of the layers before it known,
// every tile runs up to norm layer k (normalizing with the known whole-image
// statistics, which makes every layer local again) and adds its interior's
// share of layer k's channels to the totals (Chan's parallel variance, in
// double). Then a last pass over the tiles, with every statistic known,
// produces the output interiors.
//
// Alignment: tiles start at multiples of 4 pixels, so the two stride-2 levels
// see the same grid as the untiled image; and a crop that stops inside the
// image has the image's size modulo 4, so TensorFlow 'SAME' padding (which
// depends on the size's parity at each level) puts its odd pixel where the
// untiled run does. At the image's bottom and right the crop ends where the
// image does, and the interior takes every row the network produces there,
// rounding rows included, as the untiled norms do.
#include <algorithm>
#include <cmath>
#include <new>

#include "core/autograd.hpp"
#include "core/error.hpp"
#include "core/ops.hpp"
#include "nets/tile_ladder.hpp"
#include "nets/transform_net.hpp"

namespace nst {

struct TransformNet::TilePass {
    // Per norm layer met so far: the whole-image normalization as x * scale + shift.
    const std::vector<std::vector<float>>* scale = nullptr;
    const std::vector<std::vector<float>>* shift = nullptr;
    int collect = -1;  // the norm layer measured by this pass; -1: the final pass
    int next = 0;      // norm layers met in this pass
    bool done = false;
    // The crop's origin and the tile's interior, in image pixels; the image's size.
    int64_t crop_y = 0, crop_x = 0, y0 = 0, y1 = 0, x0 = 0, x1 = 0, H = 0, W = 0;
    // The measured layer's per-channel totals: count, mean, sum of squared deviations.
    std::vector<double>* count = nullptr;
    std::vector<double>* mean = nullptr;
    std::vector<double>* m2 = nullptr;
};

bool TransformNet::tile_pass_done(const TilePass& tile) { return tile.done; }

Tensor TransformNet::tile_norm(TilePass& t, const Layer& l, const Tensor& y) {
    const int index = t.next++;
    if (index != t.collect) return channel_affine(y, (*t.scale)[size_t(index)], (*t.shift)[size_t(index)]);
    // The interior at this layer's resolution; at the image's end, every row produced.
    const int64_t Hy = y.size(2), Wy = y.size(3);
    const int64_t r0 = (t.y0 - t.crop_y) >> l.level, c0 = (t.x0 - t.crop_x) >> l.level;
    const int64_t r1 = t.y1 == t.H ? Hy : (t.y1 - t.crop_y) >> l.level;
    const int64_t c1 = t.x1 == t.W ? Wy : (t.x1 - t.crop_x) >> l.level;
    const std::vector<float> v = pad(y, -int(r0), -int(Hy - r1), -int(c0), -int(Wy - c1)).to_vector();
    const int64_t C = y.size(1), n = (r1 - r0) * (c1 - c0);
    for (int64_t c = 0; c < C; ++c) {
        const float* p = v.data() + c * n;
        double mean = 0, m2 = 0;
        for (int64_t i = 0; i < n; ++i) mean += p[i];
        mean /= double(n);
        for (int64_t i = 0; i < n; ++i) m2 += (p[i] - mean) * (p[i] - mean);
        double& N = (*t.count)[size_t(c)];
        double& M = (*t.mean)[size_t(c)];
        const double delta = mean - M, total = N + double(n);
        (*t.m2)[size_t(c)] += m2 + delta * delta * N * double(n) / total;
        M += delta * double(n) / total;
        N = total;
    }
    t.done = true;
    return y;
}

int TransformNet::receptive_radius() const {
    // Each layer widens the field by its kernel radius at its input's
    // resolution (upsampling layers by one more pixel there), in image pixels.
    int radius = 0, level = 0;
    for (const Layer* l : layers()) {
        const int k = int(l->weight.size(2));
        radius += (k / 2 + (l->upsample ? 1 : 0)) << std::max(level, l->level);
        level = l->level;
    }
    return radius;
}

int TransformNet::tile_halo() const { return (receptive_radius() + 8 + 3) / 4 * 4; }

std::vector<TransformNet::TileRect> TransformNet::tile_layout(int64_t H, int64_t W, int tile) const {
    NST_CHECK(tile >= 16, "stylize_tiled: tiles of ", tile, " pixels are too small (at least 16)");
    tile = tile / 4 * 4;
    const int64_t halo = tile_halo();
    // A crop that stops inside the image keeps the image's size modulo 4.
    auto crop_end = [](int64_t begin, int64_t end, int64_t size) {
        if (end >= size) return size;
        end += ((size - (end - begin)) % 4 + 4) % 4;
        return std::min(end, size);
    };
    std::vector<TileRect> tiles;
    for (int64_t y0 = 0; y0 < H; y0 += tile)
        for (int64_t x0 = 0; x0 < W; x0 += tile) {
            TileRect t;
            t.y0 = y0, t.y1 = std::min(H, y0 + tile), t.x0 = x0, t.x1 = std::min(W, x0 + tile);
            t.cy0 = std::max<int64_t>(0, y0 - halo), t.cx0 = std::max<int64_t>(0, x0 - halo);
            t.cy1 = crop_end(t.cy0, t.y1 + halo, H), t.cx1 = crop_end(t.cx0, t.x1 + halo, W);
            tiles.push_back(t);
        }
    return tiles;
}

double TransformNet::tiled_work(int64_t H, int64_t W, int tile) const {
    // Multiply-adds per image pixel, layer by layer: a convolution's weight
    // count at its output's resolution (a transposed one at its input's).
    double total = 0, passes = 0;
    for (const Layer* l : layers()) {
        const int level = l->level + (l->upsample && variant_ == TransformNetVariant::TensorFlow ? 1 : 0);
        total += double(l->weight.numel()) / double(int64_t(1) << (2 * level));
        if (l->gamma.defined()) passes += total;  // a pass that stops at this norm
    }
    passes += total;  // the last pass
    double read = 0;
    for (const TileRect& t : tile_layout(H, W, tile)) read += double((t.cy1 - t.cy0) * (t.cx1 - t.cx0));
    return read / double(H * W) * passes / total;
}

int64_t TransformNet::largest_tile_crop(int64_t H, int64_t W, int tile) const {
    int64_t area = 0;
    for (const TileRect& t : tile_layout(H, W, tile)) area = std::max(area, (t.cy1 - t.cy0) * (t.cx1 - t.cx0));
    return area;
}

std::vector<int> TransformNet::fallback_tiles(int64_t H, int64_t W) const {
    std::vector<int> tiles;
    for (int tile : tile_ladder(kLargestStylizeTile, std::max(H, W))) {
        // A tile's crop as large as the image saves no memory.
        if (largest_tile_crop(H, W, tile) < H * W && tiled_work(H, W, tile) <= kMaxTiledWork) tiles.push_back(tile);
    }
    return tiles;
}

Tensor TransformNet::stylize_tiled(const Tensor& image, int tile) const {
    NoGradGuard no_grad;
    NST_CHECK(image.defined() && image.dim() == 4 && image.size(0) == 1 && image.size(1) == 3,
              "stylize_tiled: expected an image [1, 3, H, W], got ",
              image.defined() ? shape_str(image.shape()) : "an undefined tensor");
    const int64_t H = image.size(2), W = image.size(3);
    const Tensor x = image.to(device_);
    const std::vector<TileRect> tiles = tile_layout(H, W, tile);
    auto pass_for = [&](const TileRect& t) {
        TilePass p;
        p.crop_y = t.cy0, p.crop_x = t.cx0, p.y0 = t.y0, p.y1 = t.y1, p.x0 = t.x0, p.x1 = t.x1, p.H = H, p.W = W;
        return p;
    };
    auto crop = [&](const TileRect& t) {
        return pad(x, -int(t.cy0), -int(H - t.cy1), -int(t.cx0), -int(W - t.cx1));
    };

    std::vector<const Layer*> norms;
    for (const Layer* l : layers())
        if (l->gamma.defined()) norms.push_back(l);
    std::vector<std::vector<float>> scale, shift;
    for (size_t k = 0; k < norms.size(); ++k) {
        const int64_t C = norms[k]->gamma.size(0);
        std::vector<double> count(size_t(C), 0.0), mean(size_t(C), 0.0), m2(size_t(C), 0.0);
        for (const TileRect& t : tiles) {
            TilePass p = pass_for(t);
            p.scale = &scale, p.shift = &shift, p.collect = int(k);
            p.count = &count, p.mean = &mean, p.m2 = &m2;
            run(crop(t), &p, true);
            NST_CHECK(p.done, "stylize_tiled: norm layer ", k, " was not reached");
        }
        const std::vector<float> gamma = norms[k]->gamma.to_vector(), beta = norms[k]->beta.to_vector();
        scale.emplace_back(size_t(C)), shift.emplace_back(size_t(C));
        for (size_t c = 0; c < size_t(C); ++c) {
            const double rstd = 1.0 / std::sqrt(m2[c] / count[c] + double(norm_eps_));
            scale[k][c] = float(gamma[c] * rstd);
            shift[k][c] = float(beta[c] - mean[c] * gamma[c] * rstd);
        }
    }

    std::vector<float> out(size_t(3 * H * W));
    for (const TileRect& t : tiles) {
        TilePass p = pass_for(t);
        p.scale = &scale, p.shift = &shift;
        const Tensor y = run(crop(t), &p, true);
        const int64_t Hy = y.size(2), Wy = y.size(3), r0 = t.y0 - t.cy0, c0 = t.x0 - t.cx0;
        const int64_t h = t.y1 - t.y0, w = t.x1 - t.x0;
        const std::vector<float> v = pad(y, -int(r0), -int(Hy - r0 - h), -int(c0), -int(Wy - c0 - w)).to_vector();
        for (int64_t c = 0; c < 3; ++c)
            for (int64_t r = 0; r < h; ++r)
                std::copy_n(v.data() + (c * h + r) * w, w, out.data() + (c * H + t.y0 + r) * W + t.x0);
    }
    return checked(Tensor::from_vector(out, {1, 3, H, W}, device_));
}

Tensor TransformNet::stylize_fitting(const Tensor& image, const std::function<void(int)>& on_tiles,
                                     int first_tile) const {
    // Tiles also when an activation of the whole image would pass the
    // kernels' 32-bit indices (an 8192x8192 image, whatever the memory).
    if (first_tile <= 0) {
        try {
            return stylize(image);
        } catch (const OutOfMemoryError&) {
        } catch (const SizeLimitError&) {
        } catch (const std::bad_alloc&) {
        }
    }
    const std::vector<int> tiles = fallback_tiles(image.size(2), image.size(3));
    for (int tile : tiles) {
        if (first_tile > 0 && tile > first_tile) continue;
        if (device_.is_cuda()) cuda_empty_cache(device_.index);  // what the failed attempt left cached
        if (on_tiles) on_tiles(tile);
        try {
            return stylize_tiled(image, tile);
        } catch (const OutOfMemoryError&) {
        } catch (const std::bad_alloc&) {
        }
    }
    throw OutOfMemoryError("out of memory stylizing an image of " + std::to_string(image.size(3)) + "x" +
                           std::to_string(image.size(2)) + " pixels" +
                           (tiles.empty() ? std::string(" (too small for tiles to help)")
                                          : ", even in tiles of " + std::to_string(tiles.back())));
}

}  // namespace nst
