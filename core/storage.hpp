// A reference-counted block of memory on one device. Tensors share storages
// through shared_ptr (views, reshapes, detach); the block goes back to its
// backend (the CUDA caching allocator on a GPU) when the last user lets go.
#pragma once
#include <cstddef>
#include <memory>

#include "core/device.hpp"

namespace nst {

class Storage {
public:
    Storage(size_t bytes, Device device);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;

    void* data() const { return data_; }
    size_t bytes() const { return bytes_; }
    Device device() const { return device_; }

private:
    void* data_ = nullptr;
    size_t bytes_ = 0;
    Device device_;
};

}  // namespace nst
