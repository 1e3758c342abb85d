// Element types. Only float32 is computed today; the enum is here so that
// fp16/bf16 storage can be added without changing every signature.
#pragma once
#include <cstddef>

namespace nst {

enum class DType { F32 };

inline size_t dtype_size(DType) { return 4; }
inline const char* dtype_name(DType) { return "float32"; }

}  // namespace nst
