// End-to-end timings of the three workloads, as nst-run runs them, for
// bench/e2e_bench.py, which times PyTorch eager on the same workloads in the
// same script and reports the ratios (bench/RESULTS.md):
//
//   stylize   the transformation network (Johnson et al., 5 residual blocks,
//             width 32) on batch x 3 x H x W, without autograd;
//   train     one training step: network forward, VGG-19 perceptual loss at
//             the default layers, backward, Adam;
//   optimize  one optimization-mode iteration: VGG-19 losses at the default
//             layers, backward, an L-BFGS or Adam step.
//
// Weights are seeded random (the speed does not depend on their values);
// inputs are made on the device, so no host traffic is timed. After warm-up
// (cuDNN's algorithm search included) each of --iters runs is timed to the
// device's completion; the output is one JSON object with the median and
// the peak memory of the timed runs (what tensors hold: the CUDA allocator's
// books, or the CPU tensors' storage) and the CPU threads nst ran on
// (NST_NUM_THREADS, else every core), which e2e_bench.py holds equal to
// PyTorch's.
//
// usage: e2e_bench stylize|train|optimize [--device D] [--height H] [--width W]
//        [--batch N] [--iters K] [--warmup K] [--tf32] [--adam]
//        [--precision fp32|fp16|bf16]   (stylize only: the network's storage)
//        [--tile N]                     (optimize only: tiles of N pixels)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/autograd.hpp"
#include "core/device.hpp"
#include "core/error.hpp"
#include "core/ops.hpp"
#include "core/optim.hpp"
#include "nets/gatys.hpp"
#include "nets/training.hpp"
#include "nets/transform_net.hpp"
#include "nets/vgg19.hpp"

using namespace nst;

namespace {

struct Args {
    std::string workload, device, precision = "fp32";
    int height = 1080, width = 1920, batch = 1, iters = 20, warmup = 3, tile = 0;
    bool tf32 = false, adam = false;
};

Args parse(int argc, char** argv) {
    NST_CHECK(argc >= 2, "usage: e2e_bench stylize|train|optimize [options] (see bench/e2e_bench.cpp)");
    Args a;
    a.workload = argv[1];
    NST_CHECK(a.workload == "stylize" || a.workload == "train" || a.workload == "optimize",
              "unknown workload '", a.workload, "'");
    for (int i = 2; i < argc; ++i) {
        const std::string flag = argv[i];
        auto value = [&]() -> std::string {
            NST_CHECK(i + 1 < argc, flag, " needs a value");
            return argv[++i];
        };
        auto number = [&](long least = 1) {
            const std::string v = value();
            char* end = nullptr;
            const long n = std::strtol(v.c_str(), &end, 10);
            NST_CHECK(!v.empty() && *end == '\0' && n >= least, flag, ": '", v, "' is not an integer >= ", least);
            return int(n);
        };
        if (flag == "--device") a.device = value();
        else if (flag == "--height") a.height = number();
        else if (flag == "--width") a.width = number();
        else if (flag == "--batch") a.batch = number();
        else if (flag == "--iters") a.iters = number();
        else if (flag == "--warmup") a.warmup = number(0);
        else if (flag == "--tf32") a.tf32 = true;
        else if (flag == "--adam") a.adam = true;
        else if (flag == "--precision") a.precision = value();
        else if (flag == "--tile") a.tile = number(0);
        else fail("unknown option " + flag);
    }
    NST_CHECK(a.precision == "fp32" || a.workload == "stylize", "--precision is for stylize only");
    return a;
}

void sync(Device d) {
    if (d.is_cuda()) cuda_synchronize(d.index);
}

// Times `step` (warm-up first); returns the median in milliseconds.
template <class Step>
double median_ms(const Args& a, Device d, Step&& step, std::vector<double>& all) {
    for (int i = 0; i < a.warmup; ++i) step();
    sync(d);
    reset_peak_memory(d);
    for (int i = 0; i < a.iters; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        step();
        sync(d);
        all.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::vector<double> sorted = all;
    std::sort(sorted.begin(), sorted.end());
    return sorted[sorted.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Args a = parse(argc, argv);
        const Device d = usable_device(a.device);
        set_allow_tf32(a.tf32);
        std::vector<double> all;
        double ms = 0;
        int64_t images = a.batch;
        int history = 0;  // L-BFGS's at the end: shorter than 100 once memory ran short
        if (a.workload == "stylize") {
            const TransformNet net = TransformNet::create(TransformNetSpec{}, 1, d).to(parse_precision(a.precision));
            const Tensor x = Tensor::rand({a.batch, 3, a.height, a.width}, 2, d, 0.f, 255.f);
            ms = median_ms(a, d, [&] { net.stylize(x); }, all);
        } else if (a.workload == "train") {
            const Vgg19 vgg = Vgg19::random(19, d, VggPooling::Max);
            StyleTrainer trainer(TransformNet::create(TransformNetSpec{}, 1, d), vgg,
                                 Tensor::rand({1, 3, a.height, a.width}, 3, d), TrainingOptions{});
            const Tensor photos = Tensor::rand({a.batch, 3, a.height, a.width}, 4, d, 0.f, 255.f);
            ms = median_ms(a, d, [&] { trainer.step(photos); }, all);
        } else {
            NST_CHECK(a.batch == 1, "optimize works on one image (--batch 1)");
            const Vgg19 vgg = Vgg19::random(19, d, VggPooling::Avg);
            const Tensor content = Tensor::rand({1, 3, a.height, a.width}, 5, d);
            GatysOptions o;
            o.tile = a.tile;
            GatysObjective objective(vgg, content, {{Tensor::rand({1, 3, a.height, a.width}, 6, d), 1.f}}, o);
            Tensor x = content.clone().set_requires_grad(true);
            auto evaluate = [&] { return objective.evaluate_with_gradient(x).total; };
            if (a.adam) {
                Adam adam({x}, Adam::Options{default_learning_rate(GatysOptimizer::Adam)});
                ms = median_ms(a, d, [&] {
                    evaluate().item();
                    NoGradGuard no_grad;
                    adam.step();
                }, all);
            } else {
                LBFGS lbfgs(x, LBFGS::Options{});
                ms = median_ms(a, d, [&] { lbfgs.step([&] { return evaluate(); }); }, all);
                history = lbfgs.history();
            }
        }
        const MemoryStats m = memory_stats(d);
        std::printf("{\"engine\": \"nst\", \"workload\": \"%s\", \"device\": \"%s\", \"height\": %d, \"width\": %d, "
                    "\"batch\": %d, \"tf32\": %s, \"precision\": \"%s\", \"optimizer\": \"%s\", \"iters\": %d, \"median_ms\": %.4f, "
                    "\"min_ms\": %.4f, \"images_per_s\": %.2f, \"peak_bytes\": %zu, \"lbfgs_history\": %d, "
                    "\"threads\": %d}\n",
                    a.workload.c_str(), d.str().c_str(), a.height, a.width, a.batch, a.tf32 ? "true" : "false", a.precision.c_str(),
                    a.workload == "stylize" ? "none" : a.workload == "train" || a.adam ? "adam" : "lbfgs", a.iters, ms,
                    *std::min_element(all.begin(), all.end()), double(images) * 1000.0 / ms, m.peak, history,
                    cpu_threads());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "e2e_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
