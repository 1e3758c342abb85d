// The CPU reference backend: the methods of core/backend_methods.inc, each
// defined in the kernels/cpu file of its op family (kernels/README.md);
// plain loops, GEMMs through OpenBLAS.
#pragma once
#include "core/backend.hpp"

namespace nst {

class CpuBackend final : public Backend {
public:
    Device device() const override;

#define NST_BACKEND_METHOD(result, name, parameters) result name parameters override;
#include "core/backend_methods.inc"
#undef NST_BACKEND_METHOD
};

}  // namespace nst
