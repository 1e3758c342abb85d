// Tensors: a shape, strides and an offset into a reference-counted storage on
// one device, plus the autograd links. Tensor is a cheap handle (a
// shared_ptr); copies share data, like torch.Tensor.
//
// Ops (core/ops.hpp) take any layout and make inputs contiguous first; views
// (reshape of a contiguous tensor, permute) share storage.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/device.hpp"
#include "core/dtype.hpp"
#include "core/storage.hpp"

namespace nst {

using Shape = std::vector<int64_t>;
class Node;

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    int64_t offset = 0;  // in elements
    Shape shape;
    Shape strides;  // in elements
    DType dtype = DType::F32;
    bool requires_grad = false;
    std::shared_ptr<Node> grad_fn;           // set on results of differentiable ops
    std::weak_ptr<Node> grad_accumulator;    // leaves: where their gradient lands
    std::shared_ptr<TensorImpl> grad;        // leaves: accumulated by backward()
};

class Tensor {
public:
    Tensor() = default;
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    // ---- factories (contiguous) ----------------------------------------
    static Tensor empty(const Shape& shape, Device device = Device::cpu(),
                        DType dtype = DType::F32);
    static Tensor zeros(const Shape& shape, Device device = Device::cpu());
    static Tensor full(const Shape& shape, float value, Device device = Device::cpu());
    static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                              Device device = Device::cpu());
    // Seeded and deterministic: element i depends only on (seed, i), so the
    // same call gives the same values on every device and every run.
    static Tensor randn(const Shape& shape, uint64_t seed, Device device = Device::cpu(),
                        float mean = 0.f, float std = 1.f);
    static Tensor rand(const Shape& shape, uint64_t seed, Device device = Device::cpu(),
                       float low = 0.f, float high = 1.f);

    // ---- properties ----------------------------------------------------
    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const;
    const Shape& strides() const;
    int64_t dim() const { return int64_t(shape().size()); }
    int64_t size(int64_t d) const;  // negative d counts from the end
    int64_t numel() const;
    DType dtype() const;
    Device device() const;
    bool is_contiguous() const;
    std::string str() const;  // "float32[1, 3, 64, 64] on cuda:0"

    // Device pointer to the first element (after the offset) of a float32
    // tensor; an error for other dtypes, so float-only code never misreads
    // 16-bit storage.
    float* data() const;
    void* raw_data() const;  // the same, for any dtype

    // ---- copies and views ----------------------------------------------
    Tensor to(Device device) const;  // a copy, unless already there (then itself)
    // A converted copy, unless already of that type (then itself). Float32
    // results of a 16-bit source and 16-bit results have no gradient.
    Tensor to(DType dtype) const;
    Tensor cpu() const { return to(Device::cpu()); }
    std::vector<float> to_vector() const;  // contiguous row-major copy on the host, as float
    float item() const;                    // the value of a one-element tensor
    Tensor contiguous() const;             // differentiable
    Tensor clone() const;                  // differentiable copy
    Tensor reshape(const Shape& shape) const;   // differentiable; one dim may be -1
    Tensor permute(const std::vector<int64_t>& dims) const;  // differentiable view
    Tensor detach() const;  // shares data, outside the graph

    // ---- autograd --------------------------------------------------------
    bool requires_grad() const;
    // Marks a leaf as a parameter/input whose gradient backward() fills in.
    Tensor& set_requires_grad(bool value = true);
    Tensor grad() const;  // undefined until a backward pass reaches this leaf
    void zero_grad();     // drops the accumulated gradient
    // Reverse-mode pass from this tensor; `grad` defaults to 1 for a
    // one-element tensor. Gradients accumulate into the leaves' grad().
    void backward(const Tensor& grad = Tensor()) const;
    const std::shared_ptr<Node>& grad_fn() const;

    const std::shared_ptr<TensorImpl>& impl() const { return impl_; }

private:
    std::shared_ptr<TensorImpl> impl_;
};

int64_t shape_numel(const Shape& shape);

}  // namespace nst
