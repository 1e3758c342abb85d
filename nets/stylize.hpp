// The feed-forward mode's run (Johnson et al.), as nst-run and the public
// API both run it: images of one size through a TransformNet, the whole
// batch in one pass if it fits, else one image at a time, each in the
// largest tiles that fit if it must (TransformNet::stylize_fitting, the
// same result); the caller's tile size, when given, for every image larger
// than it. The memory plan (nets/memory_plan.hpp) predicts the same
// choices and refuses, before any work, images that fit nowhere.
//
// Host and device: a batch crosses to the device once, as floats or as
// 8-bit frames (core/image.hpp: images_from_rgb8), and comes back once.
// Falling back to one image at a time starts again from the caller's host
// images, so no batch is split on the device and copied back and forth.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "nets/memory_plan.hpp"
#include "nets/transform_net.hpp"

namespace nst {

struct StylizeOptions {
    // > 0: every image larger than this in tiles of it (the same result,
    // less memory; refused where such tiles cost more than
    // TransformNet::kMaxTiledWork times the untiled work or are smaller
    // than the network's halo). 0: tiles only when an image does not fit.
    int tile = 0;
    // Images per pass the caller gives (for the plan).
    int batch = 1;
    // Keep the photo's colours: luminance transfer (core/image.hpp).
    bool preserve_color = false;
};

// A note for the user when the run falls back ("a batch of 8 images of
// 1920x1080 does not fit in memory: one at a time").
using StylizeNote = std::function<void(const std::string& note)>;

class Stylizer {
public:
    // Keeps a reference to the network, which must outlive it. Checks the
    // tile size against the network's halo.
    Stylizer(const TransformNet& net, StylizeOptions options, StylizeNote note = nullptr);
    const TransformNet& net() const { return net_; }
    const StylizeOptions& options() const { return options_; }

    // Throws when the options' tiles on a height x width image would cost
    // more than kMaxTiledWork times the untiled work, naming the smallest
    // tile size that pays.
    void check_tiles(int64_t height, int64_t width) const;
    // The memory plan of batches of height x width (plan_or_refuse), after
    // check_tiles. The
    // run of images of that size then goes as the plan says (one at a
    // time, the plan's tiles) instead of finding out by running out of memory.
    std::optional<StylizePlan> plan(int64_t height, int64_t width, bool asked = false) const;

    // Photos [1, 3, H, W] 0..255 of one size on the CPU -> the stylized
    // images, [1, 3, H, W] on the CPU.
    std::vector<Tensor> run(const std::vector<Tensor>& photos) const;
    // `count` frames of 8-bit RGB, height x width each, one after another ->
    // the stylized frames into `out` (resized to fit), converted on the
    // device, in as many passes as the kernels' 32-bit sizes need.
    void run_rgb8(const uint8_t* rgb, int count, int height, int width, std::vector<uint8_t>& out) const;

private:
    // The run over `count` images that load(first, n) puts on the device as
    // [n, 3, H, W] and emit(first, stylized) takes back.
    void stylize(int count, int64_t height, int64_t width, const std::function<Tensor(int, int)>& load,
                 const std::function<void(int, const Tensor&)>& emit) const;
    Tensor finished(const Tensor& stylized, const Tensor& photos) const;
    std::string tile_cost(int64_t height, int64_t width, int tile) const;

    const TransformNet& net_;
    StylizeOptions options_;
    StylizeNote note_;
    mutable std::optional<StylizePlan> plan_;  // the last one made
};

}  // namespace nst
