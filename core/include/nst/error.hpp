// The one exception type of libnst (installed as <nst/error.hpp>). Every
// failure, CUDA, cuDNN, cuBLAS, shapes, bad files, arrives as an nst::Error
// whose what() is a one-line message for a user.
#pragma once
#include <stdexcept>

namespace nst {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Out of (GPU) memory: what() names the allocation that failed.
class OutOfMemoryError : public Error {
public:
    using Error::Error;
};

// A tensor too large for the kernels, which index with 32 bits (2^31 - 1
// elements): a limit like memory, which smaller images, batches or tiles
// avoid. StyleModel::stylize tiles by itself when it meets it.
class SizeLimitError : public Error {
public:
    using Error::Error;
};

}  // namespace nst
