// Video through an ffmpeg subprocess (the Debian ffmpeg package): one ffmpeg
// decodes to raw rgb24 frames on a pipe, another encodes frames from a pipe
// at the source's frame rate and copies (or re-encodes) the source's audio.
// Pipes keep nst free of codec libraries and let ffmpeg read whatever it
// reads. The output is written to a temporary name and moved into place only
// when ffmpeg finished cleanly (core/files.hpp), as for images.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/files.hpp"

namespace nst_run {

// By extension: .mp4 .mov .mkv .m4v .avi .webm .mpg .mpeg .wmv .flv .gif.
bool is_video_path(const std::string& path);

struct VideoInfo {
    int width = 0, height = 0;  // as displayed (rotation applied)
    std::string frame_rate;     // exact, as ffprobe gives it: "30000/1001"
    int64_t frames = -1;        // -1: unknown
    bool has_audio = false;
};
// Throws nst::Error when ffprobe is missing or cannot read the file.
VideoInfo probe_video(const std::string& path);

// A program (argv[0]: its full path; no shell) whose standard output (mode
// "r") or input ("w") is a pipe to us and whose stderr goes to a log file that
// error messages quote. It runs in its own process group, listed for the
// signal handler (tools/interrupt.hpp).
class Subprocess {
public:
    Subprocess(const std::vector<std::string>& argv, const char* mode, const std::string& what);
    ~Subprocess();  // closes the pipe and waits
    Subprocess(const Subprocess&) = delete;
    Subprocess& operator=(const Subprocess&) = delete;
    std::FILE* pipe() const { return pipe_; }
    // Closes the pipe, waits; throws with the log's last line unless exit 0.
    void finish();
    std::string log_tail() const;

private:
    int wait();  // reaps the child; its wait status, -1 if there is none

    std::FILE* pipe_ = nullptr;
    pid_t pid_ = -1;
    std::string log_path_, what_;
    int log_listed_ = -1;    // nst::remember_temporary()'s handle
    int child_listed_ = -1;  // remember_child()'s handle
};

class VideoReader {
public:
    // Frames scaled to width x height (ffmpeg's area filter) when that differs
    // from the source's size.
    VideoReader(const std::string& path, const VideoInfo& info, int width, int height);
    // false at the end of the video; throws on a decoding error.
    bool read(std::vector<uint8_t>& rgb);

private:
    int width_, height_;
    std::unique_ptr<Subprocess> ffmpeg_;
};

class VideoWriter {
public:
    // audio_source: the file whose audio to keep ("" for none).
    VideoWriter(const std::string& path, int width, int height, const std::string& frame_rate,
                const std::string& audio_source);
    void write(const std::vector<uint8_t>& rgb);
    // Waits for ffmpeg and moves the file into place. Without finish() (an
    // error), the destructor discards the partial output.
    void finish();

private:
    size_t frame_bytes_;
    nst::AtomicFile file_;
    std::unique_ptr<Subprocess> ffmpeg_;
};

}  // namespace nst_run
