// The CPU reference backend, kernel by kernel. Every CpuBackend method is
// compared with a naive implementation written here straight from the
// definition (direct loops, double accumulation, nothing shared with the
// kernels), on random shapes with odd sizes and fixed seeds. Every backward
// kernel is also checked against central finite differences of its forward:
// L = sum(forward(x) * r) for a fixed random r, accumulated in double.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cpu/cpu_backend.hpp"

namespace {

using nst::ConvShape;
using nst::PadMode;
using Vec = std::vector<float>;
using DVec = std::vector<double>;

nst::CpuBackend& cpu() {
    static nst::CpuBackend backend;
    return backend;
}

const float kNaN = std::numeric_limits<float>::quiet_NaN();

int rand_int(std::mt19937& rng, int lo, int hi) {  // inclusive
    return std::uniform_int_distribution<int>(lo, hi)(rng);
}

Vec random_vec(std::mt19937& rng, size_t n, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> dist(lo, hi);
    Vec v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

// Values with |x| in [0.1, 1]: far from the kink of relu and from ties.
Vec away_from_zero(std::mt19937& rng, size_t n) {
    Vec v = random_vec(rng, n, 0.1f, 1.0f);
    for (float& x : v)
        if (rng() & 1) x = -x;
    return v;
}

// Distinct values 0.05 apart in random order: max pooling has no ties, and a
// finite-difference step below 0.025 never changes a window's winner.
Vec distinct_values(std::mt19937& rng, size_t n) {
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    Vec v(n);
    for (size_t i = 0; i < n; ++i) v[i] = 0.05f * float(order[i]) - 0.025f * float(n);
    return v;
}

// max |got - want| <= atol + rtol * max |want|; NaN fails.
void require_close(const Vec& got, const DVec& want, double rtol, double atol,
                   const std::string& what) {
    REQUIRE(got.size() == want.size());
    double scale = 0.0, worst = 0.0;
    size_t worst_at = 0;
    for (size_t i = 0; i < want.size(); ++i) scale = std::max(scale, std::abs(want[i]));
    for (size_t i = 0; i < want.size(); ++i) {
        const double err = std::abs(double(got[i]) - want[i]);
        if (!(err <= worst)) {  // also catches NaN
            worst = std::isnan(err) ? std::numeric_limits<double>::infinity() : err;
            worst_at = i;
        }
    }
    INFO(what << ": max error " << worst << " at " << worst_at << " of " << want.size()
              << ", max |want| " << scale);
    REQUIRE(worst <= atol + rtol * scale);
}

// Central finite differences of L(x) = sum(forward(x) * r) against `grad` on
// up to max_probes entries of x (all of them when x is small). The step is
// the one float really took, so rounding of x +- eps does not bias it.
template <class Forward>
void check_fd(const std::string& what, Forward&& forward, Vec x, const Vec& r, const Vec& grad,
              double eps, double rtol, size_t max_probes = 80) {
    REQUIRE(grad.size() == x.size());
    auto loss = [&](const Vec& at) {
        const Vec y = forward(at);
        REQUIRE(y.size() == r.size());
        double s = 0.0;
        for (size_t i = 0; i < y.size(); ++i) s += double(y[i]) * double(r[i]);
        return s;
    };
    std::vector<size_t> probes(x.size());
    std::iota(probes.begin(), probes.end(), size_t(0));
    if (probes.size() > max_probes) {
        std::mt19937 rng(1234);
        std::shuffle(probes.begin(), probes.end(), rng);
        probes.resize(max_probes);
    }
    double scale = 0.0;
    for (float g : grad) scale = std::max(scale, double(std::abs(g)));
    double worst = 0.0;
    size_t worst_at = 0;
    double worst_fd = 0.0;
    for (size_t i : probes) {
        const float saved = x[i];
        const float plus = float(saved + eps), minus = float(saved - eps);
        x[i] = plus;
        const double lp = loss(x);
        x[i] = minus;
        const double lm = loss(x);
        x[i] = saved;
        const double fd = (lp - lm) / (double(plus) - double(minus));
        const double err = std::abs(fd - double(grad[i]));
        if (!(err <= worst)) {
            worst = std::isnan(err) ? std::numeric_limits<double>::infinity() : err;
            worst_at = i;
            worst_fd = fd;
        }
    }
    INFO(what << ": finite differences off by " << worst << " at " << worst_at << " (fd "
              << worst_fd << ", analytic " << grad[worst_at] << "), max |grad| " << scale);
    REQUIRE(worst <= rtol * scale + 1e-5);
}

// A linear map y = A x as a list of (out, in, weight) terms: the naive
// reference for the gather/scatter ops, whose backward is exactly A^T.
struct LinearMap {
    size_t in_size = 0, out_size = 0;
    std::vector<std::tuple<size_t, size_t, double>> terms;

    DVec apply(const Vec& x) const {
        DVec y(out_size, 0.0);
        for (const auto& [o, i, w] : terms) y[o] += w * x[i];
        return y;
    }
    DVec transpose(const Vec& dy) const {
        DVec dx(in_size, 0.0);
        for (const auto& [o, i, w] : terms) dx[i] += w * dy[o];
        return dx;
    }
};

// ---- naive convolution ------------------------------------------------------

ConvShape random_conv(std::mt19937& rng) {
    const int kernels[] = {1, 3, 5, 9};
    const int R = kernels[rand_int(rng, 0, 3)];
    const int S = rand_int(rng, 0, 2) ? R : kernels[rand_int(rng, 0, 3)];
    const int stride = rand_int(rng, 1, 2);
    const int pad_h = rand_int(rng, 0, 4), pad_w = rand_int(rng, 0, 4);
    const int H = std::max(rand_int(rng, 1, 15), R - 2 * pad_h);
    const int W = std::max(rand_int(rng, 1, 15), S - 2 * pad_w);
    return ConvShape::of(rand_int(rng, 1, 3), rand_int(rng, 1, 7), H, W, rand_int(rng, 1, 7), R, S, stride, pad_h,
                         pad_w);
}

// The input pixel under tap (r, t) of output (p, q), or false when it is padding.
bool tap(const ConvShape& s, int p, int q, int r, int t, int& h, int& w) {
    h = p * s.stride - s.pad_h + r;
    w = q * s.stride - s.pad_w + t;
    return h >= 0 && h < s.H && w >= 0 && w < s.W;
}

size_t xi(const ConvShape& s, int n, int c, int h, int w) {
    return ((size_t(n) * s.C + c) * s.H + h) * s.W + w;
}
size_t wi(const ConvShape& s, int k, int c, int r, int t) {
    return ((size_t(k) * s.C + c) * s.R + r) * s.S + t;
}
size_t yi(const ConvShape& s, int n, int k, int p, int q) {
    return ((size_t(n) * s.K + k) * s.P + p) * s.Q + q;
}

// Every product of the convolution, as f(y index, x index, w index), the
// taps that fall on padding left out: forward and both backwards follow.
template <class F>
void for_each_product(const ConvShape& s, F&& f) {
    for (int n = 0; n < s.N; ++n)
        for (int k = 0; k < s.K; ++k)
            for (int p = 0; p < s.P; ++p)
                for (int q = 0; q < s.Q; ++q)
                    for (int c = 0; c < s.C; ++c)
                        for (int r = 0; r < s.R; ++r)
                            for (int t = 0; t < s.S; ++t) {
                                int h, ww;
                                if (tap(s, p, q, r, t, h, ww))
                                    f(yi(s, n, k, p, q), xi(s, n, c, h, ww), wi(s, k, c, r, t));
                            }
}

DVec naive_conv_forward(const ConvShape& s, const Vec& x, const Vec& w, const Vec* b) {
    DVec y(s.y_size(), 0.0);
    if (b)
        for (size_t o = 0; o < y.size(); ++o) y[o] = (*b)[o / (size_t(s.P) * s.Q) % size_t(s.K)];
    for_each_product(s, [&](size_t o, size_t i, size_t j) { y[o] += double(x[i]) * w[j]; });
    return y;
}

DVec naive_conv_backward_data(const ConvShape& s, const Vec& dy, const Vec& w) {
    DVec dx(s.x_size(), 0.0);
    for_each_product(s, [&](size_t o, size_t i, size_t j) { dx[i] += double(dy[o]) * w[j]; });
    return dx;
}

DVec naive_conv_backward_filter(const ConvShape& s, const Vec& x, const Vec& dy) {
    DVec dw(s.w_size(), 0.0);
    for_each_product(s, [&](size_t o, size_t i, size_t j) { dw[j] += double(dy[o]) * x[i]; });
    return dw;
}

DVec naive_conv_backward_bias(const ConvShape& s, const Vec& dy) {
    DVec db(s.K, 0.0);
    for (int n = 0; n < s.N; ++n)
        for (int k = 0; k < s.K; ++k)
            for (int p = 0; p < s.P; ++p)
                for (int q = 0; q < s.Q; ++q) db[k] += dy[yi(s, n, k, p, q)];
    return db;
}

// Runs all four conv kernels on random data and compares with the naive ones.
void compare_conv(const ConvShape& s, uint32_t seed) {
    INFO(nst::conv_shape_str(s));
    std::mt19937 rng(seed);
    const Vec x = random_vec(rng, s.x_size()), w = random_vec(rng, s.w_size());
    const Vec b = random_vec(rng, s.K), dy = random_vec(rng, s.y_size());
    // Outputs start as NaN: every kernel must overwrite all of its output.
    Vec y(s.y_size(), kNaN), y_nobias(s.y_size(), kNaN), y_relu(s.y_size(), kNaN), dx(s.x_size(), kNaN);
    Vec dw(s.w_size(), kNaN), db(s.K, kNaN);
    cpu().conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
    cpu().conv2d_forward(s, x.data(), w.data(), nullptr, y_nobias.data());
    cpu().conv2d_relu_forward(s, x.data(), w.data(), b.data(), y_relu.data());
    cpu().conv2d_backward_data(s, dy.data(), w.data(), dx.data());
    cpu().conv2d_backward_filter(s, x.data(), dy.data(), dw.data());
    cpu().conv2d_backward_bias(s, dy.data(), db.data());
    require_close(y, naive_conv_forward(s, x, w, &b), 1e-5, 1e-5, "conv2d_forward");
    require_close(y_nobias, naive_conv_forward(s, x, w, nullptr), 1e-5, 1e-5,
                  "conv2d_forward without bias");
    DVec relu_want = naive_conv_forward(s, x, w, &b);
    for (double& v : relu_want) v = std::max(v, 0.0);
    require_close(y_relu, relu_want, 1e-5, 1e-5, "conv2d_relu_forward");
    require_close(dx, naive_conv_backward_data(s, dy, w), 1e-5, 1e-5, "conv2d_backward_data");
    require_close(dw, naive_conv_backward_filter(s, x, dy), 1e-5, 1e-5,
                  "conv2d_backward_filter");
    require_close(db, naive_conv_backward_bias(s, dy), 1e-6, 1e-6, "conv2d_backward_bias");
}

// ---- naive pooling, upsampling, padding -----------------------------------

// A map of planes [NC, H, W] to [NC, Ho, Wo] given output pixel by output
// pixel: pixel(plane, oh, ow, add) calls add(h, w, weight) for each input
// pixel (h, w) of the same plane that the output pixel takes.
template <class Pixel>
LinearMap plane_map(int64_t NC, int H, int W, int Ho, int Wo, Pixel&& pixel) {
    LinearMap m;
    m.in_size = size_t(NC) * H * W;
    m.out_size = size_t(NC) * Ho * Wo;
    for (int64_t i = 0; i < NC; ++i)
        for (int oh = 0; oh < Ho; ++oh)
            for (int ow = 0; ow < Wo; ++ow)
                pixel(i, oh, ow, [&](int h, int w, double weight) {
                    m.terms.emplace_back((i * Ho + oh) * Wo + ow, (i * H + h) * W + w, weight);
                });
    return m;
}

LinearMap avg_pool_map(int64_t NC, int H, int W) {
    return plane_map(NC, H, W, H / 2, W / 2, [](int64_t, int oh, int ow, auto&& add) {
        for (int dh = 0; dh < 2; ++dh)
            for (int dw = 0; dw < 2; ++dw) add(2 * oh + dh, 2 * ow + dw, 0.25);
    });
}

// Max pooling is linear once the winners are fixed: each output copies the
// first maximum of its window (strict > in row-major window order).
LinearMap max_pool_map(int64_t NC, int H, int W, const Vec& x) {
    return plane_map(NC, H, W, H / 2, W / 2, [&](int64_t i, int oh, int ow, auto&& add) {
        int best_h = 2 * oh, best_w = 2 * ow;
        for (int h = 2 * oh; h < 2 * oh + 2; ++h)
            for (int w = 2 * ow; w < 2 * ow + 2; ++w)
                if (x[(i * H + h) * W + w] > x[(i * H + best_h) * W + best_w]) best_h = h, best_w = w;
        add(best_h, best_w, 1.0);
    });
}

LinearMap nearest_map(int64_t NC, int H, int W) {
    return plane_map(NC, H, W, 2 * H, 2 * W,
                     [](int64_t, int oh, int ow, auto&& add) { add(oh / 2, ow / 2, 1.0); });
}

// PyTorch's upsample_bilinear2d, align_corners=False, scale 2, per pixel.
LinearMap bilinear_map(int64_t NC, int H, int W) {
    return plane_map(NC, H, W, 2 * H, 2 * W, [&](int64_t, int oh, int ow, auto&& add) {
        const double sh = std::max((oh + 0.5) / 2.0 - 0.5, 0.0);
        const double sw = std::max((ow + 0.5) / 2.0 - 0.5, 0.0);
        const int h0 = int(std::floor(sh)), w0 = int(std::floor(sw));
        const int h1 = std::min(h0 + 1, H - 1), w1 = std::min(w0 + 1, W - 1);
        const double lh = sh - h0, lw = sw - w0;
        add(h0, w0, (1 - lh) * (1 - lw));
        add(h0, w1, (1 - lh) * lw);
        add(h1, w0, lh * (1 - lw));
        add(h1, w1, lh * lw);
    });
}

// numpy 'reflect': mirror about the edge pixel (not repeated) until inside.
int naive_reflect(int i, int n) {
    while (i < 0 || i >= n) {
        if (i < 0) i = -i;
        if (i >= n) i = 2 * (n - 1) - i;
    }
    return i;
}

LinearMap pad_map(int64_t NC, int H, int W, int top, int bottom, int left, int right,
                  PadMode mode) {
    return plane_map(NC, H, W, H + top + bottom, W + left + right, [&](int64_t, int oh, int ow, auto&& add) {
        int h = oh - top, w = ow - left;
        if (mode == PadMode::Reflect) {
            h = naive_reflect(h, H);
            w = naive_reflect(w, W);
        } else if (h < 0 || h >= H || w < 0 || w >= W) {
            return;  // a zero: no term
        }
        add(h, w, 1.0);
    });
}

// ---- naive Gram, instance norm, losses ------------------------------------

DVec naive_gram(int N, int C, int64_t HW, float scale, const Vec& F) {
    DVec G(size_t(N) * C * C);
    auto f = [&](int n, int c, int64_t k) { return double(F[(size_t(n) * C + c) * HW + k]); };
    for (int n = 0; n < N; ++n)
        for (int i = 0; i < C; ++i)
            for (int j = 0; j < C; ++j) {
                double acc = 0.0;
                for (int64_t k = 0; k < HW; ++k) acc += f(n, i, k) * f(n, j, k);
                G[(size_t(n) * C + i) * C + j] = scale * acc;
            }
    return G;
}

// dF[i,k] = scale * sum_j (dG[i,j] + dG[j,i]) F[j,k]
DVec naive_gram_backward(int N, int C, int64_t HW, float scale, const Vec& F, const Vec& dG) {
    DVec dF(size_t(N) * C * HW);
    auto g = [&](int n, int i, int j) { return double(dG[(size_t(n) * C + i) * C + j]); };
    for (int n = 0; n < N; ++n)
        for (int i = 0; i < C; ++i)
            for (int64_t k = 0; k < HW; ++k) {
                double acc = 0.0;
                for (int j = 0; j < C; ++j)
                    acc += (g(n, i, j) + g(n, j, i)) * F[(size_t(n) * C + j) * HW + k];
                dF[(size_t(n) * C + i) * HW + k] = scale * acc;
            }
    return dF;
}

struct NaiveNorm {
    DVec y, mean, rstd;
};

NaiveNorm naive_instance_norm(int N, int C, int64_t HW, double eps, const Vec& x,
                              const Vec* gamma, const Vec* beta) {
    NaiveNorm out{DVec(x.size()), DVec(size_t(N) * C), DVec(size_t(N) * C)};
    for (int n = 0; n < N; ++n)
        for (int c = 0; c < C; ++c) {
            const size_t base = (size_t(n) * C + c) * HW;
            double mu = 0.0, var = 0.0;
            for (int64_t i = 0; i < HW; ++i) mu += x[base + i];
            mu /= double(HW);
            for (int64_t i = 0; i < HW; ++i) var += (x[base + i] - mu) * (x[base + i] - mu);
            var /= double(HW);
            const double rstd = 1.0 / std::sqrt(var + eps);
            out.mean[size_t(n) * C + c] = mu;
            out.rstd[size_t(n) * C + c] = rstd;
            const double g = gamma ? (*gamma)[c] : 1.0, b = beta ? (*beta)[c] : 0.0;
            for (int64_t i = 0; i < HW; ++i) out.y[base + i] = g * (x[base + i] - mu) * rstd + b;
        }
    return out;
}

// Backward through the full Jacobian of one plane,
//   dy_j/dx_i = g * rstd * (delta_ij - 1/HW - xhat_i xhat_j / HW),
// independent of the closed form the kernel uses.
struct NaiveNormGrad {
    DVec dx, dgamma, dbeta;
};

NaiveNormGrad naive_instance_norm_backward(int N, int C, int64_t HW, double eps, const Vec& x,
                                           const Vec* gamma, const Vec& dy) {
    const NaiveNorm stats = naive_instance_norm(N, C, HW, eps, x, nullptr, nullptr);
    NaiveNormGrad out{DVec(x.size()), DVec(C, 0.0), DVec(C, 0.0)};
    for (int n = 0; n < N; ++n)
        for (int c = 0; c < C; ++c) {
            const size_t base = (size_t(n) * C + c) * HW;
            const double g = gamma ? (*gamma)[c] : 1.0;
            const double rstd = stats.rstd[size_t(n) * C + c];
            const double* xhat = &stats.y[base];  // normalised, gamma 1, beta 0
            for (int64_t i = 0; i < HW; ++i) {
                double acc = 0.0;
                for (int64_t j = 0; j < HW; ++j) {
                    const double jac =
                        g * rstd * ((i == j ? 1.0 : 0.0) - 1.0 / HW - xhat[i] * xhat[j] / HW);
                    acc += dy[base + j] * jac;
                }
                out.dx[base + i] = acc;
                out.dgamma[c] += dy[base + i] * xhat[i];
                out.dbeta[c] += dy[base + i];
            }
        }
    return out;
}

double naive_tv(int64_t NC, int H, int W, const Vec& x) {
    double s = 0.0;
    for (int64_t i = 0; i < NC; ++i)
        for (int h = 0; h < H; ++h)
            for (int w = 0; w < W; ++w) {
                const double v = x[(i * H + h) * W + w];
                if (h + 1 < H) s += std::pow(x[(i * H + h + 1) * W + w] - v, 2);
                if (w + 1 < W) s += std::pow(x[(i * H + h) * W + w + 1] - v, 2);
            }
    return s;
}

// Scatter form: each squared difference pushes its derivative onto both ends.
DVec naive_tv_backward(int64_t NC, int H, int W, const Vec& x, double dout) {
    DVec dx(x.size(), 0.0);
    for (int64_t i = 0; i < NC; ++i)
        for (int h = 0; h < H; ++h)
            for (int w = 0; w < W; ++w) {
                const size_t at = (i * H + h) * W + w;
                if (h + 1 < H) {
                    const double d = double(x[at + W]) - x[at];
                    dx[at + W] += 2 * dout * d;
                    dx[at] -= 2 * dout * d;
                }
                if (w + 1 < W) {
                    const double d = double(x[at + 1]) - x[at];
                    dx[at + 1] += 2 * dout * d;
                    dx[at] -= 2 * dout * d;
                }
            }
    return dx;
}

}  // namespace

// ============================================================================
// memory
// ============================================================================

TEST_CASE("cpu allocate is 64-byte aligned, allocate(0) works, failure throws", "[cpu]") {
    REQUIRE(cpu().device() == nst::Device::cpu());
    for (size_t bytes : {0, 1, 63, 64, 1000, 1 << 20}) {
        void* p = cpu().allocate(bytes);
        REQUIRE(p != nullptr);
        REQUIRE(reinterpret_cast<uintptr_t>(p) % 64 == 0);
        if (bytes) static_cast<unsigned char*>(p)[bytes - 1] = 7;  // writable to the end
        cpu().deallocate(p, bytes);
    }
    try {
        cpu().allocate(std::numeric_limits<size_t>::max() / 2);
        FAIL("allocating 2^63 bytes did not throw");
    } catch (const nst::Error& e) {
        REQUIRE_THAT(e.what(), Catch::Contains("out of memory allocating"));
        REQUIRE_THAT(e.what(), Catch::Contains("MiB"));
    }
    REQUIRE_THROWS_AS(cpu().allocate(std::numeric_limits<size_t>::max()), nst::Error);
}

TEST_CASE("cpu copies and fill", "[cpu]") {
    std::mt19937 rng(1);
    const Vec src = random_vec(rng, 37);
    Vec a(37, kNaN), b(37, kNaN), c(37, kNaN);
    cpu().copy_from_host(a.data(), src.data(), 37 * sizeof(float));
    cpu().copy(b.data(), a.data(), 37 * sizeof(float));
    cpu().copy_to_host(c.data(), b.data(), 37 * sizeof(float));
    REQUIRE(a == src);
    REQUIRE(b == src);
    REQUIRE(c == src);
    cpu().copy(nullptr, nullptr, 0);  // empty copies are fine

    Vec y(41, kNaN);
    cpu().fill(41, -2.5f, y.data());
    REQUIRE(y == Vec(41, -2.5f));
    cpu().fill(0, 1.0f, nullptr);
    REQUIRE_THROWS_AS(cpu().fill(-1, 0.0f, y.data()), nst::Error);
}

TEST_CASE("cpu rgb8 <-> planar conversions match naive loops", "[cpu]") {
    // Two images of an odd size, then one large enough for the threaded path.
    for (const auto& [N, HW] : {std::pair<int, int64_t>{2, 37}, {1, 3 * 40000 + 1}}) {
        INFO("N " << N << " HW " << HW);
        std::mt19937 rng{uint32_t(HW)};
        const size_t n = size_t(N) * size_t(HW) * 3;
        std::vector<uint8_t> rgb(n);
        for (uint8_t& v : rgb) v = uint8_t(rng() & 0xFF);
        Vec planar(n + 5, kNaN);
        cpu().rgb8_to_planar(N, HW, rgb.data(), planar.data());
        for (int i = 0; i < N; ++i)
            for (int c = 0; c < 3; ++c)
                for (int64_t p = 0; p < HW; ++p)
                    REQUIRE(planar[size_t((int64_t(i) * 3 + c) * HW + p)] == float(rgb[size_t((i * HW + p) * 3 + c)]));
        REQUIRE(std::isnan(planar[n]));  // nothing past the end

        // Back to bytes: the same bytes, and a 0xA5 guard past the end untouched.
        std::vector<uint8_t> back(n + 5, 0xA5);
        cpu().planar_to_rgb8(N, HW, planar.data(), back.data());
        REQUIRE(std::vector<uint8_t>(back.begin(), back.begin() + std::ptrdiff_t(n)) == rgb);
        REQUIRE(back[n] == 0xA5);

        // Rounding and clamping, values placed where every channel gets some.
        const Vec special = {kNaN, -INFINITY, INFINITY, -1.f, 0.f, 0.49999997f, 0.5f, 1.5f, 2.5f,
                             127.49f, 254.5f, 254.49998f, 255.f, 255.2f, 1e30f, -0.5f};
        Vec x = random_vec(rng, n, -20, 275);
        for (size_t i = 0; i < n; ++i)
            if (i % 3) x[i] = special[(i * 7) % special.size()];
        std::vector<uint8_t> bytes(n);
        cpu().planar_to_rgb8(N, HW, x.data(), bytes.data());
        for (int i = 0; i < N; ++i)
            for (int c = 0; c < 3; ++c)
                for (int64_t p = 0; p < HW; ++p) {
                    const float v = x[size_t((int64_t(i) * 3 + c) * HW + p)];
                    const uint8_t want = std::isnan(v) || v <= 0 ? 0 : v >= 255 ? 255 : uint8_t(std::lround(v));
                    REQUIRE(int(bytes[size_t((i * HW + p) * 3 + c)]) == int(want));
                }
    }
    std::vector<uint8_t> none;
    cpu().rgb8_to_planar(0, 5, none.data(), nullptr);  // nothing to do
    REQUIRE_THROWS_AS(cpu().planar_to_rgb8(1, -1, nullptr, none.data()), nst::Error);
}

TEST_CASE("cpu strided_copy matches a naive index walk", "[cpu]") {
    std::mt19937 rng(2);
    const Vec src = random_vec(rng, 4096);

    auto naive = [&](const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                     int64_t offset) {
        int64_t total = 1;
        for (int64_t d : shape) total *= d;
        Vec out(static_cast<size_t>(total));
        for (int64_t flat = 0; flat < total; ++flat) {
            int64_t rest = flat, pos = offset;
            for (int d = int(shape.size()) - 1; d >= 0; --d) {
                pos += (rest % shape[d]) * strides[d];
                rest /= shape[d];
            }
            out[size_t(flat)] = src[size_t(pos)];
        }
        return out;
    };
    auto check = [&](const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                     int64_t offset) {
        int64_t total = 1;
        for (int64_t d : shape) total *= d;
        Vec dst(size_t(total) + 1, kNaN);
        cpu().strided_copy(int(shape.size()), shape.data(), strides.data(), offset, src.data(),
                           dst.data());
        REQUIRE(std::isnan(dst.back()));  // nothing written past the end
        dst.pop_back();
        REQUIRE(dst == naive(shape, strides, offset));
    };

    SECTION("contiguous") { check({3, 5, 7}, {35, 7, 1}, 11); }
    SECTION("NCHW -> NHWC permutation") { check({2, 4, 5, 3}, {60, 5, 1, 20}, 0); }
    SECTION("slice with steps") { check({3, 4, 6}, {200, 21, 2}, 5); }
    SECTION("broadcast (stride 0)") { check({4, 1, 6}, {0, 0, 1}, 3); }
    SECTION("negative strides (flip)") { check({5, 6}, {-10, -1}, 100); }
    SECTION("scalar, ndim 0") { check({}, {}, 17); }
    SECTION("empty dimension") { check({3, 0, 4}, {4, 4, 1}, 0); }
    SECTION("ndim 8") {
        check({2, 2, 2, 2, 2, 2, 2, 3}, {1, 1000, 500, 3, 7, 250, 100, 40}, 9);
    }
    SECTION("bad arguments throw") {
        const int64_t shape[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, strides[9] = {};
        Vec dst(1);
        REQUIRE_THROWS_AS(cpu().strided_copy(9, shape, strides, 0, src.data(), dst.data()),
                          nst::Error);
        const int64_t negative[2] = {2, -1};
        REQUIRE_THROWS_AS(cpu().strided_copy(2, negative, strides, 0, src.data(), dst.data()),
                          nst::Error);
    }
}

// ============================================================================
// convolution
// ============================================================================

TEST_CASE("cpu conv2d matches direct convolution on random shapes", "[cpu][conv]") {
    std::mt19937 rng(3);
    for (int trial = 0; trial < 40; ++trial) compare_conv(random_conv(rng), 100 + trial);
}

TEST_CASE("cpu conv2d special shapes", "[cpu][conv]") {
    SECTION("1x1 stride 1 unpadded (no im2col)") {
        compare_conv(ConvShape::of(3, 5, 7, 9, 6, 1, 1, 1, 0, 0), 1);
    }
    SECTION("1x1 stride 2 and padded 1x1") {
        compare_conv(ConvShape::of(2, 3, 7, 8, 4, 1, 1, 2, 0, 0), 2);
        compare_conv(ConvShape::of(2, 3, 5, 5, 4, 1, 1, 1, 1, 2), 3);
    }
    SECTION("kernel as large as the padded input, single output pixel") {
        compare_conv(ConvShape::of(2, 3, 5, 3, 2, 9, 9, 1, 2, 3), 4);
    }
    SECTION("9x9 reflect-style transformer head, stride 1 pad 4") {
        compare_conv(ConvShape::of(1, 3, 11, 13, 5, 9, 9, 1, 4, 4), 5);
    }
    SECTION("many output rows: the column buffer is split into bands") {
        compare_conv(ConvShape::of(2, 16, 64, 512, 4, 3, 3, 1, 1, 1), 6);
        compare_conv(ConvShape::of(1, 16, 67, 1025, 5, 3, 3, 2, 1, 1), 7);
    }
}

TEST_CASE("cpu conv2d backward kernels match finite differences", "[cpu][conv][fd]") {
    std::mt19937 rng(4);
    for (const ConvShape& s : {ConvShape::of(2, 3, 7, 6, 4, 3, 5, 2, 1, 2),
                               ConvShape::of(1, 2, 5, 5, 3, 1, 1, 1, 0, 0),
                               ConvShape::of(2, 2, 9, 8, 2, 5, 3, 1, 3, 0)}) {
        INFO(nst::conv_shape_str(s));
        const Vec x = random_vec(rng, s.x_size()), w = random_vec(rng, s.w_size());
        const Vec b = random_vec(rng, s.K), r = random_vec(rng, s.y_size());
        Vec dx(s.x_size()), dw(s.w_size()), db(s.K);
        cpu().conv2d_backward_data(s, r.data(), w.data(), dx.data());
        cpu().conv2d_backward_filter(s, x.data(), r.data(), dw.data());
        cpu().conv2d_backward_bias(s, r.data(), db.data());
        auto forward = [&](const Vec& xv, const Vec& wv, const Vec& bv) {
            Vec y(s.y_size());
            cpu().conv2d_forward(s, xv.data(), wv.data(), bv.data(), y.data());
            return y;
        };
        check_fd("conv2d_backward_data", [&](const Vec& v) { return forward(v, w, b); }, x, r,
                 dx, 1e-2, 2e-3);
        check_fd("conv2d_backward_filter", [&](const Vec& v) { return forward(x, v, b); }, w, r,
                 dw, 1e-2, 2e-3);
        check_fd("conv2d_backward_bias", [&](const Vec& v) { return forward(x, w, v); }, b, r,
                 db, 1e-2, 2e-3);
    }
}

TEST_CASE("cpu conv2d rejects inconsistent shapes", "[cpu][conv]") {
    Vec buf(4096);
    ConvShape s = ConvShape::of(1, 2, 5, 5, 3, 3, 3, 1, 1, 1);
    s.P = 4;  // should be 5
    REQUIRE_THROWS_AS(cpu().conv2d_forward(s, buf.data(), buf.data(), nullptr, buf.data()),
                      nst::Error);
    ConvShape negative = ConvShape::of(1, 2, 5, 5, 3, 3, 3, 1, 1, 1);
    negative.pad_h = -1;
    REQUIRE_THROWS_AS(cpu().conv2d_backward_data(negative, buf.data(), buf.data(), buf.data()),
                      nst::Error);
    ConvShape too_big = ConvShape::of(1, 2, 2, 2, 3, 5, 5, 1, 0, 0);  // 5x5 kernel on 2x2 input
    REQUIRE_THROWS_AS(cpu().conv2d_backward_filter(too_big, buf.data(), buf.data(), buf.data()),
                      nst::Error);
    ConvShape zero_stride = ConvShape::of(1, 2, 5, 5, 3, 3, 3, 1, 1, 1);
    zero_stride.stride = 0;
    REQUIRE_THROWS_AS(cpu().conv2d_backward_bias(zero_stride, buf.data(), buf.data()),
                      nst::Error);
}

// ============================================================================
// GEMM
// ============================================================================

TEST_CASE("cpu matmul matches a naive triple loop in every transpose mode", "[cpu]") {
    std::mt19937 rng(5);
    for (int trial = 0; trial < 24; ++trial) {
        const bool ta = trial & 1, tb = trial & 2;
        const int M = rand_int(rng, 1, 17), N = rand_int(rng, 1, 17), K = rand_int(rng, 1, 17);
        const float alpha = rng() % 2 ? 1.0f : 0.7f;
        const float beta = trial % 3 == 0 ? 0.0f : -0.6f;
        INFO("trans_a " << ta << " trans_b " << tb << " M " << M << " N " << N << " K " << K
                        << " beta " << beta);
        const Vec A = random_vec(rng, size_t(M) * K), B = random_vec(rng, size_t(K) * N);
        // beta == 0 must ignore C entirely, NaN included.
        Vec C = beta == 0.0f ? Vec(size_t(M) * N, kNaN) : random_vec(rng, size_t(M) * N);
        DVec want(C.size());
        for (int i = 0; i < M; ++i)
            for (int j = 0; j < N; ++j) {
                double acc = 0.0;
                for (int k = 0; k < K; ++k)
                    acc += double(ta ? A[size_t(k) * M + i] : A[size_t(i) * K + k]) *
                           (tb ? B[size_t(j) * K + k] : B[size_t(k) * N + j]);
                want[size_t(i) * N + j] =
                    alpha * acc + (beta == 0.0f ? 0.0 : beta * double(C[size_t(i) * N + j]));
            }
        cpu().matmul(ta, tb, M, N, K, alpha, A.data(), B.data(), beta, C.data());
        require_close(C, want, 1e-5, 1e-6, "matmul");
    }
    SECTION("K == 0 scales C by beta") {
        Vec C = {1.0f, -2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
        cpu().matmul(false, false, 2, 3, 0, 1.0f, nullptr, nullptr, 0.5f, C.data());
        REQUIRE(C == Vec{0.5f, -1.0f, 1.5f, 2.0f, 2.5f, 3.0f});
        Vec D(6, kNaN);
        cpu().matmul(false, false, 2, 3, 0, 1.0f, nullptr, nullptr, 0.0f, D.data());
        REQUIRE(D == Vec(6, 0.0f));
    }
    SECTION("negative sizes throw") {
        REQUIRE_THROWS_AS(cpu().matmul(false, false, -1, 2, 2, 1.0f, nullptr, nullptr, 0.0f,
                                       nullptr),
                          nst::Error);
    }
}

// ============================================================================
// elementwise and per-channel
// ============================================================================

TEST_CASE("cpu elementwise kernels match their definitions", "[cpu]") {
    std::mt19937 rng(6);
    const int64_t n = 1003;
    const Vec a = random_vec(rng, n, -3.0f, 3.0f), b = random_vec(rng, n), dy = random_vec(rng, n);
    Vec y(n, kNaN), dx(n, kNaN);
    DVec want(n);

    cpu().relu_forward(n, a.data(), y.data());
    for (int64_t i = 0; i < n; ++i) want[i] = std::max(0.0, double(a[i]));
    require_close(y, want, 0, 0, "relu_forward");
    cpu().relu_backward(n, y.data(), dy.data(), dx.data());
    for (int64_t i = 0; i < n; ++i) want[i] = a[i] > 0 ? dy[i] : 0.0;
    require_close(dx, want, 0, 0, "relu_backward");
    {
        // NaN passes through, so a diverging network shows up as a NaN loss.
        const float special[3] = {kNaN, -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity()};
        float out[3];
        cpu().relu_forward(3, special, out);
        CHECK(std::isnan(out[0]));
        CHECK(out[1] == 0.0f);
        CHECK(out[2] == std::numeric_limits<float>::infinity());
    }

    cpu().tanh_forward(n, a.data(), y.data());
    for (int64_t i = 0; i < n; ++i) want[i] = std::tanh(double(a[i]));
    require_close(y, want, 0, 1e-6, "tanh_forward");
    cpu().tanh_backward(n, y.data(), dy.data(), dx.data());
    for (int64_t i = 0; i < n; ++i) want[i] = dy[i] * (1.0 - std::pow(std::tanh(double(a[i])), 2));
    require_close(dx, want, 0, 1e-6, "tanh_backward");

    cpu().add_forward(n, a.data(), b.data(), y.data());
    for (int64_t i = 0; i < n; ++i) want[i] = double(a[i]) + b[i];
    require_close(y, want, 0, 1e-6, "add");
    cpu().mul_forward(n, a.data(), b.data(), y.data());
    for (int64_t i = 0; i < n; ++i) want[i] = double(a[i]) * b[i];
    require_close(y, want, 0, 1e-6, "mul");

    Vec z = b;
    cpu().axpby(n, 0.5f, a.data(), -2.0f, z.data());
    for (int64_t i = 0; i < n; ++i) want[i] = 0.5 * a[i] - 2.0 * b[i];
    require_close(z, want, 0, 1e-6, "axpby");
    Vec fresh(n, kNaN);  // beta == 0 ignores y's old contents, NaN too
    cpu().axpby(n, 3.0f, a.data(), 0.0f, fresh.data());
    for (int64_t i = 0; i < n; ++i) want[i] = 3.0 * a[i];
    require_close(fresh, want, 0, 1e-6, "axpby beta 0");
    Vec scaled(n, kNaN);
    cpu().scale_forward(n, -1.5f, a.data(), scaled.data());
    for (int64_t i = 0; i < n; ++i) want[i] = -1.5 * a[i];
    require_close(scaled, want, 0, 1e-6, "scale_forward");

    SECTION("in place") {
        Vec s = a;
        cpu().add_forward(n, s.data(), b.data(), s.data());
        for (int64_t i = 0; i < n; ++i) REQUIRE(s[i] == a[i] + b[i]);
        cpu().relu_forward(n, s.data(), s.data());
        for (int64_t i = 0; i < n; ++i) REQUIRE(s[i] == std::max(0.0f, a[i] + b[i]));
    }
    SECTION("negative counts throw") {
        REQUIRE_THROWS_AS(cpu().relu_forward(-1, a.data(), y.data()), nst::Error);
        REQUIRE_THROWS_AS(cpu().axpby(-5, 1.0f, a.data(), 0.0f, y.data()), nst::Error);
        REQUIRE_THROWS_AS(cpu().scale_forward(-5, 1.0f, a.data(), y.data()), nst::Error);
    }
}

TEST_CASE("cpu relu and tanh backward match finite differences", "[cpu][fd]") {
    std::mt19937 rng(7);
    const int64_t n = 97;
    const Vec x = away_from_zero(rng, n), r = random_vec(rng, n);
    Vec y(n), dx(n);
    auto relu = [&](const Vec& v) {
        Vec out(v.size());
        cpu().relu_forward(n, v.data(), out.data());
        return out;
    };
    auto tanh = [&](const Vec& v) {
        Vec out(v.size());
        cpu().tanh_forward(n, v.data(), out.data());
        return out;
    };
    cpu().relu_forward(n, x.data(), y.data());
    cpu().relu_backward(n, y.data(), r.data(), dx.data());
    check_fd("relu_backward", relu, x, r, dx, 1e-2, 1e-3);
    cpu().tanh_forward(n, x.data(), y.data());
    cpu().tanh_backward(n, y.data(), r.data(), dx.data());
    check_fd("tanh_backward", tanh, x, r, dx, 1e-3, 3e-3);
}

TEST_CASE("cpu channel_affine and bias_add_backward", "[cpu]") {
    std::mt19937 rng(8);
    for (int trial = 0; trial < 8; ++trial) {
        const int N = rand_int(rng, 1, 3), C = rand_int(rng, 1, 7);
        const int64_t HW = rand_int(rng, 1, 50);
        const Vec x = random_vec(rng, size_t(N) * C * HW), scale = random_vec(rng, C),
                  shift = random_vec(rng, C);
        const bool use_scale = trial & 1, use_shift = trial & 2;
        Vec y(x.size(), kNaN);
        cpu().channel_affine_forward(N, C, HW, x.data(), use_scale ? scale.data() : nullptr,
                             use_shift ? shift.data() : nullptr, y.data());
        DVec want(x.size()), sum(C, 0.0);
        for (int n = 0; n < N; ++n)
            for (int c = 0; c < C; ++c)
                for (int64_t i = 0; i < HW; ++i) {
                    const size_t at = (size_t(n) * C + c) * HW + i;
                    want[at] = double(x[at]) * (use_scale ? scale[c] : 1.0) +
                               (use_shift ? shift[c] : 0.0);
                    sum[c] += x[at];
                }
        require_close(y, want, 0, 1e-6, "channel_affine");
        Vec out(C, kNaN);
        cpu().bias_add_backward(N, C, HW, x.data(), out.data());
        require_close(out, sum, 0, 1e-6, "bias_add_backward");
    }
    Vec dummy(4);
    REQUIRE_THROWS_AS(cpu().bias_add_backward(1, -1, 4, dummy.data(), dummy.data()), nst::Error);
}

// ============================================================================
// pooling
// ============================================================================

TEST_CASE("cpu pooling matches naive windows, odd trailing row/col dropped", "[cpu][pool]") {
    std::mt19937 rng(9);
    for (int trial = 0; trial < 12; ++trial) {
        const int64_t NC = rand_int(rng, 1, 5);
        const int H = rand_int(rng, 1, 13), W = rand_int(rng, 1, 13);
        INFO("NC " << NC << " H " << H << " W " << W);
        const size_t in = size_t(NC) * H * W, out = size_t(NC) * (H / 2) * (W / 2);
        const Vec x = random_vec(rng, in), dy = random_vec(rng, out);
        Vec y(out, kNaN), dx(in, kNaN);

        const LinearMap max_map = max_pool_map(NC, H, W, x);
        cpu().max_pool2x2_forward(NC, H, W, x.data(), y.data());
        require_close(y, max_map.apply(x), 0, 0, "max_pool2x2_forward");
        cpu().max_pool2x2_backward(NC, H, W, x.data(), dy.data(), dx.data());
        require_close(dx, max_map.transpose(dy), 0, 0, "max_pool2x2_backward");

        const LinearMap avg_map = avg_pool_map(NC, H, W);
        cpu().avg_pool2x2_forward(NC, H, W, x.data(), y.data());
        require_close(y, avg_map.apply(x), 0, 1e-6, "avg_pool2x2_forward");
        cpu().avg_pool2x2_backward(NC, H, W, dy.data(), dx.data());
        require_close(dx, avg_map.transpose(dy), 0, 1e-7, "avg_pool2x2_backward");
    }
}

TEST_CASE("cpu max pool backward sends ties to the first maximum", "[cpu][pool]") {
    // One 2x4 image, two windows: [[1, 3], [3, 0]] (tie between positions 1
    // and 2) and [[5, 5], [5, 5]] (all equal).
    const Vec x = {1, 3, 5, 5, 3, 0, 5, 5};
    const Vec dy = {10, 20};
    Vec y(2), dx(8, kNaN);
    cpu().max_pool2x2_forward(1, 2, 4, x.data(), y.data());
    REQUIRE(y == Vec{3, 5});
    cpu().max_pool2x2_backward(1, 2, 4, x.data(), dy.data(), dx.data());
    REQUIRE(dx == Vec{0, 10, 20, 0, 0, 0, 0, 0});
}

TEST_CASE("cpu pooling backward matches finite differences", "[cpu][pool][fd]") {
    std::mt19937 rng(10);
    const int64_t NC = 3;
    const int H = 7, W = 9;
    const Vec x = distinct_values(rng, size_t(NC) * H * W);
    const Vec r = random_vec(rng, size_t(NC) * (H / 2) * (W / 2));
    Vec dx(x.size());
    auto pool = [&](bool max) {
        return [&, max](const Vec& v) {
            Vec y(r.size());
            if (max) cpu().max_pool2x2_forward(NC, H, W, v.data(), y.data());
            else cpu().avg_pool2x2_forward(NC, H, W, v.data(), y.data());
            return y;
        };
    };
    cpu().max_pool2x2_backward(NC, H, W, x.data(), r.data(), dx.data());
    check_fd("max_pool2x2_backward", pool(true), x, r, dx, 1e-2, 1e-3, 1000);
    cpu().avg_pool2x2_backward(NC, H, W, r.data(), dx.data());
    check_fd("avg_pool2x2_backward", pool(false), x, r, dx, 1e-2, 1e-3, 1000);
}

// ============================================================================
// upsampling
// ============================================================================

TEST_CASE("cpu upsampling matches naive PyTorch-style maps", "[cpu][upsample]") {
    std::mt19937 rng(11);
    for (int trial = 0; trial < 12; ++trial) {
        const int64_t NC = rand_int(rng, 1, 4);
        const int H = rand_int(rng, 1, 9), W = rand_int(rng, 1, 9);
        INFO("NC " << NC << " H " << H << " W " << W);
        const size_t in = size_t(NC) * H * W, out = 4 * in;
        const Vec x = random_vec(rng, in), dy = random_vec(rng, out);
        Vec y(out, kNaN), dx(in, kNaN);

        const LinearMap nearest = nearest_map(NC, H, W);
        cpu().upsample_nearest2x_forward(NC, H, W, x.data(), y.data());
        require_close(y, nearest.apply(x), 0, 0, "upsample_nearest2x_forward");
        cpu().upsample_nearest2x_backward(NC, H, W, dy.data(), dx.data());
        require_close(dx, nearest.transpose(dy), 0, 1e-6, "upsample_nearest2x_backward");

        const LinearMap bilinear = bilinear_map(NC, H, W);
        cpu().upsample_bilinear2x_forward(NC, H, W, x.data(), y.data());
        require_close(y, bilinear.apply(x), 0, 1e-6, "upsample_bilinear2x_forward");
        cpu().upsample_bilinear2x_backward(NC, H, W, dy.data(), dx.data());
        require_close(dx, bilinear.transpose(dy), 0, 1e-6, "upsample_bilinear2x_backward");
    }
}

TEST_CASE("cpu bilinear upsampling reproduces PyTorch on a 2x2 image", "[cpu][upsample]") {
    // F.interpolate([[1, 2], [3, 4]], scale_factor=2, mode='bilinear', align_corners=False)
    const Vec x = {1, 2, 3, 4};
    Vec y(16);
    cpu().upsample_bilinear2x_forward(1, 2, 2, x.data(), y.data());
    REQUIRE(y == Vec{1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,  //
                     2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f});
}

TEST_CASE("cpu upsampling backward matches finite differences", "[cpu][upsample][fd]") {
    std::mt19937 rng(12);
    const int64_t NC = 2;
    const int H = 5, W = 4;
    const Vec x = random_vec(rng, size_t(NC) * H * W), r = random_vec(rng, 4 * x.size());
    Vec dx(x.size());
    auto nearest = [&](const Vec& v) {
        Vec y(r.size());
        cpu().upsample_nearest2x_forward(NC, H, W, v.data(), y.data());
        return y;
    };
    auto bilinear = [&](const Vec& v) {
        Vec y(r.size());
        cpu().upsample_bilinear2x_forward(NC, H, W, v.data(), y.data());
        return y;
    };
    cpu().upsample_nearest2x_backward(NC, H, W, r.data(), dx.data());
    check_fd("upsample_nearest2x_backward", nearest, x, r, dx, 1e-2, 1e-3, 1000);
    cpu().upsample_bilinear2x_backward(NC, H, W, r.data(), dx.data());
    check_fd("upsample_bilinear2x_backward", bilinear, x, r, dx, 1e-2, 1e-3, 1000);
}

// ============================================================================
// padding
// ============================================================================

TEST_CASE("cpu pad matches naive zero/crop and numpy reflect", "[cpu][pad]") {
    std::mt19937 rng(13);
    for (int trial = 0; trial < 30; ++trial) {
        const PadMode mode = trial % 2 ? PadMode::Reflect : PadMode::Zero;
        const int64_t NC = rand_int(rng, 1, 3);
        const int H = rand_int(rng, 1, 9), W = rand_int(rng, 1, 9);
        int top, bottom, left, right;
        if (mode == PadMode::Reflect) {
            top = rand_int(rng, 0, H - 1), bottom = rand_int(rng, 0, H - 1);
            left = rand_int(rng, 0, W - 1), right = rand_int(rng, 0, W - 1);
        } else {  // negative amounts crop, keeping at least one row/column
            top = rand_int(rng, -(H - 1) / 2, 4), bottom = rand_int(rng, -(H - 1) / 2, 4);
            left = rand_int(rng, -(W - 1) / 2, 4), right = rand_int(rng, -(W - 1) / 2, 4);
        }
        INFO((mode == PadMode::Reflect ? "reflect" : "zero")
             << " NC " << NC << " H " << H << " W " << W << " top " << top << " bottom "
             << bottom << " left " << left << " right " << right);
        const size_t in = size_t(NC) * H * W;
        const size_t out = size_t(NC) * (H + top + bottom) * (W + left + right);
        const Vec x = random_vec(rng, in), dy = random_vec(rng, out);
        Vec y(out, kNaN), dx(in, kNaN);
        const LinearMap map = pad_map(NC, H, W, top, bottom, left, right, mode);
        cpu().pad_forward(NC, H, W, top, bottom, left, right, mode, x.data(), y.data());
        require_close(y, map.apply(x), 0, 0, "pad_forward");
        cpu().pad_backward(NC, H, W, top, bottom, left, right, mode, dy.data(), dx.data());
        require_close(dx, map.transpose(dy), 0, 1e-6, "pad_backward");
    }
}

TEST_CASE("cpu upsample_pad equals padding the upsampled input", "[cpu][pad]") {
    std::mt19937 rng(17);
    for (int trial = 0; trial < 20; ++trial) {
        const PadMode mode = trial % 2 ? PadMode::Reflect : PadMode::Zero;
        const int64_t NC = rand_int(rng, 1, 3);
        const int H = rand_int(rng, 1, 7), W = rand_int(rng, 1, 7);
        const int p = rand_int(rng, 0, std::min(2 * H, 2 * W) - 1);
        INFO((mode == PadMode::Reflect ? "reflect" : "zero") << " NC " << NC << " H " << H << " W " << W << " p " << p);
        const Vec x = random_vec(rng, size_t(NC) * H * W);
        Vec up(size_t(NC) * 4 * H * W), want(size_t(NC) * (2 * H + 2 * p) * (2 * W + 2 * p)), got(want.size(), kNaN);
        cpu().upsample_nearest2x_forward(NC, H, W, x.data(), up.data());
        cpu().pad_forward(NC, 2 * H, 2 * W, p, p, p, p, mode, up.data(), want.data());
        cpu().upsample_pad_forward(NC, H, W, p, mode, x.data(), got.data());
        CHECK(got == want);  // the same copies of the same values
    }
}

TEST_CASE("cpu reflect pad reproduces numpy", "[cpu][pad]") {
    // np.pad([1, 2, 3, 4], 2, mode='reflect') == [3, 2, 1, 2, 3, 4, 3, 2]
    const Vec x = {1, 2, 3, 4};
    Vec y(8);
    cpu().pad_forward(1, 1, 4, 0, 0, 2, 2, PadMode::Reflect, x.data(), y.data());
    REQUIRE(y == Vec{3, 2, 1, 2, 3, 4, 3, 2});
    // The transpose: x[1] is read three times, x[2] twice, the edges once.
    const Vec dy(8, 1.0f);
    Vec dx(4);
    cpu().pad_backward(1, 1, 4, 0, 0, 2, 2, PadMode::Reflect, dy.data(), dx.data());
    REQUIRE(dx == Vec{1, 3, 3, 1});
}

TEST_CASE("cpu pad backward matches finite differences", "[cpu][pad][fd]") {
    std::mt19937 rng(14);
    const int64_t NC = 2;
    const int H = 5, W = 6;
    const Vec x = random_vec(rng, size_t(NC) * H * W);
    struct Case { PadMode mode; int top, bottom, left, right; };
    for (const Case& c : {Case{PadMode::Reflect, 4, 2, 5, 3}, Case{PadMode::Zero, 2, -1, -2, 3}}) {
        const size_t out = size_t(NC) * (H + c.top + c.bottom) * (W + c.left + c.right);
        const Vec r = random_vec(rng, out);
        Vec dx(x.size());
        cpu().pad_backward(NC, H, W, c.top, c.bottom, c.left, c.right, c.mode, r.data(),
                           dx.data());
        auto pad = [&](const Vec& v) {
            Vec y(out);
            cpu().pad_forward(NC, H, W, c.top, c.bottom, c.left, c.right, c.mode, v.data(),
                              y.data());
            return y;
        };
        check_fd("pad_backward", pad, x, r, dx, 1e-2, 1e-3, 1000);
    }
}

TEST_CASE("cpu pad rejects bad amounts", "[cpu][pad]") {
    Vec buf(1000);
    // reflect needs each amount <= size - 1
    REQUIRE_THROWS_AS(cpu().pad_forward(1, 4, 5, 4, 0, 0, 0, PadMode::Reflect, buf.data(),
                                        buf.data()),
                      nst::Error);
    REQUIRE_THROWS_AS(cpu().pad_backward(1, 4, 5, 0, 0, 0, 5, PadMode::Reflect, buf.data(),
                                         buf.data()),
                      nst::Error);
    REQUIRE_THROWS_AS(cpu().pad_forward(1, 1, 5, 1, 0, 0, 0, PadMode::Reflect, buf.data(),
                                        buf.data()),
                      nst::Error);
    REQUIRE_THROWS_AS(cpu().pad_forward(1, 4, 5, -1, 0, 0, 0, PadMode::Reflect, buf.data(),
                                        buf.data()),
                      nst::Error);
    // zero mode crops, but not past nothing
    REQUIRE_THROWS_AS(cpu().pad_forward(1, 4, 5, -3, -2, 0, 0, PadMode::Zero, buf.data(),
                                        buf.data()),
                      nst::Error);
    try {
        cpu().pad_forward(2, 3, 3, 3, 0, 0, 0, PadMode::Reflect, buf.data(), buf.data());
        FAIL("reflect pad of 3 on a height-3 image did not throw");
    } catch (const nst::Error& e) {
        REQUIRE_THAT(e.what(), Catch::Contains("pad_forward"));
        REQUIRE_THAT(e.what(), Catch::Contains("reflect"));
    }
}

// ============================================================================
// Gram matrix
// ============================================================================

TEST_CASE("cpu gram matches naive F F^T and its backward", "[cpu][gram]") {
    std::mt19937 rng(15);
    for (int trial = 0; trial < 10; ++trial) {
        const int N = rand_int(rng, 1, 3), C = rand_int(rng, 1, 9);
        const int64_t HW = rand_int(rng, 1, 60);
        const float scale = 1.0f / float(C * HW);
        INFO("N " << N << " C " << C << " HW " << HW);
        const Vec F = random_vec(rng, size_t(N) * C * HW), dG = random_vec(rng, size_t(N) * C * C);
        Vec G(size_t(N) * C * C, kNaN), dF(F.size(), kNaN);
        cpu().gram_forward(N, C, HW, scale, F.data(), G.data());
        require_close(G, naive_gram(N, C, HW, scale, F), 1e-5, 1e-7, "gram_forward");
        for (int n = 0; n < N; ++n)
            for (int i = 0; i < C; ++i)
                for (int j = 0; j < C; ++j)
                    REQUIRE(G[(size_t(n) * C + i) * C + j] == G[(size_t(n) * C + j) * C + i]);
        cpu().gram_backward(N, C, HW, scale, F.data(), dG.data(), dF.data());
        require_close(dF, naive_gram_backward(N, C, HW, scale, F, dG), 1e-5, 1e-7,
                      "gram_backward");
    }
}

TEST_CASE("cpu gram backward matches finite differences", "[cpu][gram][fd]") {
    std::mt19937 rng(16);
    const int N = 2, C = 5;
    const int64_t HW = 13;
    const float scale = 0.3f;
    const Vec F = random_vec(rng, size_t(N) * C * HW), r = random_vec(rng, size_t(N) * C * C);
    Vec dF(F.size());
    cpu().gram_backward(N, C, HW, scale, F.data(), r.data(), dF.data());
    auto gram = [&](const Vec& v) {
        Vec G(r.size());
        cpu().gram_forward(N, C, HW, scale, v.data(), G.data());
        return G;
    };
    check_fd("gram_backward", gram, F, r, dF, 1e-2, 2e-3, 1000);
}

// ============================================================================
// instance norm
// ============================================================================

TEST_CASE("cpu instance norm matches naive statistics and Jacobian", "[cpu][norm]") {
    std::mt19937 rng(17);
    for (int trial = 0; trial < 8; ++trial) {
        const int N = rand_int(rng, 1, 3), C = rand_int(rng, 1, 5);
        const int64_t HW = rand_int(rng, 1, 40);
        const float eps = 1e-5f;
        const bool affine = trial % 2;
        INFO("N " << N << " C " << C << " HW " << HW << " affine " << affine);
        const Vec x = random_vec(rng, size_t(N) * C * HW, -2.0f, 3.0f);
        const Vec gamma = random_vec(rng, C, 0.5f, 1.5f), beta = random_vec(rng, C);
        const Vec dy = random_vec(rng, x.size());
        const Vec* g = affine ? &gamma : nullptr;
        const Vec* b = affine ? &beta : nullptr;
        Vec y(x.size(), kNaN), mean(size_t(N) * C, kNaN), rstd(size_t(N) * C, kNaN);
        cpu().instance_norm_forward(N, C, HW, eps, x.data(), g ? g->data() : nullptr,
                                    b ? b->data() : nullptr, y.data(), mean.data(), rstd.data(), false);
        const NaiveNorm want = naive_instance_norm(N, C, HW, eps, x, g, b);
        require_close(y, want.y, 1e-5, 1e-5, "instance_norm_forward y");
        require_close(mean, want.mean, 1e-6, 1e-6, "instance_norm_forward mean");
        require_close(rstd, want.rstd, 1e-6, 0, "instance_norm_forward rstd");
        // With relu: the same values, negatives zeroed, in the same pass.
        Vec yr(x.size(), kNaN);
        cpu().instance_norm_forward(N, C, HW, eps, x.data(), g ? g->data() : nullptr,
                                    b ? b->data() : nullptr, yr.data(), mean.data(), rstd.data(), true);
        for (size_t i = 0; i < y.size(); ++i) REQUIRE(yr[i] == std::max(y[i], 0.0f));

        Vec dx(x.size(), kNaN), dgamma(C, kNaN), dbeta(C, kNaN);
        cpu().instance_norm_backward(N, C, HW, x.data(), g ? g->data() : nullptr, mean.data(),
                                     rstd.data(), dy.data(), dx.data(), dgamma.data(),
                                     dbeta.data());
        const NaiveNormGrad grad = naive_instance_norm_backward(N, C, HW, eps, x, g, dy);
        require_close(dx, grad.dx, 1e-4, 1e-5, "instance_norm_backward dx");
        require_close(dgamma, grad.dgamma, 1e-5, 1e-5, "instance_norm_backward dgamma");
        require_close(dbeta, grad.dbeta, 1e-6, 1e-6, "instance_norm_backward dbeta");

        // dgamma and dbeta are optional.
        Vec dx_only(x.size(), kNaN);
        cpu().instance_norm_backward(N, C, HW, x.data(), g ? g->data() : nullptr, mean.data(),
                                     rstd.data(), dy.data(), dx_only.data(), nullptr, nullptr);
        REQUIRE(dx_only == dx);
    }
}

TEST_CASE("cpu instance norm stays accurate for a large mean", "[cpu][norm]") {
    // |mean| / std = 1000: a one-pass E[x^2] - E[x]^2 in float would lose
    // every digit here.
    std::mt19937 rng(18);
    const int N = 1, C = 2;
    const int64_t HW = 301;
    Vec x = random_vec(rng, size_t(N) * C * HW, -0.1f, 0.1f);
    for (float& v : x) v += 100.0f;
    Vec y(x.size()), mean(2), rstd(2);
    cpu().instance_norm_forward(N, C, HW, 1e-5f, x.data(), nullptr, nullptr, y.data(),
                                mean.data(), rstd.data(), false);
    const NaiveNorm want = naive_instance_norm(N, C, HW, 1e-5, x, nullptr, nullptr);
    require_close(y, want.y, 0, 2e-3, "instance_norm_forward y");
    require_close(rstd, want.rstd, 1e-5, 0, "instance_norm_forward rstd");
}

TEST_CASE("cpu instance norm backward matches finite differences", "[cpu][norm][fd]") {
    std::mt19937 rng(19);
    const int N = 2, C = 3;
    const int64_t HW = 11;
    const float eps = 1e-5f;
    const Vec x = random_vec(rng, size_t(N) * C * HW, -2.0f, 2.0f);
    const Vec gamma = random_vec(rng, C, 0.5f, 1.5f), beta = random_vec(rng, C);
    const Vec r = random_vec(rng, x.size());
    auto forward = [&](const Vec& xv, const Vec& gv, const Vec& bv) {
        Vec y(xv.size()), mean(size_t(N) * C), rstd(size_t(N) * C);
        cpu().instance_norm_forward(N, C, HW, eps, xv.data(), gv.data(), bv.data(), y.data(),
                                    mean.data(), rstd.data(), false);
        return y;
    };
    Vec y(x.size()), mean(size_t(N) * C), rstd(size_t(N) * C);
    cpu().instance_norm_forward(N, C, HW, eps, x.data(), gamma.data(), beta.data(), y.data(),
                                mean.data(), rstd.data(), false);
    Vec dx(x.size()), dgamma(C), dbeta(C);
    cpu().instance_norm_backward(N, C, HW, x.data(), gamma.data(), mean.data(), rstd.data(),
                                 r.data(), dx.data(), dgamma.data(), dbeta.data());
    check_fd("instance_norm_backward dx", [&](const Vec& v) { return forward(v, gamma, beta); },
             x, r, dx, 1e-3, 5e-3, 1000);
    check_fd("instance_norm_backward dgamma",
             [&](const Vec& v) { return forward(x, v, beta); }, gamma, r, dgamma, 1e-2, 2e-3);
    check_fd("instance_norm_backward dbeta",
             [&](const Vec& v) { return forward(x, gamma, v); }, beta, r, dbeta, 1e-2, 2e-3);
}

TEST_CASE("cpu instance norm rejects empty planes", "[cpu][norm]") {
    Vec buf(16);
    REQUIRE_THROWS_AS(cpu().instance_norm_forward(1, 2, 0, 1e-5f, buf.data(), nullptr, nullptr,
                                                  buf.data(), buf.data(), buf.data(), false),
                      nst::Error);
}

// ============================================================================
// losses
// ============================================================================

TEST_CASE("cpu losses match double-precision sums", "[cpu][loss]") {
    std::mt19937 rng(20);
    const int64_t NC = 3;
    const int H = 7, W = 10;
    const int64_t n = NC * H * W;
    const Vec a = random_vec(rng, n), b = random_vec(rng, n);
    const Vec dout = {0.7f};
    Vec out = {kNaN}, da(n, kNaN);

    double mse = 0.0, ss = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        mse += std::pow(double(a[i]) - b[i], 2);
        ss += double(a[i]) * a[i];
    }
    cpu().mse_loss_forward(n, a.data(), b.data(), out.data());
    require_close(out, {mse / n}, 1e-6, 0, "mse_loss_forward");
    cpu().sum_squares_forward(n, a.data(), out.data());
    require_close(out, {ss}, 1e-6, 0, "sum_squares_forward");
    cpu().tv_loss_forward(NC, H, W, a.data(), out.data());
    require_close(out, {naive_tv(NC, H, W, a)}, 1e-6, 0, "tv_loss_forward");

    DVec want(n);
    cpu().mse_loss_backward(n, a.data(), b.data(), dout.data(), da.data());
    for (int64_t i = 0; i < n; ++i) want[i] = 0.7 * 2.0 * (double(a[i]) - b[i]) / n;
    require_close(da, want, 1e-6, 0, "mse_loss_backward");
    cpu().sum_squares_backward(n, a.data(), dout.data(), da.data());
    for (int64_t i = 0; i < n; ++i) want[i] = 0.7 * 2.0 * a[i];
    require_close(da, want, 1e-6, 0, "sum_squares_backward");
    cpu().tv_loss_backward(NC, H, W, a.data(), dout.data(), da.data());
    require_close(da, naive_tv_backward(NC, H, W, a, 0.7), 1e-5, 0, "tv_loss_backward");

    SECTION("degenerate images: tv over a single row or column") {
        for (auto [h, w] : {std::pair{1, 6}, std::pair{5, 1}, std::pair{1, 1}}) {
            const Vec x = random_vec(rng, size_t(2) * h * w);
            Vec tv = {kNaN}, dx(x.size(), kNaN);
            cpu().tv_loss_forward(2, h, w, x.data(), tv.data());
            require_close(tv, {naive_tv(2, h, w, x)}, 1e-6, 0, "tv_loss_forward");
            cpu().tv_loss_backward(2, h, w, x.data(), dout.data(), dx.data());
            require_close(dx, naive_tv_backward(2, h, w, x, 0.7), 1e-5, 1e-7, "tv_loss_backward");
        }
    }
    SECTION("bad arguments throw") {
        REQUIRE_THROWS_AS(cpu().mse_loss_forward(0, a.data(), b.data(), out.data()), nst::Error);
        REQUIRE_THROWS_AS(cpu().tv_loss_forward(1, -1, 3, a.data(), out.data()), nst::Error);
    }
}

TEST_CASE("cpu loss backward kernels match finite differences", "[cpu][loss][fd]") {
    std::mt19937 rng(21);
    const int64_t NC = 2;
    const int H = 5, W = 7;
    const int64_t n = NC * H * W;
    const Vec a = random_vec(rng, n), b = random_vec(rng, n);
    const Vec r = {-1.3f};  // the upstream gradient, read from dout[0]
    Vec grad(n);
    auto mse = [&](const Vec& v) {
        Vec out(1);
        cpu().mse_loss_forward(n, v.data(), b.data(), out.data());
        return out;
    };
    auto sum_squares = [&](const Vec& v) {
        Vec out(1);
        cpu().sum_squares_forward(n, v.data(), out.data());
        return out;
    };
    auto tv = [&](const Vec& v) {
        Vec out(1);
        cpu().tv_loss_forward(NC, H, W, v.data(), out.data());
        return out;
    };
    cpu().mse_loss_backward(n, a.data(), b.data(), r.data(), grad.data());
    check_fd("mse_loss_backward", mse, a, r, grad, 1e-2, 2e-3, 1000);
    cpu().sum_squares_backward(n, a.data(), r.data(), grad.data());
    check_fd("sum_squares_backward", sum_squares, a, r, grad, 1e-2, 2e-3, 1000);
    cpu().tv_loss_backward(NC, H, W, a.data(), r.data(), grad.data());
    check_fd("tv_loss_backward", tv, a, r, grad, 1e-2, 2e-3, 1000);
}
