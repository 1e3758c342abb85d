// CPU memory: plain host allocations. Buffers are 64-byte aligned (one cache
// line, the widest AVX-512 load) so vectorised loops and OpenBLAS never split
// a line on the first element. Copies are memcpy: CPU tensors share one
// address space, so host<->device and device<->device are the same thing.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"
#include "kernels/checks.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cpu/storage16.hpp"

namespace nst {

namespace {

constexpr size_t kAlignment = 64;

}  // namespace

Device CpuBackend::device() const { return Device::cpu(); }

void* CpuBackend::allocate(size_t bytes) {
    // aligned_alloc wants a size that is a multiple of the alignment, and a
    // zero-byte request still gets a real, freeable pointer so callers never
    // special-case empty tensors.
    void* ptr = nullptr;
    if (bytes <= SIZE_MAX - kAlignment) {
        const size_t rounded =
            bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
        ptr = std::aligned_alloc(kAlignment, rounded);
    }
    if (!ptr) throw OutOfMemoryError("out of memory allocating " + format_bytes(bytes) + " on cpu");
    return ptr;
}

void CpuBackend::deallocate(void* ptr, size_t /*bytes*/) { std::free(ptr); }

// memcpy with a null pointer is undefined even for zero bytes.
void CpuBackend::copy_from_host(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memcpy(dst, src, bytes);
}

void CpuBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memcpy(dst, src, bytes);
}

void CpuBackend::copy(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memcpy(dst, src, bytes);
}

void CpuBackend::fill(int64_t n, float value, float* y) {
    NST_CHECK(n >= 0, "fill: negative element count ", n);
    for (int64_t i = 0; i < n; ++i) y[i] = value;
}

void CpuBackend::strided_copy(int ndim, const int64_t* shape, const int64_t* strides,
                              int64_t offset, const float* src, float* dst) {
    NST_CHECK(ndim >= 0 && ndim <= 8, "strided_copy: ndim must be in [0, 8], got ", ndim);
    int64_t total = 1;
    for (int d = 0; d < ndim; ++d) {
        NST_CHECK(shape[d] >= 0, "strided_copy: negative size in shape ",
                  shape_str(std::vector<int64_t>(shape, shape + ndim)));
        total *= shape[d];
    }
    if (total == 0) return;
    if (ndim == 0) {
        dst[0] = src[offset];
        return;
    }

    // Walk the outer dimensions like an odometer; the last dimension is one
    // contiguous run of dst, and a plain memcpy when src is contiguous too.
    const int64_t inner = shape[ndim - 1];
    const int64_t inner_stride = strides[ndim - 1];
    int64_t index[8] = {0};
    int64_t src_pos = offset;
    for (int64_t out = 0; out < total; out += inner) {
        const float* s = src + src_pos;
        float* d = dst + out;
        if (inner_stride == 1) {
            std::memcpy(d, s, size_t(inner) * sizeof(float));
        } else {
            for (int64_t i = 0; i < inner; ++i) d[i] = s[i * inner_stride];
        }
        for (int k = ndim - 2; k >= 0; --k) {
            src_pos += strides[k];
            if (++index[k] < shape[k]) break;
            src_pos -= strides[k] * shape[k];
            index[k] = 0;
        }
    }
}

void CpuBackend::convert(int64_t n, DType from, const void* x, DType to, void* y) {
    check_count("convert", n);
    if (from == to) {
        copy(y, x, size_t(n) * dtype_size(from));
        return;
    }
    std::vector<float> f = from == DType::F32
        ? std::vector<float>(static_cast<const float*>(x), static_cast<const float*>(x) + n)
        : cpu16::widen(from, x, n);
    if (to == DType::F32)
        copy(y, f.data(), size_t(n) * 4);
    else
        cpu16::narrow(to, f, y);
}

}  // namespace nst
