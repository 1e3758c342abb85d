// The backend interface: every op the engine has, as raw-pointer kernels on
// contiguous float32 NCHW buffers that live on the backend's device, plus the
// inference forwards on 16-bit buffers (fp16/bf16). The methods, each with
// its contract, are listed once, in core/backend_methods.inc.
//
// Like ggml, one op API (core/ops.hpp) sits above several backends; users see
// tensors and ops, never this. The CPU backend (kernels/cpu) is the reference;
// the CUDA backend (kernels/cuda) must agree with it. kernels/README.md says
// how to add an op. Conventions:
//  * Every output buffer is fully overwritten (never accumulated into), so
//    callers never need to zero it first.
//  * Scalar results (losses) are one float in device memory; backward kernels
//    read the upstream scalar gradient from device memory too, so the
//    autograd pass never waits for the host.
//  * Reductions are deterministic: the same bits on every run.
//  * Convolutions take symmetric padding only; the op layer composes
//    asymmetric zero padding and reflect padding from pad/crop.
//  * Sizes are checked (kernels/checks.hpp, one set for every backend), and
//    no tensor of a kernel exceeds 2^31 - 1 elements.
//  * Rules that more than one place computes (a convolution's output size,
//    max pooling's ties, the TV stencil) are written once, for host and
//    device code: core/backend_rules.hpp.
//  * The 16-bit forwards (*_forward16, on buffers of `type`, F16 or BF16)
//    have the float32 kernels' semantics: inputs widened to fp32, fp32 math
//    (convolutions accumulate in fp32), each output rounded once to `type`.
//    The CPU backend does exactly that around its float32 kernels, which
//    makes it the reference; GPUs differ only in summation order.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/backend_rules.hpp"
#include "core/device.hpp"
#include "core/dtype.hpp"

namespace nst {

// x [N, C, H, W] * w [K, C, R, S] (+ b [K]) -> y [N, K, P, Q]
struct ConvShape {
    int N, C, H, W;   // input
    int K, R, S;      // output channels, kernel height, kernel width
    int stride;
    int pad_h, pad_w; // zero padding on each side
    int P, Q;         // output height, width
    // The shape of x [N, C, H, W] * w [K, C, R, S], P and Q by conv_output_size.
    static ConvShape of(int N, int C, int H, int W, int K, int R, int S, int stride, int pad_h, int pad_w) {
        return {N, C, H, W, K, R, S, stride, pad_h, pad_w, int(conv_output_size(H, pad_h, R, stride)),
                int(conv_output_size(W, pad_w, S, stride))};
    }
    int64_t x_size() const { return int64_t(N) * C * H * W; }
    int64_t w_size() const { return int64_t(K) * C * R * S; }
    int64_t y_size() const { return int64_t(N) * K * P * Q; }
};

enum class PadMode { Zero, Reflect };

class Backend {
public:
    virtual ~Backend() = default;
    virtual Device device() const = 0;

#define NST_BACKEND_METHOD(result, name, parameters) virtual result name parameters = 0;
#include "core/backend_methods.inc"
#undef NST_BACKEND_METHOD
};

// The backend registry (kernels/backend.cpp), the one place that knows
// which backends this build has. backend(): the backend of a device, made on
// first use under device_environment()'s memory limit; throws nst::Error for
// a device that is not there (for example cuda:0 in a CPU-only build or on a
// machine without a GPU). device_count(): how many devices of a type there
// are (CPU: 1; CUDA: 0 in a CPU-only build, or when the CUDA runtime reports
// any error).
Backend& backend(Device device);
int device_count(DeviceType type);

// The CPU thread count that applies to the calling thread (core/device.cpp):
// 1 after cpu_serial_thread(), else cpu_threads(). The CPU backend sizes the
// calling thread's OpenMP pool to it whenever it is asked for.
int cpu_threads_of_calling_thread();

}  // namespace nst
