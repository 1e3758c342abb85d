// The device of the gpu-labelled tests: the first GPU. Without one the test
// fails rather than passes.
#pragma once
#include <catch2/catch.hpp>

#include "core/device.hpp"

namespace nst::test {

inline Device gpu() {
    REQUIRE(cuda_device_count() > 0);
    return Device::cuda(0);
}

}  // namespace nst::test
