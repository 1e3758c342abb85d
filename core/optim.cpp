#include "core/optim.hpp"

#include <cmath>

#include "core/autograd.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"

namespace nst {
namespace {

// sum(a * b) through `out`, a scalar kept for it (a GPU still takes a small
// scratch for the partial sums).
float dot(const Tensor& a, const Tensor& b, const Tensor& out) {
    backend(a.device()).dot(a.numel(), a.data(), b.data(), out.data());
    return out.item();
}

Tensor copy_of(const Tensor& t) {
    NoGradGuard no_grad;
    return t.detach().clone();
}

}  // namespace

void axpby(float alpha, const Tensor& x, float beta, Tensor& y) {
    NST_CHECK(x.device() == y.device() && x.numel() == y.numel() && x.is_contiguous() && y.is_contiguous(),
              "axpby: contiguous tensors of one size on one device expected, got ", shape_str(x.shape()), " on ",
              x.device().str(), " and ", shape_str(y.shape()), " on ", y.device().str());
    backend(y.device()).axpby(y.numel(), alpha, x.data(), beta, y.data());
}

// ---- Adam ------------------------------------------------------------------

Adam::Adam(std::vector<Tensor> params, Options options)
    : params_(std::move(params)), options_(options) {
    for (const Tensor& p : params_) {
        NST_CHECK(p.defined() && p.requires_grad() && !p.grad_fn() && p.is_contiguous(),
                  "Adam: parameters must be contiguous leaf tensors that require grad");
        m_.push_back(Tensor::zeros(p.shape(), p.device()));
        v_.push_back(Tensor::zeros(p.shape(), p.device()));
    }
}

void Adam::step() {
    ++steps_;
    const float bc1 = 1.f - std::pow(options_.beta1, float(steps_));
    const float bc2 = 1.f - std::pow(options_.beta2, float(steps_));
    for (size_t i = 0; i < params_.size(); ++i) {
        Tensor g = params_[i].grad();
        if (!g.defined()) continue;
        g = g.contiguous();
        backend(params_[i].device())
            .adam_step(params_[i].numel(), options_.lr, options_.beta1, options_.beta2,
                       options_.eps, bc1, bc2, g.data(), params_[i].data(), m_[i].data(),
                       v_[i].data());
    }
}

void Adam::zero_grad() {
    for (Tensor& p : params_) p.zero_grad();
}

// ---- L-BFGS ----------------------------------------------------------------

LBFGS::LBFGS(Tensor param, Options options)
    : param_(std::move(param)), options_(options), capacity_(options.history) {
    NST_CHECK(param_.defined() && param_.requires_grad() && !param_.grad_fn() &&
                  param_.is_contiguous(),
              "LBFGS: the parameter must be a contiguous leaf tensor that requires grad");
    NST_CHECK(options_.history >= 1, "LBFGS: history must be at least 1");
    dot_ = Tensor::empty({}, param_.device());
}

template <class F>
auto LBFGS::fitting(F&& f) {
    for (;;) {
        try {
            return f();
        } catch (const OutOfMemoryError&) {
            if (s_.empty()) throw;
            // A quarter at a time: a few retries reach what fits, and most
            // of the history's use is kept.
            capacity_ = int(s_.size()) * 3 / 4;
            while (int(s_.size()) > capacity_) s_.pop_front(), y_.pop_front(), rho_.pop_front();
        }
    }
}

float LBFGS::step(const std::function<Tensor()>& evaluate, bool* converged) {
    if (converged) *converged = false;
    const float loss = fitting([&] { return evaluate().item(); });
    NoGradGuard no_grad;
    Tensor g = param_.grad();
    NST_CHECK(g.defined(), "LBFGS: the loss does not depend on the parameter");
    g = fitting([&] { return copy_of(g); });

    if (iteration_ == 0) {
        direction_ = copy_of(g);
        axpby(0.f, g, -1.f, direction_);  // d = -g
        h_diag_ = 1.f;
        // The first step is scaled by the gradient's L1 norm, as in Torch's
        // optim.lbfgs (neural-style) and torch.optim.LBFGS. One read to the
        // host, once per run.
        double l1 = 0;
        for (float v : g.to_vector()) l1 += std::fabs(double(v));
        step_size_ = float(std::min(1.0, 1.0 / std::max(l1, 1e-30))) * options_.lr;
    } else {
        // y = g - g_prev, s = t * d
        Tensor y = fitting([&] { return copy_of(g); });
        Tensor s = fitting([&] { return copy_of(direction_); });
        axpby(-1.f, previous_grad_, 1.f, y);
        axpby(0.f, s, step_size_, s);
        const float ys = fitting([&] { return dot(y, s, dot_); });
        if (ys > 1e-10f) {
            if (int(s_.size()) >= capacity_ && !s_.empty()) {
                s_.pop_front(), y_.pop_front(), rho_.pop_front();
            }
            if (capacity_ > 0) {  // zero once memory left no room for any pair
                s_.push_back(s);
                y_.push_back(y);
                rho_.push_back(1.f / ys);
            }
            h_diag_ = ys / fitting([&] { return dot(y, y, dot_); });
        }
        // Two-loop recursion: direction = -H g. Retried whole (from q = -g)
        // when an inner product runs out of memory.
        fitting([&] {
            Tensor& q = direction_;
            axpby(-1.f, g, 0.f, q);
            std::vector<float> alpha(s_.size());
            for (size_t i = s_.size(); i-- > 0;) {
                alpha[i] = dot(s_[i], q, dot_) * rho_[i];
                axpby(-alpha[i], y_[i], 1.f, q);
            }
            axpby(0.f, q, h_diag_, q);
            for (size_t i = 0; i < s_.size(); ++i) {
                const float beta = dot(y_[i], q, dot_) * rho_[i];
                axpby(alpha[i] - beta, s_[i], 1.f, q);
            }
            return 0;
        });
        step_size_ = options_.lr;
    }
    previous_grad_ = g;

    const float gtd = fitting([&] { return dot(g, direction_, dot_); });
    const bool stalled = gtd > -options_.tolerance_change ||
                         (iteration_ > 0 && std::fabs(loss - previous_loss_) < options_.tolerance_change);
    previous_loss_ = loss;
    ++iteration_;
    if (stalled) {
        if (converged) *converged = true;
        return loss;
    }
    Tensor p = param_.detach();
    axpby(step_size_, direction_, 1.f, p);
    return loss;
}

}  // namespace nst
