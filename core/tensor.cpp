#include "core/tensor.hpp"

#include <cmath>
#include <numeric>

#include "core/autograd.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"

namespace nst {

int64_t shape_numel(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

namespace {

Shape contiguous_strides(const Shape& shape) {
    Shape strides(shape.size());
    int64_t s = 1;
    for (size_t i = shape.size(); i-- > 0;) {
        strides[i] = s;
        s *= shape[i];
    }
    return strides;
}

// Rejects negative dims and sizes whose byte count would overflow: an absurd
// shape gets a readable error instead of a wrapped-around allocation.
void check_shape(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) {
        NST_CHECK(d >= 0, "tensor: negative dimension in shape ", shape_str(shape));
        NST_CHECK(d == 0 || n <= (int64_t(1) << 60) / d, "tensor: shape ", shape_str(shape),
                  " is too large");
        n *= d;
    }
}

Tensor view_of(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = base.impl()->storage;
    impl->offset = offset;
    impl->shape = std::move(shape);
    impl->strides = std::move(strides);
    impl->dtype = base.dtype();
    return Tensor(impl);
}

// splitmix64: a counter-based generator, so element i is a pure function of
// (seed, i) and the values do not depend on device, threads or order.
uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
double uniform01(uint64_t seed, uint64_t i) {  // in (0, 1)
    return (double(mix(mix(seed) ^ i) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

}  // namespace

// ---- factories --------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, Device device, DType dtype) {
    check_shape(shape);
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device);
    impl->shape = shape;
    impl->strides = contiguous_strides(shape);
    impl->dtype = dtype;
    return Tensor(impl);
}

Tensor Tensor::full(const Shape& shape, float value, Device device) {
    Tensor t = empty(shape, device);
    backend(device).fill(t.numel(), value, t.data());
    return t;
}

Tensor Tensor::zeros(const Shape& shape, Device device) { return full(shape, 0.f, device); }

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
    check_shape(shape);
    NST_CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
              " values for shape ", shape_str(shape));
    Tensor t = empty(shape, device);
    backend(device).copy_from_host(t.data(), values.data(), values.size() * 4);
    return t;
}

Tensor Tensor::randn(const Shape& shape, uint64_t seed, Device device, float mean, float std) {
    check_shape(shape);
    std::vector<float> v(size_t(shape_numel(shape)));
    for (size_t i = 0; i < v.size(); ++i) {  // Box-Muller on two counter draws
        double u1 = uniform01(seed, 2 * i), u2 = uniform01(seed, 2 * i + 1);
        double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
        v[i] = float(mean + std * z);
    }
    return from_vector(v, shape, device);
}

Tensor Tensor::rand(const Shape& shape, uint64_t seed, Device device, float low, float high) {
    check_shape(shape);
    std::vector<float> v(size_t(shape_numel(shape)));
    for (size_t i = 0; i < v.size(); ++i) v[i] = float(low + (high - low) * uniform01(seed, i));
    return from_vector(v, shape, device);
}

// ---- properties ---------------------------------------------------------------

static const TensorImpl& get(const std::shared_ptr<TensorImpl>& impl) {
    NST_CHECK(impl, "tensor: use of an undefined tensor");
    return *impl;
}

const Shape& Tensor::shape() const { return get(impl_).shape; }
const Shape& Tensor::strides() const { return get(impl_).strides; }
int64_t Tensor::numel() const { return shape_numel(shape()); }
DType Tensor::dtype() const { return get(impl_).dtype; }
Device Tensor::device() const { return get(impl_).storage->device(); }

int64_t Tensor::size(int64_t d) const {
    const int64_t n = dim();
    NST_CHECK(d >= -n && d < n, "tensor: dimension ", d, " out of range for shape ",
              shape_str(shape()));
    return shape()[size_t(d < 0 ? d + n : d)];
}

bool Tensor::is_contiguous() const { return strides() == contiguous_strides(shape()); }

float* Tensor::data() const {
    const TensorImpl& t = get(impl_);
    NST_CHECK(t.dtype == DType::F32, "tensor: ", str(), " used where float32 is needed "
              "(16-bit tensors run only the transformation network's inference ops)");
    return static_cast<float*>(t.storage->data()) + t.offset;
}

void* Tensor::raw_data() const {
    const TensorImpl& t = get(impl_);
    return static_cast<char*>(t.storage->data()) + t.offset * int64_t(dtype_size(t.dtype));
}

std::string Tensor::str() const {
    if (!defined()) return "undefined tensor";
    return std::string(dtype_name(dtype())) + shape_str(shape()) + " on " + device().str();
}

// ---- copies and views -----------------------------------------------------------

Tensor Tensor::to(Device device) const {
    if (this->device() == device) return *this;
    Tensor src = contiguous();
    Tensor dst = empty(shape(), device, dtype());
    const size_t bytes = size_t(numel()) * dtype_size(dtype());
    if (src.device().is_cpu()) {
        backend(device).copy_from_host(dst.raw_data(), src.raw_data(), bytes);
    } else if (device.is_cpu()) {
        backend(src.device()).copy_to_host(dst.raw_data(), src.raw_data(), bytes);
    } else {  // between two GPUs: through the host, rare enough
        std::vector<char> host(bytes);
        backend(src.device()).copy_to_host(host.data(), src.raw_data(), bytes);
        backend(device).copy_from_host(dst.raw_data(), host.data(), bytes);
    }
    record(dst, "to", {*this}, [from = this->device()](const Tensor& g, const std::vector<bool>&) {
        return std::vector<Tensor>{g.to(from)};
    });
    return dst;
}

Tensor Tensor::to(DType dtype) const {
    if (this->dtype() == dtype) return *this;
    // Only float32 tensors take gradients, so only this direction could need one.
    NST_CHECK(!(grad_enabled() && requires_grad()), "to: no gradient through ", dtype_name(dtype),
              " tensors (16-bit storage is for inference: use NoGradGuard)");
    Tensor src = contiguous();
    Tensor dst = empty(shape(), device(), dtype);
    backend(device()).convert(numel(), src.dtype(), src.raw_data(), dtype, dst.raw_data());
    return dst;
}

std::vector<float> Tensor::to_vector() const {
    Tensor c = contiguous().to(DType::F32);
    std::vector<float> out(size_t(c.numel()));
    backend(c.device()).copy_to_host(out.data(), c.data(), out.size() * 4);
    return out;
}

float Tensor::item() const {
    NST_CHECK(numel() == 1, "item: tensor of shape ", shape_str(shape()),
              " has more than one element");
    return to_vector()[0];
}

Tensor Tensor::contiguous() const {
    if (is_contiguous()) return *this;
    NST_CHECK(dtype() == DType::F32, "contiguous: strided views of ", str(), " are not supported");
    Tensor out = empty(shape(), device());
    backend(device()).strided_copy(int(dim()), shape().data(), strides().data(),
                                   impl_->offset, static_cast<const float*>(impl_->storage->data()),
                                   out.data());
    record(out, "contiguous", {*this}, [](const Tensor& g, const std::vector<bool>&) {
        return std::vector<Tensor>{g};
    });
    return out;
}

Tensor Tensor::clone() const {
    Tensor src = contiguous();
    Tensor out = empty(shape(), device(), dtype());
    backend(device()).copy(out.raw_data(), src.raw_data(), size_t(numel()) * dtype_size(dtype()));
    record(out, "clone", {*this}, [](const Tensor& g, const std::vector<bool>&) {
        return std::vector<Tensor>{g};
    });
    return out;
}

Tensor Tensor::reshape(const Shape& new_shape) const {
    Shape s = new_shape;
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == -1) {
            NST_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(new_shape));
            infer = int64_t(i);
        } else {
            NST_CHECK(s[i] >= 0, "reshape: bad shape ", shape_str(new_shape));
            known *= s[i];
        }
    }
    if (infer >= 0) {
        NST_CHECK(known > 0 && numel() % known == 0, "reshape: cannot reshape ",
                  shape_str(shape()), " to ", shape_str(new_shape));
        s[size_t(infer)] = numel() / known;
    }
    NST_CHECK(shape_numel(s) == numel(), "reshape: cannot reshape ", shape_str(shape()), " to ",
              shape_str(new_shape));
    Tensor src = contiguous();
    Tensor out = view_of(src, s, contiguous_strides(s), src.impl()->offset);
    record(out, "reshape", {*this}, [old = shape()](const Tensor& g, const std::vector<bool>&) {
        return std::vector<Tensor>{g.reshape(old)};
    });
    return out;
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
    NST_CHECK(int64_t(dims.size()) == dim(), "permute: ", dims.size(), " dims for shape ",
              shape_str(shape()));
    Shape s(dims.size()), st(dims.size());
    std::vector<int64_t> inverse(dims.size(), -1);
    for (size_t i = 0; i < dims.size(); ++i) {
        NST_CHECK(dims[i] >= 0 && dims[i] < dim() && inverse[size_t(dims[i])] < 0,
                  "permute: invalid permutation for shape ", shape_str(shape()));
        inverse[size_t(dims[i])] = int64_t(i);
        s[i] = shape()[size_t(dims[i])];
        st[i] = strides()[size_t(dims[i])];
    }
    Tensor out = view_of(*this, s, st, impl_->offset);
    record(out, "permute", {*this}, [inverse](const Tensor& g, const std::vector<bool>&) {
        return std::vector<Tensor>{g.permute(inverse)};
    });
    return out;
}

Tensor Tensor::detach() const {
    return view_of(*this, shape(), strides(), get(impl_).offset);
}

// ---- autograd -------------------------------------------------------------------

bool Tensor::requires_grad() const { return get(impl_).requires_grad; }

Tensor& Tensor::set_requires_grad(bool value) {
    NST_CHECK(!get(impl_).grad_fn, "set_requires_grad: only leaf tensors can be marked "
              "(this one is the result of an op; use detach() first)");
    NST_CHECK(!value || impl_->dtype == DType::F32, "set_requires_grad: ", str(),
              ": gradients are float32 only");
    impl_->requires_grad = value;
    return *this;
}

Tensor Tensor::grad() const { return Tensor(get(impl_).grad); }
void Tensor::zero_grad() {
    get(impl_);
    impl_->grad.reset();
}

void Tensor::backward(const Tensor& grad) const { run_backward(*this, grad); }

const std::shared_ptr<Node>& Tensor::grad_fn() const { return get(impl_).grad_fn; }

}  // namespace nst
