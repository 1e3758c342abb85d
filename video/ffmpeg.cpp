#include "video/ffmpeg.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/files.hpp"

namespace nst {
namespace {

std::string lower_extension(const std::string& path) {
    const size_t slash = path.find_last_of('/'), dot = path.find_last_of('.');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
    std::string ext = path.substr(dot);
    for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
    return ext;
}

// The full path of a program on PATH; a clear error when it is not there.
std::string require_program(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    size_t start = 0;
    while (start <= dirs.size()) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos) end = dirs.size();
        const std::string candidate = dirs.substr(start, end - start) + "/" + name;
        if (end > start && ::access(candidate.c_str(), X_OK) == 0) return candidate;
        start = end + 1;
    }
    fail(name + " not found on PATH: videos need ffmpeg (Debian/Ubuntu: apt-get install ffmpeg)");
}

bool is_h264_container(const std::string& ext) {
    return ext == ".mp4" || ext == ".mov" || ext == ".mkv" || ext == ".m4v";
}

// A path as ffmpeg's argument: "a:b.mp4" alone would name protocol "a".
std::string file_arg(const std::string& path) { return "file:" + path; }

std::string read_all(std::FILE* pipe) {
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) text.append(buf, n);
    return text;
}

// "30000/1001" -> numerator and denominator; false unless both are positive.
bool parse_rate(const std::string& rate, int64_t& num, int64_t& den) {
    char* end = nullptr;
    num = std::strtoll(rate.c_str(), &end, 10);
    den = *end == '/' ? std::strtoll(end + 1, &end, 10) : 1;
    return *end == '\0' && num > 0 && den > 0;
}

double rate_value(const std::string& rate) {
    int64_t num, den;
    return parse_rate(rate, num, den) ? double(num) / double(den) : 0;
}

// ffmpeg's words (5.1) for an input file that ends before the container
// said it would: mov/mp4 with its index at the start, and Matroska/WebM.
bool reports_early_end(const std::string& line) {
    return line.find("partial file") != std::string::npos || line.find("File ended prematurely") != std::string::npos;
}

// Seconds from a duration field: "3.003000", or Matroska's tag "00:00:03.003000000".
double seconds(const nlohmann::json& field) {
    if (!field.is_string()) return -1;
    const std::string text = field.get<std::string>();
    double total = 0;
    size_t start = 0;
    for (;;) {
        const size_t colon = text.find(':', start);
        total = total * 60 + std::atof(text.substr(start, colon - start).c_str());
        if (colon == std::string::npos) break;
        start = colon + 1;
    }
    return total > 0 && std::isfinite(total) ? total : -1;
}

}  // namespace

bool is_video_path(const std::string& path) {
    static const char* const exts[] = {".mp4", ".mov", ".mkv",  ".m4v", ".avi", ".webm",
                                       ".mpg", ".mpeg", ".wmv", ".flv", ".gif"};
    const std::string ext = lower_extension(path);
    return std::any_of(std::begin(exts), std::end(exts), [&](const char* e) { return ext == e; });
}

VideoInfo probe_video(const std::string& path) {
    require_program("ffmpeg");
    const std::string ffprobe = require_program("ffprobe");
    struct stat st;
    NST_CHECK(::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode), path,
              ": cannot open: no such file");
    Subprocess probe({ffprobe, "-v", "error", "-of", "json", "-show_entries",
                      "stream=codec_type,width,height,sample_aspect_ratio,r_frame_rate,avg_frame_rate,nb_frames,"
                      "duration:stream_tags=rotate,DURATION:stream_side_data=rotation:format=format_name,duration",
                      file_arg(path)},
                     "r", path + ": ffprobe");
    const std::string text = read_all(probe.pipe());
    if (!probe.close()) {
        std::string why = probe.reason();
        if (why.rfind(path + ": ", 0) == 0) why.erase(0, path.size() + 2);
        // An MP4 or MOV whose index (the moov atom) was to come at the end.
        if (why.find("moov atom not found") != std::string::npos) why += " (the index of an MP4 or MOV is missing: truncated?)";
        fail(path + ": not a readable video: " + why);
    }
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    NST_CHECK(!j.is_discarded() && j.contains("streams") && j["streams"].is_array(), path,
              ": ffprobe gave no stream list");
    const std::string format = j.contains("format") ? j["format"].value("format_name", "") : "";
    // ffmpeg reads a PNG or JPEG named .mp4 as a one-frame clip.
    if (format == "image2" || (format.size() > 5 && format.compare(format.size() - 5, 5, "_pipe") == 0))
        fail(path + ": a still image (" + format.substr(0, format.find('_')) + "), not a video");
    VideoInfo info;
    const nlohmann::json* video = nullptr;
    for (const auto& s : j["streams"]) {
        const std::string type = s.value("codec_type", "");
        if (type == "video" && !video) video = &s;
        if (type == "audio") info.has_audio = true;
    }
    NST_CHECK(video, path, ": no video stream");
    info.width = video->value("width", 0);
    info.height = video->value("height", 0);
    NST_CHECK(info.width > 0 && info.height > 0 && info.width <= 65535 && info.height <= 65535,
              path, ": video has an invalid size ", info.width, "x", info.height);
    // Pixels that are not square: shown at the width they are displayed at.
    int64_t sar_num = 0, sar_den = 0;
    std::string sar = video->value("sample_aspect_ratio", "");
    std::replace(sar.begin(), sar.end(), ':', '/');
    if (parse_rate(sar, sar_num, sar_den) && sar_num != sar_den) {
        info.width = int(std::max<int64_t>(1, std::llround(double(info.width) * double(sar_num) / double(sar_den))));
        info.square_pixels = false;
        NST_CHECK(info.width <= 65535, path, ": video is displayed ", info.width, " pixels wide, more than 65535");
    }

    const std::string nominal = video->value("r_frame_rate", ""), average = video->value("avg_frame_rate", "");
    const double r = rate_value(nominal), a = rate_value(average);
    NST_CHECK(r > 0 || a > 0, path, ": no usable frame rate");
    info.duration = seconds(video->value("duration", nlohmann::json()));
    if (info.duration < 0 && video->contains("tags")) info.duration = seconds((*video)["tags"].value("DURATION", nlohmann::json()));
    if (info.duration < 0 && j.contains("format")) info.duration = seconds(j["format"].value("duration", nlohmann::json()));
    const int64_t stored = std::atoll(video->value("nb_frames", "").c_str());
    if (info.duration > 0) info.frames = std::llround(info.duration * (a > 0 ? a : r));
    if (stored > 0) info.frames = info.frames > 0 ? std::min(info.frames, stored) : stored;
    // The nominal rate (exact, as ordinary clips always had it) where it gives
    // the clip's length to within half a frame; else the average, so that a
    // variable-rate clip keeps its length with all its frames.
    const bool nominal_holds =
        r > 0 && (a <= 0 || (info.frames > 0 ? double(info.frames) * std::fabs(1 / r - 1 / a) <= 0.5 / r
                                              : std::fabs(r - a) <= 1e-3 * a));
    info.frame_rate = nominal_holds ? nominal : average;
    // ffmpeg applies rotation metadata when decoding: frames come out turned.
    double rotation = 0;
    if (video->contains("tags") && (*video)["tags"].contains("rotate"))
        rotation = std::atof((*video)["tags"]["rotate"].get<std::string>().c_str());
    if (video->contains("side_data_list"))
        for (const auto& sd : (*video)["side_data_list"])
            if (sd.contains("rotation") && sd["rotation"].is_number()) rotation = sd["rotation"].get<double>();
    if (std::lround(std::fabs(rotation)) % 180 == 90) std::swap(info.width, info.height);
    return info;
}

VideoReader::VideoReader(const std::string& path, const VideoInfo& info, int width, int height)
    : path_(path), width_(width), height_(height), promised_(info.frames) {
    const std::string ffmpeg = require_program("ffmpeg");
    // Passthrough: each decoded frame comes out once (the raw output would
    // otherwise follow the nominal rate, dropping or repeating frames of a
    // variable-rate clip). The pipe carries no timestamps, so the frames are
    // renumbered: two of them on one tick of the nominal rate would make the
    // raw muxer complain.
    std::string filters = "setpts=N";
    if (width != info.width || height != info.height || !info.square_pixels)
        filters = "scale=" + std::to_string(width) + ":" + std::to_string(height) + ":flags=area,setsar=1," + filters;
    ffmpeg_ = std::make_unique<Subprocess>(
        std::vector<std::string>{ffmpeg, "-v", "error", "-nostdin", "-i", file_arg(path), "-map", "0:v:0", "-vf",
                                 filters, "-fps_mode", "passthrough", "-enc_time_base", "-1", "-f", "rawvideo",
                                 "-pix_fmt", "rgb24", "-"},
        "r", path + ": ffmpeg (decoding)");
}

bool VideoReader::read(std::vector<uint8_t>& rgb) {
    if (!ffmpeg_->pipe()) return false;  // ended before
    rgb.resize(size_t(width_) * height_ * 3);
    const size_t got = std::fread(rgb.data(), 1, rgb.size(), ffmpeg_->pipe());
    if (got == rgb.size()) {
        ++frames_;
        return true;
    }
    check_end();
    NST_CHECK(got == 0, path_, ": ffmpeg (decoding): the video ended in the middle of a frame");
    return false;
}

// What ffmpeg 5.1 does with a damaged file (README, Video): where an MP4
// with its index at the start or a Matroska file is cut short, its log says
// so ("partial file", "File ended prematurely") beside the decoder's errors
// about the last, partial frame; any other line is damage (garbage in the
// data, a cut in AVI, MPEG, FLV or WMV, which say no more than that), even
// when the decoder covered it up and every frame came out. So: damage is an
// error; a file that ends early is a warning, and so are frames missing at
// the end by the container's count (a percent of slack for a count that is
// duration x rate); no frame at all is an error.
void VideoReader::check_end() {
    const bool exited_ok = ffmpeg_->close();
    const std::vector<std::string> lines = ffmpeg_->log_lines();
    const bool cut = std::any_of(lines.begin(), lines.end(), reports_early_end);
    const auto damage = std::find_if_not(lines.begin(), lines.end(), reports_early_end);
    const std::string counts =
        std::to_string(frames_) + (promised_ > 0 ? " of " + std::to_string(promised_) : "") + " frames decoded";
    if (frames_ == 0)
        fail(path_ + ": no frame could be decoded" + (cut ? ", the file ends early (truncated?)" : "") + " (ffmpeg: " +
             ffmpeg_->reason() + ")");
    if (!exited_ok) fail(path_ + ": ffmpeg (decoding) failed: " + ffmpeg_->reason());
    if (!cut && damage != lines.end()) fail(path_ + ": damaged video data (ffmpeg: " + *damage + "); " + counts);
    if (cut || (promised_ > 0 && frames_ < promised_ - std::max<int64_t>(1, promised_ / 100)))
        warning_ = path_ + ": the video ends early (truncated?): " + counts;
}

namespace {

// MPEG-1 video, ffmpeg's choice for .mpg, holds these rates only; at another
// one ffmpeg either fails after the first frame ("maybe incorrect parameters
// such as bit_rate, rate, width or height") or moves to the nearest of them,
// dropping or repeating frames.
void check_mpeg(const std::string& path, int width, int height, const VideoInfo& source, const std::string& source_path) {
    static const int64_t rates[][2] = {{24000, 1001}, {24, 1}, {25, 1}, {30000, 1001}, {30, 1}, {50, 1}, {60000, 1001}, {60, 1}};
    int64_t num = 0, den = 0;
    parse_rate(source.frame_rate, num, den);
    const bool standard =
        std::any_of(std::begin(rates), std::end(rates), [&](const int64_t* q) { return num * q[1] == q[0] * den; });
    char fps[32];
    std::snprintf(fps, sizeof fps, "%.4g", rate_value(source.frame_rate));
    NST_CHECK(standard, path, ": MPEG-1 video holds only 23.976, 24, 25, 29.97, 30, 50, 59.94 or 60 frames a second, and ",
              source_path, " has ", fps, "; use .mp4 or .mkv");
    NST_CHECK(width <= 4095 && height <= 4095, path, ": MPEG-1 video holds at most 4095 pixels a side, and the frames are ",
              width, "x", height, "; use .mp4 or .mkv");
}

}  // namespace

VideoWriter::VideoWriter(const std::string& path, int width, int height, const VideoInfo& source,
                         const std::string& source_path)
    : frame_bytes_(size_t(width) * height * 3), file_(path) {
    const std::string ext = lower_extension(path);
    if (ext == ".mpg" || ext == ".mpeg") check_mpeg(path, width, height, source, source_path);
    const std::string ffmpeg = require_program("ffmpeg");
    // ffmpeg (-y) writes the temporary file by name.
    file_.close_handle();
    std::vector<std::string> command = {ffmpeg, "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt",
                                        "rgb24", "-s", std::to_string(width) + "x" + std::to_string(height),
                                        "-r", source.frame_rate, "-i", "-"};
    if (source.has_audio && ext != ".gif") {
        // The audio up to the video's length (-shortest would instead cut the
        // video where a shorter audio track ends).
        if (source.duration > 0) {
            char duration[32];
            std::snprintf(duration, sizeof duration, "%.6f", source.duration);
            command.insert(command.end(), {"-t", duration});
        }
        command.insert(command.end(), {"-i", file_arg(source_path), "-map", "0:v:0", "-map", "1:a?"});
        // Same container: the audio is copied bit for bit; another one may not
        // hold the source's codec, so ffmpeg picks its default encoder.
        if (ext == lower_extension(source_path)) command.insert(command.end(), {"-c:a", "copy"});
    }
    if (ext != ".gif") {
        // yuv420p (what players expect) needs even sizes: drop an odd last row/column.
        command.insert(command.end(), {"-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2", "-pix_fmt", "yuv420p"});
    }
    // ffmpeg picks the container's default encoder (libx264 for these where
    // it is built in); crf 18 is visually lossless for x264.
    if (is_h264_container(ext)) command.insert(command.end(), {"-crf", "18"});
    command.push_back(file_arg(file_.temp_path()));
    ffmpeg_ = std::make_unique<Subprocess>(command, "w", path + ": ffmpeg (encoding)");
    ffmpeg_->show_as(file_.temp_path(), path);
}

void VideoWriter::write(const std::vector<uint8_t>& rgb) {
    NST_CHECK(rgb.size() == frame_bytes_, "video frame of ", rgb.size(), " bytes, expected ",
              frame_bytes_);
    if (std::fwrite(rgb.data(), 1, rgb.size(), ffmpeg_->pipe()) == rgb.size()) {
        ++frames_;
        return;
    }
    ffmpeg_->close();  // the encoder ended: its message says why
    const std::string why = problem();
    fail_with(why.empty() ? ffmpeg_->reason() : why);
}

std::string VideoWriter::problem() const {
    for (const std::string& line : ffmpeg_->log_lines())
        if (!reports_early_end(line)) return line;
    return "";
}

// ffmpeg 5.1 exits 0 after "Error writing trailer of out.mp4: No space left
// on device", leaving a file of a few KB that nothing plays, so its status
// does not say the video is whole. Before the file replaces anything: its
// log (any line but an audio source ending early, which the reader
// reports), the data on the disk (fsync, which also reports a full disk
// found only when delayed allocation writes back), and its frames (ffprobe
// counts them, reading the container back).
void VideoWriter::finish() {
    const bool exited_ok = ffmpeg_->close();
    const std::string why = problem();
    if (!why.empty()) fail_with(why);
    if (!exited_ok) fail_with(ffmpeg_->reason());
    const int fd = ::open(file_.temp_path().c_str(), O_RDONLY | O_CLOEXEC);
    int error = fd < 0 || ::fsync(fd) != 0 ? errno : 0;
    if (fd >= 0) ::close(fd);
    NST_CHECK(!error, file_.path(), ": write failed: ", std::strerror(error));
    Subprocess probe({require_program("ffprobe"), "-v", "error", "-select_streams", "v:0", "-count_packets",
                      "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", file_arg(file_.temp_path())},
                     "r", file_.path() + ": ffprobe (reading the written video back)");
    probe.show_as(file_.temp_path(), file_.path());
    const std::string count = read_all(probe.pipe());
    probe.finish();
    const int64_t stored = std::atoll(count.c_str());
    NST_CHECK(stored == frames_, file_.path(), ": ffmpeg wrote ", stored, " of the ", frames_, " frames");
    file_.commit();
}

void VideoWriter::fail_with(const std::string& line) const {
    // "No space left on device" first: the cause, then ffmpeg's words.
    for (int cause : {ENOSPC, EDQUOT, EFBIG})
        if (line.find(std::strerror(cause)) != std::string::npos) {
            std::string text = std::strerror(cause);
            text[0] = char(std::tolower(static_cast<unsigned char>(text[0])));
            fail(file_.path() + ": " + text + " (ffmpeg: " + line + ")");
        }
    fail(file_.path() + ": ffmpeg (encoding) failed: " + line);
}

}  // namespace nst
