#include "tools/video_flow.hpp"

#include <algorithm>
#include <cmath>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include "core/error.hpp"

namespace nst_run {
namespace {

cv::Mat gray(const Frame& f) {
    NST_CHECK(f.rgb.size() == size_t(f.width) * f.height * 3, "optical flow: a frame of ", f.rgb.size(),
              " bytes is not ", f.width, "x", f.height, " RGB");
    // const_cast: OpenCV's header does not copy, and cvtColor only reads it.
    const cv::Mat rgb(f.height, f.width, CV_8UC3, const_cast<uint8_t*>(f.rgb.data()));
    cv::Mat g;
    cv::cvtColor(rgb, g, cv::COLOR_RGB2GRAY);
    return g;
}

// Bilinear interpolation of at(x, y) at the point (x, y), clamped to the
// W x H grid; a point that is not a number stays at (x0, y0).
template <class At>
float bilinear(At at, float x, float y, float x0, float y0, int W, int H) {
    if (!std::isfinite(x) || !std::isfinite(y)) x = x0, y = y0;
    x = std::clamp(x, 0.f, float(W - 1)), y = std::clamp(y, 0.f, float(H - 1));
    const int xa = int(x), ya = int(y), xb = std::min(xa + 1, W - 1), yb = std::min(ya + 1, H - 1);
    const float ax = x - float(xa), ay = y - float(ya);
    const float top = at(xa, ya) + ax * (at(xb, ya) - at(xa, ya));
    const float bottom = at(xa, yb) + ax * (at(xb, yb) - at(xa, yb));
    return top + ay * (bottom - top);
}

}  // namespace

Flow optical_flow(const Frame& from, const Frame& to) {
    NST_CHECK(from.width == to.width && from.height == to.height && from.width > 0 && from.height > 0,
              "optical flow: frames of different sizes (", from.width, "x", from.height, " and ", to.width, "x",
              to.height, ")");
    const cv::Ptr<cv::DISOpticalFlow> dis = cv::DISOpticalFlow::create(cv::DISOpticalFlow::PRESET_MEDIUM);
    cv::Mat flow;
    dis->calc(gray(from), gray(to), flow);
    NST_CHECK(flow.type() == CV_32FC2 && flow.isContinuous() && flow.cols == from.width && flow.rows == from.height,
              "optical flow: unexpected result from OpenCV");
    Flow out;
    out.width = from.width, out.height = from.height;
    out.xy.assign(reinterpret_cast<const float*>(flow.data),
                  reinterpret_cast<const float*>(flow.data) + size_t(from.width) * from.height * 2);
    return out;
}

std::vector<float> warp(const Frame& frame, const Flow& flow) {
    NST_CHECK(frame.width == flow.width && frame.height == flow.height, "warp: the frame is ", frame.width, "x",
              frame.height, ", the flow ", flow.width, "x", flow.height);
    const int W = frame.width, H = frame.height;
    std::vector<float> out(size_t(W) * H * 3);
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
            const size_t i = size_t(y) * W + x;
            const float sx = float(x) + flow.xy[2 * i], sy = float(y) + flow.xy[2 * i + 1];
            for (int c = 0; c < 3; ++c) {
                auto at = [&](int xx, int yy) { return float(frame.rgb[(size_t(yy) * W + xx) * 3 + c]) / 255.f; };
                out[i * 3 + c] = bilinear(at, sx, sy, float(x), float(y), W, H);
            }
        }
    return out;
}

std::vector<uint8_t> consistent_pixels(const Flow& backward, const Flow& forward) {
    const int W = backward.width, H = backward.height;
    std::vector<uint8_t> mask(size_t(W) * H, 0);
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
            const size_t i = size_t(y) * W + x;
            const float bu = backward.xy[2 * i], bv = backward.xy[2 * i + 1];
            const float px = float(x) + bu, py = float(y) + bv;
            // Came from outside (or the flow is not a number: the test is false for NaN).
            if (!(px >= 0 && py >= 0 && px <= float(W - 1) && py <= float(H - 1))) continue;
            auto at = [&](int c) {
                return [&forward, c](int xx, int yy) { return forward.xy[(size_t(yy) * forward.width + xx) * 2 + c]; };
            };
            const float fu = bilinear(at(0), px, py, px, py, W, H), fv = bilinear(at(1), px, py, px, py, W, H);
            const float du = bu + fu, dv = bv + fv;
            mask[i] = du * du + dv * dv < 0.01f * (bu * bu + bv * bv + fu * fu + fv * fv) + 0.5f;
        }
    return mask;
}

Motion motion(const Frame& previous, const Frame& current) {
    Motion m;
    m.backward = optical_flow(current, previous);
    m.mask = consistent_pixels(m.backward, optical_flow(previous, current));
    return m;
}

double warping_error(const Motion& motion, const Frame& output_prev, const Frame& output) {
    for (const Frame* f : {&output_prev, &output})
        NST_CHECK(f->width == motion.backward.width && f->height == motion.backward.height, "warping error: frames of ",
                  f->width, "x", f->height, " and ", motion.backward.width, "x", motion.backward.height);
    const std::vector<float> moved = warp(output_prev, motion.backward);
    double sum = 0, count = 0;
    for (size_t i = 0; i < motion.mask.size(); ++i) {
        if (!motion.mask[i]) continue;
        for (int c = 0; c < 3; ++c) {
            const double d = double(output.rgb[i * 3 + c]) / 255.0 - double(moved[i * 3 + c]);
            sum += d * d;
        }
        count += 3;
    }
    return count > 0 ? sum / count : std::nan("");
}

void Stabilizer::next(const Frame& input, Frame& stylized) {
    NST_CHECK(stylized.width == input.width && stylized.height == input.height, "stabilize: the stylized frame is ",
              stylized.width, "x", stylized.height, ", the input ", input.width, "x", input.height);
    fresh_ = previous_input_.rgb.empty() || previous_input_.width != input.width ||
             previous_input_.height != input.height;
    if (!fresh_) {
        Motion m = motion(previous_input_, input);
        const Flow& backward = m.backward;
        std::vector<uint8_t>& mask = m.mask;
        // The flow must also predict the input's colour (0.1 of the range
        // per channel, root mean square).
        const std::vector<float> predicted = warp(previous_input_, backward);
        size_t kept = 0;
        for (size_t i = 0; i < mask.size(); ++i) {
            float d2 = 0;
            for (int c = 0; c < 3; ++c) {
                const float d = float(input.rgb[i * 3 + c]) / 255.f - predicted[i * 3 + c];
                d2 += d * d;
            }
            if (d2 > 3 * 0.01f) mask[i] = 0;
            kept += mask[i];
        }
        fresh_ = kept * 3 < mask.size();  // a scene cut
        if (!fresh_) {
            const std::vector<float> moved = warp(previous_output_, backward);
            for (size_t i = 0; i < mask.size(); ++i) {
                if (!mask[i]) continue;
                for (int c = 0; c < 3; ++c) {
                    uint8_t& v = stylized.rgb[i * 3 + c];
                    const float out = weight_ * moved[i * 3 + c] * 255.f + (1 - weight_) * float(v);
                    v = uint8_t(std::clamp(std::lround(out), 0L, 255L));
                }
            }
        }
    }
    previous_input_ = input;
    previous_output_ = stylized;
}

}  // namespace nst_run
