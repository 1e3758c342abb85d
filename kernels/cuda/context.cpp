// Per-device CUDA state (stream, cuBLAS and cuDNN handles), the error checks
// every CUDA file uses, the device count and the backend's synchronize.
//
// Contexts are created on first use under a mutex and then published through
// an atomic pointer, so the hot path (every kernel launch asks for its
// context) is one load and no lock. They are deliberately never destroyed:
// tearing down handles from a static destructor races the CUDA driver's own
// shutdown at process exit, and a process has at most a handful of GPUs.
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "core/device.hpp"
#include "core/error.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/cuda_backend.hpp"

namespace nst::cuda {

namespace {

constexpr int kMaxDevices = 64;

std::array<std::atomic<Context*>, kMaxDevices> g_contexts{};
std::mutex g_create_mutex;

void make_current(int device) {
    int current = -1;
    check(cudaGetDevice(&current), "cudaGetDevice");
    if (current != device) check(cudaSetDevice(device), "cudaSetDevice");
}

// Destroys whatever part of a context was built when a later step fails, so a
// failed creation (say, out of memory for the cuBLAS workspace) leaks nothing
// and a retry starts clean.
struct PartialContext {
    Context ctx;
    bool done = false;
    ~PartialContext() {
        if (done) return;
        if (ctx.cudnn) cudnnDestroy(ctx.cudnn);
        if (ctx.cublas) cublasDestroy(ctx.cublas);
        if (ctx.stream) cudaStreamDestroy(ctx.stream);
    }
};

Context* create_context(int device) {
    make_current(device);
    PartialContext partial;
    Context& c = partial.ctx;
    c.device = device;
    // Non-blocking: our stream never waits on (or for) the legacy default
    // stream that other libraries in the process might use.
    check(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    check(cublasCreate(&c.cublas), "cublasCreate");
    check(cublasSetStream(c.cublas, c.stream), "cublasSetStream");
    check(cudnnCreate(&c.cudnn), "cudnnCreate");
    check(cudnnSetStream(c.cudnn, c.stream), "cudnnSetStream");
    check(cudaDeviceGetAttribute(&c.sm_count, cudaDevAttrMultiProcessorCount, device),
          "cudaDeviceGetAttribute(MultiProcessorCount)");
    auto* result = new Context(c);
    partial.done = true;
    return result;
}

}  // namespace

Context& context(int device) {
    const int count = cuda_runtime_device_count();
    NST_CHECK(device >= 0 && device < count && device < kMaxDevices, "cuda:", device,
              " is not available (", count, " CUDA device(s) found)");
    Context* ctx = g_contexts[device].load(std::memory_order_acquire);
    if (!ctx) {
        std::lock_guard<std::mutex> lock(g_create_mutex);
        ctx = g_contexts[device].load(std::memory_order_acquire);
        if (!ctx) {
            ctx = create_context(device);
            g_contexts[device].store(ctx, std::memory_order_release);
        }
    }
    make_current(device);
    return *ctx;
}

void check(cudaError_t status, const char* what) {
    if (status == cudaSuccess) return;
    // Clear the error so it is not reported again by the next unrelated
    // check_launch (sticky errors stay regardless: the context is lost).
    cudaGetLastError();
    fail(std::string("CUDA error: ") + cudaGetErrorString(status) + " in " + what);
}

void check(cublasStatus_t status, const char* what) {
    if (status == CUBLAS_STATUS_SUCCESS) return;
    fail(std::string("cuBLAS error ") + cublasGetStatusName(status) + " in " + what);
}

void check(cudnnStatus_t status, const char* what) {
    if (status == CUDNN_STATUS_SUCCESS) return;
    std::string message = std::string("cuDNN error ") + cudnnGetErrorString(status) + " in " + what;
    // cuDNN 9 keeps a sentence on what exactly it disliked; worth showing.
    char detail[512] = {0};
    cudnnGetLastErrorString(detail, sizeof(detail));
    if (detail[0]) message += std::string(" (") + detail + ")";
    fail(message);
}

void check_launch(const char* kernel) {
    const cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess)
        fail(std::string("CUDA error: ") + cudaGetErrorString(status) + " in kernel launch " +
             kernel);
}

}  // namespace nst::cuda

namespace nst {

int cuda_runtime_device_count() {
    // Asked on every tensor free (backend lookup), so ask the driver once.
    static const int count = [] {
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess) {
            cudaGetLastError();  // "no driver" must not surface in a later check
            return 0;
        }
        return n;
    }();
    return count;
}

void CudaBackend::synchronize() {
    // A device whose context was never made has had nothing queued, so there
    // is nothing to wait for.
    cuda::Context* ctx = cuda::g_contexts[index_].load(std::memory_order_acquire);
    if (!ctx) return;
    cuda::make_current(index_);
    cuda::check(cudaStreamSynchronize(ctx->stream), "synchronize");
}

}  // namespace nst
