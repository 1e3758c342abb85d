// The ffmpeg and ffprobe processes the video code runs (video/ffmpeg.hpp),
// and the hooks through which the program hears of them. The library ends
// its children itself, closing their pipes and waiting; but a program that
// dies at once on a second Ctrl-C must kill them first, or an ffmpeg could
// go on writing a file just removed, or create it anew. Only the program
// knows how it handles signals (nst-run: tools/interrupt.hpp), so it
// installs the hooks, and the library calls them.
#pragma once
#include <sys/types.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace nst {

// Both set or both null (the default: nothing is told). Called on whatever
// thread starts or reaps the child, so they must be thread-safe.
struct ChildProcessHooks {
    // A child has started; what it returns is handed back to `ending`.
    int (*started)(pid_t pid) = nullptr;
    // The child that `started` returned `handle` for has ended and is about
    // to be reaped: after this, its pid may be another process's.
    void (*ending)(int handle) = nullptr;
};
// For the children started from now on.
void set_child_process_hooks(const ChildProcessHooks& hooks);

// A program (argv[0]: its full path; no shell) whose standard output (mode
// "r") or input ("w") is a pipe to us and whose stderr goes to a log file,
// $TMPDIR/nst-ffmpeg-<our PID>-XXXXXX.log, that error messages quote. It
// runs in its own process group, told to the child-process hooks.
class Subprocess {
public:
    // `what` names it in error messages ("clip.mp4: ffmpeg (decoding)").
    Subprocess(const std::vector<std::string>& argv, const char* mode, const std::string& what);
    ~Subprocess();  // closes the pipe and waits
    Subprocess(const Subprocess&) = delete;
    Subprocess& operator=(const Subprocess&) = delete;
    std::FILE* pipe() const { return pipe_; }
    // Log lines show `shown` for `actual` (a temporary's name: the user's).
    void show_as(const std::string& actual, const std::string& shown);
    // Closes the pipe and waits; true when it exited with status 0.
    bool close();
    // close(); throws "WHAT failed: REASON" unless it exited 0.
    void finish();
    // Its log, one line each; with "-v error" every line is an error.
    // "[h264 @ 0x55d0c0] message" reads "h264: message"; "file:PATH" reads PATH.
    std::vector<std::string> log_lines() const;
    // The log's first line, else how it ended ("exit status 1", "killed").
    std::string reason() const;

private:
    int wait();  // reaps the child; its wait status, -1 if there is none

    std::FILE* pipe_ = nullptr;
    pid_t pid_ = -1;
    int status_ = -1;
    std::string log_path_, what_;
    std::vector<std::pair<std::string, std::string>> shown_as_;
    int log_listed_ = -1;  // nst::remember_temporary()'s handle
    // The hooks it was started under, and what `started` returned.
    ChildProcessHooks hooks_;
    int hook_handle_ = -1;
};

}  // namespace nst
