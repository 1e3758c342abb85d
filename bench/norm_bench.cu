// Instance-norm benchmark (standalone, llm.c style): the norm and the ReLU
// after it in one pass (instance_norm_forward with relu,
// kernels/cuda/instance_norm.cu) against the two passes it replaces (the
// norm, then relu_forward), in fp32 and in the 16-bit storage types, at the
// transformation network's norm layers for a 1920x1080 frame.
//
//   norm_bench [--iters N] [--json FILE]
//
// Each case is validated first against the CPU reference backend (largest
// error over the largest |reference|: 1e-4 in fp32; in 16 bits one step of
// the format at the largest output, 2^-10 or 2^-7: fp32 statistics against
// the CPU's double ones move some outputs across a rounding boundary), exit
// code 1 on a failure. Timing: the median
// of --iters (default 50) runs after a warm-up, each run synchronized; the
// effective bandwidth counts what each version must move (fused: x read
// twice, y written once; unfused: the relu's read and write on top), and the
// speed-up is unfused time over fused time, measured in the same process on
// the same card.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "core/autograd.hpp"
#include "core/backend.hpp"
#include "core/device.hpp"
#include "core/error.hpp"
#include "core/tensor.hpp"

using namespace nst;

namespace {

struct Case {
    int C, H, W;
};

double median_ms(int iters, Device d, const std::function<void()>& run) {
    for (int i = 0; i < 3; ++i) run();
    cuda_synchronize(d.index);
    std::vector<double> ms;
    for (int i = 0; i < iters; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        run();
        cuda_synchronize(d.index);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

// The fused forward (or, unfused, the norm then the relu) on one backend.
void norm_relu(Backend& be, DType type, const Case& c, const Tensor& x, const Tensor& gamma, const Tensor& beta,
               Tensor& y, Tensor& mean, Tensor& rstd, bool fused) {
    const int64_t HW = int64_t(c.H) * c.W, n = int64_t(c.C) * HW;
    if (type == DType::F32) {
        be.instance_norm_forward(1, c.C, HW, 1e-5f, x.data(), gamma.data(), beta.data(), y.data(), mean.data(),
                                 rstd.data(), fused);
        if (!fused) be.relu_forward(n, y.data(), y.data());
    } else {
        be.instance_norm_forward16(type, 1, c.C, HW, 1e-5f, x.raw_data(), gamma.raw_data(), beta.raw_data(),
                                   y.raw_data(), fused);
        if (!fused) be.relu_forward16(type, n, y.raw_data(), y.raw_data());
    }
}

}  // namespace

int main(int argc, char** argv) {
    int iters = 50;
    std::string json;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--iters" && i + 1 < argc) iters = std::max(1, std::atoi(argv[++i]));
        else if (a == "--json" && i + 1 < argc) json = argv[++i];
        else {
            std::fprintf(stderr, "usage: norm_bench [--iters N] [--json FILE]\n");
            return 2;
        }
    }
    try {
        NST_CHECK(cuda_device_count() > 0, "norm_bench needs a GPU");
        const Device gpu = Device::cuda(0);
        cudaDeviceProp prop{};
        NST_CHECK(cudaGetDeviceProperties(&prop, 0) == cudaSuccess, "cudaGetDeviceProperties failed");
        std::printf("%s\n", prop.name);
        NoGradGuard no_grad;
        Backend& cpu = backend(Device::cpu());
        Backend& be = backend(gpu);
        // conv_in/up2 (32 channels, full size), down1/up1 (64, half), down2 and the residual blocks (128, quarter)
        const Case cases[] = {{32, 1080, 1920}, {64, 540, 960}, {128, 270, 480}};
        bool ok = true;
        std::string rows;
        std::printf("%-6s %-16s %10s %10s %9s %9s %8s  %s\n", "dtype", "shape", "fused ms", "unfused ms", "fused GB/s",
                    "unf. GB/s", "speedup", "validation");
        for (const DType type : {DType::F32, DType::F16, DType::BF16}) {
            const double unit = type == DType::F32 ? 1e-4 : type == DType::F16 ? std::ldexp(1.0, -10) : std::ldexp(1.0, -7);
            for (const Case& c : cases) {
                const Shape shape{1, c.C, c.H, c.W};
                const Tensor x_cpu = Tensor::randn(shape, 1, Device::cpu(), 2.f, 3.f).to(type);
                const Tensor g_cpu = Tensor::randn({c.C}, 2, Device::cpu(), 1.f, 0.3f).to(type);
                const Tensor b_cpu = Tensor::randn({c.C}, 3, Device::cpu(), 0.f, 0.3f).to(type);
                const Tensor x = x_cpu.to(gpu), gamma = g_cpu.to(gpu), beta = b_cpu.to(gpu);
                Tensor y = Tensor::empty(shape, gpu, type), mean = Tensor::empty({c.C}, gpu), rstd = Tensor::empty({c.C}, gpu);
                Tensor y_cpu = Tensor::empty(shape, Device::cpu(), type);
                Tensor mean_cpu = Tensor::empty({c.C}), rstd_cpu = Tensor::empty({c.C});

                // Validation: fused and unfused on the GPU against the CPU's fused forward.
                norm_relu(cpu, type, c, x_cpu, g_cpu, b_cpu, y_cpu, mean_cpu, rstd_cpu, true);
                const std::vector<float> want = y_cpu.to_vector();
                double worst = 0;
                for (const bool fused : {true, false}) {
                    norm_relu(be, type, c, x, gamma, beta, y, mean, rstd, fused);
                    const std::vector<float> got = y.to_vector();
                    double diff = 0, scale = 0;
                    for (size_t i = 0; i < want.size(); ++i) {
                        diff = std::max(diff, std::isfinite(got[i]) ? std::fabs(double(got[i]) - want[i]) : INFINITY);
                        scale = std::max(scale, std::fabs(double(want[i])));
                    }
                    worst = std::max(worst, diff / scale);
                }
                const bool pass = worst <= unit;
                ok = ok && pass;

                const double fused_ms = median_ms(iters, gpu, [&] { norm_relu(be, type, c, x, gamma, beta, y, mean, rstd, true); });
                const double unfused_ms = median_ms(iters, gpu, [&] { norm_relu(be, type, c, x, gamma, beta, y, mean, rstd, false); });
                const double bytes = double(x.numel()) * double(dtype_size(type));
                const double fused_gbs = 3 * bytes / fused_ms / 1e6, unfused_gbs = 5 * bytes / unfused_ms / 1e6;
                char shape_text[32];
                std::snprintf(shape_text, sizeof shape_text, "%dx%dx%d", c.C, c.H, c.W);
                std::printf("%-6s %-16s %10.3f %10.3f %9.0f %9.0f %7.2fx  %s (%.2g of %.2g)\n", dtype_name(type), shape_text,
                            fused_ms, unfused_ms, fused_gbs, unfused_gbs, unfused_ms / fused_ms, pass ? "ok" : "FAILED",
                            worst, unit);
                char row[320];
                std::snprintf(row, sizeof row,
                              "%s  {\"dtype\": \"%s\", \"C\": %d, \"H\": %d, \"W\": %d, \"fused_ms\": %.4f, "
                              "\"unfused_ms\": %.4f, \"speedup\": %.3f, \"max_rel_error\": %.3g, \"valid\": %s}",
                              rows.empty() ? "" : ",\n", dtype_name(type), c.C, c.H, c.W, fused_ms, unfused_ms,
                              unfused_ms / fused_ms, worst, pass ? "true" : "false");
                rows += row;
            }
        }
        if (!json.empty()) {
            FILE* f = std::fopen(json.c_str(), "w");
            NST_CHECK(f, json, ": cannot write");
            char date[32];
            const std::time_t now = std::time(nullptr);
            std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
            std::fprintf(f, "{\"bench\": \"norm_bench\", \"card\": \"%s\", \"date\": \"%s\", \"iters\": %d, \"results\": [\n%s\n]}\n",
                         prop.name, date, iters, rows.c_str());
            std::fclose(f);
        }
        return ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "norm_bench: %s\n", e.what());
        return 1;
    }
}
