// The optimization mode's run (Gatys et al.), as nst-run and the public API
// both run it: the stage budgets (coarse to fine by default), the memory
// plan (nets/memory_plan.hpp: made when asked or when the run could come
// near the device's memory, and a run that fits nowhere refused before it
// starts), then the stages, each optimizing a GatysObjective
// (nets/gatys.hpp) from the previous stage's result resized.
//
// The optimized image is a leaf tensor on the network's device; per
// iteration the only host traffic is the loss scalars (progress, NaN
// check) and L-BFGS's inner products. The last image with a finite loss is
// kept by a device-to-device copy, so a NaN costs nothing but the
// iterations since. Out of memory, L-BFGS gives up history first
// (core/optim.hpp), then the objective goes to smaller tiles.
#pragma once
#include <optional>
#include <vector>

#include "core/image.hpp"
#include "nets/gatys.hpp"
#include "nets/memory_plan.hpp"

namespace nst {

// Coarse to fine: most of the work at half size, where an iteration costs a
// quarter, then a few at full size (measured in the README): {size / 2,
// size} from 256 pixels up, else {size}; 250 iterations per coarser stage
// and 80 at the final size, or 500 for a single stage.
std::vector<int> default_scales(int size);
std::vector<int> default_stage_iterations(int stages);

struct GatysProgress {
    int stage = 0, stages = 1;            // stage is 0-based
    int64_t height = 0, width = 0;        // of this stage
    int iteration = 0, iterations = 0;    // within the stage, 1-based
    int total_iteration = 0, total_iterations = 0;  // over all stages
    // Losses of the image this iteration's step started from (weighted).
    float content_loss = 0, style_loss = 0, tv_loss = 0, total_loss = 0;
    float temporal_loss = 0;  // video frames only (GatysOptions::temporal_weight)
    double elapsed_seconds = 0;  // since the run started
    bool snapshot = false;       // save_every fell due: `image` is defined
    // How long L-BFGS's history may grow: lbfgs_history, or less once memory
    // ran short (core/optim.hpp); 0 with Adam.
    int lbfgs_history = 0;
    int tile = 0;  // the stage's tile size (0: untiled) ...
    int planned_tile = 0;  // ... and the one it started with (a memory plan's)
};

// Called after every iteration; `image` is defined only on snapshots (then it
// is the result so far, original colours applied). Return false to stop: the
// run then returns the image so far.
using GatysCallback = std::function<bool(const GatysProgress&, const Tensor& image)>;

// A NaN or infinite loss: the run stops and keeps the newest image whose loss
// was finite (or the stage's starting image), as the run would return it.
class NonFiniteLossError : public Error {
public:
    NonFiniteLossError(const std::string& message, Tensor last_good, int last_good_iteration)
        : Error(message), last_good_(std::move(last_good)), iteration_(last_good_iteration) {}
    const Tensor& last_good_image() const { return last_good_; }
    int last_good_iteration() const { return iteration_; }  // over all stages; 0: the start

private:
    Tensor last_good_;
    int iteration_;
};

class Optimization {
public:
    // `content` [1, 3, H, W] 0..1 at any size: options.scales give the
    // stages (the last is the result's longer side; empty: one stage at the
    // content's own size), each stage's size derived from the result's.
    // Checks the options, including a tile smaller than the layers' halo
    // (a tile would read more than 9 times its own area).
    Optimization(const Vgg19& net, Tensor content, std::vector<StyleInput> styles, GatysOptions options);

    ImageSize size() const { return stages_.back().size; }  // the result's
    ImageSize stage_size(int stage) const { return stages_[size_t(stage)].size; }
    int stages() const { return int(stages_.size()); }
    int total_iterations() const { return total_iterations_; }

    // The memory plan: made when `asked`, or when the run could come near
    // the device's memory (else empty). Unless asked, a plan whose stages
    // do not fit even in the smallest tiles throws OutOfMemoryError saying
    // which (the run would fail hours in); not even the plan's small
    // measurements fitting leaves it empty (the run's fallbacks go on).
    const std::optional<OptimizePlan>& plan(bool asked = false);

    // The whole run; returns [1, 3, H, W] on the network's device, 0..1 but
    // not clamped (save_image clamps). Makes the plan first if plan() was
    // not called. An interrupt request (core/interrupt.hpp) stops a tiled
    // step between its tiles, and the run returns the last completed
    // iteration's image, as when the callback stops it; before the first
    // iteration it throws Interrupted.
    Tensor run(const GatysCallback& callback = nullptr);

private:
    struct Stage {
        ImageSize size;
        int iterations = 0;
    };
    const Vgg19& net_;
    Tensor content_;  // as given until the first run, then at the result's size
    std::vector<StyleInput> styles_;
    GatysOptions options_;
    std::vector<Stage> stages_;
    int total_iterations_ = 0;
    std::optional<OptimizePlan> plan_;
    bool planned_ = false;
};

// Optimization(...).run(callback).
Tensor stylize_by_optimization(const Vgg19& net, const Tensor& content, const std::vector<StyleInput>& styles,
                               const GatysOptions& options, const GatysCallback& callback = nullptr);

}  // namespace nst
