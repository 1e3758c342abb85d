// Optical flow between video frames and the temporal warping error of a
// stylized clip, the standard measure of flicker (Lai et al., "Learning
// Blind Video Temporal Consistency", ECCV 2018):
//
//   E = mean over frames t >= 1 of  sum_x M_t(x) |O_t(x) - W(O_{t-1})(x)|^2 / (3 sum_x M_t(x))
//
// with O the output frames on 0..1, W(O_{t-1}) the previous output frame
// moved by the input clip's backward flow (frame t to t-1, bilinear), and
// M_t the pixels whose flow passes the forward-backward consistency check
// (Sundaram et al. 2010, as Ruder et al. use it for video style transfer):
// a pixel is occluded, or moved out of view, when following the backward
// flow and then the forward flow does not come back near where it started.
// The flow is computed on the input frames, where it is reliable, by
// OpenCV's DIS optical flow (Kroeger et al. 2016; Debian
// libopencv-video-dev), the medium preset.
#pragma once
#include <cstdint>
#include <vector>

namespace nst {

// An 8-bit RGB frame, row-major, 3 bytes a pixel.
struct Frame {
    int width = 0, height = 0;
    std::vector<uint8_t> rgb;
};

// Per pixel (dx, dy): where in the other frame this pixel's content is.
struct Flow {
    int width = 0, height = 0;
    std::vector<float> xy;  // 2 floats a pixel
};

// Flow from `from` to `to`: for each pixel x of `from`, x + flow(x) is
// where its content is in `to`. Frames of one size. max_side > 0: frames
// larger than that on their longer side get the flow of the frames shrunk
// to it (their short side kept at 16 or more, DIS's least), scaled back up.
Flow optical_flow(const Frame& from, const Frame& to, int max_side = 0);

// The stabilizer's max_side: DIS's cost grows with the pixels (medium
// preset, 2 cores: 160-200 ms a 1080p frame, 30 ms at 960x540), and the
// motion of a scene is smooth enough at that scale (README, video: the
// figures at 1080p). The warping error and optimization mode's temporal
// loss keep the full-size flow.
constexpr int kStabilizerFlowSide = 960;

// `frame` moved by `flow` (computed from the frame being made to `frame`):
// out(x) = frame(x + flow(x)), bilinear, borders clamped. RGB on 0..1 floats.
std::vector<float> warp(const Frame& frame, const Flow& flow);

// 1 where the backward flow (t to t-1) and the forward flow (t-1 to t)
// agree, 0 where the pixel is occluded or leaves the frame.
std::vector<uint8_t> consistent_pixels(const Flow& backward, const Flow& forward);

// The motion from one input frame to the next: the backward flow and the
// pixels it holds for (the forward-backward check).
struct Motion {
    Flow backward;
    std::vector<uint8_t> mask;
};
Motion motion(const Frame& previous, const Frame& current, int max_side = 0);

// The warping error above of one pair of consecutive output frames, with the
// input's motion between them; NaN when no pixel passes the check (a scene
// cut), which a mean over a clip leaves out.
double warping_error(const Motion& motion, const Frame& output_prev, const Frame& output);

// Temporal stabilization of a stylized clip, one frame at a time (what
// `nst-run stylize` does to videos unless --no-stabilize): where the input's
// motion is known, the output follows it, and elsewhere it is the fresh
// stylization S_t:
//
//   out_t = M_t * (w * W(out_{t-1}) + (1 - w) * S_t) + (1 - M_t) * S_t
//
// with W the backward flow of the input frames and M_t the pixels whose flow
// passes the forward-backward check and whose input colour the flow
// predicts (|I_t - W(I_{t-1})| small: flat regions where the flow means
// nothing are caught too). An exponential average along the motion: the
// painted texture moves with the scene instead of being redrawn in every
// frame, and since each frame adds (1 - w) of its fresh stylization, the
// output keeps following the stylization (no freezing). A scene cut (under
// a third of the pixels consistent) starts afresh: that frame is S_t.
//
// In two halves, so that the flow, which needs only the input frames, is
// computed ahead of and beside the stylization (video/pipeline.hpp):
// the guide of frame t, then the blend once S_t is there.
struct Guide {
    Flow backward;              // frame t to t-1
    std::vector<uint8_t> mask;  // M_t
    bool fresh = true;          // the first frame or a scene cut: out_t = S_t
};
// `previous`: the input frame t-1, or null for the first frame.
Guide stabilizer_guide(const Frame* previous, const Frame& input);

class Stabilizer {
public:
    explicit Stabilizer(float weight) : weight_(weight) {}
    // `stylized`: S_t, replaced by out_t. Frames in order, each with its guide.
    void next(const Guide& guide, Frame& stylized);

private:
    float weight_;
    Frame previous_output_;
};

}  // namespace nst
