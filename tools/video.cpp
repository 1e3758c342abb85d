#include "tools/video.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/files.hpp"
#include "tools/interrupt.hpp"

namespace nst_run {
namespace {

using nst::fail;

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

}  // namespace

bool is_video_path(const std::string& path) {
    static const char* const exts[] = {".mp4", ".mov", ".mkv",  ".m4v", ".avi", ".webm",
                                       ".mpg", ".mpeg", ".wmv", ".flv", ".gif"};
    const std::string ext = lower_extension(path);
    return std::any_of(std::begin(exts), std::end(exts), [&](const char* e) { return ext == e; });
}

Subprocess::Subprocess(const std::vector<std::string>& argv, const char* mode, const std::string& what)
    : what_(what) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/nst-ffmpeg-XXXXXX.log";
    std::vector<char> buffer(templ.begin(), templ.end());
    buffer.push_back('\0');
    const int log_fd = mkostemps(buffer.data(), 4, O_CLOEXEC);
    NST_CHECK(log_fd >= 0, what, ": cannot create a log file in /tmp: ", std::strerror(errno));
    log_path_ = buffer.data();
    log_listed_ = nst::remember_temporary(log_path_);
    const bool reading = mode[0] == 'r';
    int ends[2] = {-1, -1};
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    int error = ::pipe2(ends, O_CLOEXEC) == 0 ? 0 : errno;
    if (!error) {
        // The child's end of the pipe as its stdout (reading) or stdin
        // (writing), its stderr into the log, and no terminal at all.
        posix_spawn_file_actions_adddup2(&actions, reading ? ends[1] : ends[0], reading ? 1 : 0);
        if (reading) posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&actions, log_fd, 2);
        // Its own process group: a Ctrl-C at the terminal reaches nst-run
        // alone, which then stops at a frame boundary and ends ffmpeg itself.
        posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
        posix_spawnattr_setpgroup(&attributes, 0);
        std::vector<char*> args;
        for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        error = posix_spawn(&pid_, argv[0].c_str(), &actions, &attributes, args.data(), environ);
    }
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    ::close(log_fd);
    if (ends[reading ? 1 : 0] >= 0) ::close(ends[reading ? 1 : 0]);
    if (!error) {
        child_listed_ = remember_child(pid_);
        pipe_ = fdopen(ends[reading ? 0 : 1], reading ? "r" : "w");
        if (pipe_) return;
        error = errno;
        ::close(ends[reading ? 0 : 1]);  // the child sees EOF or EPIPE and ends
        wait();
    } else if (ends[reading ? 0 : 1] >= 0) {
        ::close(ends[reading ? 0 : 1]);
    }
    std::remove(log_path_.c_str());
    nst::forget_temporary(log_listed_);
    fail(what + ": cannot start: " + std::strerror(error));
}

int Subprocess::wait() {
    if (pid_ <= 0) return -1;
    // Until it has ended it stays listed, so that a second Ctrl-C during a
    // long wait (an encoder finishing) kills it; it is unlisted before it is
    // reaped, after which its pid may belong to another process.
    siginfo_t info;
    while (::waitid(P_PID, id_t(pid_), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
    forget_child(child_listed_);
    child_listed_ = -1;
    int status = -1;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
}

Subprocess::~Subprocess() {
    if (pipe_) std::fclose(pipe_);  // a reader gets EOF, a writer EPIPE: either ends
    wait();
    std::remove(log_path_.c_str());
    nst::forget_temporary(log_listed_);
}

std::string Subprocess::log_tail() const {
    std::ifstream in(log_path_);
    std::string line, last;
    while (std::getline(in, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty()) last = line;
    }
    return last;
}

void Subprocess::finish() {
    if (!pipe_) return;
    std::fclose(pipe_);
    pipe_ = nullptr;
    const int status = wait();
    if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    std::string why = log_tail();
    if (why.empty())
        why = status != -1 && WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                                : std::string("killed");
    fail(what_ + " failed: " + why);
}

VideoInfo probe_video(const std::string& path) {
    require_program("ffmpeg");
    const std::string ffprobe = require_program("ffprobe");
    struct stat st;
    NST_CHECK(::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode), path,
              ": cannot open: no such file");
    Subprocess probe({ffprobe, "-v", "error", "-of", "json", "-show_entries",
                      "stream=codec_type,width,height,r_frame_rate,avg_frame_rate,nb_frames:"
                      "stream_tags=rotate:stream_side_data=rotation:format=duration",
                      path},
                     "r", path + ": ffprobe");
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, probe.pipe())) > 0) text.append(buf, n);
    probe.finish();
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    NST_CHECK(!j.is_discarded() && j.contains("streams") && j["streams"].is_array(), path,
              ": ffprobe gave no stream list");
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
    for (const char* key : {"r_frame_rate", "avg_frame_rate"}) {
        const std::string rate = video->value(key, "");
        const size_t slash = rate.find('/');
        const double num = std::atof(rate.c_str());
        const double den = slash == std::string::npos ? 1 : std::atof(rate.c_str() + slash + 1);
        if (num > 0 && den > 0 && rate.find_first_not_of("0123456789/.") == std::string::npos) {
            info.frame_rate = rate;
            const double fps = num / den;
            const std::string frames = video->value("nb_frames", "");
            if (!frames.empty() && std::atoll(frames.c_str()) > 0) {
                info.frames = std::atoll(frames.c_str());
            } else if (j.contains("format") && j["format"].contains("duration")) {
                const double duration = std::atof(j["format"]["duration"].get<std::string>().c_str());
                if (duration > 0) info.frames = int64_t(std::llround(duration * fps));
            }
            break;
        }
    }
    NST_CHECK(!info.frame_rate.empty(), path, ": no usable frame rate");
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
    : width_(width), height_(height) {
    const std::string ffmpeg = require_program("ffmpeg");
    std::vector<std::string> command = {ffmpeg, "-v", "error", "-nostdin", "-i", path, "-map", "0:v:0"};
    if (width != info.width || height != info.height)
        command.insert(command.end(),
                       {"-vf", "scale=" + std::to_string(width) + ":" + std::to_string(height) + ":flags=area"});
    command.insert(command.end(), {"-f", "rawvideo", "-pix_fmt", "rgb24", "-"});
    ffmpeg_ = std::make_unique<Subprocess>(command, "r", path + ": ffmpeg (decoding)");
}

bool VideoReader::read(std::vector<uint8_t>& rgb) {
    rgb.resize(size_t(width_) * height_ * 3);
    const size_t got = std::fread(rgb.data(), 1, rgb.size(), ffmpeg_->pipe());
    if (got == rgb.size()) return true;
    ffmpeg_->finish();  // throws with ffmpeg's message when decoding failed
    NST_CHECK(got == 0, "ffmpeg (decoding): the video ended in the middle of a frame");
    return false;
}

VideoWriter::VideoWriter(const std::string& path, int width, int height,
                         const std::string& frame_rate, const std::string& audio_source)
    : frame_bytes_(size_t(width) * height * 3), file_(path) {
    const std::string ffmpeg = require_program("ffmpeg");
    // ffmpeg (-y) writes the temporary file by name.
    file_.close_handle();
    const std::string ext = lower_extension(path);
    std::vector<std::string> command = {ffmpeg, "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt",
                                        "rgb24", "-s", std::to_string(width) + "x" + std::to_string(height),
                                        "-r", frame_rate, "-i", "-"};
    if (!audio_source.empty() && ext != ".gif") {
        command.insert(command.end(), {"-i", audio_source, "-map", "0:v:0", "-map", "1:a?"});
        // Same container: the audio is copied bit for bit; another one may not
        // hold the source's codec, so ffmpeg picks its default encoder.
        if (ext == lower_extension(audio_source)) command.insert(command.end(), {"-c:a", "copy"});
        command.push_back("-shortest");
    }
    if (ext != ".gif") {
        // yuv420p (what players expect) needs even sizes: drop an odd last row/column.
        command.insert(command.end(), {"-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2", "-pix_fmt", "yuv420p"});
    }
    // ffmpeg picks the container's default encoder (libx264 for these where
    // it is built in); crf 18 is visually lossless for x264.
    if (is_h264_container(ext)) command.insert(command.end(), {"-crf", "18"});
    command.push_back(file_.temp_path());
    ffmpeg_ = std::make_unique<Subprocess>(command, "w", path + ": ffmpeg (encoding)");
}

void VideoWriter::write(const std::vector<uint8_t>& rgb) {
    NST_CHECK(rgb.size() == frame_bytes_, "video frame of ", rgb.size(), " bytes, expected ",
              frame_bytes_);
    if (std::fwrite(rgb.data(), 1, rgb.size(), ffmpeg_->pipe()) == rgb.size()) return;
    ffmpeg_->finish();  // the encoder died: report its message
    fail(file_.path() + ": ffmpeg (encoding) stopped accepting frames");
}

void VideoWriter::finish() {
    ffmpeg_->finish();
    file_.commit();
}

}  // namespace nst_run
