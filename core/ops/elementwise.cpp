// Elementwise and per-channel ops. Same shapes only: style transfer never
// needs general broadcasting, and a shape mismatch is far more often a bug
// than an intent, so it is an error.
#include "core/ops/common.hpp"

namespace nst {

Tensor relu(const Tensor& x_in) {
    ops::same_device("relu", {&x_in});
    Tensor x = x_in.contiguous();
    Tensor y = ops::empty_like(x, x.shape());
    if (ops::is16(x)) {
        backend(x.device()).relu_forward16(x.dtype(), x.numel(), x.raw_data(), y.raw_data());
        return y;
    }
    backend(x.device()).relu_forward(x.numel(), x.data(), y.data());
    // Saves the output, not the input: the next layer usually saves it too,
    // so the activation is stored once.
    record(y, "relu", {x_in}, [y = y.detach()](const Tensor& g_in, const ops::Needs&) {
        Tensor g = g_in.contiguous(), dx = Tensor::empty(g.shape(), g.device());
        backend(g.device()).relu_backward(g.numel(), y.data(), g.data(), dx.data());
        return ops::Grads{dx};
    });
    return y;
}

Tensor tanh(const Tensor& x_in) {
    ops::same_device("tanh", {&x_in});
    Tensor x = x_in.contiguous();
    Tensor y = Tensor::empty(x.shape(), x.device());
    backend(x.device()).tanh_forward(x.numel(), x.data(), y.data());
    record(y, "tanh", {x_in}, [y = y.detach()](const Tensor& g_in, const ops::Needs&) {
        Tensor g = g_in.contiguous(), dx = Tensor::empty(g.shape(), g.device());
        backend(g.device()).tanh_backward(g.numel(), y.data(), g.data(), dx.data());
        return ops::Grads{dx};
    });
    return y;
}

Tensor add(const Tensor& a_in, const Tensor& b_in) {
    ops::same_device("add", {&a_in, &b_in});
    ops::check_same_shape("add", a_in, b_in);
    Tensor a = a_in.contiguous(), b = b_in.contiguous();
    Tensor y = ops::empty_like(a, a.shape());
    if (ops::is16(a)) {
        backend(a.device()).add_forward16(a.dtype(), a.numel(), a.raw_data(), b.raw_data(), y.raw_data());
        return y;
    }
    backend(a.device()).add_forward(a.numel(), a.data(), b.data(), y.data());
    record(y, "add", {a_in, b_in}, [](const Tensor& g, const ops::Needs&) {
        return ops::Grads{g, g};
    });
    return y;
}

Tensor mul(const Tensor& a_in, const Tensor& b_in) {
    ops::same_device("mul", {&a_in, &b_in});
    ops::check_same_shape("mul", a_in, b_in);
    Tensor a = a_in.contiguous(), b = b_in.contiguous();
    Tensor y = Tensor::empty(a.shape(), a.device());
    backend(a.device()).mul_forward(a.numel(), a.data(), b.data(), y.data());
    record(y, "mul", {a_in, b_in}, [a, b](const Tensor& g_in, const ops::Needs& need) {
        Tensor g = g_in.contiguous();
        Backend& be = backend(g.device());
        ops::Grads grads(2);
        for (int i = 0; i < 2; ++i) {
            if (!need[size_t(i)]) continue;
            grads[size_t(i)] = Tensor::empty(g.shape(), g.device());
            be.mul_forward(g.numel(), g.data(), (i == 0 ? b : a).data(), grads[size_t(i)].data());
        }
        return grads;
    });
    return y;
}

Tensor scale(const Tensor& x_in, float alpha) {
    ops::same_device("scale", {&x_in});
    Tensor x = x_in.contiguous();
    Tensor y = Tensor::empty(x.shape(), x.device());
    backend(x.device()).scale_forward(x.numel(), alpha, x.data(), y.data());
    record(y, "scale", {x_in}, [alpha](const Tensor& g, const ops::Needs&) {
        return ops::Grads{scale(g, alpha)};
    });
    return y;
}

namespace {

// y = x * scale[c] + shift[c] over x [N, C, ...] (y of x's dtype);
// scale/shift are float32 and may be undefined.
void run_channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& y) {
    const int N = int(x.size(0)), C = int(x.size(1));
    const int64_t HW = x.numel() / (int64_t(N) * C);
    const float* a = scale.defined() ? scale.data() : nullptr;
    const float* b = shift.defined() ? shift.data() : nullptr;
    if (ops::is16(x))
        backend(x.device()).channel_affine_forward16(x.dtype(), N, C, HW, x.raw_data(), a, b, y.raw_data());
    else
        backend(x.device()).channel_affine_forward(N, C, HW, x.data(), a, b, y.data());
}

void check_channels(const char* op, const Tensor& x, int64_t values) {
    NST_CHECK(x.dim() >= 2 && x.size(0) > 0 && x.size(1) == values, op, ": ", values,
              " per-channel values for input ", shape_str(x.shape()));
}

}  // namespace

Tensor bias_add(const Tensor& x_in, const Tensor& b_in) {
    ops::same_device("bias_add", {&x_in, &b_in});
    NST_CHECK(b_in.dim() == 1, "bias_add: bias must be 1-D, got ", shape_str(b_in.shape()));
    check_channels("bias_add", x_in, b_in.size(0));
    Tensor x = x_in.contiguous(), b = b_in.contiguous();
    Tensor y = ops::empty_like(x, x.shape());
    run_channel_affine(x, Tensor(), b.to(DType::F32), y);
    if (ops::is16(x)) return y;
    record(y, "bias_add", {x_in, b_in}, [](const Tensor& g_in, const ops::Needs& need) {
        Tensor g = g_in.contiguous();
        ops::Grads grads{g, Tensor()};
        if (need[1]) {
            const int N = int(g.size(0)), C = int(g.size(1));
            grads[1] = Tensor::empty({C}, g.device());
            backend(g.device()).bias_add_backward(N, C, g.numel() / (int64_t(N) * C), g.data(),
                                            grads[1].data());
        }
        return grads;
    });
    return y;
}

Tensor channel_affine(const Tensor& x_in, const std::vector<float>& scale,
                       const std::vector<float>& shift) {
    ops::same_device("channel_affine", {&x_in});
    NST_CHECK(scale.size() == shift.size(), "channel_affine: ", scale.size(), " scales and ",
              shift.size(), " shifts");
    check_channels("channel_affine", x_in, int64_t(scale.size()));
    const int64_t C = int64_t(scale.size());
    Tensor scale_t = Tensor::from_vector(scale, {C}, x_in.device());
    Tensor shift_t = Tensor::from_vector(shift, {C}, x_in.device());
    Tensor x = x_in.contiguous();
    Tensor y = ops::empty_like(x, x.shape());
    run_channel_affine(x, scale_t, shift_t, y);
    if (ops::is16(x)) return y;
    record(y, "channel_affine", {x_in}, [scale_t](const Tensor& g_in, const ops::Needs&) {
        Tensor g = g_in.contiguous(), dx = Tensor::empty(g.shape(), g.device());
        run_channel_affine(g, scale_t, Tensor(), dx);
        return ops::Grads{dx};
    });
    return y;
}

Tensor normalize_channels(const Tensor& x, const std::vector<float>& mean, const std::vector<float>& std) {
    NST_CHECK(mean.size() == std.size(), "normalize_channels: ", mean.size(), " means and ", std.size(),
              " standard deviations");
    std::vector<float> inv(std.size()), shift(std.size());
    for (size_t c = 0; c < std.size(); ++c) {
        NST_CHECK(std[c] > 0, "normalize_channels: standard deviation must be positive");
        inv[c] = 1.f / std[c];
        shift[c] = -mean[c] / std[c];
    }
    return channel_affine(x, inv, shift);
}

}  // namespace nst
