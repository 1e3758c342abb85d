// The CUDA backend of one device: the methods of core/backend_methods.inc,
// each defined in the kernels/cuda file of its op family
// (kernels/README.md); all work goes to the device's one stream
// (kernels/cuda/context.hpp).
#pragma once
#include "core/backend.hpp"

namespace nst {

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(int index) : index_(index) {}
    Device device() const override;

#define NST_BACKEND_METHOD(result, name, parameters) result name parameters override;
#include "core/backend_methods.inc"
#undef NST_BACKEND_METHOD

private:
    int index_;
};

// How many GPUs the CUDA runtime reports, asked once; 0 when it reports any
// error (no driver, no device), so callers fall back to the CPU
// (kernels/cuda/context.cpp).
int cuda_runtime_device_count();

}  // namespace nst
