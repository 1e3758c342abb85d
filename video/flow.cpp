#include "video/flow.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include "core/error.hpp"

namespace nst {
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

// `frame` moved by `flow` at pixel (x, y), RGB on 0..1: one pixel of warp(),
// for loops that use it at once (a 1080p frame of floats is 25 MB, and its
// first touch costs a page fault every 4 KiB).
void moved_pixel(const Frame& frame, const Flow& flow, int x, int y, float out[3]) {
    const int W = frame.width, H = frame.height;
    const size_t i = size_t(y) * W + x;
    const float sx = float(x) + flow.xy[2 * i], sy = float(y) + flow.xy[2 * i + 1];
    for (int c = 0; c < 3; ++c) {
        auto at = [&](int xx, int yy) { return float(frame.rgb[(size_t(yy) * W + xx) * 3 + c]) / 255.f; };
        out[c] = bilinear(at, sx, sy, float(x), float(y), W, H);
    }
}

void check_sizes(const char* what, const Frame& frame, const Flow& flow) {
    NST_CHECK(frame.width == flow.width && frame.height == flow.height &&
                  frame.rgb.size() == size_t(flow.width) * flow.height * 3,
              what, ": the frame is ", frame.width, "x", frame.height, ", the flow ", flow.width, "x", flow.height);
}

}  // namespace

Flow optical_flow(const Frame& from, const Frame& to, int max_side) {
    NST_CHECK(from.width == to.width && from.height == to.height && from.width > 0 && from.height > 0,
              "optical flow: frames of different sizes (", from.width, "x", from.height, " and ", to.width, "x",
              to.height, ")");
    const int W = from.width, H = from.height;
    cv::Mat a = gray(from), b = gray(to);
    double shrink = max_side > 0 ? double(max_side) / std::max(W, H) : 1.0;
    shrink = std::min(1.0, std::max(shrink, 16.0 / std::min(W, H)));
    const int w = std::max(1, int(std::lround(W * shrink))), h = std::max(1, int(std::lround(H * shrink)));
    if (w != W || h != H) {
        cv::resize(a, a, cv::Size(w, h), 0, 0, cv::INTER_AREA);
        cv::resize(b, b, cv::Size(w, h), 0, 0, cv::INTER_AREA);
    }
    // One per thread, kept: its image pyramids are reused instead of
    // allocated (and page-faulted in) anew for every frame, which tripled
    // the cost of a 1080p flow. Only while it keeps the preset's settings:
    // on very small frames DIS changes its own patch size and scales, which
    // would then change later flows. An empty `flow` starts from no motion.
    auto settings = [](const cv::Ptr<cv::DISOpticalFlow>& d) {
        return std::array<int, 3>{d->getFinestScale(), d->getPatchSize(), d->getPatchStride()};
    };
    thread_local cv::Ptr<cv::DISOpticalFlow> dis;
    if (!dis) dis = cv::DISOpticalFlow::create(cv::DISOpticalFlow::PRESET_MEDIUM);
    const std::array<int, 3> preset = settings(dis);
    cv::Mat flow;
    try {
        dis->calc(a, b, flow);
    } catch (...) {
        dis.release();
        throw;
    }
    if (settings(dis) != preset) dis.release();
    NST_CHECK(flow.type() == CV_32FC2 && flow.cols == w && flow.rows == h,
              "optical flow: unexpected result from OpenCV");
    Flow out;
    out.width = W, out.height = H;
    out.xy.resize(size_t(W) * H * 2);
    cv::Mat result(H, W, CV_32FC2, out.xy.data());  // OpenCV writes into out.xy
    if (w != W || h != H) {
        cv::resize(flow, result, result.size(), 0, 0, cv::INTER_LINEAR);
        cv::multiply(result, cv::Scalar(double(W) / w, double(H) / h), result);
        NST_CHECK(result.data == reinterpret_cast<uint8_t*>(out.xy.data()), "optical flow: OpenCV moved the result");
    } else {
        flow.copyTo(result);
    }
    return out;
}

std::vector<float> warp(const Frame& frame, const Flow& flow) {
    check_sizes("warp", frame, flow);
    const int W = frame.width, H = frame.height;
    std::vector<float> out(size_t(W) * H * 3);
#pragma omp parallel for schedule(static)
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) moved_pixel(frame, flow, x, y, &out[(size_t(y) * W + x) * 3]);
    return out;
}

std::vector<uint8_t> consistent_pixels(const Flow& backward, const Flow& forward) {
    const int W = backward.width, H = backward.height;
    std::vector<uint8_t> mask(size_t(W) * H, 0);
#pragma omp parallel for schedule(static)
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

Motion motion(const Frame& previous, const Frame& current, int max_side) {
    Motion m;
    m.backward = optical_flow(current, previous, max_side);
    m.mask = consistent_pixels(m.backward, optical_flow(previous, current, max_side));
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

Guide stabilizer_guide(const Frame* previous, const Frame& input) {
    Guide guide;
    if (!previous || previous->width != input.width || previous->height != input.height) return guide;
    Motion m = motion(*previous, input, kStabilizerFlowSide);
    // The flow must also predict the input's colour (0.1 of the range per
    // channel, root mean square).
    check_sizes("stabilize", *previous, m.backward);
    const int W = input.width, H = input.height;
    const int64_t pixels = int64_t(W) * H;
    int64_t kept = 0;
#pragma omp parallel for reduction(+ : kept) schedule(static)
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
            const size_t i = size_t(y) * W + x;
            if (!m.mask[i]) continue;
            float predicted[3], d2 = 0;
            moved_pixel(*previous, m.backward, x, y, predicted);
            for (int c = 0; c < 3; ++c) {
                const float d = float(input.rgb[i * 3 + c]) / 255.f - predicted[c];
                d2 += d * d;
            }
            if (d2 > 3 * 0.01f) m.mask[i] = 0;
            kept += m.mask[i];
        }
    guide.fresh = kept * 3 < pixels;  // a scene cut
    guide.backward = std::move(m.backward);
    guide.mask = std::move(m.mask);
    return guide;
}

void Stabilizer::next(const Guide& guide, Frame& stylized) {
    if (!guide.fresh) {
        NST_CHECK(stylized.width == guide.backward.width && stylized.height == guide.backward.height &&
                      previous_output_.width == stylized.width && previous_output_.height == stylized.height,
                  "stabilize: the stylized frame is ", stylized.width, "x", stylized.height, ", the flow ",
                  guide.backward.width, "x", guide.backward.height);
        const int W = stylized.width, H = stylized.height;
#pragma omp parallel for schedule(static)
        for (int y = 0; y < H; ++y)
            for (int x = 0; x < W; ++x) {
                const size_t i = size_t(y) * W + x;
                if (!guide.mask[i]) continue;
                float moved[3];
                moved_pixel(previous_output_, guide.backward, x, y, moved);
                for (int c = 0; c < 3; ++c) {
                    uint8_t& v = stylized.rgb[i * 3 + c];
                    const float out = weight_ * moved[c] * 255.f + (1 - weight_) * float(v);
                    v = uint8_t(std::clamp(std::lround(out), 0L, 255L));
                }
            }
    }
    previous_output_ = stylized;
}

}  // namespace nst
