// Gradient checking for tests: the analytic gradient of L = sum(f(inputs) * r),
// r a fixed random tensor, against central finite differences of L computed
// in float with the forward alone. Used by CPU tests and, on any device, by GPU
// tests.
#pragma once
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <vector>

#include "core/autograd.hpp"
#include "core/ops.hpp"
#include "core/tensor.hpp"

namespace nst::test {

inline double dot(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
    return s;
}

inline double rel_error(const std::vector<float>& got, const std::vector<float>& want) {
    REQUIRE(got.size() == want.size());
    double num = 0, den = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const double d = double(got[i]) - double(want[i]);
        num += d * d;
        den += double(want[i]) * double(want[i]);
    }
    if (den == 0) return std::sqrt(num);
    return std::sqrt(num / den);
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks d/d(inputs[i]) for every input that requires grad. `max_checks`
// elements per input are probed (spread evenly), keeping big inputs fast.
inline void gradcheck(const Fn& f, std::vector<Tensor> inputs, double eps = 1e-2,
                      double tolerance = 2e-2, int max_checks = 40, uint64_t seed = 99) {
    for (auto& t : inputs) t.zero_grad();
    Tensor out = f(inputs);
    Tensor r = Tensor::randn(out.shape(), seed, out.device());
    const std::vector<float> rv = r.to_vector();
    out.backward(r);  // the gradient of <out, r>

    auto objective = [&](const std::vector<Tensor>& in) {
        NoGradGuard no_grad;
        return dot(f(in).to_vector(), rv);
    };
    for (size_t k = 0; k < inputs.size(); ++k) {
        if (!inputs[k].requires_grad()) continue;
        INFO("input " << k << " " << inputs[k].str());
        REQUIRE(inputs[k].grad().defined());
        const std::vector<float> analytic = inputs[k].grad().to_vector();
        std::vector<float> base = inputs[k].to_vector();
        const int64_t n = int64_t(base.size());
        const int64_t step = std::max<int64_t>(1, n / max_checks);
        double scale = 0;
        for (float a : analytic) scale = std::max(scale, double(std::fabs(a)));
        for (int64_t i = 0; i < n; i += step) {
            std::vector<Tensor> probe = inputs;
            std::vector<float> v = base;
            v[size_t(i)] = base[size_t(i)] + float(eps);
            probe[k] = Tensor::from_vector(v, inputs[k].shape(), inputs[k].device());
            const double plus = objective(probe);
            v[size_t(i)] = base[size_t(i)] - float(eps);
            probe[k] = Tensor::from_vector(v, inputs[k].shape(), inputs[k].device());
            const double minus = objective(probe);
            const double numeric = (plus - minus) / (2 * eps);
            INFO("element " << i << " analytic " << analytic[size_t(i)] << " numeric " << numeric);
            CHECK(std::fabs(numeric - analytic[size_t(i)]) <=
                  tolerance * std::max({std::fabs(numeric), double(std::fabs(analytic[size_t(i)])),
                                        0.1 * scale, 1e-3}));
        }
    }
}

// A leaf tensor of seeded random values that wants a gradient.
inline Tensor param(const Shape& shape, uint64_t seed, Device device = Device::cpu(),
                    float std = 1.f) {
    Tensor t = Tensor::randn(shape, seed, device, 0.f, std);
    t.set_requires_grad();
    return t;
}

}  // namespace nst::test
