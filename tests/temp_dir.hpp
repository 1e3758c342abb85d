// A fresh folder under /tmp for one test program's files, made on first use.
#pragma once
#include <catch2/catch.hpp>
#include <stdlib.h>

#include <string>

namespace nst::test {

inline const std::string& temp_dir() {
    static const std::string dir = [] {
        char templ[] = "/tmp/nst_test_XXXXXX";
        REQUIRE(mkdtemp(templ));
        return std::string(templ);
    }();
    return dir;
}

}  // namespace nst::test
