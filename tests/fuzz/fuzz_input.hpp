// What the fuzz targets share: the readers take paths, so each input is
// written to a scratch file (one per process, under /tmp) first. nst::Error
// is the expected outcome for bad bytes; anything else (a crash, a sanitizer
// report, another exception type) is a bug.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace nst_fuzz {

inline std::string scratch_path(const std::string& suffix) {
    return "/tmp/nst_fuzz_" + std::to_string(::getpid()) + suffix;
}

inline void write_scratch(const std::string& path, const uint8_t* data, size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
}

}  // namespace nst_fuzz
