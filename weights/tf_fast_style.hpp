// Import of the TensorFlow fast-style-transfer networks, exported per
// variable: manifest.json maps Variable, Variable_1, ... to a raw
// little-endian float32 file and its shape (see ../shared/data/README.md).
// The variables come as (filter, instance-norm beta, instance-norm gamma)
// triples in network order; the importer renames them to the nst.transformer
// names (nets/transform_net.hpp) and converts the filter layouts:
//   conv       TF [kh, kw, in, out]  -> ours [out, in, kh, kw]
//   transposed TF [kh, kw, out, in]  -> ours [in, out, kh, kw] (conv_transpose2d)
// Both are the same permutation (3, 2, 0, 1). Every file's size is checked
// against its manifest shape, so a truncated export is a clear error.
#pragma once
#include <string>

#include "weights/safetensors.hpp"

namespace nst {

// Whether `dir` is a directory holding a manifest.json.
bool is_tf_fast_style_export(const std::string& dir);
// The export as an nst.transformer weight set (variant tf-fast-style-transfer),
// tensors on the CPU; metadata records the source and the style (the
// directory's name).
WeightFile import_tf_fast_style(const std::string& dir);

}  // namespace nst
