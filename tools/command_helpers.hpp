// What several nst-run commands need: device selection, output-path checks,
// VGG-19 loading with the embedded default, and layer lists on the command
// line.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/device.hpp"
#include "core/files.hpp"
#include "core/image.hpp"
#include "core/tensor.hpp"
#include "nets/loss_terms.hpp"
#include "nets/vgg19.hpp"
#include "tools/interrupt.hpp"

namespace CLI {
class App;
class Validator;
}

namespace nst_run {

// A subcommand whose options live in the command's own file. Registration
// and running are separate so that failures reach nst-run's own error
// handling (one line "nst-run: error: ...", exit status 1) instead of
// escaping from CLI11's parse() through a subcommand callback.
struct Command {
    CLI::App* subcommand = nullptr;  // after parsing, `*subcommand` says whether it was chosen
    std::function<int()> run;        // runs it; returns the exit status, throws nst::Error
};

// Checks for numeric options. A refused value gets one message naming the
// option, the value and the range in plain numbers ("--max-size: expected a
// whole number from 16 to 65535, got 0"); NaN and infinity are refused like
// any other value outside the range.
// whole_number() rewrites the value in plain decimal (CLI11 would read
// "0100" as octal), so options take it with ->transform(), not ->check().
CLI::Validator whole_number(int64_t min, uint64_t max);
constexpr int64_t kMaxIterations = 1000000000;  // --iters and the like
// At least `min` (greater than it when min_exclusive), at most `max` when
// finite; checked as the float the option becomes.
CLI::Validator real_number(double min, bool min_exclusive, double max = HUGE_VAL);

// "nst-run: error: MESSAGE" on stderr, on one line whatever the message holds.
void print_error(const std::string& message);

bool same_file(const std::string& a, const std::string& b);
bool is_directory(const std::string& path);
// The output's directory exists and takes new files, and the path is not a
// directory.
void check_output(const std::string& path, const char* flag);

// --vgg: a file, or "random" for the embedded network; empty means a file
// weights/fetch_vgg19.sh put in ./weights when there is one, else the
// embedded network (with a note on stderr saying how to get real weights).
nst::Vgg19 load_vgg(const std::string& flag, nst::Device device, nst::VggPooling pooling, bool quiet);
// The weight file load_vgg reads for this --vgg; "" for the embedded network.
std::string vgg_file(const std::string& flag);

// Images users hand to nst-run are at least this many pixels per side: the
// networks' padding and VGG-19's poolings need that much, and a smaller
// image is a mistake rather than a photo.
constexpr int kMinInputSide = 16;
// load_image (0..255), refusing images smaller than kMinInputSide.
nst::Tensor load_input_image(const std::string& path);

// A CSV log (--log, --csv) written line by line to a temporary beside it
// (core/files.hpp) and flushed, so that the run can be watched there; it
// replaces the file only through commit(), which a run calls when it
// succeeded or was interrupted and saved what it had. A failed run leaves
// an existing log as it was. An empty path logs nothing. keep_until > 0 (a
// resumed run): the log found there is continued, keeping its header and
// the rows whose first column is at most keep_until (later rows are about
// to be computed again).
class CsvLog {
public:
    // flag: the option that named it ("--log"), for messages.
    CsvLog(const std::string& flag, const std::string& path, const std::string& header, int64_t keep_until = 0);
    CsvLog(const CsvLog&) = delete;
    CsvLog& operator=(const CsvLog&) = delete;
    // One row, printf-style, without the newline.
    void row(const char* format, ...) __attribute__((format(printf, 2, 3)));
    // The rows so far replace the file, and logging goes on (train: beside
    // each checkpoint, which a resumed run continues from with its log).
    void publish();
    // The log replaces the file; no rows after it.
    void commit();

private:
    std::string flag_;
    std::unique_ptr<nst::AtomicFile> file_;
};

// An optimization's size (the longer side `side`, given by `flag`) for a
// content of height x width: (height, width), refused with the largest side
// that fits when the result would pass the pixels nst works with
// (nst::kMaxImagePixels).
nst::ImageSize optimization_size(const std::string& flag, int side, int64_t height, int64_t width);

// The loss flags optimize and train share, with each command's defaults.
struct LossFlags {
    float content_weight, style_weight, tv_weight;
    std::string content_layers, style_layers;  // as parse_layers reads them
};
// --content-weight, --style-weight, --tv-weight, --content-layers, --style-layers
void add_loss_options(CLI::App* command, LossFlags& flags);

// "relu4_2" or "relu1_1:0.5,relu2_1:2": names checked against VGG-19's.
std::vector<nst::LayerWeight> parse_layers(const std::string& flag, const std::string& text);

}  // namespace nst_run
