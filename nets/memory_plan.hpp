// Memory plans, made before a run: what it will hold at its peak on its
// device, and how it will fit (tiles, one image at a time, the L-BFGS
// history), for `nst-run optimize|stylize|train --plan` and for refusing a
// run that cannot fit before it starts.
//
// Each plan measures the work at two small sizes on the run's device and
// network (the memory books of core/device.hpp) and draws a line through
// them: a fixed cost and bytes per pixel, the convolution libraries'
// scratch included. What is held besides is counted from the options.
//
// Optimization (nets/gatys.hpp): for each stage, the predicted peak
// untiled, and the tile size (nets/vgg_tiles.hpp) and L-BFGS history that
// fit. A step's memory is measured, not modelled layer by layer: one untiled
// step at two sizes of the content's shape (128 and 256 pixels on the
// longer side), on the run's device and network, gives a step's fixed cost
// and its bytes per pixel, scratch of the convolution libraries included.
// What the run holds between steps is counted from the options: the image
// and its last good copy, the content and its targets, the resized style
// images, the optimizer's state (L-BFGS: 2 x history + 2 image-sized
// vectors; Adam: 2). A tiled step adds a whole-image gradient, one
// image-sized crop gradient and the owned crops of the tapped features to
// the graph of its largest tile. The inputs (content, styles) and the
// network are counted as in use when the plan is made.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nets/gatys.hpp"
#include "nets/training.hpp"
#include "nets/transform_net.hpp"

namespace nst {

struct StagePlan {
    int64_t height = 0, width = 0;
    size_t untiled = 0;     // predicted peak of the stage untiled, full history
    int tile = 0;           // the tile size the run starts with (0: untiled)
    size_t peak = 0;        // predicted peak with that tile and history
    int lbfgs_history = 0;  // the L-BFGS history that fits (0 with Adam)
    bool fits = true;       // false: not even tiles of the smallest size fit
};

struct OptimizePlan {
    bool fits = true;        // every stage
    int smallest_tile = 0;   // the smallest tile tried (the caller's, or kMinTile)
    size_t capacity = 0;     // what the device lets tensors hold (memory_capacity)
    size_t in_use = 0;       // what they held when the plan was made (the network)
    size_t step_fixed = 0;   // a step's measured cost: fixed part ...
    double step_per_pixel = 0;  // ... and bytes per pixel
    std::vector<StagePlan> stages;
};

// `content_hw`: the content's size at the final stage (or its own size when
// options.scales is empty); `style_hw`: the style images' own sizes;
// `capacity`: 0 for the device's (memory_capacity); `to_come`: bytes the
// run will hold that are not in use yet (the caller's content at its final
// size, resized after the plan: at print sizes resizing alone takes longer
// than a plan should). Measuring the step runs two small steps on the
// network's device (about a second on a CPU).
OptimizePlan plan_optimization(const Vgg19& net, std::pair<int64_t, int64_t> content_hw,
                               const std::vector<std::pair<int64_t, int64_t>>& style_hw,
                               const GatysOptions& options, size_t capacity = 0, size_t to_come = 0);

// The predicted peak of one stage of height x width with a tile size (0:
// untiled) and an L-BFGS history, from a plan's measured step: what the
// stage adds to what was in use before the run (the inputs included).
size_t predicted_peak(const OptimizePlan& plan, int64_t height, int64_t width,
                      const std::vector<std::pair<int64_t, int64_t>>& style_hw, const GatysOptions& options,
                      int tile, int lbfgs_history);

// Whether a run could come near the device's memory (a rough bound, no
// measurement): runs that cannot skip the plan.
bool plan_needed(Device device, std::pair<int64_t, int64_t> content_hw, const GatysOptions& options);

// Plain lines for `nst-run optimize --plan`.
std::string describe(const OptimizePlan& plan, const GatysOptions& options);
// Why a plan does not fit, as an error's message: "optimize: stage 2 (...) does not fit ...".
std::string unfit_message(const OptimizePlan& plan);

// ---- stylize ----------------------------------------------------------------------------
// Feed-forward stylization (TransformNet::stylize) of a batch of images of
// one size: the whole batch at once if it fits, else one image at a time,
// else in the tiles TransformNet::fallback_tiles() allows (as
// stylize_fitting falls back), or in the caller's tiles. Measured: one
// image at 64 and 128 pixels, and the passes of a tiled run over one
// 128-pixel crop. A tiled run holds the whole output image and one tile's
// passes over its read window (the tile and the network's halo).
struct StylizePlan {
    size_t capacity = 0, in_use = 0;
    size_t fixed = 0;
    double per_pixel = 0;       // of a whole stylization
    double tile_per_pixel = 0;  // of a tile's read window, in stylize_tiled
    int64_t height = 0, width = 0;
    int batch = 1;
    size_t batch_peak = 0;  // the whole batch at once
    size_t peak = 0;        // as the run will go
    bool one_at_a_time = false;
    int tile = 0;           // > 0: each image in tiles of this size
    std::vector<int> tried_tiles;  // the tile sizes considered, largest first
    bool fits = true;
};
// tile > 0: the run tiles images larger than that (--tile).
StylizePlan plan_stylize(const TransformNet& net, int64_t height, int64_t width, int batch, int tile = 0,
                         size_t capacity = 0);
size_t predicted_stylize_peak(const StylizePlan& plan, const TransformNet& net, int batch, int tile);
std::string describe(const StylizePlan& plan, const TransformNet& net);
// Why a plan that does not fit does not: "even one image at a time in tiles of 256 (1.2 GiB)".
std::string stylize_unfit_reason(const StylizePlan& plan);
// As an error's message: "stylize: 8000x6000 images do not fit in memory, even ...".
std::string unfit_message(const StylizePlan& plan);
// Whether stylizing could come near the device's memory (a rough bound).
bool stylize_plan_needed(Device device, int64_t height, int64_t width, int batch);

// ---- train ------------------------------------------------------------------------------
// A training step (StyleTrainer::step) on a batch of size x size photos,
// and the style's targets computed once before the first step (VGG-19's
// features of the whole style image). Measured: steps of one photo at 64
// and 128 pixels on a trainer of its own, whose network and Adam state
// stand for the run's (so plan before the run's trainer exists), and the
// style's targets at 128 and 256 pixels square. No tiles: what does
// not fit needs a smaller batch or size, and the plan says which batch fits.
struct TrainingPlan {
    size_t capacity = 0, in_use = 0;
    size_t fixed = 0;
    double per_pixel = 0;
    int batch = 1, size = 256;
    size_t peak = 0;                  // a step
    int64_t style_height = 0, style_width = 0;
    size_t style_peak = 0;            // the style's targets
    int largest_batch = 0;  // that fits at this size (0: not even one photo)
    bool step_fits = true, style_fits = true;
    bool fits = true;  // both
};
// style_hw: the style image's size as the run uses it (after --style-size).
TrainingPlan plan_training(const Vgg19& vgg, std::pair<int64_t, int64_t> style_hw, const TrainingOptions& options,
                           int batch, int size, size_t capacity = 0);
size_t predicted_training_peak(const TrainingPlan& plan, int batch, int size);
std::string describe(const TrainingPlan& plan);
// As an error's message: the style's targets or a step, and what would fit.
std::string unfit_message(const TrainingPlan& plan);

// ---- plan or refuse ---------------------------------------------------------------------
// Every mode's use of its plan (nets/optimize.hpp, nets/stylize.hpp,
// nets/train.hpp): made when `asked` (--plan) or when the run could come
// near the device's memory (`needed`, a rough bound: measuring costs a
// second), else none. Unless asked, a plan that does not fit throws
// OutOfMemoryError(unfit_message(plan)) before the run starts, and not even
// the plan's small measurements fitting gives none (the run's own
// fallbacks then say what to do); asked, both are the caller's to show.
template <class Make>
auto plan_or_refuse(bool asked, bool needed, Make&& make) -> std::optional<decltype(make())> {
    if (!asked && !needed) return std::nullopt;
    std::optional<decltype(make())> plan;
    try {
        plan = make();
    } catch (const OutOfMemoryError&) {
        if (asked) throw;
        return std::nullopt;
    }
    if (!asked && !plan->fits) throw OutOfMemoryError(unfit_message(*plan));
    return plan;
}
// Whether a training step could come near the device's memory (a rough bound).
bool training_plan_needed(Device device, int batch, int size, int64_t style_pixels);

}  // namespace nst
