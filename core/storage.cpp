#include "core/storage.hpp"

#include "core/backend.hpp"
#include "core/error.hpp"

namespace nst {

// Every backend books what it hands out itself (the CPU's and the CUDA
// caching allocators): cpu_memory_stats and cuda_memory_stats.
Storage::Storage(size_t bytes, Device device)
    : data_(backend(device).allocate(bytes)), bytes_(bytes), device_(device) {}

Storage::~Storage() { backend(device_).deallocate(data_, bytes_); }

}  // namespace nst
