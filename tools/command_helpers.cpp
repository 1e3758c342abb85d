#include "tools/command_helpers.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/image.hpp"
#include "nets/gatys.hpp"
#include "tools/interrupt.hpp"

namespace fs = std::filesystem;
using nst::Error;

namespace nst_run {

nst::Tensor load_input_image(const std::string& path) {
    nst::Tensor image = nst::load_image(path);
    NST_CHECK(image.size(2) >= kMinInputSide && image.size(3) >= kMinInputSide, path, ": the image is ",
              image.size(3), "x", image.size(2), " pixels; nst-run needs at least ", kMinInputSide, "x",
              kMinInputSide);
    return image;
}

namespace {

// The whole text is one number: no spaces, no trailing characters.
bool parsed_whole(const std::string& text, const char* end) {
    return !text.empty() && !std::isspace(static_cast<unsigned char>(text[0])) && *end == '\0' && errno == 0;
}

}  // namespace

CLI::Validator whole_number(int64_t min, uint64_t max) {
    const std::string range = "a whole number from " + std::to_string(min) + " to " + std::to_string(max);
    return CLI::Validator(
        [min, max, range](std::string& text) {
            errno = 0;
            char* end = nullptr;
            bool inside;
            std::string canonical;
            if (!text.empty() && text[0] == '-') {  // strtoull would wrap "-1" around to 2^64 - 1
                const long long v = std::strtoll(text.c_str(), &end, 10);
                inside = parsed_whole(text, end) && v >= min;
                canonical = std::to_string(v);
            } else {
                const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
                inside = parsed_whole(text, end) && v <= max && (min <= 0 || v >= uint64_t(min));
                canonical = std::to_string(v);
            }
            if (!inside) return "expected " + range + ", got '" + text + "'";
            // What was checked is what CLI11 converts: it would read "0100" as octal.
            text = canonical;
            return std::string();
        },
        range);
}

CLI::Validator real_number(double min, bool min_exclusive, double max) {
    std::ostringstream range;
    range << std::setprecision(15) << "a number "
          << (min_exclusive ? "greater than " : std::isfinite(max) ? "from " : "of at least ") << min;
    if (std::isfinite(max)) range << (min_exclusive ? " and at most " : " to ") << max;
    max = std::min(max, double(FLT_MAX));  // the options are floats: 1e39 would become infinity
    return CLI::Validator(
        [min, min_exclusive, max, range = range.str()](std::string& text) {
            errno = 0;
            char* end = nullptr;
            // Checked as the float the option becomes: 1e-50 is 0 there.
            const float v = float(std::strtod(text.c_str(), &end));
            const bool inside = !text.empty() && !std::isspace(static_cast<unsigned char>(text[0])) &&
                                *end == '\0' && std::isfinite(v) && (min_exclusive ? v > min : v >= min) && v <= max;
            return inside ? std::string() : "expected " + range + ", got '" + text + "'";
        },
        range.str());
}

void print_error(const std::string& message) {
    std::string line = message;
    std::replace(line.begin(), line.end(), '\n', ' ');
    std::fprintf(stderr, "nst-run: error: %s\n", line.c_str());
}

bool same_file(const std::string& a, const std::string& b) {
    std::error_code ec;
    return fs::exists(a, ec) && fs::exists(b, ec) && fs::equivalent(a, b, ec);
}

bool is_directory(const std::string& path) {
    std::error_code ec;
    return fs::is_directory(path, ec);
}

void check_output(const std::string& path, const char* flag) {
    const fs::path parent = fs::path(path).parent_path();
    std::error_code ec;
    NST_CHECK(parent.empty() || fs::is_directory(parent, ec), flag, " ", path, ": the directory ",
              parent.string(), " does not exist");
    NST_CHECK(!fs::is_directory(path, ec), flag, " ", path, ": is a directory; give a file name");
    // Found now rather than after hours of work: the directory takes new files.
    const std::string probe = ((parent.empty() ? fs::path(".") : parent) / (".nst-write-test-" + std::to_string(::getpid()))).string();
    std::FILE* f = std::fopen(probe.c_str(), "w");
    NST_CHECK(f, flag, " ", path, ": cannot write in ", parent.empty() ? std::string(".") : parent.string(), ": ",
              std::strerror(errno));
    std::fclose(f);
    std::remove(probe.c_str());
}

std::string vgg_file(const std::string& flag) {
    if (flag == "random") return "";
    if (!flag.empty()) return flag;
    for (const char* candidate : {"weights/vgg19-dcbb9e9d.pth", "weights/vgg19-d01eb7cb.pth"})
        if (fs::is_regular_file(candidate)) return candidate;
    return "";
}

nst::Vgg19 load_vgg(const std::string& flag, nst::Device device, nst::VggPooling pooling, bool quiet) {
    const std::string path = vgg_file(flag);
    if (flag.empty() && !path.empty() && !quiet) std::fprintf(stderr, "nst-run: using VGG-19 weights %s\n", path.c_str());
    if (path.empty() && flag == "random") return nst::Vgg19::random(19, device, pooling);  // asked for
    if (path.empty()) {
        std::fprintf(stderr,
                     "nst-run: note: no VGG-19 weight file given (--vgg): using the embedded VGG-19 "
                     "with random weights, which transfers colour and fine texture but is far weaker "
                     "than trained weights. Fetch them with weights/fetch_vgg19.sh (about 550 MB) and "
                     "pass --vgg weights/vgg19-dcbb9e9d.pth.\n");
        return nst::Vgg19::random(19, device, pooling);
    }
    const nst::VggFlavor flavor = nst::guess_vgg_flavor(path);
    nst::Vgg19 net = nst::Vgg19::load(path, flavor, device, pooling);
    if (!quiet)  // after loading: a failure is then the only line
        std::fprintf(stderr, "nst-run: VGG-19 weights %s, %s flavour\n", path.c_str(), nst::vgg_flavor_name(flavor));
    return net;
}

CsvLog::CsvLog(const std::string& flag, const std::string& path, const std::string& header, int64_t keep_until)
    : flag_(flag) {
    if (path.empty()) return;
    std::vector<std::string> kept;
    std::error_code ec;
    if (keep_until > 0 && fs::exists(path, ec)) {
        nst::require_regular_file(path);
        std::ifstream in(path);
        for (std::string line; std::getline(in, line);)
            if (kept.empty() || std::strtoll(line.c_str(), nullptr, 10) <= keep_until) kept.push_back(line);
    }
    if (kept.empty()) kept.push_back(header);
    std::string text;
    for (const std::string& line : kept) text += line + "\n";
    file_ = std::make_unique<nst::AtomicFile>(path);
    file_->write(text.data(), text.size());
    NST_CHECK(std::fflush(file_->file()) == 0, flag_, " ", path, ": write failed: ", std::strerror(errno));
}

void CsvLog::row(const char* format, ...) {
    if (!file_) return;
    va_list args;
    va_start(args, format);
    const int written = std::vfprintf(file_->file(), format, args);
    va_end(args);
    const bool ok = written >= 0 && std::fputc('\n', file_->file()) != EOF && std::fflush(file_->file()) == 0;
    NST_CHECK(ok, flag_, " ", file_->path(), ": write failed: ", std::strerror(errno));
}

void CsvLog::publish() {
    if (!file_) return;
    std::ifstream in(file_->temp_path(), std::ios::binary);
    nst::AtomicFile copy(file_->path());
    char buffer[1 << 16];
    while (in.read(buffer, sizeof buffer) || in.gcount() > 0) copy.write(buffer, size_t(in.gcount()));
    NST_CHECK(in.eof(), flag_, " ", file_->path(), ": cannot read back its temporary file");
    copy.commit();
}

void CsvLog::commit() {
    if (file_) file_->commit();
    file_.reset();
}

nst::ImageSize optimization_size(const std::string& flag, int side, int64_t height, int64_t width) {
    const auto pixels = [&](int s) { return nst::fit_longest_side(height, width, s).pixels(); };
    const nst::ImageSize size = nst::fit_longest_side(height, width, side);
    if (size.pixels() <= nst::kMaxImagePixels) return size;
    int largest = int(std::sqrt(double(nst::kMaxImagePixels) * double(std::max(height, width)) / double(std::min(height, width))));
    while (largest > kMinInputSide && pixels(largest) > nst::kMaxImagePixels) --largest;
    throw Error(flag + " " + std::to_string(side) + ": the result would be " + std::to_string(size.width) + "x" +
                std::to_string(size.height) + " pixels, more than the " + std::to_string(nst::kMaxImagePixels / 1000000) +
                " million nst works with (3 GiB as float32 RGB); use " + flag + " " + std::to_string(largest) +
                " or less");
}

void add_loss_options(CLI::App* cmd, LossFlags& f) {
    // Weights up to 1e30: float products of the losses with them stay finite.
    cmd->add_option("--content-weight", f.content_weight, "Content loss weight")
        ->capture_default_str()
        ->check(real_number(0, false, 1e30));
    cmd->add_option("--style-weight", f.style_weight, "Style loss weight")->capture_default_str()->check(real_number(0, false, 1e30));
    cmd->add_option("--tv-weight", f.tv_weight, "Total variation weight (on the mean squared neighbour difference)")
        ->capture_default_str()
        ->check(real_number(0, false, 1e30));
    cmd->add_option("--content-layers", f.content_layers, "Content layers, NAME or NAME:WEIGHT, comma-separated")
        ->capture_default_str();
    cmd->add_option("--style-layers", f.style_layers, "Style layers, NAME or NAME:WEIGHT, comma-separated")
        ->capture_default_str();
}

std::vector<nst::LayerWeight> parse_layers(const std::string& flag, const std::string& text) {
    std::vector<nst::LayerWeight> layers;
    size_t begin = 0;
    while (begin <= text.size()) {
        const size_t end = std::min(text.find(',', begin), text.size());
        const std::string item = text.substr(begin, end - begin);
        begin = end + 1;
        if (item.empty()) continue;
        nst::LayerWeight l;
        const size_t colon = item.find(':');
        l.layer = item.substr(0, colon);
        if (colon != std::string::npos) {
            const std::string w = item.substr(colon + 1);
            char* stop = nullptr;
            l.weight = std::strtof(w.c_str(), &stop);
            NST_CHECK(!w.empty() && *stop == '\0' && std::isfinite(l.weight) && l.weight >= 0, flag,
                      ": bad weight '", w, "' for ", l.layer, " (expected NAME or NAME:WEIGHT, WEIGHT >= 0)");
        }
        try {
            nst::Vgg19::layer_index(l.layer);
        } catch (const Error& e) {
            throw Error(flag + ": " + e.what());
        }
        layers.push_back(l);
    }
    return layers;
}

}  // namespace nst_run
