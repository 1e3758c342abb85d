// safetensors, the project's weight format (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length N, N bytes of JSON describing each
// tensor (dtype, shape, byte range in the data section) plus an optional
// "__metadata__" string map, then the raw little-endian data.
//
// Files come from anywhere, so reading validates everything before touching
// the data: a sane header length inside the file, parsable JSON, every entry
// complete, a supported dtype, a byte range that matches the shape and lies
// inside the file, no two ranges overlapping. Each failure is an nst::Error
// naming the file. F32 is the native dtype; F16, BF16 and F64 are read and
// converted to float32. Writing is always F32 and atomic (core/files.hpp).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace nst {

struct WeightFile {
    std::map<std::string, Tensor> tensors;
    std::map<std::string, std::string> metadata;
};

// What the header says about one tensor, without reading its data.
struct SafetensorsEntry {
    std::string name;
    std::string dtype;  // as stored: "F32", "F16", "BF16", "F64"
    Shape shape;
    uint64_t begin = 0, end = 0;  // byte range within the data section
};
struct SafetensorsHeader {
    std::vector<SafetensorsEntry> entries;  // in data-offset order
    std::map<std::string, std::string> metadata;
    uint64_t file_size = 0;
};

// Reads and validates the header only (for `nst-run info`).
SafetensorsHeader read_safetensors_header(const std::string& path);
// Reads every tensor, as float32, onto `device`.
WeightFile load_safetensors(const std::string& path, Device device = Device::cpu());
// Writes float32 tensors (any device, any layout) and metadata, atomically.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace nst
