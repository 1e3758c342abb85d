// Optimizers for style transfer: Adam (training, and optimization mode) and
// L-BFGS (the classic choice of neural-style for optimizing an image). Both
// keep their state in tensors on the parameters' device; the only host
// traffic per step is a few scalars (L-BFGS's inner products).
#pragma once
#include <deque>
#include <functional>
#include <vector>

#include "core/tensor.hpp"

namespace nst {

// The optimizers' vector update on tensors, in place and outside the graph:
// y = alpha * x + beta * y (beta == 0: y's old values are not read, so it
// copies or scales). Contiguous tensors of one size on one device.
void axpby(float alpha, const Tensor& x, float beta, Tensor& y);

class Adam {
public:
    struct Options {
        float lr = 1e-3f;
        float beta1 = 0.9f;
        float beta2 = 0.999f;
        float eps = 1e-8f;
    };
    Adam(std::vector<Tensor> params, Options options);

    // One update from the parameters' current .grad() (parameters without a
    // gradient are left alone, as in PyTorch).
    void step();
    void zero_grad();

    int64_t steps() const { return steps_; }
    // The moment estimates, one per parameter (for checkpoints).
    std::vector<Tensor>& first_moments() { return m_; }
    std::vector<Tensor>& second_moments() { return v_; }
    const std::vector<Tensor>& first_moments() const { return m_; }
    const std::vector<Tensor>& second_moments() const { return v_; }
    void set_steps(int64_t steps) { steps_ = steps; }

private:
    std::vector<Tensor> params_, m_, v_;
    Options options_;
    int64_t steps_ = 0;
};

// L-BFGS without line search and a fixed step (lr), as neural-style uses it:
// PyTorch's torch.optim.LBFGS algorithm, one iteration per step() so the
// caller can report progress, check for NaN and save intermediate images.
class LBFGS {
public:
    struct Options {
        float lr = 1.f;
        int history = 100;
        // stop when the directional derivative or the loss change is smaller
        float tolerance_change = 1e-9f;
    };
    // `param` is a single tensor (the image being optimized).
    LBFGS(Tensor param, Options options);

    // `evaluate` zeroes the gradient, computes the loss, runs backward and
    // returns the loss; step() calls it once, then moves the parameter.
    // Returns the loss before the move. Returns false in `converged` once
    // progress stalls below the tolerance (the parameter is then unchanged).
    //
    // Memory: the history is 2 x history copies of the parameter, at large
    // sizes more than everything else (6144x6144: 90 GB for 100 pairs).
    // When the step runs out of memory (OutOfMemoryError, in evaluate() or
    // here) and there is a history, its oldest quarter is dropped, the
    // history stays that much shorter from then on, and the step is retried;
    // with no history left the error propagates. history() says how long
    // it may grow now.
    float step(const std::function<Tensor()>& evaluate, bool* converged = nullptr);
    int history() const { return capacity_; }
    int pairs() const { return int(s_.size()); }  // curvature pairs held now

private:
    // f(), retried after shortening the history for as long as it runs out
    // of memory and there is history to drop.
    template <class F>
    auto fitting(F&& f);

    Tensor param_;
    Options options_;
    int capacity_;  // options_.history, or less once memory ran short
    std::deque<Tensor> s_, y_;  // the history of steps and gradient changes
    std::deque<float> rho_;
    Tensor direction_, previous_grad_;
    Tensor dot_;  // the inner products' result, on the parameter's device
    float step_size_ = 0, h_diag_ = 1, previous_loss_ = 0;
    int64_t iteration_ = 0;
};

}  // namespace nst
