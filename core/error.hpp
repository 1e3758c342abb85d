// One exception type for every failure in nst: CUDA, cuDNN, cuBLAS, shape
// mismatches, bad files. The message is meant for a user: it names the op and
// the shapes involved, so a caller can print e.what() as a one-line error.
#pragma once
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "nst/error.hpp"  // Error itself is public (core/include)

namespace nst {

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
    std::ostringstream s;
    (s << ... << args);
    return s.str();
}
}  // namespace detail

[[noreturn]] inline void fail(const std::string& message) { throw Error(message); }

// "[2, 3, 4]"
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace nst

#define NST_CHECK(cond, ...)                                              \
    do {                                                                  \
        if (!(cond)) ::nst::fail(::nst::detail::concat(__VA_ARGS__));     \
    } while (0)
