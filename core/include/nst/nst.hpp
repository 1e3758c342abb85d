// libnst's public API (installed as <nst/nst.hpp>): neural style transfer for
// programs that embed the engine. Three things, as nst-run does them:
//
//   * StyleModel: a trained transformation network (Johnson et al.) that
//     stylizes a photo in one pass;
//   * optimize(): optimization-based style transfer (Gatys et al.) with a
//     progress callback that can cancel;
//   * train(): trains a StyleModel for one style on a folder of photos.
//
// Videos, in both modes: <nst/video.hpp> (CMake nst::video, with OpenCV).
// Every run is the one nst-run runs (nets/stylize.hpp, nets/optimize.hpp,
// the trainer), with nst-run's defaults. Images cross the API as 8-bit RGB
// buffers. Devices are named as on the command line: "cpu", "cuda",
// "cuda:1"; empty means the first GPU if there is one, else the CPU. Every
// failure throws nst::Error. The engine's own headers (tensors, ops,
// networks) are not installed; this is the interface.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nst/error.hpp"

namespace nst {

// Interleaved RGB, 8 bits per channel, row-major, no padding.
struct Image {
    int width = 0, height = 0;
    std::vector<uint8_t> rgb;  // width * height * 3 bytes
};

// PNG, JPEG or BMP; grey and alpha are converted to RGB.
Image load_image_file(const std::string& path);
// Format by extension (.png, .jpg, .bmp); written atomically.
void save_image_file(const Image& image, const std::string& path);

// A run's memory plan, as `nst-run ... --plan` prints it: whether it fits
// the device (else the run is refused before it starts), and its predicted
// peak. Measured at small sizes on the device (about a second on a CPU).
struct MemoryPlan {
    bool fits = true;
    size_t peak = 0, capacity = 0;  // bytes
    std::string text;               // the plan in words
};

// The CPU backend's threads, for the calling thread's work: n > 0, or 0 for
// the default (NST_NUM_THREADS, else every core the process may use).
// Results are the same bits at any count, but for the sums oneDNN splits
// across threads (filter gradients, long matrix products: within float
// rounding; stylizing is bit for bit).
void set_cpu_thread_count(int threads);
int cpu_thread_count();

struct StylizeSettings {
    bool preserve_color = false;  // keep the photo's colours (luminance transfer)
    // > 0: images larger than this in tiles of it (the same result, less
    // memory; refused where such tiles cost more than 32 times the untiled
    // work). 0: tiles only when an image does not fit.
    int tile = 0;
};

class StyleModel {
public:
    // A .safetensors network (from `nst-run import` or `nst-run train`) or a
    // TensorFlow fast-style-transfer export directory. precision "fp16" or
    // "bf16" keeps the network and its activations in 16 bits (fp32 math):
    // faster on GPUs, within 40 dB of "fp32".
    static StyleModel load(const std::string& path, const std::string& device = "",
                           const std::string& precision = "fp32");
    // Any size; an image too large for the device's memory is stylized in
    // tiles, with the same result.
    Image stylize(const Image& photo, const StylizeSettings& settings = {}) const;
    // Photos of one size in one pass where memory allows (else one at a
    // time): a burst, a video's frames.
    std::vector<Image> stylize(const std::vector<Image>& photos, const StylizeSettings& settings = {}) const;
    // The plan of stylizing `batch` images of width x height at once.
    MemoryPlan plan(int width, int height, int batch = 1, const StylizeSettings& settings = {}) const;
    void save(const std::string& path) const;  // .safetensors

    StyleModel(StyleModel&&) noexcept;
    StyleModel& operator=(StyleModel&&) noexcept;
    ~StyleModel();

private:
    friend class ModelAccess;
    struct Impl;
    explicit StyleModel(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The losses so far. Return false from a callback to stop early.
struct Progress {
    int64_t step = 0, steps = 0;  // 1-based iteration or training step, and the total
    float content_loss = 0, style_loss = 0, tv_loss = 0, total_loss = 0;
    int64_t unreadable_photos = 0;  // train(): photos skipped so far because they could not be read
    int64_t frame = 0, frames = 0;  // videos (<nst/video.hpp>): the frame (1-based) and those promised (0: unknown)
};
using ProgressCallback = std::function<bool(const Progress&)>;

// nst-run optimize's options and defaults.
struct OptimizeSettings {
    int size = 512;  // longer side of the result
    // Longer side of each stage, coarse to fine, the last being `size`;
    // empty: size / 2 then size (from 256 up; one stage below).
    std::vector<int> scales;
    // One count for every stage, or one per stage; empty: 250 per coarser
    // stage and 80 at the final size (500 for a single stage).
    std::vector<int> iterations;
    bool adam = false;          // L-BFGS otherwise
    float learning_rate = 0;    // 0: 1 for L-BFGS, 0.02 for Adam
    int lbfgs_history = 100;
    float content_weight = 0.05f, style_weight = 1.f, tv_weight = 0.f;
    std::vector<float> style_blend;  // one weight per style image (normalized); empty: equal
    float style_scale = 1.f;         // the styles' longer side relative to the result's
    int tile = 0;  // > 0: every step in tiles of N pixels (the same result); 0: only when memory says so
    bool original_colors = false;
    std::string vgg;  // VGG-19 weight file; empty: the embedded random network (far weaker)
    std::string device;
};
// Stopped early by the callback, it returns the image so far. A run that
// its memory plan says cannot fit is refused (OutOfMemoryError) before it starts.
Image optimize(const Image& content, const std::vector<Image>& styles, const OptimizeSettings& settings,
               const ProgressCallback& callback = nullptr);
MemoryPlan plan_optimize(const Image& content, const std::vector<Image>& styles, const OptimizeSettings& settings);

struct TrainSettings {
    std::string photos;  // a folder of training photos (searched recursively)
    int size = 256, batch = 4;
    int style_size = 0;  // the style image's longer side; 0: `size`
    int64_t steps = 40000;
    float learning_rate = 1e-3f, content_weight = 1.f, style_weight = 5.f, tv_weight = 0.f;
    std::string vgg;  // as in OptimizeSettings
    std::string device;
    uint64_t seed = 0;
};
// Stopped early by the callback, it returns the network so far.
StyleModel train(const Image& style, const TrainSettings& settings, const ProgressCallback& callback = nullptr);
MemoryPlan plan_train(const Image& style, const TrainSettings& settings);

}  // namespace nst
