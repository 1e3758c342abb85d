// Gram matrix benchmark (llm.c style, standalone): our CUDA kernels
// (kernels/cuda/gram.cu) against cuBLAS at the VGG-19 style-loss taps.
//
//   gram_bench [--json FILE] [--iters N] [--bandwidth-gbs X] [--sweep] [--sweep-iters N]
//
// For each tap (C, HW) of a 512x512 and a 1024x1024 input (N = 1) it
// validates, then times: the forward G = scale F F^T with our kernel (the
// variant CudaBackend picks for the shape), cuBLAS SGEMM (fp32,
// CUBLAS_COMPUTE_32F), cuBLAS SSYRK (fp32) and cuBLAS GEMM with
// CUBLAS_COMPUTE_32F_FAST_TF32; the backward dF = scale (dG + dG^T) F with our
// kernel and cuBLAS SGEMM of the same [C,C] x [C,HW] product (S = scale (dG +
// dG^T) formed on the host beforehand, so cuBLAS is not charged for it).
// With --sweep it also validates and times every tuning variant of our
// kernels (kernels/cuda/gram_variants.hpp) and names the fastest per shape:
// the table the shape heuristic in gram.cu is set from. It ends with a
// summary of the production choice against the targets (forward: 3x SGEMM at
// C = 64, no slower than SGEMM elsewhere; backward: parity with SGEMM).
//
// Validation, against the CPU reference backend: our kernels (every variant)
// strictly, max error relative to max |reference| <= 1e-4, G exactly
// symmetric, identical bits on a rerun, also on odd shapes (odd C and HW,
// batches, misaligned buffers); exit code 1 if any of ours fails. cuBLAS
// baselines are checked for information only (1e-3 fp32, 1e-2 TF32; SSYRK on
// the triangle it writes): cuBLAS's own SSYRK exceeds 1e-4 at the largest tap.
//
// Timing: CUDA events around each launch, median of --iters (default 100;
// variants in the sweep: --sweep-iters, default 30) after a warm-up; a launch
// slower than 2 ms (cuBLAS SSYRK) gets fewer iterations, at least 5. Each
// batch of launches is queued behind a 1 ms spin kernel so the events measure
// GPU time, not host launch overhead. Shapes whose F is smaller than ~3x the
// L2 rotate among several copies of F (and of dF) so a launch does not find
// its input in L2 from the previous one.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/device.hpp"
#include "core/error.hpp"
#include "kernels/cuda/context.hpp"
#include "kernels/cuda/gram_variants.hpp"

namespace {

// ---- error checks: a failed CUDA or cuBLAS call ends the benchmark -----------
void check_cuda(cudaError_t status, const char* what) {
    if (status != cudaSuccess) {
        std::fprintf(stderr, "gram_bench: %s failed: %s\n", what, cudaGetErrorString(status));
        std::exit(1);
    }
}
void check_cublas(cublasStatus_t status, const char* what) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        std::fprintf(stderr, "gram_bench: %s failed: cuBLAS status %d\n", what, int(status));
        std::exit(1);
    }
}

// ---- inputs -------------------------------------------------------------------
// Uniform [-1, 1) from a seeded splitmix64: fast enough for 10^8 values.
void fill_uniform(std::vector<float>& v, uint64_t seed) {
    uint64_t s = seed;
    for (float& x : v) {
        s += 0x9E3779B97F4A7C15ull;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        x = float(double(z >> 40) / double(1ull << 24) * 2.0 - 1.0);
    }
}

// All device work goes to nst's stream: it is non-blocking, so copies on the
// legacy default stream would not be ordered with our kernels.
cudaStream_t g_stream = nullptr;

struct DeviceBuffer {
    float* ptr = nullptr;
    size_t count = 0;
    bool owner = true;
    explicit DeviceBuffer(size_t n) : count(n) {
        check_cuda(cudaMalloc(&ptr, std::max<size_t>(n, 1) * sizeof(float)), "cudaMalloc");
    }
    DeviceBuffer(float* view, size_t n) : ptr(view), count(n), owner(false) {}  // not owned
    ~DeviceBuffer() {
        if (owner) cudaFree(ptr);
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    void upload(const std::vector<float>& h) {
        check_cuda(cudaMemcpyAsync(ptr, h.data(), count * sizeof(float), cudaMemcpyHostToDevice,
                                   g_stream),
                   "cudaMemcpyAsync H2D");
        check_cuda(cudaStreamSynchronize(g_stream), "upload");
    }
    void copy_from(const DeviceBuffer& other) {
        check_cuda(cudaMemcpyAsync(ptr, other.ptr, count * sizeof(float), cudaMemcpyDeviceToDevice,
                                   g_stream),
                   "cudaMemcpyAsync D2D");
    }
    void fill_nan() {  // all bits set: a NaN, so an entry left unwritten shows
        check_cuda(cudaMemsetAsync(ptr, 0xff, count * sizeof(float), g_stream), "cudaMemsetAsync");
    }
    std::vector<float> download() const {
        std::vector<float> h(count);
        check_cuda(cudaMemcpyAsync(h.data(), ptr, count * sizeof(float), cudaMemcpyDeviceToHost,
                                   g_stream),
                   "cudaMemcpyAsync D2H");
        check_cuda(cudaStreamSynchronize(g_stream), "download");
        return h;
    }
};

// ---- validation ---------------------------------------------------------------
// max |got - ref| / max |ref| over the entries (r, c) of a rows x cols matrix
// that `use` selects; NaN anywhere counts as infinitely wrong.
double max_rel_error(const std::vector<float>& got, const std::vector<float>& ref, int64_t rows,
                     int64_t cols, const std::function<bool(int64_t, int64_t)>& use = nullptr) {
    double max_ref = 0.0, max_err = 0.0;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            if (use && !use(r, c)) continue;
            const double g = got[size_t(r * cols + c)], f = ref[size_t(r * cols + c)];
            max_ref = std::max(max_ref, std::abs(f));
            max_err = std::max(max_err, std::isfinite(g) ? std::abs(g - f) : INFINITY);
        }
    return max_err / std::max(max_ref, 1e-30);
}

bool exactly_symmetric(const std::vector<float>& G, int N, int C) {
    for (int n = 0; n < N; ++n)
        for (int i = 0; i < C; ++i)
            for (int j = 0; j < i; ++j) {
                const float a = G[(size_t(n) * C + i) * C + j], b = G[(size_t(n) * C + j) * C + i];
                if (std::memcmp(&a, &b, sizeof(float)) != 0) return false;
            }
    return true;
}

// ---- timing -------------------------------------------------------------------
__global__ void spin_kernel(uint64_t nanoseconds) {
    uint64_t start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < nanoseconds);
}

class Timer {
public:
    explicit Timer(cudaStream_t stream) : stream_(stream), events_(2 * kBatch) {
        for (auto& e : events_) check_cuda(cudaEventCreate(&e), "cudaEventCreate");
    }
    ~Timer() {
        for (auto& e : events_) cudaEventDestroy(e);
    }
    // Median GPU time in microseconds of launch(i), i = 0, 1, ...
    double median_us(const std::function<void(int)>& launch, int iters) {
        check_cuda(cudaEventRecord(events_[0], stream_), "cudaEventRecord");
        for (int i = 0; i < 3; ++i) launch(i);  // warm-up (and any lazy allocation)
        check_cuda(cudaEventRecord(events_[1], stream_), "cudaEventRecord");
        check_cuda(cudaStreamSynchronize(stream_), "warm-up");
        float warm_ms = 0.0f;
        check_cuda(cudaEventElapsedTime(&warm_ms, events_[0], events_[1]), "cudaEventElapsedTime");
        if (warm_ms / 3 > 2.0f)  // slow (cuBLAS SSYRK): about 0.2 s of launches, at least 5
            iters = std::max(5, std::min(iters, int(200.0f / (warm_ms / 3))));
        std::vector<float> times;
        for (int start = 0; start < iters; start += kBatch) {
            const int count = std::min(kBatch, iters - start);
            spin_kernel<<<1, 1, 0, stream_>>>(1000000);  // 1 ms: the host queues ahead
            check_cuda(cudaGetLastError(), "spin_kernel launch");
            for (int i = 0; i < count; ++i) {
                check_cuda(cudaEventRecord(events_[2 * i], stream_), "cudaEventRecord");
                launch(start + i);
                check_cuda(cudaEventRecord(events_[2 * i + 1], stream_), "cudaEventRecord");
            }
            check_cuda(cudaStreamSynchronize(stream_), "timed launches");
            for (int i = 0; i < count; ++i) {
                float ms = 0.0f;
                check_cuda(cudaEventElapsedTime(&ms, events_[2 * i], events_[2 * i + 1]),
                           "cudaEventElapsedTime");
                times.push_back(ms * 1000.0f);
            }
        }
        std::sort(times.begin(), times.end());
        return times[times.size() / 2];
    }

private:
    static constexpr int kBatch = 20;
    cudaStream_t stream_;
    std::vector<cudaEvent_t> events_;
};

// ---- results ------------------------------------------------------------------
struct Variant {
    std::string name;
    double us = 0, gbs = 0, pct_bw = 0, tflops = 0, speedup_vs_sgemm = 0, max_rel_err = 0;
    double tolerance = 0;
    bool ok = false;
    bool strict = false;  // ours: a failure fails the benchmark; cuBLAS: information only
};

struct ShapeResult {
    int input = 0, C = 0;
    int64_t HW = 0;
    double bytes = 0, flops = 0;
    std::vector<Variant> variants;  // ours (the production choice) first, then cuBLAS
    std::vector<Variant> sweep;     // every tuning variant of ours (--sweep)
    std::string production;         // the production choice's variant name
    int fastest = -1;               // index into sweep of the fastest valid variant
    double sgemm_us = 0;
};

struct Card {
    std::string name;
    int sm_count = 0;
    double peak_gbs = 0;
    std::string peak_source;
};

void finish(Variant& v, const ShapeResult& s, const Card& card) {
    v.gbs = s.bytes / (v.us * 1e-6) / 1e9;
    v.pct_bw = 100.0 * v.gbs / card.peak_gbs;
    v.tflops = s.flops / (v.us * 1e-6) / 1e12;
}

const char* verdict(const Variant& v) {
    if (v.ok) return "";
    return v.strict ? "  FAIL" : "  (over tolerance: informational)";
}

void print_shape(const char* what, const ShapeResult& s) {
    std::printf("\n%s  input %dx%d  C=%d HW=%lld  (%.1f MB moved, %.2f GFLOP as 2*C*C*HW)\n", what,
                s.input, s.input, s.C, static_cast<long long>(s.HW), s.bytes / 1e6, s.flops / 1e9);
    std::printf("  %-30s %10s %9s %7s %9s %10s %12s\n", "variant", "us", "GB/s", "%peak", "TFLOP/s",
                "SGEMM/this", "max rel err");
    auto row = [](const Variant& v, const char* mark) {
        std::printf("  %-30s %10.1f %9.0f %6.1f%% %9.2f %9.2fx %12.2e%s%s\n", v.name.c_str(), v.us,
                    v.gbs, v.pct_bw, v.tflops, v.speedup_vs_sgemm, v.max_rel_err, verdict(v), mark);
    };
    for (const Variant& v : s.variants) row(v, "");
    if (!s.sweep.empty()) {
        std::printf("  -- every variant of ours (production: %s)\n", s.production.c_str());
        for (size_t i = 0; i < s.sweep.size(); ++i) {
            const bool fastest = int(i) == s.fastest, prod = s.sweep[i].name == s.production;
            row(s.sweep[i], fastest && prod ? "  <- fastest, production"
                            : fastest       ? "  <- fastest"
                            : prod          ? "  <- production"
                                            : "");
        }
    }
}

// The issue's targets: forward 3x SGEMM at C = 64, no slower than SGEMM
// elsewhere; backward: no hard target, parity is the aim.
double target_ratio(bool forward, int C) { return forward && C == 64 ? 3.0 : 1.0; }

void print_summary(const std::vector<ShapeResult>& forward,
                   const std::vector<ShapeResult>& backward) {
    std::printf("\nsummary: production choice vs cuBLAS SGEMM fp32 (targets: forward >= 3.00x at "
                "C=64 and >= 1.00x elsewhere; backward aims at parity)\n");
    std::printf("  %-8s %-9s %4s %8s %-30s %9s %9s %8s %7s %4s %-30s %9s %8s\n", "pass", "input",
                "C", "HW", "production variant", "ours us", "SGEMM us", "ratio", "target", "met",
                "fastest variant (--sweep)", "its us", "ratio");
    auto rows = [](const char* pass, bool fwd, const std::vector<ShapeResult>& list) {
        for (const ShapeResult& s : list) {
            const Variant& ours = s.variants[0];
            const double ratio = s.sgemm_us / ours.us, target = target_ratio(fwd, s.C);
            char input[32];
            std::snprintf(input, sizeof input, "%dx%d", s.input, s.input);
            std::printf("  %-8s %-9s %4d %8lld %-30s %9.1f %9.1f %7.2fx %6.2fx %4s", pass, input,
                        s.C, static_cast<long long>(s.HW), s.production.c_str(), ours.us,
                        s.sgemm_us, ratio, target, ratio >= target && ours.ok ? "yes" : "NO");
            if (s.fastest >= 0) {
                const Variant& f = s.sweep[size_t(s.fastest)];
                std::printf(" %-30s %9.1f %7.2fx", f.name.c_str(), f.us, s.sgemm_us / f.us);
            }
            std::printf("\n");
        }
    };
    rows("forward", true, forward);
    rows("backward", false, backward);
}

void write_variants(FILE* f, const std::vector<Variant>& list, const char* indent) {
    for (size_t k = 0; k < list.size(); ++k) {
        const Variant& v = list[k];
        std::fprintf(f,
                     "%s{\"name\": \"%s\", \"us\": %.2f, \"gb_per_s\": %.1f, "
                     "\"pct_peak_bandwidth\": %.2f, \"tflop_per_s\": %.3f, "
                     "\"speedup_vs_sgemm\": %.3f, \"max_rel_err\": %.3e, \"tolerance\": %.0e, "
                     "\"valid\": %s, \"strict\": %s}%s\n",
                     indent, v.name.c_str(), v.us, v.gbs, v.pct_bw, v.tflops, v.speedup_vs_sgemm,
                     v.max_rel_err, v.tolerance, v.ok ? "true" : "false",
                     v.strict ? "true" : "false", k + 1 < list.size() ? "," : "");
    }
}

void write_json(const std::string& path, const Card& card, int iters, int sweep_iters, bool sweep,
                const std::vector<ShapeResult>& forward, const std::vector<ShapeResult>& backward,
                const std::vector<std::string>& odd_lines, bool all_ok) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) {
        std::fprintf(stderr, "gram_bench: cannot write %s\n", path.c_str());
        std::exit(1);
    }
    char date[64];
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    std::fprintf(f, "{\n  \"benchmark\": \"gram_bench\",\n  \"device\": \"%s\",\n", card.name.c_str());
    std::fprintf(f, "  \"sm_count\": %d,\n  \"date\": \"%s\",\n", card.sm_count, date);
    std::fprintf(f, "  \"peak_bandwidth_gbs\": %.1f,\n  \"peak_bandwidth_source\": \"%s\",\n",
                 card.peak_gbs, card.peak_source.c_str());
    std::fprintf(f, "  \"iterations\": %d,\n  \"sweep\": %s,\n  \"sweep_iterations\": %d,\n", iters,
                 sweep ? "true" : "false", sweep_iters);
    std::fprintf(f, "  \"timing\": \"median of CUDA-event times per launch\",\n");
    std::fprintf(f,
                 "  \"flops_note\": \"TFLOP/s counts 2*C*C*HW for every variant, also those that "
                 "compute only half of the symmetric result\",\n");
    std::fprintf(f,
                 "  \"bytes_note\": \"forward: F read once + G written once; backward: F + dG read "
                 "once + dF written once\",\n");
    auto shapes = [&](const char* key, bool fwd, const std::vector<ShapeResult>& list) {
        std::fprintf(f, "  \"%s\": [\n", key);
        for (size_t i = 0; i < list.size(); ++i) {
            const ShapeResult& s = list[i];
            const double ratio = s.sgemm_us / s.variants[0].us;
            std::fprintf(f,
                         "    {\"input\": %d, \"N\": 1, \"C\": %d, \"HW\": %lld, \"bytes\": %.0f, "
                         "\"flops\": %.0f, \"production\": \"%s\", \"sgemm_us\": %.2f, "
                         "\"production_speedup_vs_sgemm\": %.3f, \"target_speedup\": %.1f, "
                         "\"target_met\": %s, \"fastest\": \"%s\",\n     \"variants\": [\n",
                         s.input, s.C, static_cast<long long>(s.HW), s.bytes, s.flops,
                         s.production.c_str(), s.sgemm_us, ratio, target_ratio(fwd, s.C),
                         ratio >= target_ratio(fwd, s.C) && s.variants[0].ok ? "true" : "false",
                         s.fastest >= 0 ? s.sweep[size_t(s.fastest)].name.c_str() : "");
            write_variants(f, s.variants, "      ");
            std::fprintf(f, "     ],\n     \"sweep\": [\n");
            write_variants(f, s.sweep, "      ");
            std::fprintf(f, "     ]}%s\n", i + 1 < list.size() ? "," : "");
        }
        std::fprintf(f, "  ],\n");
    };
    shapes("forward", true, forward);
    shapes("backward", false, backward);
    std::fprintf(f, "  \"odd_shape_checks\": [\n");
    for (size_t i = 0; i < odd_lines.size(); ++i)
        std::fprintf(f, "    \"%s\"%s\n", odd_lines[i].c_str(), i + 1 < odd_lines.size() ? "," : "");
    std::fprintf(f, "  ],\n  \"all_valid\": %s\n}\n", all_ok ? "true" : "false");
    std::fclose(f);
}

constexpr double kStrictTolerance = 1e-4;  // ours
constexpr double kCublasFp32Tolerance = 1e-3;  // informational
constexpr double kTf32Tolerance = 1e-2;        // informational
constexpr size_t kRotateBytes = size_t(150) << 20;  // ~3x the H100's 50 MB L2

// One validation of one of our forward runs: error, exact symmetry, and the
// same bits on a second run (`run` writes G).
struct ForwardCheck {
    double err = 0;
    bool symmetric = false, rerun_same = false;
    bool ok() const { return err <= kStrictTolerance && symmetric && rerun_same; }
};
ForwardCheck check_forward(const std::function<void()>& run, DeviceBuffer& G,
                           const std::vector<float>& G_ref, int N, int C) {
    ForwardCheck c;
    G.fill_nan();
    run();
    const std::vector<float> first = G.download();
    G.fill_nan();
    run();
    const std::vector<float> again = G.download();
    c.err = max_rel_error(first, G_ref, int64_t(N) * C, C);
    c.symmetric = exactly_symmetric(first, N, C);
    c.rerun_same = std::memcmp(first.data(), again.data(), first.size() * sizeof(float)) == 0;
    return c;
}
struct BackwardCheck {
    double err = 0;
    bool rerun_same = false;
    bool ok() const { return err <= kStrictTolerance && rerun_same; }
};
BackwardCheck check_backward(const std::function<void()>& run, DeviceBuffer& dF,
                             const std::vector<float>& dF_ref, int64_t rows, int64_t cols) {
    BackwardCheck c;
    dF.fill_nan();
    run();
    const std::vector<float> first = dF.download();
    dF.fill_nan();
    run();
    const std::vector<float> again = dF.download();
    c.err = max_rel_error(first, dF_ref, rows, cols);
    c.rerun_same = std::memcmp(first.data(), again.data(), first.size() * sizeof(float)) == 0;
    return c;
}

// Every variant of ours (and the backend's production path) on shapes the
// timed taps do not reach: C not a multiple of 64, odd HW, batches, one split
// and many, a misaligned F (the 4-byte copy paths). Returns false on any
// mismatch.
bool odd_shape_checks(nst::Backend& gpu, nst::Backend& cpu, std::vector<std::string>& lines) {
    struct Shape {
        int N, C;
        int64_t HW;
        bool misaligned;  // F and dF one float past a 16-byte boundary
    };
    const Shape shapes[] = {{1, 1, 1, false},      {1, 3, 1000, false},   {2, 70, 333, false},
                            {1, 64, 4097, false},  {3, 130, 77, false},   {1, 200, 40001, false},
                            {2, 256, 123, false},  {1, 1000, 999, false}, {1, 64, 200003, false},
                            {1, 513, 4099, false}, {1, 64, 8192, true},   {2, 192, 4096, true}};
    const int fwd_count = nst::cuda::gram_forward_variant_count();
    const int bwd_count = nst::cuda::gram_backward_variant_count();
    bool all_ok = true;
    uint64_t seed = 100;
    for (const Shape& s : shapes) {
        const size_t f_count = size_t(s.N) * s.C * s.HW, g_count = size_t(s.N) * s.C * s.C;
        std::vector<float> F(f_count), dG(g_count);
        fill_uniform(F, seed++);
        fill_uniform(dG, seed++);
        const float scale = 1.0f / float(double(s.C) * double(s.HW));
        std::vector<float> G_ref(g_count), dF_ref(f_count);
        cpu.gram_forward(s.N, s.C, s.HW, scale, F.data(), G_ref.data());
        cpu.gram_backward(s.N, s.C, s.HW, scale, F.data(), dG.data(), dF_ref.data());

        const size_t pad = s.misaligned ? 1 : 0;
        DeviceBuffer F_mem(f_count + pad), dF_mem(f_count + pad), dG_in(g_count), G_out(g_count);
        DeviceBuffer F_in(F_mem.ptr + pad, f_count), dF_out(dF_mem.ptr + pad, f_count);
        F_in.upload(F);
        dG_in.upload(dG);

        // -1: the backend's production path; 0..: every variant
        double fwd_err = 0, bwd_err = 0;
        std::string failures;
        for (int v = -1; v < fwd_count; ++v) {
            const ForwardCheck c = check_forward(
                [&] {
                    if (v < 0)
                        gpu.gram_forward(s.N, s.C, s.HW, scale, F_in.ptr, G_out.ptr);
                    else
                        nst::cuda::gram_forward_variant(v, 0, s.N, s.C, s.HW, scale, F_in.ptr,
                                                        G_out.ptr);
                },
                G_out, G_ref, s.N, s.C);
            fwd_err = std::max(fwd_err, c.err);
            if (!c.ok()) {
                char buf[160];
                const char* name =
                    v < 0 ? "production forward" : nst::cuda::gram_forward_variant_name(v);
                std::snprintf(buf, sizeof buf, " [%s: err %.2e, symmetric %s, rerun identical %s]",
                              name, c.err, c.symmetric ? "yes" : "NO", c.rerun_same ? "yes" : "NO");
                failures += buf;
            }
        }
        for (int v = -1; v < bwd_count; ++v) {
            const BackwardCheck c = check_backward(
                [&] {
                    if (v < 0)
                        gpu.gram_backward(s.N, s.C, s.HW, scale, F_in.ptr, dG_in.ptr, dF_out.ptr);
                    else
                        nst::cuda::gram_backward_variant(v, 0, s.N, s.C, s.HW, scale, F_in.ptr,
                                                         dG_in.ptr, dF_out.ptr);
                },
                dF_out, dF_ref, int64_t(s.N) * s.C, s.HW);
            bwd_err = std::max(bwd_err, c.err);
            if (!c.ok()) {
                char buf[160];
                const char* name =
                    v < 0 ? "production backward" : nst::cuda::gram_backward_variant_name(v);
                std::snprintf(buf, sizeof buf, " [%s: err %.2e, rerun identical %s]", name, c.err,
                              c.rerun_same ? "yes" : "NO");
                failures += buf;
            }
        }
        const bool ok = failures.empty();
        all_ok = all_ok && ok;
        char line[1024];
        std::snprintf(line, sizeof line,
                      "N=%d C=%d HW=%lld%s: %d forward + %d backward variants, max forward err "
                      "%.2e, max backward err %.2e, symmetric and rerun-identical: %s%s",
                      s.N, s.C, static_cast<long long>(s.HW), s.misaligned ? " misaligned" : "",
                      fwd_count + 1, bwd_count + 1, fwd_err, bwd_err, ok ? "ok" : "FAIL",
                      failures.c_str());
        std::printf("  %s\n", line);
        lines.push_back(line);
    }
    return all_ok;
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // a crash must not swallow the table so far
    std::string json_path = "gram_bench.json";
    int iters = 100, sweep_iters = 30;
    bool sweep = false;
    double bandwidth_flag = 0.0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--json" && i + 1 < argc) {
            json_path = argv[++i];
        } else if (a == "--iters" && i + 1 < argc) {
            iters = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--sweep-iters" && i + 1 < argc) {
            sweep_iters = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--sweep") {
            sweep = true;
        } else if (a == "--bandwidth-gbs" && i + 1 < argc) {
            bandwidth_flag = std::atof(argv[++i]);
        } else {
            std::fprintf(stderr,
                         "usage: %s [--json FILE] [--iters N] [--bandwidth-gbs X] [--sweep] "
                         "[--sweep-iters N]\n",
                         argv[0]);
            return 1;
        }
    }
    try {
        nst::Backend& gpu = nst::backend(nst::Device::cuda(0));
        nst::Backend& cpu = nst::backend(nst::Device::cpu());
        nst::cuda::Context& ctx = nst::cuda::context(0);
        cudaStream_t stream = ctx.stream;
        g_stream = stream;

        Card card;
        cudaDeviceProp prop{};
        check_cuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
        card.name = prop.name;
        card.sm_count = prop.multiProcessorCount;
        int mem_clock_khz = 0, bus_bits = 0;
        const bool have_attrs =
            cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, 0) == cudaSuccess &&
            cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0) == cudaSuccess &&
            mem_clock_khz > 0 && bus_bits > 0;
        cudaGetLastError();  // clear a failed attribute query
        if (bandwidth_flag > 0) {
            card.peak_gbs = bandwidth_flag;
            card.peak_source = "--bandwidth-gbs";
        } else if (have_attrs) {  // double data rate
            card.peak_gbs = 2.0 * mem_clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
            card.peak_source = "memory clock and bus width attributes";
        } else {
            card.peak_gbs = 3350.0;
            card.peak_source = "default (H100 SXM)";
        }
        std::printf("gram_bench on %s (%d SMs), peak memory bandwidth %.0f GB/s (%s)\n",
                    card.name.c_str(), card.sm_count, card.peak_gbs, card.peak_source.c_str());
        std::printf("TFLOP/s counts 2*C*C*HW for every variant; GB/s counts F read once + G (dF) "
                    "written once; median of %d launches%s\n",
                    iters, sweep ? " (sweep variants: fewer, see --sweep-iters)" : "");

        cublasHandle_t handle;  // our own: default math mode, so fp32 SGEMM/SSYRK use no TF32
        check_cublas(cublasCreate(&handle), "cublasCreate");
        check_cublas(cublasSetStream(handle, stream), "cublasSetStream");
        Timer timer(stream);
        bool all_ok = true;

        std::printf("\nodd shapes (every variant of our kernels vs the CPU reference):\n");
        std::vector<std::string> odd_lines;
        all_ok = odd_shape_checks(gpu, cpu, odd_lines) && all_ok;

        std::vector<ShapeResult> forward, backward;
        uint64_t seed = 1;
        for (int input : {512, 1024}) {
            const int64_t px = int64_t(input) * input;
            const struct {
                int C;
                int64_t HW;
            } taps[] = {{64, px}, {128, px / 4}, {256, px / 16}, {512, px / 64}, {512, px / 256}};
            for (const auto& tap : taps) {
                const int C = tap.C;
                const int64_t HW = tap.HW;
                const size_t f_count = size_t(C) * HW, g_count = size_t(C) * C;
                const float scale = 1.0f / float(double(C) * double(HW));
                std::vector<float> F(f_count), dG(g_count);
                fill_uniform(F, seed++);
                fill_uniform(dG, seed++);
                std::vector<float> G_ref(g_count), dF_ref(f_count);
                cpu.gram_forward(1, C, HW, scale, F.data(), G_ref.data());
                cpu.gram_backward(1, C, HW, scale, F.data(), dG.data(), dF_ref.data());
                std::vector<float> S(g_count);  // scale (dG + dG^T) for the cuBLAS backward
                for (int i = 0; i < C; ++i)
                    for (int j = 0; j < C; ++j)
                        S[size_t(i) * C + j] = scale * (dG[size_t(i) * C + j] + dG[size_t(j) * C + i]);

                const size_t f_bytes = f_count * sizeof(float);
                const int copies = int(std::min<size_t>(64, (kRotateBytes + f_bytes - 1) / f_bytes));
                std::vector<std::unique_ptr<DeviceBuffer>> Fs, dFs;
                for (int c = 0; c < copies; ++c) {
                    Fs.push_back(std::make_unique<DeviceBuffer>(f_count));
                    dFs.push_back(std::make_unique<DeviceBuffer>(f_count));
                }
                Fs[0]->upload(F);
                for (int c = 1; c < copies; ++c) Fs[c]->copy_from(*Fs[0]);
                DeviceBuffer G(g_count), dG_dev(g_count), S_dev(g_count);
                dG_dev.upload(dG);
                S_dev.upload(S);
                const float one = 1.0f, zero = 0.0f;
                const int ci = C, hwi = int(HW);

                // ---- forward ----
                ShapeResult fr;
                fr.input = input;
                fr.C = C;
                fr.HW = HW;
                fr.bytes = double(f_count + g_count) * sizeof(float);
                fr.flops = 2.0 * C * double(C) * HW;
                fr.production = nst::cuda::gram_forward_variant_name(
                    nst::cuda::gram_forward_choice(0, 1, C, HW));
                auto gemm = [&](int c, cublasComputeType_t compute) {
                    check_cublas(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, ci, ci, hwi, &scale,
                                              Fs[c]->ptr, CUDA_R_32F, hwi, Fs[c]->ptr, CUDA_R_32F,
                                              hwi, &zero, G.ptr, CUDA_R_32F, ci, compute,
                                              CUBLAS_GEMM_DEFAULT),
                                 "cublasGemmEx");
                };
                const struct {
                    const char* name;
                    double tolerance;
                    bool triangle;
                    std::function<void(int)> run;
                } cublas_fwd[] = {
                    {"cuBLAS SGEMM fp32", kCublasFp32Tolerance, false,
                     [&](int c) { gemm(c, CUBLAS_COMPUTE_32F); }},
                    {"cuBLAS SSYRK fp32", kCublasFp32Tolerance, true,
                     [&](int c) {
                         check_cublas(cublasSsyrk(handle, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_T, ci,
                                                  hwi, &scale, Fs[c]->ptr, hwi, &zero, G.ptr, ci),
                                      "cublasSsyrk");
                     }},
                    {"cuBLAS GEMM TF32", kTf32Tolerance, false,
                     [&](int c) { gemm(c, CUBLAS_COMPUTE_32F_FAST_TF32); }},
                };
                // ours: validated strictly, then timed
                auto time_ours_forward = [&](const std::string& name,
                                             const std::function<void(int)>& run, int n_iters) {
                    Variant v;
                    v.name = name;
                    v.tolerance = kStrictTolerance;
                    v.strict = true;
                    const ForwardCheck c = check_forward([&] { run(0); }, G, G_ref, 1, C);
                    v.max_rel_err = c.err;
                    v.ok = c.ok();
                    if (!c.symmetric || !c.rerun_same)
                        std::printf("  %s at C=%d HW=%lld: symmetric %s, rerun identical %s\n",
                                    name.c_str(), C, static_cast<long long>(HW),
                                    c.symmetric ? "yes" : "NO", c.rerun_same ? "yes" : "NO");
                    v.us = timer.median_us([&](int i) { run(i % copies); }, n_iters);
                    finish(v, fr, card);
                    all_ok = all_ok && v.ok;
                    return v;
                };
                fr.variants.push_back(time_ours_forward(
                    "nst gram (ours)",
                    [&](int c) { gpu.gram_forward(1, C, HW, scale, Fs[c]->ptr, G.ptr); }, iters));
                for (const auto& fv : cublas_fwd) {
                    Variant v;
                    v.name = fv.name;
                    v.tolerance = fv.tolerance;
                    G.fill_nan();
                    fv.run(0);
                    const std::vector<float> got = G.download();
                    // SSYRK fills the column-major upper triangle: row-major c <= r.
                    v.max_rel_err = fv.triangle
                                        ? max_rel_error(got, G_ref, C, C,
                                                        [](int64_t r, int64_t c) { return c <= r; })
                                        : max_rel_error(got, G_ref, C, C);
                    v.ok = v.max_rel_err <= v.tolerance;
                    v.us = timer.median_us([&](int i) { fv.run(i % copies); }, iters);
                    finish(v, fr, card);
                    fr.variants.push_back(v);
                }
                fr.sgemm_us = fr.variants[1].us;
                if (sweep) {
                    for (int k = 0; k < nst::cuda::gram_forward_variant_count(); ++k)
                        fr.sweep.push_back(time_ours_forward(
                            nst::cuda::gram_forward_variant_name(k),
                            [&, k](int c) {
                                nst::cuda::gram_forward_variant(k, 0, 1, C, HW, scale, Fs[c]->ptr,
                                                                G.ptr);
                            },
                            sweep_iters));
                }
                for (Variant& v : fr.variants) v.speedup_vs_sgemm = fr.sgemm_us / v.us;
                for (size_t k = 0; k < fr.sweep.size(); ++k) {
                    fr.sweep[k].speedup_vs_sgemm = fr.sgemm_us / fr.sweep[k].us;
                    if (fr.sweep[k].ok && (fr.fastest < 0 ||
                                           fr.sweep[k].us < fr.sweep[size_t(fr.fastest)].us))
                        fr.fastest = int(k);
                }
                print_shape("forward ", fr);
                forward.push_back(fr);

                // ---- backward ----
                ShapeResult br;
                br.input = input;
                br.C = C;
                br.HW = HW;
                br.bytes = double(2 * f_count + g_count) * sizeof(float);
                br.flops = 2.0 * C * double(C) * HW;
                br.production = nst::cuda::gram_backward_variant_name(
                    nst::cuda::gram_backward_choice(0, 1, C, HW));
                auto time_ours_backward = [&](const std::string& name,
                                              const std::function<void(int)>& run, int n_iters) {
                    Variant v;
                    v.name = name;
                    v.tolerance = kStrictTolerance;
                    v.strict = true;
                    const BackwardCheck c = check_backward([&] { run(0); }, *dFs[0], dF_ref, C, HW);
                    v.max_rel_err = c.err;
                    v.ok = c.ok();
                    if (!c.rerun_same)
                        std::printf("  %s at C=%d HW=%lld: rerun identical NO\n", name.c_str(), C,
                                    static_cast<long long>(HW));
                    v.us = timer.median_us([&](int i) { run(i % copies); }, n_iters);
                    finish(v, br, card);
                    all_ok = all_ok && v.ok;
                    return v;
                };
                br.variants.push_back(time_ours_backward(
                    "nst gram_backward (ours)",
                    [&](int c) {
                        gpu.gram_backward(1, C, HW, scale, Fs[c]->ptr, dG_dev.ptr, dFs[c]->ptr);
                    },
                    iters));
                {
                    Variant v;
                    v.name = "cuBLAS SGEMM fp32";
                    v.tolerance = kCublasFp32Tolerance;
                    auto run = [&](int c) {
                        check_cublas(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, hwi, ci, ci,
                                                  &one, Fs[c]->ptr, CUDA_R_32F, hwi, S_dev.ptr,
                                                  CUDA_R_32F, ci, &zero, dFs[c]->ptr, CUDA_R_32F,
                                                  hwi, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                                     "cublasGemmEx (backward)");
                    };
                    dFs[0]->fill_nan();
                    run(0);
                    v.max_rel_err = max_rel_error(dFs[0]->download(), dF_ref, C, HW);
                    v.ok = v.max_rel_err <= v.tolerance;
                    v.us = timer.median_us([&](int i) { run(i % copies); }, iters);
                    finish(v, br, card);
                    br.variants.push_back(v);
                }
                br.sgemm_us = br.variants[1].us;
                if (sweep) {
                    for (int k = 0; k < nst::cuda::gram_backward_variant_count(); ++k)
                        br.sweep.push_back(time_ours_backward(
                            nst::cuda::gram_backward_variant_name(k),
                            [&, k](int c) {
                                nst::cuda::gram_backward_variant(k, 0, 1, C, HW, scale, Fs[c]->ptr,
                                                                 dG_dev.ptr, dFs[c]->ptr);
                            },
                            sweep_iters));
                }
                for (Variant& v : br.variants) v.speedup_vs_sgemm = br.sgemm_us / v.us;
                for (size_t k = 0; k < br.sweep.size(); ++k) {
                    br.sweep[k].speedup_vs_sgemm = br.sgemm_us / br.sweep[k].us;
                    if (br.sweep[k].ok && (br.fastest < 0 ||
                                           br.sweep[k].us < br.sweep[size_t(br.fastest)].us))
                        br.fastest = int(k);
                }
                print_shape("backward", br);
                backward.push_back(br);
            }
        }
        check_cublas(cublasDestroy(handle), "cublasDestroy");

        print_summary(forward, backward);
        write_json(json_path, card, iters, sweep_iters, sweep, forward, backward, odd_lines,
                   all_ok);
        std::printf("\n%s; results written to %s\n",
                    all_ok ? "all of our results valid" : "VALIDATION FAILED (ours)",
                    json_path.c_str());
        return all_ok ? 0 : 1;
    } catch (const std::exception& e) {  // nst::Error included
        std::fprintf(stderr, "gram_bench: %s\n", e.what());
        return 1;
    }
}
