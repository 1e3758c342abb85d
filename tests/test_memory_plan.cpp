// The memory plan of optimization mode (nets/memory_plan.hpp): its
// predicted peak within 10% of the peak the CPU memory books measure, at
// several sizes, untiled and tiled, with L-BFGS and Adam; the tile it picks
// under a memory cap fits and is the largest that does. And the capacity
// the plans start from.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>

#include "core/device.hpp"
#include "core/ops.hpp"
#include "core/autograd.hpp"
#include "nets/gatys.hpp"
#include "nets/optimize.hpp"
#include "nets/memory_plan.hpp"

using namespace nst;

namespace {

const Vgg19& net() {
    static const Vgg19 n = Vgg19::random(19, Device::cpu(), VggPooling::Avg);
    return n;
}

// Peak of a whole run over what was in use before it (its inputs included,
// as when a plan is made).
size_t measured_peak(int h, int w, const GatysOptions& o) {
    const Tensor content = Tensor::randn({1, 3, h, w}, 3, Device::cpu(), 0.5f, 0.2f);
    const Tensor style = Tensor::randn({1, 3, 64, 80}, 4, Device::cpu(), 0.5f, 0.2f);
    cpu_empty_cache();
    const size_t base = cpu_memory_stats().current;
    cpu_reset_peak_memory();
    stylize_by_optimization(net(), content, {{style, 1.f}}, o);
    return cpu_memory_stats().peak - base;
}

}  // namespace

TEST_CASE("optimize plan: the predicted peak is the measured one within 10%", "[optimize_plan]") {
    struct Case {
        const char* what;
        int h, w, tile;
        GatysOptimizer optimizer;
        bool shallow;
    };
    const std::vector<Case> cases{
        {"L-BFGS, 200x150", 150, 200, 0, GatysOptimizer::LBFGS, false},
        {"Adam, 288x216", 216, 288, 0, GatysOptimizer::Adam, false},
        {"L-BFGS, 320x240 in tiles of 64 (shallow layers)", 240, 320, 64, GatysOptimizer::LBFGS, true},
        {"Adam, 384x300 in tiles of 128 (shallow layers)", 300, 384, 128, GatysOptimizer::Adam, true},
    };
    for (const Case& c : cases) {
        SECTION(c.what) {
            GatysOptions o;
            o.iterations = 4;
            o.lbfgs_history = 2;  // full by the last iteration
            o.optimizer = c.optimizer;
            o.tile = c.tile;
            if (c.shallow) {
                o.content_layers = {{"relu2_2", 1}};
                o.style_layers = {{"relu1_1", 1}, {"relu2_1", 1}, {"relu3_1", 1}};
            }
            const OptimizePlan plan = plan_optimization(net(), {c.h, c.w}, {{64, 80}}, o);
            const size_t predicted = predicted_peak(plan, c.h, c.w, {{64, 80}}, o, c.tile, o.lbfgs_history);
            const size_t measured = measured_peak(c.h, c.w, o);
            INFO(describe(plan, o) << "predicted " << predicted << ", measured " << measured);
            CHECK(std::fabs(double(predicted) - double(measured)) <= 0.1 * double(measured));
        }
    }
}

TEST_CASE("optimize plan: under a memory cap the plan picks the largest tile that fits", "[optimize_plan]") {
    GatysOptions o;
    o.content_layers = {{"relu2_2", 1}};
    o.style_layers = {{"relu1_1", 1}, {"relu2_1", 1}, {"relu3_1", 1}};
    o.lbfgs_history = 2;
    const std::pair<int64_t, int64_t> size{300, 400};
    const OptimizePlan free_plan = plan_optimization(net(), size, {{64, 80}}, o);
    REQUIRE(free_plan.stages.size() == 1);
    CHECK(free_plan.stages[0].tile == 0);
    const size_t untiled = free_plan.stages[0].untiled;
    const size_t tiles128 = predicted_peak(free_plan, 300, 400, {{64, 80}}, o, 128, 2);
    const size_t tiles64 = predicted_peak(free_plan, 300, 400, {{64, 80}}, o, 64, 2);
    REQUIRE(tiles64 < tiles128);
    REQUIRE(tiles128 < untiled);
    // Room for tiles of 128 but not for the whole image.
    const size_t in_use = cpu_memory_stats().current;
    const OptimizePlan plan =
        plan_optimization(net(), size, {{64, 80}}, o, size_t(double(in_use + tiles128) / 0.9) + (1 << 20));
    CHECK(plan.stages[0].fits);
    CHECK(plan.stages[0].tile == 128);
    // Room for tiles of 64 without L-BFGS history only: the history that fits.
    const size_t tiles64_no_history = predicted_peak(free_plan, 300, 400, {{64, 80}}, o, 64, 0);
    const size_t pair = 2 * 3 * sizeof(float) * 300 * 400;
    const OptimizePlan short_history = plan_optimization(
        net(), size, {{64, 80}}, o, size_t(double(in_use + tiles64_no_history + pair + pair / 2) / 0.9));
    CHECK(short_history.stages[0].fits);
    CHECK(short_history.stages[0].tile == 64);
    CHECK(short_history.stages[0].lbfgs_history == 1);
    // No room even for tiles of 64 without history: refused.
    const OptimizePlan none = plan_optimization(net(), size, {{64, 80}}, o, in_use + tiles64 / 4);
    CHECK_FALSE(none.stages[0].fits);
}

TEST_CASE("stylize plan: the predicted peak is the measured one within 10%", "[stylize_plan]") {
    const TransformNet tnet = TransformNet::create(TransformNetSpec{}, 3, Device::cpu());
    struct Case {
        int h, w, batch, tile;
    };
    for (const Case c : {Case{240, 320, 1, 0}, Case{150, 200, 3, 0}, Case{300, 400, 1, 128}, Case{500, 700, 1, 256}}) {
        const StylizePlan plan = plan_stylize(tnet, c.h, c.w, c.batch, c.tile);
        const size_t predicted = predicted_stylize_peak(plan, tnet, c.batch, c.tile);
        const Tensor x = Tensor::rand({c.batch, 3, c.h, c.w}, 9, Device::cpu(), 0.f, 255.f);
        cpu_empty_cache();
        const size_t base = cpu_memory_stats().current;
        cpu_reset_peak_memory();
        {
            NoGradGuard no_grad;
            const Tensor y = c.tile > 0 ? tnet.stylize_tiled(x, c.tile) : tnet.stylize(x);
        }
        const size_t measured = cpu_memory_stats().peak - base;
        INFO(c.w << "x" << c.h << " batch " << c.batch << " tile " << c.tile << ": " << describe(plan, tnet)
                 << "predicted " << predicted << ", measured " << measured);
        CHECK(std::fabs(double(predicted) - double(measured)) <= 0.1 * double(measured));
    }
}

TEST_CASE("train plan: the predicted peak is the measured one within 10%", "[train_plan]") {
    const Tensor style = Tensor::rand({1, 3, 64, 64}, 10, Device::cpu());
    const TrainingOptions o;
    struct Case {
        int batch, size;
    };
    for (const Case c : {Case{2, 96}, Case{1, 192}}) {
        const TrainingPlan plan = plan_training(net(), {style.size(2), style.size(3)}, o, c.batch, c.size);
        StyleTrainer trainer(TransformNet::create(TransformNetSpec{}, 4, Device::cpu()), net(), style, o);
        trainer.step(Tensor::rand({c.batch, 3, c.size, c.size}, 11, Device::cpu(), 0.f, 255.f));
        cpu_empty_cache();
        const size_t base = cpu_memory_stats().current;
        cpu_reset_peak_memory();
        trainer.step(Tensor::rand({c.batch, 3, c.size, c.size}, 12, Device::cpu(), 0.f, 255.f));
        const size_t measured = cpu_memory_stats().peak - base;
        const size_t predicted = predicted_training_peak(plan, c.batch, c.size);
        INFO("batch " << c.batch << " of " << c.size << ": " << describe(plan) << "predicted " << predicted
                      << ", measured " << measured);
        CHECK(std::fabs(double(predicted) - double(measured)) <= 0.1 * double(measured));
        CHECK(plan.fits);
        CHECK(plan.largest_batch >= c.batch);
    }
}

// The style's targets, computed once before the first step from the whole
// style image (VGG-19's features at --style-size): a peak of their own.
TEST_CASE("train plan: the style's targets' peak is the measured one within 10%", "[train_plan]") {
    const TrainingOptions o;
    for (const auto& [h, w] : {std::pair<int64_t, int64_t>{240, 320}, {400, 300}}) {
        const TrainingPlan plan = plan_training(net(), {h, w}, o, 1, 64);
        const Tensor style = Tensor::rand({1, 3, h, w}, 13, Device::cpu());
        cpu_empty_cache();
        const size_t base = cpu_memory_stats().current;
        cpu_reset_peak_memory();
        { PerceptualLoss loss(net(), style, o); }
        const size_t measured = cpu_memory_stats().peak - base;
        INFO(w << "x" << h << ": " << describe(plan) << "predicted " << plan.style_peak << ", measured " << measured);
        CHECK(std::fabs(double(plan.style_peak) - double(measured)) <= 0.1 * double(measured));
    }
}

// The capacity plans start from: on the CPU what the kernel says is
// available plus what nst holds, so holding memory does not shrink it (a
// plan made while tensors are alive counts them as its own), at most the
// physical memory; a limit replaces it.
TEST_CASE("cpu memory capacity: available plus held, at most physical; a limit wins", "[capacity]") {
    cpu_empty_cache();
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    const size_t physical = size_t(pages) * size_t(page), before = cpu_memory_capacity();
    CHECK(before > 0);
    CHECK(before <= physical);
    {
        const size_t gib = size_t(1) << 30;
        const Tensor held = Tensor::full({int64_t(gib / 4)}, 1.f);  // 1 GiB, every page touched
        const size_t during = cpu_memory_capacity();
        // Without the held bytes it would fall by 1 GiB; other processes move it a little.
        CHECK(double(during) > double(before) - 0.5 * double(gib));
        CHECK(during <= physical);
    }
    cpu_set_memory_limit(123456789);
    CHECK(cpu_memory_capacity() == 123456789);
    cpu_set_memory_limit(0);
    CHECK(cpu_memory_capacity() <= physical);
}

// NST_MEMORY_LIMIT's sizes: bytes, or K, M, G, T (powers of 1024) with or
// without B or iB, any case; hex, exponents and other units refused.
TEST_CASE("memory limit sizes: the usual units, nothing else", "[capacity]") {
    const size_t G = size_t(1) << 30;
    CHECK(parse_byte_size("0") == 0);
    CHECK(parse_byte_size("100000") == 100000);
    CHECK(parse_byte_size("512M") == 512 * (size_t(1) << 20));
    for (const char* six : {"6G", "6GB", "6GiB", "6g", "6gb", "6gib"}) CHECK(parse_byte_size(six) == 6 * G);
    CHECK(parse_byte_size("1.5G") == 3 * G / 2);
    CHECK(parse_byte_size("2T") == 2048 * G);
    CHECK(parse_byte_size("64K") == 65536);
    CHECK(parse_byte_size("10B") == 10);
    for (const char* bad : {"", "lots", "0x10", "1e9", "-1", "6 G", "6XB", "inf", "nan", ".5G", "6GiBs", "G"})
        CHECK_THROWS_WITH(parse_byte_size(bad), Catch::Contains("is not a size"));
}
