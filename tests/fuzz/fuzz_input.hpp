// What the fuzz targets share: the readers take paths, so each input is
// written to a scratch file (one per process and kind, under /tmp, removed at
// exit) first. nst::Error is the expected outcome for bad bytes; anything
// else (a crash, a sanitizer report, another exception type) is a bug.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace nst_fuzz {

inline std::vector<std::string>& scratch_paths() {
    static std::vector<std::string> paths;
    return paths;
}

// /tmp/nst_fuzz_<pid><suffix>, removed (with everything in it) at exit.
inline std::string scratch_path(const std::string& suffix) {
    const std::string path = "/tmp/nst_fuzz_" + std::to_string(::getpid()) + suffix;
    if (scratch_paths().empty())
        std::atexit([] {
            std::error_code ec;
            for (const std::string& p : scratch_paths()) std::filesystem::remove_all(p, ec);
        });
    scratch_paths().push_back(path);
    return path;
}

inline void write_scratch(const std::string& path, const uint8_t* data, size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
}

}  // namespace nst_fuzz
