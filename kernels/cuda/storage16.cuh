// Element types of the CUDA kernels that also run on 16-bit storage: float,
// __half (fp16) and __nv_bfloat16 (bf16). Kernels load through to_float and
// store through from_float<T>, so one template is the float32 kernel and its
// 16-bit twins, with the same fp32 arithmetic in between.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/dtype.hpp"
#include "kernels/checks.hpp"

namespace nst::cuda {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

// Calls f(T{}) with T the CUDA type of a 16-bit dtype.
template <class F>
void dispatch16(const char* op, DType type, F&& f) {
    if (type == DType::F16)
        f(__half{});
    else if (type == DType::BF16)
        f(__nv_bfloat16{});
    else
        check_type16(op, type);  // throws
}

}  // namespace nst::cuda
