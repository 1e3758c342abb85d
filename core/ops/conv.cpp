// conv2d, conv2d_relu and conv_transpose2d. The backends convolve with symmetric zero
// padding only; asymmetric and reflect padding are an explicit pad op in
// front (conv2d) or a crop behind (conv_transpose2d), so one kernel path
// serves TensorFlow 'SAME' networks, reflect-padded ones and VGG alike.
#include "core/ops/common.hpp"

namespace nst {
namespace {

ConvShape conv_shape(const char* op, const Tensor& x, const Tensor& w, int stride, int pad_h,
                     int pad_w) {
    ops::check_int(op, x.numel());
    const int H = int(x.size(2)), W = int(x.size(3)), R = int(w.size(2)), S = int(w.size(3));
    NST_CHECK(stride >= 1, op, ": stride must be >= 1, got ", stride);
    NST_CHECK(R >= 1 && S >= 1 && H + 2 * pad_h >= R && W + 2 * pad_w >= S, op, ": kernel ", R, "x", S,
              " larger than the padded input ", shape_str(x.shape()));
    const ConvShape s = ConvShape::of(int(x.size(0)), int(x.size(1)), H, W, int(w.size(0)), R, S, stride, pad_h, pad_w);
    ops::check_int(op, s.y_size());
    return s;
}

// conv2d (and with relu, conv2d_relu) with symmetric zero padding straight
// on the backend.
Tensor conv2d_symmetric(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, int stride, int pad_h, int pad_w,
                        bool relu) {
    const char* op = relu ? "conv2d_relu" : "conv2d";
    Tensor x = x_in.contiguous(), w = w_in.contiguous(), b = b_in.defined() ? b_in.contiguous() : b_in;
    const ConvShape s = conv_shape(op, x, w, stride, pad_h, pad_w);
    Tensor y = ops::empty_like(x, {s.N, s.K, s.P, s.Q});
    Backend& be = backend(x.device());
    if (ops::is16(x)) {
        NST_CHECK(!relu, op, ": float32 only");
        be.conv2d_forward16(x.dtype(), s, x.raw_data(), w.raw_data(), ops::raw_or_null(b), y.raw_data());
        return y;
    }
    const float* bias = b.defined() ? b.data() : nullptr;
    if (relu) {
        be.conv2d_relu_forward(s, x.data(), w.data(), bias, y.data());
    } else {
        be.conv2d_forward(s, x.data(), w.data(), bias, y.data());
    }
    // conv2d_relu keeps its output, as relu does, to mask the gradient with.
    Tensor mask = relu ? y.detach() : Tensor();
    record(y, op, {x_in, w_in, b_in}, [s, x, w, mask](const Tensor& g_in, const ops::Needs& need) {
        Tensor g = g_in.contiguous();
        Backend& be = backend(g.device());
        if (mask.defined()) {
            Tensor masked = Tensor::empty(g.shape(), g.device());
            be.relu_backward(g.numel(), mask.data(), g.data(), masked.data());
            g = masked;
        }
        ops::Grads grads(3);
        if (need[0]) {
            grads[0] = Tensor::empty(x.shape(), g.device());
            be.conv2d_backward_data(s, g.data(), w.data(), grads[0].data());
        }
        if (need[1]) {
            grads[1] = Tensor::empty(w.shape(), g.device());
            be.conv2d_backward_filter(s, x.data(), g.data(), grads[1].data());
        }
        if (need[2]) {
            grads[2] = Tensor::empty({s.K}, g.device());
            be.conv2d_backward_bias(s, g.data(), grads[2].data());
        }
        return grads;
    });
    return y;
}

Tensor conv2d_padded(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o, bool relu) {
    const char* op = relu ? "conv2d_relu" : "conv2d";
    ops::same_device(op, {&x, &w, &b});
    ops::check_dim(op, "input", x, 4);
    ops::check_dim(op, "weight", w, 4);
    NST_CHECK(w.size(1) == x.size(1), op, ": weight ", shape_str(w.shape()), " expects ", w.size(1),
              " input channels, input is ", shape_str(x.shape()));
    NST_CHECK(!b.defined() || b.shape() == Shape{w.size(0)}, op, ": bias ", b.defined() ? shape_str(b.shape()) : "",
              " does not match weight ", shape_str(w.shape()));
    NST_CHECK(o.pad_top >= 0 && o.pad_bottom >= 0 && o.pad_left >= 0 && o.pad_right >= 0, op, ": negative padding");
    const bool symmetric = o.pad_top == o.pad_bottom && o.pad_left == o.pad_right;
    if (o.pad_mode == PadMode::Zero && symmetric)
        return conv2d_symmetric(x, w, b, o.stride, o.pad_top, o.pad_left, relu);
    Tensor padded = pad(x, o.pad_top, o.pad_bottom, o.pad_left, o.pad_right, o.pad_mode);
    return conv2d_symmetric(padded, w, b, o.stride, 0, 0, relu);
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o) {
    return conv2d_padded(x, w, b, o, false);
}

Tensor conv2d_relu(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o) {
    return conv2d_padded(x, w, b, o, true);
}

Tensor conv_transpose2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b,
                        const ConvTranspose2dOptions& o) {
    const char* op = "conv_transpose2d";
    ops::same_device(op, {&x_in, &w_in, &b});
    ops::check_dim(op, "input", x_in, 4);
    ops::check_dim(op, "weight", w_in, 4);
    NST_CHECK(w_in.size(0) == x_in.size(1), op, ": weight ", shape_str(w_in.shape()),
              " expects ", w_in.size(0), " input channels, input is ", shape_str(x_in.shape()));
    NST_CHECK(o.stride >= 1, op, ": stride must be >= 1");
    NST_CHECK(o.pad_top >= 0 && o.pad_bottom >= 0 && o.pad_left >= 0 && o.pad_right >= 0 &&
                  o.output_padding_h >= 0 && o.output_padding_w >= 0,
              op, ": negative padding");
    NST_CHECK(o.output_padding_h < o.stride && o.output_padding_w < o.stride, op,
              ": output padding must be smaller than the stride");
    Tensor x = x_in.contiguous(), w = w_in.contiguous();
    const int pad_h = std::min(o.pad_top, o.pad_bottom), pad_w = std::min(o.pad_left, o.pad_right);
    // The transposed conv is the data gradient of a conv whose input is the
    // (symmetrically padded) output: describe that conv.
    ConvShape s{};
    ops::check_int(op, x.numel());
    s.N = int(x.size(0)), s.K = int(x.size(1)), s.P = int(x.size(2)), s.Q = int(x.size(3));
    s.C = int(w.size(1)), s.R = int(w.size(2)), s.S = int(w.size(3));
    s.stride = o.stride, s.pad_h = pad_h, s.pad_w = pad_w;
    s.H = (s.P - 1) * o.stride + s.R - 2 * pad_h + o.output_padding_h;
    s.W = (s.Q - 1) * o.stride + s.S - 2 * pad_w + o.output_padding_w;
    const int crop_top = o.pad_top - pad_h, crop_bottom = o.pad_bottom - pad_h;
    const int crop_left = o.pad_left - pad_w, crop_right = o.pad_right - pad_w;
    NST_CHECK(s.H - crop_top - crop_bottom > 0 && s.W - crop_left - crop_right > 0, op,
              ": padding leaves an empty output for input ", shape_str(x.shape()));
    ops::check_int(op, s.x_size());

    Tensor y = ops::empty_like(x, {s.N, s.C, s.H, s.W});
    if (ops::is16(x))
        backend(x.device()).conv_transpose2d_forward16(x.dtype(), s, x.raw_data(), w.raw_data(),
                                                       y.raw_data());
    else
        backend(x.device()).conv2d_backward_data(s, x.data(), w.data(), y.data());
    record(y, op, {x_in, w_in}, [s, x, w](const Tensor& g_in, const ops::Needs& need) {
        Tensor g = g_in.contiguous();
        Backend& be = backend(g.device());
        ops::Grads grads(2);
        if (need[0]) {
            grads[0] = Tensor::empty(x.shape(), g.device());
            be.conv2d_forward(s, g.data(), w.data(), nullptr, grads[0].data());
        }
        if (need[1]) {
            grads[1] = Tensor::empty(w.shape(), g.device());
            be.conv2d_backward_filter(s, g.data(), x.data(), grads[1].data());
        }
        return grads;
    });
    if (crop_top || crop_bottom || crop_left || crop_right)
        y = pad(y, -crop_top, -crop_bottom, -crop_left, -crop_right, PadMode::Zero);
    return b.defined() ? bias_add(y, b) : y;
}

}  // namespace nst
