// Per-device CUDA state shared by the CUDA backend's kernels: one stream, one
// cuBLAS handle, one cuDNN handle, and the caching allocator. Only compiled
// into CUDA builds (NST_CUDA); nothing outside core/ and kernels/cuda sees it.
//
// Every kernel and library call of a device goes to its one stream, so memory
// freed back to the cache can be handed to the next op without a sync: the
// stream orders the old reader before the new writer.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>

namespace nst::cuda {

struct Context {
    int device = 0;
    cudaStream_t stream = nullptr;
    cublasHandle_t cublas = nullptr;
    cudnnHandle_t cudnn = nullptr;
    int sm_count = 0;
};

// Created on first use; makes `device` current for the calling thread.
Context& context(int device);

// Throw nst::Error naming `what` when a call failed.
void check(cudaError_t status, const char* what);
void check(cublasStatus_t status, const char* what);
void check(cudnnStatus_t status, const char* what);
// After a kernel launch: throws if the launch failed.
void check_launch(const char* kernel);

// The caching allocator (kernels/cuda/allocator.cpp). No cudaMalloc/cudaFree per
// op: freed blocks are kept and reused. Out of memory frees the cache and
// retries once, then throws nst::Error naming the size.
void* allocate(int device, size_t bytes);
void deallocate(int device, void* ptr);
// What allocations may still take under cuda_set_memory_limit (SIZE_MAX: no limit).
size_t headroom(int device);

// Scratch memory from the allocator for the duration of one op (cuDNN
// workspaces, split-K partial sums).
class Workspace {
public:
    Workspace(int device, size_t bytes)
        : device_(device), ptr_(bytes ? allocate(device, bytes) : nullptr) {}
    ~Workspace() {
        if (ptr_) deallocate(device_, ptr_);
    }
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;
    void* get() const { return ptr_; }
    template <class T>
    T* as() const { return static_cast<T*>(ptr_); }

private:
    int device_;
    void* ptr_;
};

}  // namespace nst::cuda
