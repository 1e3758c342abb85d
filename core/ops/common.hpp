// Shared checks of the op layer (core/ops/*.cpp only).
#pragma once
#include <initializer_list>

#include "core/autograd.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/ops.hpp"

namespace nst::ops {

// Every input defined and on the same device; returns that device.
inline Device same_device(const char* op, std::initializer_list<const Tensor*> inputs) {
    Device device;
    bool first = true;
    for (const Tensor* t : inputs) {
        if (!t->defined()) continue;
        if (first) {
            device = t->device();
            first = false;
        }
        NST_CHECK(t->device() == device, op, ": inputs on different devices (", device.str(),
                  " and ", t->device().str(), ")");
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
    NST_CHECK(value <= 0x7fffffff, op, ": size ", value, " exceeds the kernels' 32-bit limit");
}

using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

}  // namespace nst::ops
