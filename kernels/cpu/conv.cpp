// CPU convolution through oneDNN (Debian libdnnl-dev, the library under
// PyTorch's own CPU convolutions), the way the CUDA backend goes through cuDNN:
//
//  * One primitive per (direction, shape, bias, ReLU), created on first use
//    and cached: at creation oneDNN picks the implementation for this CPU
//    and the memory layouts it runs fastest in (blocked nChw16c on AVX-512
//    machines, format_tag::any).
//  * Our tensors stay plain NCHW; each call reorders them into the layouts
//    the primitive chose only where those differ, and the result back.
//  * Every byte it uses comes from our allocator: the reordered tensors and
//    the primitive's scratchpad (scratchpad_mode::user). So the CPU memory
//    books, NST_MEMORY_LIMIT and the out-of-memory fallbacks see
//    convolutions too.
//  * The forward adds the bias, and conv2d_relu_forward applies the ReLU,
//    inside the primitive (a post-op): no extra pass over the output.
//
// oneDNN runs on OpenMP, the runtime of our own parallel loops, with the
// thread count of cpu_set_threads(). Its results are the same bits from run
// to run, and for the shapes tests/test_threads.cpp tries, whatever the
// thread count. tests/test_cpu_kernels.cpp holds it to a
// direct loop implementation at odd shapes, forward and backward.
#include <dnnl.hpp>
#include <omp.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/storage16.hpp"

namespace nst {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;

const dnnl::engine& cpu_engine() {
    static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

enum class Direction { Forward, ForwardBias, ForwardRelu, ForwardBiasRelu, BackwardData, BackwardFilter };

// What a cached primitive needs besides itself: the layouts it chose.
struct Plan {
    dnnl::primitive primitive;
    memory::desc src, weights, dst, scratchpad;  // in the forward's naming; dst is dy for the backwards
};

memory::desc plain(memory::dims dims, Tag tag) { return memory::desc(dims, memory::data_type::f32, tag); }
memory::desc any(memory::dims dims) { return memory::desc(dims, memory::data_type::f32, Tag::any); }

memory::dims x_dims(const ConvShape& s) { return {s.N, s.C, s.H, s.W}; }
memory::dims w_dims(const ConvShape& s) { return {s.K, s.C, s.R, s.S}; }
memory::dims y_dims(const ConvShape& s) { return {s.N, s.K, s.P, s.Q}; }

dnnl::convolution_forward::primitive_desc forward_pd(const ConvShape& s, bool bias, bool relu) {
    const memory::dims strides{s.stride, s.stride}, pad{s.pad_h, s.pad_w};
    const dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, any(x_dims(s)), any(w_dims(s)),
        bias ? plain({s.K}, Tag::x) : memory::desc(), any(y_dims(s)), strides, pad, pad);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (relu) {
        dnnl::post_ops ops;
        ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
        attr.set_post_ops(ops);
    }
    return dnnl::convolution_forward::primitive_desc(d, attr, cpu_engine());
}

Plan make_plan(Direction dir, const ConvShape& s) {
    const bool bias = dir == Direction::ForwardBias || dir == Direction::ForwardBiasRelu;
    const bool relu = dir == Direction::ForwardRelu || dir == Direction::ForwardBiasRelu;
    const memory::dims strides{s.stride, s.stride}, pad{s.pad_h, s.pad_w};
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (dir != Direction::BackwardData && dir != Direction::BackwardFilter) {
        const auto pd = forward_pd(s, bias, relu);
        return {dnnl::convolution_forward(pd), pd.src_desc(), pd.weights_desc(), pd.dst_desc(), pd.scratchpad_desc()};
    }
    const auto hint = forward_pd(s, false, false);
    if (dir == Direction::BackwardData) {
        const dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, any(x_dims(s)),
                                                      any(w_dims(s)), any(y_dims(s)), strides, pad, pad);
        const dnnl::convolution_backward_data::primitive_desc pd(d, attr, cpu_engine(), hint);
        return {dnnl::convolution_backward_data(pd), pd.diff_src_desc(), pd.weights_desc(), pd.diff_dst_desc(),
                pd.scratchpad_desc()};
    }
    const dnnl::convolution_backward_weights::desc d(dnnl::algorithm::convolution_direct, any(x_dims(s)),
                                                     any(w_dims(s)), any(y_dims(s)), strides, pad, pad);
    const dnnl::convolution_backward_weights::primitive_desc pd(d, attr, cpu_engine(), hint);
    return {dnnl::convolution_backward_weights(pd), pd.src_desc(), pd.diff_weights_desc(), pd.diff_dst_desc(),
            pd.scratchpad_desc()};
}

// Keyed by the calling thread's OpenMP count too: oneDNN splits the work
// for the threads there are when it creates a primitive, and runs it on as
// many whatever the count is later (a serial worker thread, a ScopedThreads).
const Plan& cached_plan(Direction dir, const ConvShape& s) {
    using Key = std::array<int, 12>;
    static std::mutex mutex;
    static auto* plans = new std::map<Key, std::unique_ptr<Plan>>;  // never destroyed
    const Key key{int(dir), s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.stride, s.pad_h, s.pad_w, omp_get_max_threads()};
    std::lock_guard<std::mutex> lock(mutex);
    auto it = plans->find(key);
    if (it == plans->end()) {
        try {
            it = plans->emplace(key, std::make_unique<Plan>(make_plan(dir, s))).first;
        } catch (const dnnl::error& e) {
            fail(detail::concat("conv2d: oneDNN has no convolution for ", conv_shape_str(s), ": ", e.what()));
        }
    }
    return *it->second;
}

// A tensor of ours as the primitive wants it: our buffer itself when the
// layouts agree, else a buffer from our allocator that `in` reorders into
// (inputs) or that is reordered out of into ours by finish() (outputs).
class Operand {
public:
    Operand(CpuBackend& backend, const memory::desc& ours, const memory::desc& wanted, void* data, bool input)
        : backend_(backend), ours_(ours, cpu_engine(), data) {
        if (wanted == ours) {
            used_ = ours_;
            return;
        }
        bytes_ = wanted.get_size();
        buffer_ = backend_.allocate(bytes_);
        used_ = memory(wanted, cpu_engine(), buffer_);
        if (input) reorder(ours_, used_);
    }
    ~Operand() {
        if (buffer_) backend_.deallocate(buffer_, bytes_);
    }
    Operand(const Operand&) = delete;
    Operand& operator=(const Operand&) = delete;

    const memory& get() const { return used_; }
    void finish() {  // outputs: back into our layout
        if (buffer_) reorder(used_, ours_);
    }

private:
    static void reorder(const memory& from, const memory& to) {
        dnnl::stream stream(cpu_engine());
        dnnl::reorder(from, to).execute(stream, const_cast<memory&>(from), const_cast<memory&>(to));
        stream.wait();
    }

    CpuBackend& backend_;
    memory ours_, used_;
    void* buffer_ = nullptr;
    size_t bytes_ = 0;
};

// Runs the plan of `dir`: x (or dx), w (or dw), y (or dy) in the forward's naming.
void run(CpuBackend& backend, Direction dir, const ConvShape& s, const float* x_in, const float* w_in,
         const float* bias, const float* y_in, float* out) {
    const Plan& plan = cached_plan(dir, s);
    const bool forward = dir != Direction::BackwardData && dir != Direction::BackwardFilter;
    auto mutable_ptr = [](const float* p) { return const_cast<float*>(p); };
    Operand x(backend, plain(x_dims(s), Tag::nchw), plan.src,
              dir == Direction::BackwardData ? out : mutable_ptr(x_in), dir != Direction::BackwardData);
    Operand w(backend, plain(w_dims(s), Tag::oihw), plan.weights,
              dir == Direction::BackwardFilter ? out : mutable_ptr(w_in), dir != Direction::BackwardFilter);
    Operand y(backend, plain(y_dims(s), Tag::nchw), plan.dst, forward ? out : mutable_ptr(y_in), !forward);
    const size_t scratch_bytes = plan.scratchpad.get_size();
    void* scratch = scratch_bytes ? backend.allocate(scratch_bytes) : nullptr;
    struct Release {
        CpuBackend& backend;
        void* p;
        size_t bytes;
        ~Release() {
            if (p) backend.deallocate(p, bytes);
        }
    } release{backend, scratch, scratch_bytes};
    std::unordered_map<int, memory> args{{DNNL_ARG_SCRATCHPAD, memory(plan.scratchpad, cpu_engine(), scratch)}};
    switch (dir) {
        case Direction::BackwardData:
            args.insert({{DNNL_ARG_DIFF_SRC, x.get()}, {DNNL_ARG_WEIGHTS, w.get()}, {DNNL_ARG_DIFF_DST, y.get()}});
            break;
        case Direction::BackwardFilter:
            args.insert({{DNNL_ARG_SRC, x.get()}, {DNNL_ARG_DIFF_WEIGHTS, w.get()}, {DNNL_ARG_DIFF_DST, y.get()}});
            break;
        default:
            args.insert({{DNNL_ARG_SRC, x.get()}, {DNNL_ARG_WEIGHTS, w.get()}, {DNNL_ARG_DST, y.get()}});
            if (bias)
                args.insert({DNNL_ARG_BIAS, memory(plain({s.K}, Tag::x), cpu_engine(), mutable_ptr(bias))});
    }
    dnnl::stream stream(cpu_engine());
    plan.primitive.execute(stream, args);
    stream.wait();
    (dir == Direction::BackwardData ? x : dir == Direction::BackwardFilter ? w : y).finish();
}

}  // namespace

void CpuBackend::conv2d_forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y) {
    check_conv("conv2d_forward", s);
    if (s.N == 0) return;
    run(*this, b ? Direction::ForwardBias : Direction::Forward, s, x, w, b, nullptr, y);
}

void CpuBackend::conv2d_relu_forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y) {
    check_conv("conv2d_relu_forward", s);
    if (s.N == 0) return;
    run(*this, b ? Direction::ForwardBiasRelu : Direction::ForwardRelu, s, x, w, b, nullptr, y);
}

void CpuBackend::conv2d_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx) {
    check_conv("conv2d_backward_data", s);
    if (s.N == 0) return;
    run(*this, Direction::BackwardData, s, nullptr, w, nullptr, dy, dx);
}

void CpuBackend::conv2d_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw) {
    check_conv("conv2d_backward_filter", s);
    if (s.N == 0) {  // no images: no gradient
        fill(s.w_size(), 0.0f, dw);
        return;
    }
    run(*this, Direction::BackwardFilter, s, x, nullptr, nullptr, dy, dw);
}

void CpuBackend::conv2d_backward_bias(const ConvShape& s, const float* dy, float* db) {
    check_conv("conv2d_backward_bias", s);
    bias_add_backward(s.N, s.K, int64_t(s.P) * s.Q, dy, db);
}

void CpuBackend::conv2d_forward16(DType type, const ConvShape& s, const void* x, const void* w,
                                  const void* b, void* y) {
    check_type16("conv2d_forward16", type);
    check_conv("conv2d_forward16", s);
    std::vector<float> out(size_t(s.y_size()));
    conv2d_forward(s, cpu16::widen(type, x, s.x_size()).data(), cpu16::widen(type, w, s.w_size()).data(), nullptr,
                   out.data());
    cpu16::narrow(type, out, y);
    if (b)
        channel_affine_forward16(type, s.N, s.K, int64_t(s.P) * s.Q, y, nullptr, cpu16::widen(type, b, s.K).data(),
                                 y);
}

void CpuBackend::conv_transpose2d_forward16(DType type, const ConvShape& s, const void* x,
                                            const void* w, void* y) {
    check_type16("conv_transpose2d_forward16", type);
    check_conv("conv_transpose2d_forward16", s);
    std::vector<float> out(size_t(s.x_size()));
    conv2d_backward_data(s, cpu16::widen(type, x, s.y_size()).data(), cpu16::widen(type, w, s.w_size()).data(),
                         out.data());
    cpu16::narrow(type, out, y);
}

}  // namespace nst
