#include "tools/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace nst_run {
namespace {

std::string clock_text(double seconds) {
    if (!(seconds >= 0) || seconds > 359999) return "--:--";
    const long s = long(seconds + 0.5);
    char buf[32];
    if (s >= 3600) {
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    } else {
        std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
    }
    return buf;
}

std::string rate_text(double per_second, const std::string& unit) {
    char buf[64];
    if (per_second >= 1 || per_second == 0) {
        std::snprintf(buf, sizeof buf, "%.2f %s/s", per_second, unit.c_str());
    } else {
        std::snprintf(buf, sizeof buf, "%.2f s/%s", 1 / per_second, unit.c_str());
    }
    return buf;
}

}  // namespace

Progress::Progress(int64_t total, std::string unit, bool quiet)
    : total_(total), unit_(std::move(unit)), quiet_(quiet), tty_(isatty(fileno(stderr)) != 0) {
    start_ = last_item_ = last_print_ = std::chrono::steady_clock::now();
    // On a terminal, show the bar before the first (maybe long) item ends.
    if (tty_ && !quiet_) draw("");
}

Progress::~Progress() {
    if (bar_drawn_ && !finished_) std::fputs("\n", stderr);
}

double Progress::elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::step(const std::string& label) {
    ++done_;
    if (quiet_) return;
    const auto now = std::chrono::steady_clock::now();
    const double item_seconds = std::chrono::duration<double>(now - last_item_).count();
    last_item_ = now;
    if (tty_) {
        // Redrawing more than ~10 times a second only costs time.
        if (std::chrono::duration<double>(now - last_print_).count() >= 0.1 || done_ == total_) {
            last_print_ = now;
            draw(label);
        }
        return;
    }
    // Plain lines: every item when items are few and slow (images), else
    // every 5 seconds (video frames).
    const bool every = unit_ != "frame";
    if (!every && std::chrono::duration<double>(now - last_print_).count() < 5 && done_ != total_)
        return;
    last_print_ = now;
    const double rate = done_ / std::max(elapsed(), 1e-9);
    if (total_ > 0) {
        std::fprintf(stderr, "[%lld/%lld] %s%s%.2f s, %s, ETA %s\n", (long long)done_,
                     (long long)total_, label.c_str(), label.empty() ? "" : ": ",
                     every ? item_seconds : elapsed(), rate_text(rate, unit_).c_str(),
                     clock_text(double(total_ - done_) / rate).c_str());
    } else {
        std::fprintf(stderr, "[%lld] %s%s%.2f s, %s\n", (long long)done_, label.c_str(),
                     label.empty() ? "" : ": ", elapsed(), rate_text(rate, unit_).c_str());
    }
    std::fflush(stderr);
}

void Progress::draw(const std::string& label) {
    const double t = elapsed();
    const double rate = done_ / std::max(t, 1e-9);
    std::string line;
    if (total_ > 0) {
        const int width = 24;
        const int filled = int(double(width) * double(std::min(done_, total_)) / double(total_));
        line = "[" + std::string(size_t(filled), '#') + std::string(size_t(width - filled), '.') + "] ";
        line += std::to_string(done_) + "/" + std::to_string(total_) + " " + unit_ + "s  ";
        line += rate_text(rate, unit_) + "  ETA " + clock_text(double(total_ - done_) / rate);
    } else {
        line = std::to_string(done_) + " " + unit_ + "s  " + rate_text(rate, unit_) + "  " +
               clock_text(t);
    }
    if (!label.empty()) line += "  " + label.substr(0, 40);
    // \r + erase-line: redraw in place.
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    bar_drawn_ = true;
}

void Progress::message(const std::string& line) {
    if (bar_drawn_) std::fputs("\r\033[K", stderr);
    std::fprintf(stderr, "%s\n", line.c_str());
    if (bar_drawn_) draw("");
    std::fflush(stderr);
}

void Progress::finish() {
    if (finished_) return;
    finished_ = true;
    if (quiet_) return;
    if (tty_ && done_ > 0) draw("");
    if (bar_drawn_) std::fputs("\n", stderr);
    const double t = elapsed();
    std::fprintf(stderr, "done: %lld %s%s in %.2f s (%s)\n", (long long)done_, unit_.c_str(),
                 done_ == 1 ? "" : "s", t, rate_text(done_ / std::max(t, 1e-9), unit_).c_str());
    std::fflush(stderr);
}

nst::VideoEvents VideoProgress::events() {
    nst::VideoEvents events;
    events.opened = [this](int64_t frames) { bar_.emplace(frames, "frame", quiet_); };
    events.written = [this](int64_t) {
        bar_->step();
        return true;
    };
    return events;
}

void VideoProgress::finish(const std::string& warning) {
    if (!warning.empty()) bar_->message("nst-run: warning: " + warning);
    bar_->finish();
}

}  // namespace nst_run
