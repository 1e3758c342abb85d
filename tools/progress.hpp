// Progress report for nst-run on stderr. On a terminal: one bar redrawn in
// place (done/total, rate, ETA, current item). Not on a terminal (logs, CI,
// pipes): plain lines, one per item, or for long runs of frames one every few
// seconds, so a log stays readable. Quiet: nothing.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "video/events.hpp"

namespace nst_run {

class Progress {
public:
    // total <= 0: unknown (no bar, no ETA). unit: "image", "frame".
    Progress(int64_t total, std::string unit, bool quiet);
    ~Progress();
    // One more item done; `label` names it (a file name).
    void step(const std::string& label = "");
    // Prints a message (an error about one item) without breaking the bar.
    void message(const std::string& line);
    // Ends the bar with a summary line.
    void finish();

private:
    void draw(const std::string& label);
    double elapsed() const;

    int64_t total_, done_ = 0;
    std::string unit_;
    bool quiet_, tty_, finished_ = false, bar_drawn_ = false;
    std::chrono::steady_clock::time_point start_, last_item_, last_print_;
};

// The bar of a video's frames (video/stylize_video.hpp, optimize_video.hpp),
// shown once both files are open.
class VideoProgress {
public:
    explicit VideoProgress(bool quiet) : quiet_(quiet) {}
    nst::VideoEvents events();
    // After the run: the reader's warning (if any), then the summary.
    void finish(const std::string& warning);

private:
    bool quiet_;
    std::optional<Progress> bar_;
};

}  // namespace nst_run
