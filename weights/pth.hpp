// PyTorch checkpoints (.pth / .pt), read in C++ without Python, in the three
// containers torch.save has used:
//
//  * zip (PyTorch >= 1.6, the default since): `<dir>/data.pkl` is the pickled
//    object, each storage is the entry `<dir>/data/<key>`, an optional
//    `<dir>/byteorder` says "little" or "big";
//  * legacy stream (PyTorch 0.1.10 - 1.5, and `_use_new_zipfile_serialization
//    =False` today; torchvision's 2017 vgg19-dcbb9e9d.pth): pickles of the
//    magic number, the protocol version (1001) and a system-info dict, then
//    the object, then the list of storage keys, then per key an int64
//    element count and the raw bytes;
//  * tar (PyTorch 0.1.x, early 2017; likely the Caffe-converted
//    vgg19-d01eb7cb.pth): members `sys_info`, `pickle` (the object, whose
//    tensors are persistent ids), `tensors` (per tensor: pickled key, storage
//    key and type, then ndim, sizes, strides, offset as int64) and
//    `storages` (per storage: pickled key, location and type, then an int64
//    count and the raw bytes; then a pickled list of storage views).
//
// Only state dicts are read: a dict (possibly nested, e.g. {"state_dict":
// {...}}) whose values are tensors. The pickles go through a restricted
// unpickler (weights/pickle.hpp) that allows only the globals such files use,
// so a checkpoint holding arbitrary Python objects (a whole pickled model)
// is refused with an nst::Error instead of being executed. Every offset,
// size and stride is checked against the data, so a truncated or corrupt
// file gives an nst::Error, never a crash. Tensors come back contiguous and
// float32 (double, half, bfloat16 and integer storages are converted),
// views (offset, size, stride into a shared storage) copied out.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "core/tensor.hpp"

namespace nst {

enum class PthContainer { Zip, Legacy, Tar };
const char* pth_container_name(PthContainer container);  // "zip", "legacy", "tar"

// Which container the bytes hold; throws nst::Error (naming `name`) when
// they are none of the three.
PthContainer detect_pth_container(const uint8_t* data, size_t size, const std::string& name);

// Which tensors to materialize, by (flattened, dot-joined) name; empty: all.
// Unwanted tensors cost nothing: a zip checkpoint's storages are not even read.
using PthFilter = std::function<bool(const std::string& name)>;

// Reads a checkpoint file (memory-mapped) into float32 tensors on `device`.
std::map<std::string, Tensor> load_pth(const std::string& path, Device device = Device::cpu(),
                                       const PthFilter& wanted = {});
// The same from bytes in memory; `name` only labels error messages.
std::map<std::string, Tensor> load_pth_bytes(const uint8_t* data, size_t size,
                                             const std::string& name,
                                             Device device = Device::cpu(),
                                             const PthFilter& wanted = {});

// Whether this build reads zip checkpoints (it needs libzip).
bool pth_zip_supported();

}  // namespace nst
