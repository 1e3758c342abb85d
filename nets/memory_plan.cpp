#include "nets/memory_plan.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/autograd.hpp"
#include "core/device.hpp"
#include "core/error.hpp"
#include "core/image.hpp"
#include "nets/tile_ladder.hpp"
#include "nets/vgg_tiles.hpp"

namespace nst {
namespace {

constexpr size_t kFloat = sizeof(float);
constexpr double kHeadroom = 0.9;  // of the capacity: fragmentation, what the plan does not see
// The longer sides the plans measure at: memory is a fixed cost plus bytes
// per pixel, which two small sizes give (held within 10% of real runs by
// tests/test_memory_plan.cpp) in well under a second on a CPU. An
// optimization step needs twice that: at 64 pixels VGG-19's deepest layers
// are 4x4, and its memory is not yet linear in the pixels.
constexpr int kSmallSide = 64, kLargeSide = 128;
constexpr int kStepSmallSide = 2 * kSmallSide, kStepLargeSide = 2 * kLargeSide;


std::vector<std::pair<int64_t, int64_t>> stage_sizes(std::pair<int64_t, int64_t> content_hw, const GatysOptions& o) {
    if (o.scales.empty()) return {content_hw};
    std::vector<std::pair<int64_t, int64_t>> out;
    for (int side : o.scales) {
        const ImageSize s = fit_longest_side(content_hw.first, content_hw.second, side);
        out.emplace_back(s.height, s.width);
    }
    return out;
}

std::vector<std::string> all_layers(const GatysOptions& o) {
    std::vector<std::string> layers;
    for (const auto& l : active_layers(o.content_layers, o.content_weight, "optimize")) layers.push_back(l.layer);
    for (const auto& l : active_layers(o.style_layers, o.style_weight, "optimize")) layers.push_back(l.layer);
    return layers;
}

// Channels of a layer's output: those of the convolution at or before it.
int64_t channels_at(const std::string& layer) {
    int conv = -1;
    const int index = Vgg19::layer_index(layer);
    for (int i = 0; i <= index; ++i) conv += Vgg19::layer_names()[size_t(i)].rfind("conv", 0) == 0;
    return Vgg19::conv_channels(std::max(conv, 0));
}

// What a stage holds between steps, optimizer state aside.
size_t held_bytes(int64_t h, int64_t w, const std::vector<std::pair<int64_t, int64_t>>& style_hw,
                  const GatysOptions& o) {
    const size_t pixels = size_t(h * w);
    size_t bytes = 3 * kFloat * pixels * 3;  // the stage's content, the image, its last good copy
    for (const auto& l : active_layers(o.content_layers, o.content_weight, "optimize")) {
        const int64_t s = VggTiling::stride(l.layer);
        bytes += kFloat * size_t(channels_at(l.layer) * (h / s) * (w / s));
    }
    for (const auto& l : active_layers(o.style_layers, o.style_weight, "optimize"))
        bytes += kFloat * size_t(channels_at(l.layer) * channels_at(l.layer));
    if (o.style_weight > 0) {
        const int side = int(std::lround(o.style_scale * double(std::max(h, w))));
        for (const auto& [sh, sw] : style_hw) {
            const auto [rh, rw] = fit_longest_side(sh, sw, std::max(side, 1));
            bytes += 3 * kFloat * size_t(rh * rw);  // resized (the caller's own are in use already)
        }
    }
    return bytes;
}

// The largest area a tile reads.
int64_t read_area(int64_t h, int64_t w, const std::vector<std::string>& layers, int tile) {
    const VggTiling tiling(h, w, layers, tile);
    int64_t area = 0;
    for (const VggTile& t : tiling.tiles()) area = std::max(area, (t.in_y1 - t.in_y0) * (t.in_x1 - t.in_x0));
    return area;
}

// The peak of f() over what was in use before it, on the device: the
// second of two runs (the first creates the convolution primitives and
// their caches), or the only one when an earlier measurement made them.
template <class F>
size_t measured_peak(Device device, F&& f, bool warm_up = true) {
    if (warm_up) f();
    empty_cache(device);
    const size_t base = memory_stats(device).current;
    reset_peak_memory(device);
    f();
    const size_t peak = memory_stats(device).peak;
    return peak > base ? peak - base : 0;
}

// Whether a rough upper bound of a run's memory (several times what the
// plans measure) reaches half of what the plans allow: only such runs are
// worth measuring before they start.
bool near_capacity(Device device, double rough_bytes) {
    return rough_bytes > double(memory_capacity(device)) * kHeadroom / 2;
}

// fixed + per_pixel * pixels through two measured points.
std::pair<size_t, double> line_through(double p1, double m1, double p2, double m2) {
    const double per_pixel = p2 > p1 ? std::max(0.0, (m2 - m1) / (p2 - p1)) : m2 / p2;
    return {size_t(std::max(0.0, m1 - per_pixel * p1)), per_pixel};
}

// (height, width) with the longer side `side`, each at least `least`.
std::pair<int64_t, int64_t> calibration_size(int64_t h, int64_t w, int side, int64_t least) {
    const auto [a, b] = fit_longest_side(h, w, side);
    return {std::max<int64_t>(a, least), std::max<int64_t>(b, least)};
}

// One untiled step at a small size, measured on the device: its first
// run, convolutions made on the way included (they count in the run's
// own first step too; a warm second run measured the same within 1% and
// cost twice the time).
size_t measure_step(const Vgg19& net, int64_t h, int64_t w, const GatysOptions& o) {
    const Device device = net.device();
    GatysOptions small = o;
    small.tile = int(std::max(h, w));  // untiled, and no falling back to tiles
    small.scales.clear();
    // A step's memory does not depend on the style's size (its targets are
    // Grams): a quarter of the side makes the objective's targets cheaper.
    small.style_scale = 0.25f;
    const Tensor content = Tensor::randn({1, 3, h, w}, 1, device, 0.5f, 0.2f);
    const Tensor style = Tensor::randn({1, 3, h, w}, 2, device, 0.5f, 0.2f);
    GatysObjective objective(net, content, {{style, 1.f}}, small);
    Tensor x = content.clone().set_requires_grad(true);
    return measured_peak(device, [&] {
        x.zero_grad();
        objective.evaluate_with_gradient(x);
    }, false);
}

}  // namespace

size_t predicted_peak(const OptimizePlan& plan, int64_t h, int64_t w,
                      const std::vector<std::pair<int64_t, int64_t>>& style_hw, const GatysOptions& o, int tile,
                      int lbfgs_history) {
    const size_t pixels = size_t(h * w), image = 3 * kFloat * pixels;
    const std::vector<std::string> layers = all_layers(o);
    const bool tiled = tile > 0 && tile < std::max(h, w) && !layers.empty();
    const int64_t area = tiled ? read_area(h, w, layers, tile) : h * w;
    // The step: its graph (and the gradient, in the measured per-pixel
    // cost); tiled, the whole gradient and a crop's gradient beside it, and
    // the owned crop of every tapped layer's features (saved for the Grams).
    size_t step = plan.step_fixed + size_t(plan.step_per_pixel * double(area));
    if (tiled) {
        step += 2 * image;
        std::vector<std::string> unique = layers;
        std::sort(unique.begin(), unique.end());
        unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
        const int64_t t = VggTiling(h, w, layers, tile).tile();  // rounded up to the stride
        const int64_t owned = t * t;
        for (const auto& l : unique) {
            const int64_t s = VggTiling::stride(l);
            step += kFloat * size_t(channels_at(l) * (owned / (s * s)));
        }
    }
    const size_t held = held_bytes(h, w, style_hw, o);
    if (o.optimizer == GatysOptimizer::Adam) return held + 2 * image + step;
    // L-BFGS: its direction and previous gradient, `history` pairs between
    // steps; while it updates, one pair more, the gradient and its copy.
    const size_t state = 2 * image + 2 * image * size_t(lbfgs_history);
    return held + state + std::max(step, 2 * image + 2 * image);
}

OptimizePlan plan_optimization(const Vgg19& net, std::pair<int64_t, int64_t> content_hw,
                               const std::vector<std::pair<int64_t, int64_t>>& style_hw, const GatysOptions& o,
                               size_t capacity, size_t to_come) {
    OptimizePlan plan;
    const Device device = net.device();
    plan.capacity = capacity ? capacity : memory_capacity(device);
    plan.in_use = memory_stats(device).current + to_come;
    const std::vector<std::string> layers = all_layers(o);
    if (!layers.empty()) {
        // Two sizes of the content's shape; a line through them.
        const int64_t need = min_side_for(layers);
        const auto [h1, w1] = calibration_size(content_hw.first, content_hw.second, kStepSmallSide, need);
        const auto [h2, w2] = calibration_size(content_hw.first, content_hw.second, kStepLargeSide, need);
        double m1 = 0, m2 = 0;
        try {
            m1 = double(measure_step(net, h1, w1, o)), m2 = double(measure_step(net, h2, w2, o));
        } catch (const OutOfMemoryError& e) {
            throw OutOfMemoryError("optimize: not even a step at " + std::to_string(kStepLargeSide) + " pixels fits in memory (" +
                                   e.what() + ")");
        }
        std::tie(plan.step_fixed, plan.step_per_pixel) = line_through(double(h1 * w1), m1, double(h2 * w2), m2);
    }
    const int history = o.optimizer == GatysOptimizer::LBFGS ? o.lbfgs_history : 0;
    const double budget = kHeadroom * double(plan.capacity) - double(plan.in_use);
    for (const auto& hw : stage_sizes(content_hw, o)) {
        const int64_t h = hw.first, w = hw.second;  // plain: the lambdas below capture them
        StagePlan s;
        s.height = h, s.width = w, s.lbfgs_history = history;
        s.untiled = s.peak = predicted_peak(plan, h, w, style_hw, o, 0, history);
        const int side = int(std::max(h, w));
        // The candidates, largest first: the caller's tile, or the whole
        // image and then the tile ladder (nets/tile_ladder.hpp).
        std::vector<int> tiles;
        if (o.tile > 0) {
            tiles.push_back(o.tile < side ? o.tile : 0);
        } else {
            tiles.push_back(0);
            if (!layers.empty())
                for (int t : tile_ladder(kLargestOptimizeTile, side)) tiles.push_back(t);
        }
        const size_t pair = 2 * 3 * kFloat * size_t(h * w);
        // The most history that fits beside tiles of t (capped at the asked history).
        const auto history_fitting = [&](int t) {
            const double rest = budget - double(predicted_peak(plan, h, w, style_hw, o, t, 0));
            return rest < 0 ? -1 : int(std::min<double>(history, rest / double(pair)));
        };
        // Tiles cost time (tiles of 512 read 1.7 times their area with the
        // default layers' halo, tiles of 64 twelve times) and L-BFGS history
        // helps less past about 20 steps, so: the whole history with tiles
        // of 512 or more; else 20 steps (or what was asked, if less) with
        // the largest tile; else the history the smallest tile leaves.
        const int enough = std::min(history, 20);
        const auto choose = [&](int t, int with_history) {
            s.tile = t, s.lbfgs_history = with_history, s.fits = true;
            s.peak = predicted_peak(plan, h, w, style_hw, o, t, with_history);
        };
        s.fits = false;
        for (int t : tiles) {
            if (t != 0 && t < 512 && o.tile == 0) break;
            if (history_fitting(t) >= history) {
                choose(t, history);
                break;
            }
        }
        if (!s.fits && o.optimizer == GatysOptimizer::LBFGS) {
            for (int t : tiles)
                if (history_fitting(t) >= enough) {
                    choose(t, history_fitting(t));
                    break;
                }
            // Less than that anywhere: as much as the smallest tiles leave,
            // with the largest tiles that leave as much (a pair of images
            // outweighs a tile's graph at such sizes).
            const int most = history_fitting(tiles.back());
            for (int t : tiles)
                if (!s.fits && most >= 1 && history_fitting(t) >= most) choose(t, most);
        }
        if (!s.fits && o.optimizer == GatysOptimizer::Adam) {
            for (int t : tiles)
                if (history_fitting(t) >= 0) {
                    choose(t, 0);
                    break;
                }
        }
        plan.fits = plan.fits && s.fits;
        plan.stages.push_back(s);
    }
    plan.smallest_tile = o.tile > 0 ? o.tile : kMinTile;
    return plan;
}

std::string unfit_message(const OptimizePlan& plan) {
    for (size_t i = 0; i < plan.stages.size(); ++i) {
        const StagePlan& st = plan.stages[i];
        if (!st.fits)
            return "optimize: stage " + std::to_string(i + 1) + " (" + std::to_string(st.width) + "x" +
                   std::to_string(st.height) + ") does not fit in memory, even in tiles of " +
                   std::to_string(plan.smallest_tile) + " (untiled it needs " + format_bytes(st.untiled) +
                   ", the device has " + format_bytes(plan.capacity) + ")";
    }
    return "";
}

bool plan_needed(Device device, std::pair<int64_t, int64_t> content_hw, const GatysOptions& o) {
    int64_t pixels = 0;
    for (const auto& [h, w] : stage_sizes(content_hw, o)) pixels = std::max(pixels, h * w);
    // Far above the measured ~2000 bytes per pixel of a step plus the state.
    const int history = o.optimizer == GatysOptimizer::LBFGS ? o.lbfgs_history : 2;
    return near_capacity(device, double(pixels) * (8000.0 + 24.0 * history) + 512e6);
}

std::string describe(const OptimizePlan& plan, const GatysOptions& o) {
    std::string out = "memory plan: capacity " + format_bytes(plan.capacity) + ", " + format_bytes(plan.in_use) +
                      " in use (90% planned); a step measured at " +
                      std::to_string(kStepSmallSide) + " and " + std::to_string(kStepLargeSide) + " px: " +
                      format_bytes(plan.step_fixed) + " + " +
                      std::to_string(int64_t(std::lround(plan.step_per_pixel))) + " bytes per pixel\n";
    for (size_t i = 0; i < plan.stages.size(); ++i) {
        const StagePlan& s = plan.stages[i];
        out += "stage " + std::to_string(i + 1) + "/" + std::to_string(plan.stages.size()) + ": " +
               std::to_string(s.width) + "x" + std::to_string(s.height) + ": untiled " + format_bytes(s.untiled);
        if (!s.fits) {
            out += ": does not fit, even in tiles of " + std::to_string(kMinTile) +
                   (o.optimizer == GatysOptimizer::LBFGS ? " without L-BFGS history" : "") + "\n";
            continue;
        }
        out += s.tile == 0 ? " -> untiled" : " -> tiles of " + std::to_string(s.tile) + ": " + format_bytes(s.peak);
        if (o.optimizer == GatysOptimizer::LBFGS && s.lbfgs_history < o.lbfgs_history)
            out += ", L-BFGS history " + std::to_string(s.lbfgs_history) + " of " + std::to_string(o.lbfgs_history);
        out += "\n";
    }
    return out;
}

// ---- stylize ----------------------------------------------------------------------------

size_t predicted_stylize_peak(const StylizePlan& plan, const TransformNet& net, int batch, int tile) {
    const int64_t h = plan.height, w = plan.width;
    const size_t image = 3 * kFloat * size_t(h * w);
    // On a GPU the images' copy is made after the plan; on the CPU they are in use already.
    const size_t input = net.device().is_cuda() ? image : 0;
    if (tile <= 0 || tile >= std::max(h, w))
        return plan.fixed + size_t(plan.per_pixel * double(batch * h * w)) + size_t(batch) * input;
    // One tile's passes, and beside them the whole output image, twice: as it
    // is gathered on the host (CPU memory too, if not in the books), and as
    // the tensor made of it (on a GPU, beside the input's copy instead).
    return plan.fixed + size_t(plan.tile_per_pixel * double(net.largest_tile_crop(h, w, tile))) + 2 * image;
}

StylizePlan plan_stylize(const TransformNet& net, int64_t h, int64_t w, int batch, int tile, size_t capacity) {
    NoGradGuard no_grad;
    StylizePlan plan;
    const Device device = net.device();
    plan.capacity = capacity ? capacity : memory_capacity(device);
    plan.in_use = memory_stats(device).current;
    plan.height = h, plan.width = w, plan.batch = batch;
    double m[2], p[2];
    for (int i = 0; i < 2; ++i) {
        const auto [hs, ws] = calibration_size(h, w, i == 0 ? kSmallSide : kLargeSide, 16);
        const Tensor x = Tensor::rand({1, 3, hs, ws}, 7, device, 0.f, 255.f);
        m[i] = double(measured_peak(device, [&] { net.stylize(x); }));
        p[i] = double(hs * ws);
    }
    std::tie(plan.fixed, plan.per_pixel) = line_through(p[0], m[0], p[1], m[1]);
    {
        // Tiles: the passes of stylize_tiled over one crop, the larger
        // image as a single tile (its passes stop at each norm layer and
        // keep less than a whole stylization; several tiles hold the same
        // but for their crops' size). Once: the stylization above made the
        // convolutions of these sizes, and a tiled run costs about ten.
        const auto [hs, ws] = calibration_size(h, w, kLargeSide, 16);
        const Tensor x = Tensor::rand({1, 3, hs, ws}, 7, device, 0.f, 255.f);
        const double mt = double(measured_peak(device, [&] { net.stylize_tiled(x, int(std::max(hs, ws))); }, false));
        const double held = double(plan.fixed) + 3.0 * kFloat * double(hs * ws);
        plan.tile_per_pixel = std::max(0.0, (mt - held) / double(hs * ws));
    }
    const double budget = kHeadroom * double(plan.capacity) - double(plan.in_use);
    plan.batch_peak = plan.peak = predicted_stylize_peak(plan, net, batch, 0);
    if (tile > 0 && tile < std::max(h, w)) {  // the caller's tiles, one image at a time
        plan.one_at_a_time = batch > 1, plan.tile = tile, plan.tried_tiles = {tile};
        plan.peak = predicted_stylize_peak(plan, net, 1, tile);
        plan.fits = double(plan.peak) <= budget;
        return plan;
    }
    if (double(plan.batch_peak) <= budget) return plan;
    plan.one_at_a_time = batch > 1;
    plan.peak = predicted_stylize_peak(plan, net, 1, 0);
    if (double(plan.peak) <= budget) return plan;
    plan.tried_tiles = net.fallback_tiles(h, w);
    for (int t : plan.tried_tiles) {
        plan.tile = t;
        plan.peak = predicted_stylize_peak(plan, net, 1, t);
        if (double(plan.peak) <= budget) return plan;
    }
    plan.fits = false;
    return plan;
}

std::string stylize_unfit_reason(const StylizePlan& plan) {
    if (plan.tried_tiles.empty()) return "even one image at a time (no tiles pay at this size)";
    return "even one image at a time in tiles of " + std::to_string(plan.tried_tiles.back()) + " (" +
           format_bytes(plan.peak) + ")";
}

std::string unfit_message(const StylizePlan& plan) {
    return "stylize: " + std::to_string(plan.width) + "x" + std::to_string(plan.height) +
           " images do not fit in memory, " + stylize_unfit_reason(plan) + "; the device has " +
           format_bytes(plan.capacity);
}

bool stylize_plan_needed(Device device, int64_t height, int64_t width, int batch) {
    return near_capacity(device, double(height * width) * std::max(1, batch) * 3000.0 + 256e6);
}

std::string describe(const StylizePlan& plan, const TransformNet& net) {
    std::string out = "memory plan: capacity " + format_bytes(plan.capacity) + ", " + format_bytes(plan.in_use) +
                      " in use (90% planned); one image measured at " + std::to_string(kSmallSide) + " and " +
                      std::to_string(kLargeSide) + " px: " + format_bytes(plan.fixed) +
                      " + " + std::to_string(int64_t(std::lround(plan.per_pixel))) + " bytes per pixel\n";
    out += std::to_string(plan.width) + "x" + std::to_string(plan.height) + ", batch " + std::to_string(plan.batch) +
           ": " + format_bytes(plan.batch_peak);
    if (!plan.fits) return out + ": does not fit, " + stylize_unfit_reason(plan) + "\n";
    if (plan.tile > 0)
        return out + " -> one image at a time in tiles of " + std::to_string(plan.tile) + ": " + format_bytes(plan.peak) +
               " (about " + std::to_string(std::lround(net.tiled_work(plan.height, plan.width, plan.tile))) +
               " times the untiled work)\n";
    if (plan.one_at_a_time) return out + " -> one image at a time: " + format_bytes(plan.peak) + "\n";
    return out + " -> fits\n";
}

// ---- train ------------------------------------------------------------------------------

size_t predicted_training_peak(const TrainingPlan& plan, int batch, int size) {
    const double pixels = double(batch) * double(size) * double(size);
    // The step, and the batch of photos the data loader made for it.
    return plan.fixed + size_t(plan.per_pixel * pixels + 3.0 * kFloat * pixels);
}

TrainingPlan plan_training(const Vgg19& vgg, std::pair<int64_t, int64_t> style_hw, const TrainingOptions& o,
                           int batch, int size, size_t capacity) {
    TrainingPlan plan;
    const Device device = vgg.device();
    plan.capacity = capacity ? capacity : memory_capacity(device);
    plan.batch = batch, plan.size = size;
    plan.style_height = style_hw.first, plan.style_width = style_hw.second;
    const int64_t least = min_side_for(layer_names_of(active_layers(o.style_layers, o.style_weight, "train")));
    {
        // The style's targets: VGG-19's features of the whole style image,
        // once, before the first step; measured on squares (closer to
        // other shapes than measurements of the style's own shape, whose
        // blocks the caching allocator rounds differently).
        double m[2], p[2];
        for (int i = 0; i < 2; ++i) {
            const int side = std::max<int>(i == 0 ? kStepSmallSide : kStepLargeSide, int(least));
            const Tensor style = Tensor::rand({1, 3, side, side}, 10, device);
            m[i] = double(measured_peak(device, [&] { PerceptualLoss loss(vgg, style, o); }, false));
            p[i] = double(side) * side;
        }
        const auto [fixed, per_pixel] = line_through(p[0], m[0], p[1], m[1]);
        plan.style_peak = fixed + size_t(per_pixel * double(style_hw.first * style_hw.second));
    }
    {
        // A trainer of its own, with a small stand-in style (a style's
        // targets are Grams, the same size whatever the image's): its
        // network and Adam state are what the run's trainer will hold.
        const int64_t style_side = std::max<int64_t>(kSmallSide, least);
        StyleTrainer trainer(TransformNet::create(TransformNetSpec{}, 0, device), vgg,
                             Tensor::rand({1, 3, style_side, style_side}, 10, device), o);
        plan.in_use = memory_stats(device).current;
        double m[2], p[2];
        for (int i = 0; i < 2; ++i) {
            const int side = i == 0 ? kSmallSide : kLargeSide;
            const Tensor photos = Tensor::rand({1, 3, side, side}, 8, device, 0.f, 255.f);
            m[i] = double(measured_peak(device, [&] { trainer.step(photos); }));
            p[i] = double(side) * side;
        }
        std::tie(plan.fixed, plan.per_pixel) = line_through(p[0], m[0], p[1], m[1]);
    }
    const double budget = kHeadroom * double(plan.capacity) - double(plan.in_use);
    plan.peak = predicted_training_peak(plan, batch, size);
    plan.step_fits = double(plan.peak) <= budget;
    plan.style_fits = double(plan.style_peak) <= budget;
    plan.fits = plan.step_fits && plan.style_fits;
    const double per_photo = (plan.per_pixel + 3.0 * kFloat) * double(size) * double(size);
    plan.largest_batch = budget > double(plan.fixed) ? int(std::min(1e6, (budget - double(plan.fixed)) / per_photo)) : 0;
    return plan;
}

std::string unfit_message(const TrainingPlan& plan) {
    if (!plan.style_fits)
        return "train: the style's targets at " + std::to_string(plan.style_width) + "x" +
               std::to_string(plan.style_height) + " need " + format_bytes(plan.style_peak) + ", the device has " +
               format_bytes(plan.capacity) + "; use a smaller style image";
    return "train: a step of " + std::to_string(plan.batch) + " photos of " + std::to_string(plan.size) + "x" +
           std::to_string(plan.size) + " needs " + format_bytes(plan.peak) + ", the device has " +
           format_bytes(plan.capacity) + "; " +
           (plan.largest_batch > 0 ? "a batch of " + std::to_string(plan.largest_batch) + " fits"
                                   : std::string("not even one photo fits: use a smaller photo size"));
}

bool training_plan_needed(Device device, int batch, int size, int64_t style_pixels) {
    // A step measures about 4000 bytes per pixel, the style's targets 1000.
    return near_capacity(device, std::max(double(batch) * size * size * 16000.0, double(style_pixels) * 4000.0) + 1e9);
}

std::string describe(const TrainingPlan& plan) {
    std::string out = "memory plan: capacity " + format_bytes(plan.capacity) + ", " + format_bytes(plan.in_use) +
                      " in use (90% planned); a step measured at " + std::to_string(kSmallSide) + " and " +
                      std::to_string(kLargeSide) + " px: " + format_bytes(plan.fixed) + " + " +
                      std::to_string(int64_t(std::lround(plan.per_pixel))) + " bytes per pixel\n";
    out += "the style's targets (" + std::to_string(plan.style_width) + "x" + std::to_string(plan.style_height) +
           ", once): " + format_bytes(plan.style_peak) +
           (plan.style_fits ? " -> fits\n" : " -> does not fit: try a smaller --style-size\n");
    out += "batch " + std::to_string(plan.batch) + " of " + std::to_string(plan.size) + "x" + std::to_string(plan.size) +
           ": " + format_bytes(plan.peak) + (plan.step_fits ? " -> fits" : " -> does not fit") + "; " +
           (plan.largest_batch > 0 ? "the largest batch that fits at this size: " + std::to_string(plan.largest_batch)
                                   : std::string("not even one photo fits at this size: try a smaller --size")) +
           "\n";
    return out;
}

}  // namespace nst
