// How the CPU backend's own loops use the cores: OpenMP, the runtime oneDNN
// runs on, so there is one thread pool (kernels/cpu/context.cpp). Loops
// shorter than kParallelFrom elements stay serial (a parallel region costs a
// few microseconds); for_each_plane() is the loop over the planes of
// [NC, H, W] tensors. Reductions are deterministic whatever the thread count:
// deterministic_sum() adds fixed chunks, each in index order in double, then
// the chunk sums in chunk order.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace nst::cpu {

constexpr int64_t kParallelFrom = int64_t(1) << 15;
constexpr int64_t kSumChunk = int64_t(1) << 16;

// f(i) for every plane i of NC planes of `plane` elements, each plane by one
// thread: the loop of the kernels on [NC, H, W] tensors, parallel from
// kParallelFrom elements in all.
template <class F>
void for_each_plane(int64_t NC, int64_t plane, F&& f) {
#pragma omp parallel for if (NC * plane >= kParallelFrom) schedule(static)
    for (int64_t i = 0; i < NC; ++i) f(i);
}

// sum over i in [0, n) of term(i), in double.
template <class Term>
double deterministic_sum(int64_t n, Term term) {
    const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
    std::vector<double> partial(size_t(std::max<int64_t>(chunks, 1)), 0.0);
#pragma omp parallel for if (n >= kParallelFrom) schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
        double s = 0.0;
        for (int64_t i = c * kSumChunk, end = std::min(n, (c + 1) * kSumChunk); i < end; ++i) s += term(i);
        partial[size_t(c)] = s;
    }
    double total = 0.0;
    for (const double p : partial) total += p;
    return total;
}

}  // namespace nst::cpu
