// Video files through ffmpeg subprocesses (video/subprocess.hpp; the Debian
// ffmpeg package): one ffmpeg decodes to raw rgb24 frames on a pipe, another
// encodes frames from a pipe and copies (or re-encodes) the source's audio.
// Pipes keep nst free of codec libraries and let ffmpeg read whatever it
// reads. The output is written to a temporary name and moved into place
// only once the finished file is known to be whole (VideoWriter::finish), as
// for images.
//
// Every path reaches ffmpeg as "file:PATH", so that a name with a colon
// (2024-05-01T12:30:00.mp4) is a file, not a protocol.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/files.hpp"
#include "video/subprocess.hpp"

namespace nst {

// By extension: .mp4 .mov .mkv .m4v .avi .webm .mpg .mpeg .wmv .flv .gif.
bool is_video_path(const std::string& path);

struct VideoInfo {
    // As displayed: rotation applied, and pixels made square (a clip stored
    // 160x120 with a 2:1 sample aspect ratio is 320x120).
    int width = 0, height = 0;
    bool square_pixels = true;  // false: the stored pixels are not square
    // Exact, as ffprobe gives it ("30000/1001"): the nominal rate, or the
    // average one where the frames' timestamps do not follow the nominal
    // rate (a variable-frame-rate phone clip).
    std::string frame_rate;
    // The frames the container promises (-1: unknown): what its duration
    // holds at that rate, at most the frames it stores (an edit list may
    // show fewer). The video stream's duration in seconds (-1: unknown).
    int64_t frames = -1;
    double duration = -1;
    bool has_audio = false;
};
// Throws nst::Error when ffprobe is missing or the file is not a readable
// video (a still image named .mp4 included).
VideoInfo probe_video(const std::string& path);

class VideoReader {
public:
    // Every frame the file holds, in order, whatever its timestamps; scaled
    // to width x height (ffmpeg's area filter) when that differs from what
    // is stored (another size, or pixels that are not square).
    VideoReader(const std::string& path, const VideoInfo& info, int width, int height);
    // false at the end of the video. Throws where ffmpeg failed, found the
    // data damaged or decoded no frame at all (the policy: video/ffmpeg.cpp).
    bool read(std::vector<uint8_t>& rgb);
    // After the end: "" or a warning for the user (the file ends early).
    const std::string& warning() const { return warning_; }

private:
    void check_end();

    std::string path_;
    int width_, height_;
    int64_t promised_, frames_ = 0;
    std::string warning_;
    std::unique_ptr<Subprocess> ffmpeg_;
};

class VideoWriter {
public:
    // Frames of width x height at the source's frame rate, with the audio
    // of source_path when it has some. Refuses, before any frame, what the
    // container cannot hold (MPEG-1's frame rates and sizes).
    VideoWriter(const std::string& path, int width, int height, const VideoInfo& source,
                const std::string& source_path);
    void write(const std::vector<uint8_t>& rgb);
    // Waits for ffmpeg, checks the file it wrote (its log, the data on the
    // disk, the frames in it) and moves it into place. Without finish() (an
    // error), the destructor discards the partial output.
    void finish();

private:
    // ffmpeg's first line but an audio source's early end (the reader's to report); "" for none.
    std::string problem() const;
    [[noreturn]] void fail_with(const std::string& line) const;

    size_t frame_bytes_;
    int64_t frames_ = 0;
    nst::AtomicFile file_;
    std::unique_ptr<Subprocess> ffmpeg_;
};

}  // namespace nst
