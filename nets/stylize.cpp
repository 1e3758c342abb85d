// The feed-forward mode's run (nets/stylize.hpp).
#include "nets/stylize.hpp"

#include <algorithm>
#include <cmath>
#include <new>

#include "core/autograd.hpp"
#include "core/error.hpp"
#include "core/image.hpp"

namespace nst {
namespace {

std::string size_str(int64_t height, int64_t width) { return std::to_string(width) + "x" + std::to_string(height); }

// [1, 3, H, W] CPU images of one size -> [N, 3, H, W] on `device`. A batch
// of one is the image itself (at 1080p each host copy is 25 MB of traffic).
Tensor stack_to(const std::vector<Tensor>& images, size_t first, size_t count, Device device) {
    if (count == 1) return images[first].to(device);
    std::vector<float> all;
    for (size_t i = first; i < first + count; ++i) {
        const std::vector<float> v = images[i].to_vector();
        all.insert(all.end(), v.begin(), v.end());
    }
    const Tensor& one = images[first];
    return Tensor::from_vector(all, {int64_t(count), 3, one.size(2), one.size(3)}, device);
}

}  // namespace

Stylizer::Stylizer(const TransformNet& net, StylizeOptions options, StylizeNote note)
    : net_(net), options_(options), note_(std::move(note)) {
    NST_CHECK(options_.batch >= 1, "stylize: the batch must be positive, got ", options_.batch);
    NST_CHECK(options_.tile >= 0, "stylize: the tile size must be positive, got ", options_.tile);
    // A tile under the halo reads more than 9 times its own area, in every
    // one of the passes: a mistake, not a memory saving, whatever the image.
    const int halo = net_.tile_halo(), suggested = std::max(256, 2 * halo);
    if (options_.tile > 0 && options_.tile < halo)
        throw Error("stylize: tiles of " + std::to_string(options_.tile) + " pixels are smaller than the " +
                    std::to_string(halo) + " pixels this network reads around each tile: on a 1920x1080 image " +
                    "such tiles would cost " + tile_cost(1080, 1920, options_.tile) + "; use tiles of " +
                    std::to_string(suggested) + " or more (" + tile_cost(1080, 1920, suggested) +
                    " there) or leave tiling to the memory plan");
}

std::string Stylizer::tile_cost(int64_t height, int64_t width, int tile) const {
    return "about " + std::to_string(std::lround(net_.tiled_work(height, width, tile))) + " times the untiled work";
}

void Stylizer::check_tiles(int64_t height, int64_t width) const {
    const int tile = options_.tile;
    const int64_t side = std::max(height, width);
    if (tile <= 0 || tile >= side || net_.tiled_work(height, width, tile) <= TransformNet::kMaxTiledWork) return;
    int least = (tile + 3) / 4 * 4;
    while (least < side && net_.tiled_work(height, width, least) > TransformNet::kMaxTiledWork) least += 4;
    throw Error("stylize: tiles of " + std::to_string(tile / 4 * 4) + " on a " + size_str(height, width) +
                " image would cost " + tile_cost(height, width, tile) + " (each tile reads " +
                std::to_string(net_.tile_halo()) +
                " pixels around itself, and every instance norm needs a pass of its own); use tiles of " +
                std::to_string(least) +
                (least < side ? " or more (" + tile_cost(height, width, least) + ")" : " or more (untiled)"));
}

std::optional<StylizePlan> Stylizer::plan(int64_t height, int64_t width, bool asked) const {
    check_tiles(height, width);  // before measuring anything
    plan_ = plan_or_refuse(asked, stylize_plan_needed(net_.device(), height, width, options_.batch),
                           [&] { return plan_stylize(net_, height, width, options_.batch, options_.tile); });
    return plan_;
}

Tensor Stylizer::finished(const Tensor& stylized, const Tensor& photos) const {
    if (!options_.preserve_color) return stylized;
    NoGradGuard no_grad;
    return luminance_transfer(stylized, photos);
}

void Stylizer::stylize(int count, int64_t height, int64_t width, const std::function<Tensor(int, int)>& load,
                       const std::function<void(int, const Tensor&)>& emit) const {
    if (options_.tile > 0 && options_.tile < std::max(height, width)) {
        check_tiles(height, width);
        for (int i = 0; i < count; ++i) {
            const Tensor x = load(i, 1);
            emit(i, finished(net_.stylize_tiled(x, options_.tile), x));
        }
        return;
    }
    // The plan made for this size, if any: its choices, without the failed tries.
    const bool planned = plan_ && plan_->fits && plan_->height == height && plan_->width == width;
    const bool one_at_a_time = planned && (plan_->one_at_a_time || plan_->tile > 0);
    const int first_tile = planned ? plan_->tile : 0;
    if (count > 1) {
        if (!one_at_a_time) {
            try {
                const Tensor x = load(0, count);
                return emit(0, finished(net_.stylize(x), x));
            } catch (const OutOfMemoryError&) {
            } catch (const SizeLimitError&) {
            } catch (const std::bad_alloc&) {
            }
        }
        if (note_)
            note_("a batch of " + std::to_string(count) + " images of " + size_str(height, width) +
                  " does not fit in memory: one at a time");
    }
    for (int i = 0; i < count; ++i) {
        const Tensor x = load(i, 1);
        emit(i, finished(net_.stylize_fitting(x, [&](int tile) {
                             if (note_)
                                 note_(size_str(height, width) + " does not fit in memory: stylizing in tiles of " +
                                       std::to_string(tile) + " (" + tile_cost(height, width, tile) + ")");
                         }, first_tile),
                         x));
    }
}

std::vector<Tensor> Stylizer::run(const std::vector<Tensor>& photos) const {
    NST_CHECK(!photos.empty(), "stylize: no images");
    const int64_t height = photos.front().size(2), width = photos.front().size(3);
    for (const Tensor& p : photos)
        NST_CHECK(p.dim() == 4 && p.size(0) == 1 && p.size(2) == height && p.size(3) == width, "stylize: images of ",
                  size_str(height, width), " expected, got ", shape_str(p.shape()));
    std::vector<Tensor> out(photos.size());
    stylize(
        int(photos.size()), height, width,
        [&](int first, int n) { return stack_to(photos, size_t(first), size_t(n), net_.device()); },
        [&](int first, const Tensor& y) {
            if (y.size(0) == 1) {
                out[size_t(first)] = y.cpu();
                return;
            }
            const std::vector<float> all = y.to_vector();
            const size_t plane = all.size() / size_t(y.size(0));
            for (int64_t i = 0; i < y.size(0); ++i)
                out[size_t(first + i)] = Tensor::from_vector(
                    std::vector<float>(all.begin() + i * plane, all.begin() + (i + 1) * plane), {1, 3, height, width});
        });
    return out;
}

void Stylizer::run_rgb8(const uint8_t* rgb, int count, int height, int width, std::vector<uint8_t>& out) const {
    const size_t frame_bytes = size_t(height) * width * 3;
    out.resize(frame_bytes * size_t(count));
    // The conversion kernels index bytes in 32 bits (--batch 346 at 1080p).
    const int most = int(std::max<int64_t>(1, ((int64_t(1) << 31) - 1) / int64_t(frame_bytes)));
    std::vector<uint8_t> part;
    for (int start = 0; start < count; start += most) {
        stylize(
            std::min(most, count - start), height, width,
            [&](int first, int n) {
                return images_from_rgb8(rgb + size_t(start + first) * frame_bytes, n, height, width, net_.device());
            },
            [&](int first, const Tensor& y) {
                if (y.size(0) == count) return images_to_rgb8(y, out);  // the whole clip's batch at once
                images_to_rgb8(y, part);
                std::copy(part.begin(), part.end(), out.begin() + std::ptrdiff_t(size_t(start + first) * frame_bytes));
            });
    }
}

}  // namespace nst
