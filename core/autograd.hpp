// Minimal reverse-mode autograd, in the spirit of PyTorch's.
//
// Each differentiable op, in one function, computes its forward and records a
// Node whose closure is its backward (core/ops/*.cpp). A Node points to the
// Nodes that produced its inputs, not to the input tensors themselves, so an
// activation is kept alive only if some backward closure saved it. backward()
// walks the graph in reverse topological order, and releases each Node's
// closure (its saved tensors) right after running it, so memory falls as the
// backward pass proceeds. Leaves collect their gradient through an
// AccumulateGrad node.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "core/tensor.hpp"

namespace nst {

// needs[i]: whether input i wants a gradient; return one Tensor per input
// (undefined where not needed).
using BackwardFn =
    std::function<std::vector<Tensor>(const Tensor& grad, const std::vector<bool>& needs)>;

class Node {
public:
    Node(const char* name, std::vector<std::shared_ptr<Node>> next, BackwardFn backward);
    virtual ~Node() = default;

    const char* name() const { return name_; }
    // Creation order (a process-wide count): backward runs roughly in reverse.
    uint64_t sequence() const { return sequence_; }
    const std::vector<std::shared_ptr<Node>>& next() const { return next_; }
    virtual std::vector<Tensor> apply(const Tensor& grad);
    // Frees what the backward saved; a second backward through it then fails.
    virtual void release();

private:
    const char* name_;
    uint64_t sequence_;
    std::vector<std::shared_ptr<Node>> next_;  // null where the input needs no gradient
    BackwardFn backward_;
};

// Whether ops record the graph (thread-local; on by default).
bool grad_enabled();

// Inside this scope no graph is recorded: inference, optimizer updates.
class NoGradGuard {
public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

// Used by the ops: when grad mode is on and any input requires a gradient,
// `output` becomes a non-leaf whose Node runs `backward`.
void record(Tensor& output, const char* op, const std::vector<Tensor>& inputs,
            BackwardFn backward);

void run_backward(const Tensor& root, const Tensor& grad);
// One backward pass from several roots at once (PyTorch's
// torch.autograd.backward(tensors, grad_tensors)): each root's gradient is
// seeds[i] (undefined: 1, for a one-element root). Nodes shared by several
// roots' graphs run once, with the sum.
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds);

}  // namespace nst
