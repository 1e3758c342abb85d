#include "core/autograd.hpp"

#include <algorithm>
#include <atomic>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "core/backend.hpp"
#include "core/error.hpp"

namespace nst {

namespace {
std::atomic<uint64_t> g_sequence{1};
}  // namespace

Node::Node(const char* name, std::vector<std::shared_ptr<Node>> next, BackwardFn backward)
    : name_(name), sequence_(g_sequence++), next_(std::move(next)), backward_(std::move(backward)) {}

std::vector<Tensor> Node::apply(const Tensor& grad) {
    NST_CHECK(backward_, name_, ": backward through a graph that was already freed "
              "(each backward() consumes the graph; run the forward again)");
    std::vector<bool> needs(next_.size());
    for (size_t i = 0; i < next_.size(); ++i) needs[i] = next_[i] != nullptr;
    return backward_(grad, needs);
}

void Node::release() { backward_ = nullptr; }

namespace {

thread_local bool t_grad_enabled = true;

// The sink of a leaf's gradient. Holds the leaf strongly: a parameter lives
// at least as long as a graph that uses it.
class AccumulateGrad final : public Node {
public:
    explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf)
        : Node("accumulate_grad", {}, nullptr), leaf_(std::move(leaf)) {}

    std::vector<Tensor> apply(const Tensor& grad) override {
        NoGradGuard no_grad;
        NST_CHECK(grad.shape() == leaf_->shape, "backward: gradient of shape ",
                  shape_str(grad.shape()), " for a leaf of shape ", shape_str(leaf_->shape));
        if (!leaf_->grad) {
            // A copy: the incoming gradient may be shared with other leaves.
            leaf_->grad = grad.contiguous().clone().impl();
        } else {
            Tensor acc(leaf_->grad);
            Tensor g = grad.contiguous();
            backend(acc.device()).axpby(acc.numel(), 1.f, g.data(), 1.f, acc.data());
        }
        return {};
    }
    void release() override {}

private:
    std::shared_ptr<TensorImpl> leaf_;
};

std::shared_ptr<Node> grad_edge(const Tensor& t) {
    if (!t.defined() || !t.requires_grad()) return nullptr;
    if (t.grad_fn()) return t.grad_fn();
    auto& impl = *t.impl();
    std::shared_ptr<Node> acc = impl.grad_accumulator.lock();
    if (!acc) {
        acc = std::make_shared<AccumulateGrad>(t.impl());
        impl.grad_accumulator = acc;
    }
    return acc;
}

}  // namespace

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

void record(Tensor& output, const char* op, const std::vector<Tensor>& inputs,
            BackwardFn backward) {
    if (!t_grad_enabled) return;
    std::vector<std::shared_ptr<Node>> next(inputs.size());
    bool any = false;
    for (size_t i = 0; i < inputs.size(); ++i) {
        next[i] = grad_edge(inputs[i]);
        any = any || next[i];
    }
    if (!any) return;
    NST_CHECK(output.dtype() == DType::F32, op, ": no gradient through ", dtype_name(output.dtype()),
              " tensors (16-bit storage is for inference: use NoGradGuard)");
    output.impl()->requires_grad = true;
    output.impl()->grad_fn = std::make_shared<Node>(op, std::move(next), std::move(backward));
}

void run_backward(const Tensor& root, const Tensor& grad) { run_backward(std::vector<Tensor>{root}, {grad}); }

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds) {
    NST_CHECK(!roots.empty() && seeds.size() == roots.size(), "backward: ", roots.size(), " roots and ",
              seeds.size(), " gradients");
    // Every root's edge and seed; a root met twice gets the sum of its seeds.
    std::vector<std::pair<std::shared_ptr<Node>, Tensor>> starts;
    for (size_t r = 0; r < roots.size(); ++r) {
        const Tensor& root = roots[r];
        NST_CHECK(root.requires_grad(), "backward: the tensor does not require grad "
                  "(no input of the computation had set_requires_grad)");
        Tensor root_grad = seeds[r];
        if (!root_grad.defined()) {
            NST_CHECK(root.numel() == 1, "backward: an implicit gradient needs a one-element "
                      "tensor, got ", shape_str(root.shape()));
            root_grad = Tensor::full(root.shape(), 1.f, root.device());
        }
        NST_CHECK(root_grad.shape() == root.shape(), "backward: gradient of shape ",
                  shape_str(root_grad.shape()), " for a tensor of shape ", shape_str(root.shape()));
        starts.emplace_back(grad_edge(root), root_grad);
    }

    // Count, for every reachable node, how many edges point to it.
    std::unordered_map<Node*, int> pending;
    std::unordered_set<Node*> seen;
    std::vector<Node*> stack;
    for (const auto& s : starts)
        if (seen.insert(s.first.get()).second) stack.push_back(s.first.get());
    while (!stack.empty()) {
        Node* node = stack.back();
        stack.pop_back();
        for (const auto& n : node->next()) {
            if (!n) continue;
            ++pending[n.get()];
            if (seen.insert(n.get()).second) stack.push_back(n.get());
        }
    }

    // A node runs once every consumer has handed it its gradient. Among the
    // nodes ready to run, the one whose gradients flow into the most recently
    // created node goes first. That walks the graph back roughly in reverse
    // creation order, like PyTorch's engine, but it also holds back a loss
    // term computed at the end of the forward from a feature map of its
    // beginning (a style loss at relu1_1): its gradient is made just before
    // the layer that takes it, instead of first and then held, full size,
    // through the whole backward (a quarter of the peak memory of
    // optimization mode). Holding shared_ptrs keeps a node alive while its
    // gradient is pending.
    auto key = [](const std::shared_ptr<Node>& node) {
        uint64_t feeds = 0;
        for (const auto& n : node->next())
            if (n) feeds = std::max(feeds, n->sequence());
        return std::make_pair(feeds, node->sequence());
    };
    using Entry = std::pair<std::pair<uint64_t, uint64_t>, std::shared_ptr<Node>>;
    auto later_first = [](const Entry& a, const Entry& b) { return a.first < b.first; };
    std::priority_queue<Entry, std::vector<Entry>, decltype(later_first)> ready(later_first);
    NoGradGuard no_grad;
    std::unordered_map<Node*, Tensor> grads;
    // Sums b into the gradient pending for node n.
    auto accumulate = [&grads](Node* n, const Tensor& b_in) {
        Tensor& slot = grads[n];
        if (!slot.defined()) {
            slot = b_in;
            return;
        }
        Tensor a = slot.contiguous(), b = b_in.contiguous();
        Tensor sum = Tensor::empty(a.shape(), a.device());
        backend(sum.device()).add_forward(sum.numel(), a.data(), b.data(), sum.data());
        slot = sum;
    };
    // A root that another root's graph also reaches (a feature map that is a
    // root and feeds a Gram matrix that is one too) waits for its consumers.
    for (const auto& s : starts) {
        const bool first = grads.find(s.first.get()) == grads.end();
        accumulate(s.first.get(), s.second);
        if (first && pending[s.first.get()] == 0) ready.emplace(key(s.first), s.first);
    }
    while (!ready.empty()) {
        std::shared_ptr<Node> node = ready.top().second;
        ready.pop();
        // A node that received no gradient on any path passes none on.
        auto found = grads.find(node.get());
        std::vector<Tensor> input_grads;
        if (found != grads.end()) {
            Tensor g = std::move(found->second);
            grads.erase(found);
            input_grads = node->apply(g);
        }
        node->release();
        const auto& next = node->next();
        for (size_t i = 0; i < next.size(); ++i) {
            if (!next[i]) continue;
            Node* n = next[i].get();
            if (i < input_grads.size() && input_grads[i].defined()) accumulate(n, input_grads[i]);
            if (--pending[n] == 0) ready.emplace(key(next[i]), next[i]);
        }
    }
}

}  // namespace nst
