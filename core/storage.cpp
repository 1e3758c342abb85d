#include "core/storage.hpp"

#include "core/backend.hpp"

namespace nst {

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
    data_ = backend(device).allocate(bytes);
}

Storage::~Storage() { backend(device_).deallocate(data_, bytes_); }

}  // namespace nst
