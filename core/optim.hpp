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
    float step(const std::function<Tensor()>& evaluate, bool* converged = nullptr);

private:
    Tensor param_;
    Options options_;
    std::deque<Tensor> s_, y_;  // the history of steps and gradient changes
    std::deque<float> rho_;
    Tensor direction_, previous_grad_;
    float step_size_ = 0, h_diag_ = 1, previous_loss_ = 0;
    int64_t iteration_ = 0;
};

}  // namespace nst
