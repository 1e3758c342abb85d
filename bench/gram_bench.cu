// Gram matrix benchmark (llm.c style, standalone): our CUDA kernels
// (kernels/cuda/gram.cu) against cuBLAS at the VGG-19 style-loss taps.
//
//   gram_bench [--json FILE] [--iters N] [--bandwidth-gbs X]
//
// For each tap (C, HW) of a 512x512 and a 1024x1024 input (N = 1) it
// validates, then times: the forward G = scale F F^T with our kernel, cuBLAS
// SGEMM (fp32, CUBLAS_COMPUTE_32F), cuBLAS SSYRK (fp32) and cuBLAS GEMM with
// CUBLAS_COMPUTE_32F_FAST_TF32; the backward dF = scale (dG + dG^T) F with our
// kernel and cuBLAS SGEMM of the same [C,C] x [C,HW] product (S = scale (dG +
// dG^T) formed on the host beforehand, so cuBLAS is not charged for it).
// Every result is checked against the CPU reference backend first (max error
// relative to max |reference|: 1e-4 for fp32, 1e-2 for TF32; SSYRK on the
// triangle it writes); our kernels also on odd shapes, for exact symmetry and
// for identical bits on a rerun. Exit code 1 if anything fails.
//
// Timing: CUDA events around each launch, median of --iters (default 100)
// after a warm-up. Each batch of launches is queued behind a 1 ms spin kernel
// so the events measure GPU time, not host launch overhead. Shapes whose F is
// smaller than ~3x the L2 rotate among several copies of F (and of dF) so a
// launch does not find its input in L2 from the previous one.
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
#include "core/cuda_context.hpp"
#include "core/device.hpp"
#include "core/error.hpp"

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
    explicit DeviceBuffer(size_t n) : count(n) {
        check_cuda(cudaMalloc(&ptr, std::max<size_t>(n, 1) * sizeof(float)), "cudaMalloc");
    }
    ~DeviceBuffer() { cudaFree(ptr); }
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
        for (int i = 0; i < 3; ++i) launch(i);  // warm-up (and any lazy allocation)
        check_cuda(cudaStreamSynchronize(stream_), "warm-up");
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
};

struct ShapeResult {
    int input = 0, C = 0;
    int64_t HW = 0;
    double bytes = 0, flops = 0;
    std::vector<Variant> variants;
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

void print_shape(const char* what, const ShapeResult& s) {
    std::printf("\n%s  input %dx%d  C=%d HW=%lld  (%.1f MB moved, %.2f GFLOP as 2*C*C*HW)\n", what,
                s.input, s.input, s.C, static_cast<long long>(s.HW), s.bytes / 1e6, s.flops / 1e9);
    std::printf("  %-22s %10s %9s %7s %9s %10s %12s\n", "variant", "us", "GB/s", "%peak", "TFLOP/s",
                "SGEMM/this", "max rel err");
    for (const Variant& v : s.variants)
        std::printf("  %-22s %10.1f %9.0f %6.1f%% %9.2f %9.2fx %12.2e%s\n", v.name.c_str(), v.us,
                    v.gbs, v.pct_bw, v.tflops, v.speedup_vs_sgemm, v.max_rel_err,
                    v.ok ? "" : "  FAIL");
}

void write_json(const std::string& path, const Card& card, int iters,
                const std::vector<ShapeResult>& forward, const std::vector<ShapeResult>& backward,
                const std::vector<std::string>& sweep, bool all_ok) {
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
    std::fprintf(f, "  \"iterations\": %d,\n  \"timing\": \"median of CUDA-event times per launch\",\n",
                 iters);
    std::fprintf(f,
                 "  \"flops_note\": \"TFLOP/s counts 2*C*C*HW for every variant, also those that "
                 "compute only half of the symmetric result\",\n");
    std::fprintf(f,
                 "  \"bytes_note\": \"forward: F read once + G written once; backward: F + dG read "
                 "once + dF written once\",\n");
    auto shapes = [&](const char* key, const std::vector<ShapeResult>& list, bool last) {
        std::fprintf(f, "  \"%s\": [\n", key);
        for (size_t i = 0; i < list.size(); ++i) {
            const ShapeResult& s = list[i];
            std::fprintf(f,
                         "    {\"input\": %d, \"N\": 1, \"C\": %d, \"HW\": %lld, \"bytes\": %.0f, "
                         "\"flops\": %.0f, \"variants\": [\n",
                         s.input, s.C, static_cast<long long>(s.HW), s.bytes, s.flops);
            for (size_t k = 0; k < s.variants.size(); ++k) {
                const Variant& v = s.variants[k];
                std::fprintf(f,
                             "      {\"name\": \"%s\", \"us\": %.2f, \"gb_per_s\": %.1f, "
                             "\"pct_peak_bandwidth\": %.2f, \"tflop_per_s\": %.3f, "
                             "\"speedup_vs_sgemm\": %.3f, \"max_rel_err\": %.3e, "
                             "\"tolerance\": %.0e, \"valid\": %s}%s\n",
                             v.name.c_str(), v.us, v.gbs, v.pct_bw, v.tflops, v.speedup_vs_sgemm,
                             v.max_rel_err, v.tolerance, v.ok ? "true" : "false",
                             k + 1 < s.variants.size() ? "," : "");
            }
            std::fprintf(f, "    ]}%s\n", i + 1 < list.size() ? "," : "");
        }
        std::fprintf(f, "  ]%s\n", last ? "" : ",");
    };
    shapes("forward", forward, false);
    shapes("backward", backward, false);
    std::fprintf(f, "  \"odd_shape_checks\": [\n");
    for (size_t i = 0; i < sweep.size(); ++i)
        std::fprintf(f, "    \"%s\"%s\n", sweep[i].c_str(), i + 1 < sweep.size() ? "," : "");
    std::fprintf(f, "  ],\n  \"all_valid\": %s\n}\n", all_ok ? "true" : "false");
    std::fclose(f);
}

constexpr double kFp32Tolerance = 1e-4;
constexpr double kTf32Tolerance = 1e-2;
constexpr size_t kRotateBytes = size_t(150) << 20;  // ~3x the H100's 50 MB L2

// Our kernels on shapes the timed taps do not reach: C not a multiple of 64,
// odd HW, batches, one split and many. Returns false on any mismatch.
bool odd_shape_checks(nst::Backend& gpu, nst::Backend& cpu, std::vector<std::string>& lines) {
    struct Shape {
        int N, C;
        int64_t HW;
    };
    const Shape shapes[] = {{1, 1, 1},     {1, 3, 1000},   {2, 70, 333},   {1, 64, 4097},
                            {3, 130, 77},  {1, 200, 40001}, {2, 256, 123}, {1, 1000, 999},
                            {1, 64, 200003}, {1, 513, 4099}};
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

        DeviceBuffer dF_in(f_count), dG_in(g_count), G_out(g_count), dF_out(f_count);
        dF_in.upload(F);
        dG_in.upload(dG);
        G_out.fill_nan();
        dF_out.fill_nan();
        gpu.gram_forward(s.N, s.C, s.HW, scale, dF_in.ptr, G_out.ptr);
        const std::vector<float> G1 = G_out.download();
        gpu.gram_forward(s.N, s.C, s.HW, scale, dF_in.ptr, G_out.ptr);
        const std::vector<float> G2 = G_out.download();
        gpu.gram_backward(s.N, s.C, s.HW, scale, dF_in.ptr, dG_in.ptr, dF_out.ptr);
        const std::vector<float> dF1 = dF_out.download();

        const double e_fwd = max_rel_error(G1, G_ref, int64_t(s.N) * s.C, s.C);
        const double e_bwd = max_rel_error(dF1, dF_ref, int64_t(s.N) * s.C, s.HW);
        const bool symmetric = exactly_symmetric(G1, s.N, s.C);
        const bool rerun_same = std::memcmp(G1.data(), G2.data(), g_count * sizeof(float)) == 0;
        const bool ok = e_fwd <= kFp32Tolerance && e_bwd <= kFp32Tolerance && symmetric &&
                        rerun_same;
        all_ok = all_ok && ok;
        char line[256];
        std::snprintf(line, sizeof line,
                      "N=%d C=%d HW=%lld: forward err %.2e, symmetric %s, rerun identical %s, "
                      "backward err %.2e: %s",
                      s.N, s.C, static_cast<long long>(s.HW), e_fwd, symmetric ? "yes" : "NO",
                      rerun_same ? "yes" : "NO", e_bwd, ok ? "ok" : "FAIL");
        std::printf("  %s\n", line);
        lines.push_back(line);
    }
    return all_ok;
}

}  // namespace

int main(int argc, char** argv) {
    std::string json_path = "gram_bench.json";
    int iters = 100;
    double bandwidth_flag = 0.0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--json" && i + 1 < argc) {
            json_path = argv[++i];
        } else if (a == "--iters" && i + 1 < argc) {
            iters = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--bandwidth-gbs" && i + 1 < argc) {
            bandwidth_flag = std::atof(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: %s [--json FILE] [--iters N] [--bandwidth-gbs X]\n",
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
                    "written once; median of %d launches\n",
                    iters);

        cublasHandle_t handle;  // our own: default math mode, so fp32 SGEMM/SSYRK use no TF32
        check_cublas(cublasCreate(&handle), "cublasCreate");
        check_cublas(cublasSetStream(handle, stream), "cublasSetStream");
        Timer timer(stream);
        bool all_ok = true;

        std::printf("\nodd shapes (our kernels vs the CPU reference):\n");
        std::vector<std::string> sweep;
        all_ok = odd_shape_checks(gpu, cpu, sweep) && all_ok;

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
                } fwd_variants[] = {
                    {"nst gram (ours)", kFp32Tolerance, false,
                     [&](int c) { gpu.gram_forward(1, C, HW, scale, Fs[c]->ptr, G.ptr); }},
                    {"cuBLAS SGEMM fp32", kFp32Tolerance, false,
                     [&](int c) { gemm(c, CUBLAS_COMPUTE_32F); }},
                    {"cuBLAS SSYRK fp32", kFp32Tolerance, true,
                     [&](int c) {
                         check_cublas(cublasSsyrk(handle, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_T, ci,
                                                  hwi, &scale, Fs[c]->ptr, hwi, &zero, G.ptr, ci),
                                      "cublasSsyrk");
                     }},
                    {"cuBLAS GEMM TF32", kTf32Tolerance, false,
                     [&](int c) { gemm(c, CUBLAS_COMPUTE_32F_FAST_TF32); }},
                };
                for (const auto& fv : fwd_variants) {
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
                    if (std::string(fv.name) == "nst gram (ours)") {
                        const bool symmetric = exactly_symmetric(got, 1, C);
                        fv.run(0);
                        const std::vector<float> again = G.download();
                        const bool same =
                            std::memcmp(got.data(), again.data(), g_count * sizeof(float)) == 0;
                        if (!symmetric || !same)
                            std::printf("  our forward at C=%d HW=%lld: symmetric %s, rerun identical %s\n",
                                        C, static_cast<long long>(HW), symmetric ? "yes" : "NO",
                                        same ? "yes" : "NO");
                        v.ok = v.ok && symmetric && same;
                    }
                    v.us = timer.median_us([&](int i) { fv.run(i % copies); }, iters);
                    finish(v, fr, card);
                    fr.variants.push_back(v);
                    all_ok = all_ok && v.ok;
                }
                for (Variant& v : fr.variants) v.speedup_vs_sgemm = fr.variants[1].us / v.us;
                print_shape("forward ", fr);
                forward.push_back(fr);

                // ---- backward ----
                ShapeResult br;
                br.input = input;
                br.C = C;
                br.HW = HW;
                br.bytes = double(2 * f_count + g_count) * sizeof(float);
                br.flops = 2.0 * C * double(C) * HW;
                const struct {
                    const char* name;
                    std::function<void(int)> run;
                } bwd_variants[] = {
                    {"nst gram_backward",
                     [&](int c) {
                         gpu.gram_backward(1, C, HW, scale, Fs[c]->ptr, dG_dev.ptr, dFs[c]->ptr);
                     }},
                    {"cuBLAS SGEMM fp32",
                     [&](int c) {
                         check_cublas(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, hwi, ci, ci,
                                                   &one, Fs[c]->ptr, CUDA_R_32F, hwi, S_dev.ptr,
                                                   CUDA_R_32F, ci, &zero, dFs[c]->ptr, CUDA_R_32F,
                                                   hwi, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                                      "cublasGemmEx (backward)");
                     }},
                };
                for (const auto& bv : bwd_variants) {
                    Variant v;
                    v.name = bv.name;
                    v.tolerance = kFp32Tolerance;
                    dFs[0]->fill_nan();
                    bv.run(0);
                    v.max_rel_err = max_rel_error(dFs[0]->download(), dF_ref, C, HW);
                    v.ok = v.max_rel_err <= v.tolerance;
                    v.us = timer.median_us([&](int i) { bv.run(i % copies); }, iters);
                    finish(v, br, card);
                    br.variants.push_back(v);
                    all_ok = all_ok && v.ok;
                }
                for (Variant& v : br.variants) v.speedup_vs_sgemm = br.variants[1].us / v.us;
                print_shape("backward", br);
                backward.push_back(br);
            }
        }
        check_cublas(cublasDestroy(handle), "cublasDestroy");

        write_json(json_path, card, iters, forward, backward, sweep, all_ok);
        std::printf("\n%s; results written to %s\n",
                    all_ok ? "all results valid" : "VALIDATION FAILED", json_path.c_str());
        return all_ok ? 0 : 1;
    } catch (const std::exception& e) {  // nst::Error included
        std::fprintf(stderr, "gram_bench: %s\n", e.what());
        return 1;
    }
}
