// CUDA convolution through cuDNN's legacy cudnnConvolution* API (deprecated
// in cuDNN 9 but supported, and far less code than the graph API for plain
// NCHW float convolutions).
//
// Algorithm choice: once per (device, shape, direction, TF32 setting), cuDNN
// times its algorithms on the real buffers (cudnnFind*AlgorithmEx) and the
// fastest deterministic one is kept, with its descriptors, in a plan cache.
// Style transfer runs the same few shapes thousands of times, so the search
// pays for itself; heuristics alone often pick a slower kernel. Find writes
// the op's output buffer while timing, which is harmless: outputs are fully
// overwritten afterwards anyway. A search that memory pressure held to less
// scratch than the hungriest algorithm wanted is done again, a few times at
// most, once twice the scratch (or all it wanted) can be had; the algorithm
// of that shape may then change within a run.
//
// Determinism: backward algorithms that accumulate with atomics
// (CUDNN_NON_DETERMINISTIC) are skipped, so a plan gives the same bits on
// every call. The bias gradient is our own fixed-order reduction
// (bias_add_backward), not cudnnConvolutionBackwardBias, whose order is unspecified.
//
// Precision: CUDNN_FMA_MATH unless allow_tf32(), so fp32 stays fp32; with
// TF32 allowed the conv runs with the math type the search found fastest.
// fp16/bf16 buffers (the inference forwards) use cuDNN's pseudo-half
// configurations: 16-bit tensors, fp32 accumulation (compute type float),
// tensor-core math; their plans are cached apart from the float32 ones.
#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/storage16.cuh"

namespace nst {

namespace {

// The search never asks for more scratch than this (or half the free memory).
constexpr size_t kMaxSearchWorkspace = size_t(1) << 30;

enum class Direction { Forward, BackwardData, BackwardFilter };

bool ok(cudaError_t status) { return status == cudaSuccess; }
bool ok(cudnnStatus_t status) { return status == CUDNN_STATUS_SUCCESS; }

// Checks a CUDA or cuDNN status, naming the op, its shape and the failed call;
// the message is only built on failure.
template <class Status>
void check_cudnn(Status status, const char* op, const ConvShape& s, const char* call) {
    if (ok(status)) return;
    cuda::check(status, detail::concat(op, " ", conv_shape_str(s), ": ", call).c_str());
}

// Descriptors of one convolution; destroyed only if plan creation fails
// (plans themselves live for the whole process).
struct ConvDescriptors {
    cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;

    ConvDescriptors() = default;
    ConvDescriptors(const ConvDescriptors&) = delete;
    ConvDescriptors& operator=(const ConvDescriptors&) = delete;
    ~ConvDescriptors() {
        if (x) cudnnDestroyTensorDescriptor(x);
        if (y) cudnnDestroyTensorDescriptor(y);
        if (bias) cudnnDestroyTensorDescriptor(bias);
        if (w) cudnnDestroyFilterDescriptor(w);
        if (conv) cudnnDestroyConvolutionDescriptor(conv);
    }
};

struct ConvPlan {
    ConvDescriptors d;
    int algo = 0;  // the direction's cudnnConvolution*Algo_t
    size_t workspace = 0;
    // The search's scratch: the cap it ran under, and what the hungriest
    // algorithm wanted. A plan searched under a lower cap than that (memory
    // was short) is searched again once more scratch can be had.
    size_t search_cap = 0, search_wanted = 0;
};

cudnnDataType_t cudnn_type(DType type) {
    return type == DType::F16 ? CUDNN_DATA_HALF
         : type == DType::BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

// `free_math`: let cuDNN pick the math type (TF32 allowed, or 16-bit data).
void describe(const char* op, const ConvShape& s, DType type, bool free_math, ConvDescriptors& d) {
    const cudnnDataType_t data = cudnn_type(type);
    check_cudnn(cudnnCreateTensorDescriptor(&d.x), op, s, "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateTensorDescriptor(&d.y), op, s, "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateTensorDescriptor(&d.bias), op, s, "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateFilterDescriptor(&d.w), op, s, "cudnnCreateFilterDescriptor");
    check_cudnn(cudnnCreateConvolutionDescriptor(&d.conv), op, s,
               "cudnnCreateConvolutionDescriptor");
    check_cudnn(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NCHW, data, s.N, s.C, s.H, s.W),
               op, s, "cudnnSetTensor4dDescriptor(x)");
    check_cudnn(cudnnSetTensor4dDescriptor(d.y, CUDNN_TENSOR_NCHW, data, s.N, s.K, s.P, s.Q),
               op, s, "cudnnSetTensor4dDescriptor(y)");
    check_cudnn(cudnnSetTensor4dDescriptor(d.bias, CUDNN_TENSOR_NCHW, data, 1, s.K, 1, 1),
               op, s, "cudnnSetTensor4dDescriptor(bias)");
    check_cudnn(cudnnSetFilter4dDescriptor(d.w, data, CUDNN_TENSOR_NCHW, s.K, s.C, s.R, s.S),
               op, s, "cudnnSetFilter4dDescriptor");
    // Cross-correlation, like PyTorch and the CPU reference; fp32 accumulation.
    check_cudnn(cudnnSetConvolution2dDescriptor(d.conv, s.pad_h, s.pad_w, s.stride, s.stride, 1, 1,
                                               CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
               op, s, "cudnnSetConvolution2dDescriptor");
    const cudnnMathType_t math = type != DType::F32 ? CUDNN_TENSOR_OP_MATH
                               : free_math ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
    check_cudnn(cudnnSetConvolutionMathType(d.conv, math),
               op, s, "cudnnSetConvolutionMathType");
    int n = 0, k = 0, p = 0, q = 0;
    check_cudnn(cudnnGetConvolution2dForwardOutputDim(d.conv, d.x, d.w, &n, &k, &p, &q), op, s,
               "cudnnGetConvolution2dForwardOutputDim");
    NST_CHECK(n == s.N && k == s.K && p == s.P && q == s.Q, op, ": cuDNN computes output [", n,
              ", ", k, ", ", p, ", ", q, "] for ", conv_shape_str(s));
}

// The most scratch a search may take now: capped so that it never starves
// the tensors.
size_t search_cap(const char* op, int device, const ConvShape& s) {
    cuda::context(device);  // makes the device current: cudaMemGetInfo reads the current one
    size_t free_bytes = 0, total_bytes = 0;
    check_cudnn(cudaMemGetInfo(&free_bytes, &total_bytes), op, s, "cudaMemGetInfo");
    return std::min({kMaxSearchWorkspace, free_bytes / 2, cuda::headroom(device)});
}

// Scratch for the search: enough for the hungriest algorithm, within
// search_cap(). Algorithms needing more are skipped. Records both in the plan.
template <class WorkspaceSize>
size_t search_workspace(const char* op, int device, const ConvShape& s, int algo_count,
                        WorkspaceSize&& workspace_size, ConvPlan& plan) {
    size_t largest = 0;
    for (int algo = 0; algo < algo_count; ++algo) {
        size_t bytes = 0;
        if (workspace_size(algo, &bytes) == CUDNN_STATUS_SUCCESS) largest = std::max(largest, bytes);
    }
    // Unsupported algorithms leave a message in cuDNN's per-thread error
    // string; reading it clears it, so it cannot garble a later real error.
    char stale[256];
    cudnnGetLastErrorString(stale, sizeof(stale));
    plan.search_cap = search_cap(op, device, s);
    plan.search_wanted = largest;
    return std::min(largest, plan.search_cap);
}

// The fastest result (cuDNN sorts by time) that ran, fits the workspace and is
// deterministic; a non-deterministic one only when nothing else ran at all.
template <class Perf>
const Perf& choose(const char* op, const ConvShape& s, const Perf* perf, int count,
                   size_t workspace_limit) {
    const Perf* fallback = nullptr;
    for (int i = 0; i < count; ++i) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > workspace_limit) continue;
        if (perf[i].determinism == CUDNN_DETERMINISTIC) return perf[i];
        if (!fallback) fallback = &perf[i];
    }
    NST_CHECK(fallback, op, ": cuDNN found no usable algorithm for ", conv_shape_str(s));
    return *fallback;
}

// After the search: with free math, run with the math type the winner was
// timed with (cuDNN's advice); without, keep FMA math, which is what the
// search was restricted to.
template <class Perf, class WorkspaceSize>
void finish_plan(const char* op, const ConvShape& s, bool free_math, const Perf& best,
                 ConvPlan& plan, WorkspaceSize&& workspace_size) {
    plan.algo = int(best.algo);
    if (free_math)
        check_cudnn(cudnnSetConvolutionMathType(plan.d.conv, best.mathType), op, s,
                   "cudnnSetConvolutionMathType");
    size_t bytes = 0;
    check_cudnn(workspace_size(plan.algo, &bytes), op, s, "workspace size of the chosen algorithm");
    plan.workspace = std::max(bytes, best.memory);
}

struct PlanKey {
    std::array<int, 14> v;
    bool operator<(const PlanKey& o) const { return v < o.v; }
};

PlanKey plan_key(int device, Direction dir, const ConvShape& s, DType type, bool free_math) {
    return {{device, int(dir), s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.stride, s.pad_h, s.pad_w,
             int(type), int(free_math)}};
}

// TF32 is a float32 setting; 16-bit data always lets cuDNN choose.
bool free_math_for(DType type) { return type != DType::F32 || allow_tf32(); }

// Returns the cached plan for `key`, building it with make() on first use,
// and again when it was searched under memory pressure (a cap below what the
// hungriest algorithm wanted) and more scratch can be had now: otherwise a
// shape first met while memory was short would keep a slow algorithm for
// the life of the process. The lock is held while searching: a search is
// rare and must not run twice.
template <class Make>
const ConvPlan& cached_plan(const char* op, int device, const ConvShape& s, const PlanKey& key, Make&& make) {
    static std::mutex mutex;
    static auto* plans = new std::map<PlanKey, std::unique_ptr<ConvPlan>>;  // never destroyed
    static auto* replaced = new std::vector<std::unique_ptr<ConvPlan>>;     // a caller may still hold one
    std::lock_guard<std::mutex> lock(mutex);
    auto it = plans->find(key);
    if (it == plans->end()) return *plans->emplace(key, make()).first->second;
    ConvPlan& plan = *it->second;
    // Searched again only for a real gain (twice the scratch, or all it
    // wanted up to the search's own limit), so a cap that creeps up a little
    // does not search every call.
    const size_t target = std::min(plan.search_wanted, kMaxSearchWorkspace);
    if (plan.search_cap < target &&
        search_cap(op, device, s) >= std::min(target, std::max(2 * plan.search_cap, size_t(64) << 20))) {
        std::unique_ptr<ConvPlan> fresh;
        try {
            fresh = make();
        } catch (const Error&) {
            // The old plan works: keep it, and do not search this shape again.
            plan.search_cap = target;
            return plan;
        }
        replaced->push_back(std::move(it->second));
        it->second = std::move(fresh);
    }
    return *it->second;
}

// The plan of one direction, from the cache or searched now: describe the
// convolution, size the search's scratch, let cuDNN time its algorithms on
// the real buffers and keep the best. The directions differ only in their
// cuDNN calls: workspace_size(handle, descriptors, algo, &bytes) and
// find(handle, descriptors, count, &returned, perf, scratch, bytes), and in
// their Perf type and algorithm count.
template <class Perf, int kAlgorithms, class WorkspaceSize, class Find>
const ConvPlan& searched_plan(const char* op, const char* find_name, int device, Direction dir, const ConvShape& s,
                              DType type, WorkspaceSize&& workspace_size_of, Find&& find) {
    const bool free_math = free_math_for(type);
    return cached_plan(op, device, s, plan_key(device, dir, s, type, free_math), [&] {
        auto plan = std::make_unique<ConvPlan>();
        describe(op, s, type, free_math, plan->d);
        const cudnnHandle_t h = cuda::context(device).cudnn;
        const ConvDescriptors& d = plan->d;
        auto workspace_size = [&](int algo, size_t* bytes) { return workspace_size_of(h, d, algo, bytes); };
        const size_t limit = search_workspace(op, device, s, kAlgorithms, workspace_size, *plan);
        cuda::Workspace scratch(device, limit);
        Perf perf[kAlgorithms];
        int count = 0;
        check_cudnn(find(h, d, kAlgorithms, &count, perf, scratch.get(), limit), op, s, find_name);
        finish_plan(op, s, free_math, choose(op, s, perf, count, limit), *plan, workspace_size);
        return plan;
    });
}

const ConvPlan& forward_plan(int device, const ConvShape& s, DType type, const void* x, const void* w, void* y) {
    return searched_plan<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT>(
        "conv2d_forward", "cudnnFindConvolutionForwardAlgorithmEx", device, Direction::Forward, s, type,
        [](cudnnHandle_t h, const ConvDescriptors& d, int algo, size_t* bytes) {
            return cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y,
                                                           cudnnConvolutionFwdAlgo_t(algo), bytes);
        },
        [&](cudnnHandle_t h, const ConvDescriptors& d, int most, int* count, cudnnConvolutionFwdAlgoPerf_t* perf,
            void* scratch, size_t bytes) {
            return cudnnFindConvolutionForwardAlgorithmEx(h, d.x, x, d.w, w, d.conv, d.y, y, most, count, perf,
                                                          scratch, bytes);
        });
}

const ConvPlan& backward_data_plan(int device, const ConvShape& s, DType type, const void* dy, const void* w,
                                   void* dx) {
    return searched_plan<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT>(
        "conv2d_backward_data", "cudnnFindConvolutionBackwardDataAlgorithmEx", device, Direction::BackwardData, s,
        type,
        [](cudnnHandle_t h, const ConvDescriptors& d, int algo, size_t* bytes) {
            return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x,
                                                                cudnnConvolutionBwdDataAlgo_t(algo), bytes);
        },
        [&](cudnnHandle_t h, const ConvDescriptors& d, int most, int* count,
            cudnnConvolutionBwdDataAlgoPerf_t* perf, void* scratch, size_t bytes) {
            return cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, w, d.y, dy, d.conv, d.x, dx, most, count,
                                                               perf, scratch, bytes);
        });
}

const ConvPlan& backward_filter_plan(int device, const ConvShape& s, const float* x, const float* dy, float* dw) {
    return searched_plan<cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT>(
        "conv2d_backward_filter", "cudnnFindConvolutionBackwardFilterAlgorithmEx", device,
        Direction::BackwardFilter, s, DType::F32,
        [](cudnnHandle_t h, const ConvDescriptors& d, int algo, size_t* bytes) {
            return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w,
                                                                  cudnnConvolutionBwdFilterAlgo_t(algo), bytes);
        },
        [&](cudnnHandle_t h, const ConvDescriptors& d, int most, int* count,
            cudnnConvolutionBwdFilterAlgoPerf_t* perf, void* scratch, size_t bytes) {
            return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x, x, d.y, dy, d.conv, d.w, dw, most, count,
                                                                 perf, scratch, bytes);
        });
}

}  // namespace

namespace {

// y = conv(x, w) without bias, on buffers of `type`; returns the plan used.
// The scaling factors are float for every data type of the pseudo-half
// configurations.
const ConvPlan& run_forward(int device, const ConvShape& s, DType type, const void* x, const void* w,
                 void* y) {
    const char* op = "conv2d_forward";
    const ConvPlan& plan = forward_plan(device, s, type, x, w, y);
    cuda::Workspace workspace(device, plan.workspace);
    const float one = 1.0f, zero = 0.0f;
    check_cudnn(cudnnConvolutionForward(cuda::context(device).cudnn, &one, plan.d.x, x, plan.d.w,
                                       w, plan.d.conv, cudnnConvolutionFwdAlgo_t(plan.algo),
                                       workspace.get(), plan.workspace, &zero, plan.d.y, y),
               op, s, "cudnnConvolutionForward");
    return plan;
}

void run_backward_data(int device, const ConvShape& s, DType type, const void* dy, const void* w,
                       void* dx) {
    const char* op = "conv2d_backward_data";
    const ConvPlan& plan = backward_data_plan(device, s, type, dy, w, dx);
    cuda::Workspace workspace(device, plan.workspace);
    const float one = 1.0f, zero = 0.0f;
    check_cudnn(cudnnConvolutionBackwardData(cuda::context(device).cudnn, &one, plan.d.w, w,
                                            plan.d.y, dy, plan.d.conv,
                                            cudnnConvolutionBwdDataAlgo_t(plan.algo),
                                            workspace.get(), plan.workspace, &zero, plan.d.x, dx),
               op, s, "cudnnConvolutionBackwardData");
}

}  // namespace

void CudaBackend::conv2d_forward(const ConvShape& s, const float* x, const float* w,
                                 const float* b, float* y) {
    const char* op = "conv2d_forward";
    check_conv(op, s);
    if (s.N == 0) return;  // empty batch: y is empty
    const ConvPlan& plan = run_forward(index_, s, DType::F32, x, w, y);
    if (b) {
        const float one = 1.0f;
        check_cudnn(cudnnAddTensor(cuda::context(index_).cudnn, &one, plan.d.bias, b, &one,
                                  plan.d.y, y),
                   op, s, "cudnnAddTensor(bias)");
    }
}

// cuDNN's fused conv + bias + activation (cudnnConvolutionBiasActivationForward)
// takes a narrower set of algorithms: the ReLU is its own in-place pass.
void CudaBackend::conv2d_relu_forward(const ConvShape& s, const float* x, const float* w, const float* b,
                                      float* y) {
    conv2d_forward(s, x, w, b, y);
    relu_forward(s.y_size(), y, y);
}

void CudaBackend::conv2d_backward_data(const ConvShape& s, const float* dy, const float* w,
                                       float* dx) {
    check_conv("conv2d_backward_data", s);
    if (s.N == 0) return;
    run_backward_data(index_, s, DType::F32, dy, w, dx);
}

void CudaBackend::conv2d_forward16(DType type, const ConvShape& s, const void* x, const void* w,
                                   const void* b, void* y) {
    const char* op = "conv2d_forward16";
    check_type16(op, type);
    check_conv(op, s);
    if (s.N == 0) return;
    run_forward(index_, s, type, x, w, y);
    if (!b) return;
    // The bias in our own kernel, in fp32 onto the rounded output (backend.hpp).
    cuda::Workspace bias(index_, size_t(s.K) * sizeof(float));
    convert(s.K, type, b, DType::F32, bias.get());
    channel_affine_forward16(type, s.N, s.K, int64_t(s.P) * s.Q, y, nullptr, bias.as<float>(), y);
}

void CudaBackend::conv_transpose2d_forward16(DType type, const ConvShape& s, const void* x,
                                             const void* w, void* y) {
    const char* op = "conv_transpose2d_forward16";
    check_type16(op, type);
    check_conv(op, s);
    if (s.N == 0) return;
    run_backward_data(index_, s, type, x, w, y);
}

void CudaBackend::conv2d_backward_filter(const ConvShape& s, const float* x, const float* dy,
                                         float* dw) {
    const char* op = "conv2d_backward_filter";
    check_conv(op, s);
    cuda::Context& ctx = cuda::context(index_);
    if (s.N == 0) {  // no images: the gradient is an empty sum
        check_cudnn(cudaMemsetAsync(dw, 0, size_t(s.w_size()) * sizeof(float), ctx.stream), op, s,
                   "cudaMemsetAsync");
        return;
    }
    const ConvPlan& plan = backward_filter_plan(index_, s, x, dy, dw);
    cuda::Workspace workspace(index_, plan.workspace);
    const float one = 1.0f, zero = 0.0f;
    check_cudnn(cudnnConvolutionBackwardFilter(
                   ctx.cudnn, &one, plan.d.x, x, plan.d.y, dy, plan.d.conv,
                   cudnnConvolutionBwdFilterAlgo_t(plan.algo), workspace.get(), plan.workspace,
                   &zero, plan.d.w, dw),
               op, s, "cudnnConvolutionBackwardFilter");
}

void CudaBackend::conv2d_backward_bias(const ConvShape& s, const float* dy, float* db) {
    check_conv("conv2d_backward_bias", s);
    bias_add_backward(s.N, s.K, int64_t(s.P) * s.Q, dy, db);
}

}  // namespace nst
