// Shared checks of the op layer (core/ops/*.cpp only).
#pragma once
#include <initializer_list>

#include "core/autograd.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/ops.hpp"

namespace nst::ops {

// Every input defined, on the same device and of the same dtype; returns
// that device.
inline Device same_device(const char* op, std::initializer_list<const Tensor*> inputs) {
    Device device;
    DType dtype = DType::F32;
    bool first = true;
    for (const Tensor* t : inputs) {
        if (!t->defined()) continue;
        if (first) {
            device = t->device();
            dtype = t->dtype();
            first = false;
        }
        NST_CHECK(t->device() == device, op, ": inputs on different devices (", device.str(),
                  " and ", t->device().str(), ")");
        NST_CHECK(t->dtype() == dtype, op, ": inputs of different types (", dtype_name(dtype),
                  " and ", dtype_name(t->dtype()), ")");
    }
    NST_CHECK(!first, op, ": undefined input tensor");
    return device;
}

inline void check_dim(const char* op, const char* what, const Tensor& t, int64_t dims) {
    NST_CHECK(t.defined(), op, ": ", what, " is undefined");
    NST_CHECK(t.dim() == dims, op, ": ", what, " must have ", dims, " dimensions, got ",
              shape_str(t.shape()));
}

inline void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
    NST_CHECK(a.shape() == b.shape(), op, ": shapes differ: ", shape_str(a.shape()), " and ",
              shape_str(b.shape()));
}

inline void check_int(const char* op, int64_t value) {
    if (value > 0x7fffffff)
        throw SizeLimitError(detail::concat(op, ": size ", value, " exceeds the kernels' 32-bit limit"));
}

// 16-bit storage (fp16/bf16): such ops run their backend's *16 forward
// and record nothing (16-bit tensors never require a gradient).
inline bool is16(const Tensor& t) { return t.dtype() != DType::F32; }

// A contiguous output like x, of x's dtype.
inline Tensor empty_like(const Tensor& x, const Shape& shape) {
    return Tensor::empty(shape, x.device(), x.dtype());
}

inline const void* raw_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

// An op over the H, W plane of every (n, c) image (pooling, upsampling,
// padding): the backends see x [N, C, H, W] as [N*C, H, W].
struct Plane {
    int64_t NC;
    int H, W;
};

inline Plane plane(const char* op, const Tensor& x) {
    check_dim(op, "input", x, 4);
    check_int(op, x.numel());
    return {x.size(0) * x.size(1), int(x.size(2)), int(x.size(3))};
}

using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

}  // namespace nst::ops
