// What a whole-video run (video/stylize_video.hpp, video/optimize_video.hpp)
// tells its caller as it goes: nst-run draws its progress bar from it, the
// public API (<nst/video.hpp>) calls the program's callback.
#pragma once
#include <cstdint>
#include <functional>

namespace nst {

struct VideoEvents {
    // Both files are open; `frames` is what the input promises (-1: unknown).
    std::function<void(int64_t frames)> opened;
    // Frame `frame` (1-based) is written. false stops the run as a stop
    // request does (core/interrupt.hpp): it throws nst::Interrupted and the
    // output is not written.
    std::function<bool(int64_t frame)> written;
};

}  // namespace nst
