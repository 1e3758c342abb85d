// Test support for comparing backends method by method (tests/gpu_backend_ops*.cpp).
//
// How one check works. Inputs are seeded random host data uploaded to both
// backends. Every output is poisoned with NaN (through `fill`) before each
// call, so an element a kernel forgets to write comes back non-finite (the
// contract says outputs are fully overwritten). Every buffer also carries a
// guard tail of kGuard floats after its last element whose value must survive
// the call: the caching allocator rounds blocks up, so compute-sanitizer
// cannot see a kernel writing a little past the end, but the guard can.
// Results are compared by the relative L2 error ||gpu - cpu|| / ||cpu||
// (accumulated in double) and by the largest elementwise error relative to
// max |cpu|: a handful of wrong elements (a border, a tail) barely move the L2
// norm of a big tensor, but they show up in the max.
//
// Tolerances (rel L2 / max error over max |cpu|) and why:
//   exact        0    / 0     pure data movement, or one correctly rounded
//                              operation: fill, copy, strided_copy, relu, add,
//                              mul, max pool, avg pool backward (x 0.25), nearest
//                              upsample forward, pad forward, zero pad backward.
//   elementwise  1e-6 / 4e-6  a few roundings whose order or FMA contraction may
//                              differ: tanh (libm vs CUDA), axpby, channel_affine,
//                              avg pool forward, upsample backward, bilinear,
//                              reflect pad backward, the loss backwards.
//   reduction    1e-5 / 1e-4  sums over many elements in a different order:
//                              instance norm, gram, losses, bias_add_backward, conv bias.
//   fp32 gemm    5e-5 / 2e-4  conv and matmul with TF32 off: both sides sum in
//                              fp32 in different orders, and conv backward_filter
//                              sums N*P*Q = 50176 products per weight at 224x224
//                              (sqrt(50176) * 6e-8 ~ 1.3e-5; seen 1.03e-5).
//   tf32 gemm    5e-3 / 2e-2  conv and matmul with TF32 on: operands rounded to
//                              a 10-bit mantissa (2^-11 ~ 5e-4 each), ~1e-3 expected.
//   offset norm  3e-4 / 3e-4  instance norm y when x sits at +1000: y = (x-mean)*rstd
//                              inherits any 1-ulp disagreement of the float mean
//                              (ulp(1000) = 6.1e-5, times rstd ~ 1); rstd itself is
//                              still held to 1e-5, which a naive E[x^2]-E[x]^2 in
//                              float misses by orders of magnitude.
// TF32 may change only convolution and matmul: every other op is held to its
// fp32 tolerance in both modes. Determinism (same bits on a rerun) is required
// of the reductions, as backend.hpp promises.
//
// 16-bit buffers (DeviceBuffer16, Twin16) hold fp16 or bf16 values, are
// poisoned with 0xFFFF (a NaN in both formats) and compared in units of the
// format's precision, as tests/gpu_precision.cpp explains.
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/device.hpp"
#include "core/dtype.hpp"

namespace nst::test {

using nst::Backend;
using nst::ConvShape;
using nst::PadMode;

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---- backends and TF32 -------------------------------------------------------

inline Backend& cpu_backend() { return nst::backend(nst::Device::cpu()); }

inline Backend& gpu_backend() {
    if (nst::cuda_device_count() == 0)
        FAIL("no CUDA device found: gpu_backend_ops compares the CUDA backend with the CPU "
             "and cannot run without a GPU (run `ctest -LE gpu` on machines without one)");
    return nst::backend(nst::Device::cuda(0));
}

class Tf32Scope {
public:
    explicit Tf32Scope(bool allow) : saved_(nst::allow_tf32()) { nst::set_allow_tf32(allow); }
    ~Tf32Scope() { nst::set_allow_tf32(saved_); }
    Tf32Scope(const Tf32Scope&) = delete;
    Tf32Scope& operator=(const Tf32Scope&) = delete;

private:
    bool saved_;
};

// ---- tolerances --------------------------------------------------------------

struct Tolerance {
    double rel_l2;   // ||got - want|| / ||want||
    double rel_max;  // max |got - want| / max |want|
    const char* name;
};

constexpr Tolerance kExact{0.0, 0.0, "exact"};
constexpr Tolerance kElementwise{1e-6, 4e-6, "elementwise"};
constexpr Tolerance kReduction{1e-5, 1e-4, "reduction"};
constexpr Tolerance kFp32Gemm{5e-5, 2e-4, "fp32 conv/matmul"};
constexpr Tolerance kTf32Gemm{5e-3, 2e-2, "tf32 conv/matmul"};
constexpr Tolerance kOffsetNorm{3e-4, 3e-4, "instance norm y at +1000"};

inline Tolerance gemm_tolerance(bool tf32) { return tf32 ? kTf32Gemm : kFp32Gemm; }

// ---- device buffers ----------------------------------------------------------

constexpr int64_t kGuard = 64;
constexpr float kGuardValue = -1.2345e37f;

// n floats (+ a guard tail) on one backend, allocated and freed through it.
class DeviceBuffer {
public:
    DeviceBuffer(Backend& backend, int64_t n) : backend_(backend), n_(n) {
        REQUIRE(n > 0);
        ptr_ = static_cast<float*>(backend_.allocate(bytes_with_guard()));
        const std::vector<float> guard(kGuard, kGuardValue);
        backend_.copy_from_host(ptr_ + n_, guard.data(), sizeof(float) * kGuard);
        poison();
    }
    DeviceBuffer(Backend& backend, const std::vector<float>& host)
        : DeviceBuffer(backend, int64_t(host.size())) {
        upload(host);
    }
    ~DeviceBuffer() { backend_.deallocate(ptr_, bytes_with_guard()); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    float* data() const { return ptr_; }

    void upload(const std::vector<float>& host) {
        REQUIRE(int64_t(host.size()) == n_);
        backend_.copy_from_host(ptr_, host.data(), bytes());
    }
    std::vector<float> download() const {
        std::vector<float> host(static_cast<size_t>(n_));
        backend_.copy_to_host(host.data(), ptr_, bytes());
        return host;
    }
    void poison() { backend_.fill(n_, kNaN, ptr_); }
    bool guard_intact() const {
        std::vector<float> guard(kGuard);
        backend_.copy_to_host(guard.data(), ptr_ + n_, sizeof(float) * kGuard);
        return std::all_of(guard.begin(), guard.end(), [](float v) { return v == kGuardValue; });
    }

private:
    size_t bytes() const { return sizeof(float) * size_t(n_); }
    size_t bytes_with_guard() const { return sizeof(float) * size_t(n_ + kGuard); }

    Backend& backend_;
    int64_t n_;
    float* ptr_ = nullptr;
};

enum class Side { Cpu, Gpu };

// The same buffer on the CPU reference and on the GPU. Built from host data
// it is an input; built from a size it is an output, poisoned on both sides.
struct Twin {
    DeviceBuffer cpu;
    DeviceBuffer gpu;
    explicit Twin(const std::vector<float>& host)
        : cpu(cpu_backend(), host), gpu(gpu_backend(), host) {}
    explicit Twin(int64_t n) : cpu(cpu_backend(), n), gpu(gpu_backend(), n) {}
    DeviceBuffer& on(Side side) { return side == Side::Cpu ? cpu : gpu; }
    float* operator[](Side side) { return on(side).data(); }
};

// ---- comparisons -------------------------------------------------------------

inline void expect_close(const std::string& what, const std::vector<float>& got,
                  const std::vector<float>& want, Tolerance tol) {
    REQUIRE(got.size() == want.size());
    int64_t first_bad_want = -1, first_bad_got = -1, worst = 0;
    double err2 = 0.0, ref2 = 0.0, max_err = 0.0, max_ref = 0.0;
    for (size_t i = 0; i < want.size(); ++i) {
        const double w = want[i], g = got[i];
        if (!std::isfinite(w)) {
            if (first_bad_want < 0) first_bad_want = int64_t(i);
            continue;
        }
        if (!std::isfinite(g)) {
            if (first_bad_got < 0) first_bad_got = int64_t(i);
            continue;
        }
        const double d = std::abs(g - w);
        err2 += d * d;
        ref2 += w * w;
        if (d > max_err) {
            max_err = d;
            worst = int64_t(i);
        }
        max_ref = std::max(max_ref, std::abs(w));
    }
    const double rel_l2 = ref2 > 0.0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
    const double rel_max = max_ref > 0.0 ? max_err / max_ref : max_err;

    std::ostringstream msg;
    msg.precision(9);
    msg << what << ": " << want.size() << " elements, tolerance '" << tol.name << "' (rel L2 "
        << tol.rel_l2 << ", rel max " << tol.rel_max << "); rel L2 error " << rel_l2
        << ", max error " << max_err << " at [" << worst << "] (gpu " << got[size_t(worst)]
        << ", cpu " << want[size_t(worst)] << "), max |cpu| " << max_ref;
    if (first_bad_want >= 0) msg << "; CPU reference non-finite at [" << first_bad_want << "]";
    if (first_bad_got >= 0)
        msg << "; GPU non-finite at [" << first_bad_got
            << "] (an element left unwritten keeps the NaN poison)";
    INFO(msg.str());
    CHECK(first_bad_want < 0);
    CHECK(first_bad_got < 0);
    CHECK(rel_l2 <= tol.rel_l2);
    CHECK(rel_max <= tol.rel_max);
}

// Compares an output's GPU side with its CPU side, guards included.
inline void expect_match(const std::string& what, Twin& out, Tolerance tol) {
    {
        INFO(what << ": wrote into the " << kGuard << " floats after its last element");
        CHECK(out.cpu.guard_intact());
        CHECK(out.gpu.guard_intact());
    }
    expect_close(what, out.gpu.download(), out.cpu.download(), tol);
}

inline void expect_bit_identical(const std::string& what, const std::vector<float>& first,
                          const std::vector<float>& second) {
    REQUIRE(first.size() == second.size());
    int64_t differing = 0, first_diff = -1;
    for (size_t i = 0; i < first.size(); ++i) {
        if (std::memcmp(&first[i], &second[i], sizeof(float)) != 0) {
            if (first_diff < 0) first_diff = int64_t(i);
            ++differing;
        }
    }
    INFO(what << ": two GPU runs on the same inputs differ in " << differing << " of "
              << first.size() << " elements (first at [" << first_diff << "])");
    CHECK(differing == 0);
}

// ---- running an op on both sides ---------------------------------------------

// Runs `op(backend, side)` once on the CPU reference, then on the GPU with TF32
// off and on; every output is poisoned before each run, and `check(tf32)`
// compares after each GPU run.
template <class Op, class Check>
inline void run_and_compare(std::initializer_list<Twin*> outputs, Op op, Check check) {
    for (Twin* out : outputs) out->cpu.poison();
    {
        Tf32Scope fp32(false);
        op(cpu_backend(), Side::Cpu);
    }
    for (bool tf32 : {false, true}) {
        Tf32Scope scope(tf32);
        INFO("TF32 " << (tf32 ? "on" : "off"));
        for (Twin* out : outputs) out->gpu.poison();
        op(gpu_backend(), Side::Gpu);
        check(tf32);
    }
}

// Runs the GPU side of `op` again into the same (re-poisoned) outputs and
// requires the same bits as the run before.
template <class Op>
inline void expect_gpu_rerun_identical(const std::string& what, std::initializer_list<Twin*> outputs,
                                Op op) {
    std::vector<std::vector<float>> first;
    for (Twin* out : outputs) first.push_back(out->gpu.download());
    for (Twin* out : outputs) out->gpu.poison();
    op(gpu_backend(), Side::Gpu);
    size_t i = 0;
    for (Twin* out : outputs) expect_bit_identical(what, first[i++], out->gpu.download());
}

// ---- host data ---------------------------------------------------------------

inline std::vector<float> random_normal(int64_t n, uint32_t seed, float stddev = 1.0f,
                                 float mean = 0.0f) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist(mean, stddev);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = dist(gen);
    return v;
}

inline std::vector<float> random_uniform(int64_t n, uint32_t seed, float lo, float hi) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = dist(gen);
    return v;
}

// All values distinct, so no max-pool window has a tie: a random permutation
// of integers times a power of two, exact in float for n <= 2^24.
inline std::vector<float> distinct_values(int64_t n, uint32_t seed) {
    REQUIRE(n <= (int64_t(1) << 24));
    std::vector<int32_t> perm(static_cast<size_t>(n));
    std::iota(perm.begin(), perm.end(), 0);
    std::mt19937 gen(seed);
    std::shuffle(perm.begin(), perm.end(), gen);
    std::vector<float> v(static_cast<size_t>(n));
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::ldexp(float(perm[i] - n / 2), -16);
    return v;
}

// ---- 16-bit buffers -------------------------------------------------------------

constexpr uint16_t kPoison16 = 0xffff;  // NaN as fp16 and as bf16
constexpr uint16_t kGuard16 = 0x1234;

// n 16-bit values (+ a guard tail) on one backend.
class DeviceBuffer16 {
public:
    DeviceBuffer16(Backend& backend, int64_t n) : backend_(backend), n_(n) {
        REQUIRE(n > 0);
        ptr_ = static_cast<uint16_t*>(backend_.allocate(bytes_with_guard()));
        const std::vector<uint16_t> guard(kGuard, kGuard16);
        backend_.copy_from_host(ptr_ + n_, guard.data(), sizeof(uint16_t) * kGuard);
        poison();
    }
    DeviceBuffer16(Backend& backend, const std::vector<uint16_t>& host)
        : DeviceBuffer16(backend, int64_t(host.size())) {
        backend_.copy_from_host(ptr_, host.data(), bytes());
    }
    ~DeviceBuffer16() { backend_.deallocate(ptr_, bytes_with_guard()); }
    DeviceBuffer16(const DeviceBuffer16&) = delete;
    DeviceBuffer16& operator=(const DeviceBuffer16&) = delete;

    void* data() const { return ptr_; }
    std::vector<uint16_t> download() const {
        std::vector<uint16_t> host(static_cast<size_t>(n_));
        backend_.copy_to_host(host.data(), ptr_, bytes());
        return host;
    }
    void poison() {
        const std::vector<uint16_t> nan(static_cast<size_t>(n_), kPoison16);
        backend_.copy_from_host(ptr_, nan.data(), bytes());
    }
    bool guard_intact() const {
        std::vector<uint16_t> guard(kGuard);
        backend_.copy_to_host(guard.data(), ptr_ + n_, sizeof(uint16_t) * kGuard);
        return std::all_of(guard.begin(), guard.end(), [](uint16_t v) { return v == kGuard16; });
    }

private:
    size_t bytes() const { return sizeof(uint16_t) * size_t(n_); }
    size_t bytes_with_guard() const { return sizeof(uint16_t) * size_t(n_ + kGuard); }

    Backend& backend_;
    int64_t n_;
    uint16_t* ptr_ = nullptr;
};

struct Twin16 {
    DeviceBuffer16 cpu;
    DeviceBuffer16 gpu;
    explicit Twin16(const std::vector<uint16_t>& host) : cpu(cpu_backend(), host), gpu(gpu_backend(), host) {}
    explicit Twin16(int64_t n) : cpu(cpu_backend(), n), gpu(gpu_backend(), n) {}
    DeviceBuffer16& on(Side side) { return side == Side::Cpu ? cpu : gpu; }
    void* operator[](Side side) { return on(side).data(); }
};

inline std::vector<uint16_t> narrowed(DType type, const std::vector<float>& v) {
    std::vector<uint16_t> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = type == DType::F16 ? float_to_f16(v[i]) : float_to_bf16(v[i]);
    return out;
}

inline std::vector<float> widened(DType type, const std::vector<uint16_t>& v) {
    std::vector<float> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = type == DType::F16 ? f16_to_float(v[i]) : bf16_to_float(v[i]);
    return out;
}

// The unit roundoff of a 16-bit format: 2^-11 (fp16), 2^-8 (bf16).
inline double unit16(DType type) { return type == DType::F16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8); }

// A 16-bit output's GPU side against its CPU side, guards included: every
// value finite and max |gpu - cpu| at most `units` of the format at max |cpu|
// (0: bit for bit).
inline void expect_match16(const std::string& what, Twin16& out, DType type, double units) {
    {
        INFO(what << ": wrote into the " << kGuard << " values after its last element");
        CHECK(out.cpu.guard_intact());
        CHECK(out.gpu.guard_intact());
    }
    const std::vector<float> got = widened(type, out.gpu.download()), want = widened(type, out.cpu.download());
    double diff = 0, scale = 0;
    int64_t bad_got = -1, bad_want = -1;
    for (size_t i = 0; i < want.size(); ++i) {
        if (!std::isfinite(want[i]) && bad_want < 0) bad_want = int64_t(i);
        if (!std::isfinite(got[i]) && bad_got < 0) bad_got = int64_t(i);
        if (!std::isfinite(want[i]) || !std::isfinite(got[i])) continue;
        diff = std::max(diff, std::fabs(double(got[i]) - want[i]));
        scale = std::max(scale, std::fabs(double(want[i])));
    }
    INFO(what << " " << dtype_name(type) << ", " << want.size() << " values: max diff " << diff << " of max |cpu| "
              << scale << " (" << (scale > 0 ? diff / scale / unit16(type) : diff) << " units, allowed " << units
              << "); first non-finite: cpu [" << bad_want << "], gpu [" << bad_got << "]");
    CHECK(bad_want < 0);
    CHECK(bad_got < 0);
    CHECK(diff <= units * unit16(type) * scale);
}

}  // namespace nst::test
