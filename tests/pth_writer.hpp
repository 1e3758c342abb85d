// Writes PyTorch checkpoints byte by byte, for tests of weights/pth.cpp that must
// run without PyTorch: a pickle assembler, and the legacy stream, zip and tar
// containers laid out as torch/serialization.py writes (or wrote) them.
// Tensors are described, not computed: a storage is raw bytes plus a type
// name, a tensor is (storage, offset, size, stride), so views, shared storages
// and non-float types can be written exactly as PyTorch would.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#ifdef NST_HAVE_LIBZIP
#include <zip.h>
#endif

#include "core/error.hpp"

namespace nst::test {

// ---- pickle assembler --------------------------------------------------------------------

class Pickle {
public:
    std::string bytes;

    Pickle& op(uint8_t c) { bytes += char(c); return *this; }
    Pickle& raw(const std::string& s) { bytes += s; return *this; }
    Pickle& le(uint64_t v, int n) {
        for (int i = 0; i < n; ++i) bytes += char((v >> (8 * i)) & 0xff);
        return *this;
    }
    Pickle& proto(int v = 2) { return op(0x80).op(uint8_t(v)); }
    Pickle& stop() { return op('.'); }
    Pickle& mark() { return op('('); }
    Pickle& none() { return op('N'); }
    Pickle& boolean(bool b) { return op(b ? 0x88 : 0x89); }
    Pickle& tuple() { return op('t'); }  // MARK ... TUPLE
    Pickle& tuple_n(int n) { return n == 0 ? op(')') : op(uint8_t(0x84 + n)); }
    Pickle& empty_dict() { return op('}'); }
    Pickle& empty_list() { return op(']'); }
    Pickle& setitems() { return op('u'); }
    Pickle& appends() { return op('e'); }
    Pickle& reduce() { return op('R'); }
    Pickle& binpersid() { return op('Q'); }
    Pickle& binput(uint8_t i) { return op('q').op(i); }
    Pickle& binget(uint8_t i) { return op('h').op(i); }
    // Python 3 str
    Pickle& str(const std::string& s) { return op('X').le(s.size(), 4).raw(s); }
    // Python 2 str (SHORT_BINSTRING)
    Pickle& str2(const std::string& s) { return op('U').op(uint8_t(s.size())).raw(s); }
    Pickle& integer(int64_t v) {
        if (v >= 0 && v < 256) return op('K').op(uint8_t(v));
        if (v >= 0 && v < 65536) return op('M').le(uint64_t(v), 2);
        if (v >= INT32_MIN && v <= INT32_MAX) return op('J').le(uint64_t(uint32_t(int32_t(v))), 4);
        return op(0x8a).op(8).le(uint64_t(v), 8);  // LONG1
    }
    // Python 2's pickling of an int beyond 32 bits: INT as text
    Pickle& int_text(int64_t v) { return op('I').raw(std::to_string(v) + "\n"); }
    Pickle& global(const std::string& module, const std::string& name) {
        return op('c').raw(module + "\n" + name + "\n");
    }
    Pickle& ordered_dict_call() { return global("collections", "OrderedDict").tuple_n(0).reduce(); }
};

// ---- checkpoint description -----------------------------------------------------------------

struct StorageSpec {
    std::string type;  // "FloatStorage", "DoubleStorage", "HalfStorage", ...
    size_t element_size = 4;
    std::string data;  // raw bytes, little-endian
    int64_t numel() const { return int64_t(data.size() / element_size); }
};
struct TensorSpec {
    std::string name;  // dots mean nesting: "sub.x" is {"sub": {"x": ...}}
    std::string storage;
    int64_t offset = 0;
    std::vector<int64_t> size, stride;
    // Legacy stream only: the storage is a view, elements [view_offset,
    // view_offset + view_size) of `storage` (the pid's view_metadata).
    int64_t view_offset = -1, view_size = 0;
};
struct CheckpointSpec {
    std::map<std::string, StorageSpec> storages;  // by key; a std::map is sorted, as PyTorch sorts keys
    std::vector<TensorSpec> tensors;
    bool with_epoch_entry = true;  // a non-tensor value ("epoch": 7) next to the tensors
};

template <class T>
std::string raw_bytes(const std::vector<T>& values) {
    return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}
inline std::string tensor_type_of(const std::string& storage_type) {
    return storage_type.substr(0, storage_type.size() - 7) + "Tensor";
}

inline Pickle& shape_tuple(Pickle& p, const std::vector<int64_t>& s) {
    if (s.size() <= 3) {
        for (int64_t d : s) p.integer(d);
        return p.tuple_n(int(s.size()));
    }
    p.mark();
    for (int64_t d : s) p.integer(d);
    return p.tuple();
}

// The state dict as an OrderedDict (Python 3: OrderedDict() then SETITEMS;
// Python 2: OrderedDict([[k, v], ...])), each tensor written by `tensor`
// (which pushes one tensor object); names "sub.<x>" go into a nested dict.
template <class WriteTensor>
void state_dict(Pickle& p, const CheckpointSpec& spec, bool python2, WriteTensor tensor) {
    using Item = std::pair<std::string, std::function<void()>>;
    std::function<void(const std::vector<Item>&)> dict = [&](const std::vector<Item>& items) {
        auto key = [&](const std::string& k) { python2 ? p.str2(k) : p.str(k); };
        if (python2) {
            p.global("collections", "OrderedDict").mark().empty_list().mark();
            for (const auto& [k, value] : items) {
                p.empty_list().mark();
                key(k);
                value();
                p.appends();
            }
            p.appends().tuple().reduce();
        } else {
            p.ordered_dict_call().mark();
            for (const auto& [k, value] : items) {
                key(k);
                value();
            }
            p.setitems();
        }
    };
    std::vector<Item> top, sub;
    for (const TensorSpec& t : spec.tensors) {
        const TensorSpec* tp = &t;
        if (t.name.compare(0, 4, "sub.") == 0) {
            if (sub.empty()) top.emplace_back("sub", [&] { dict(sub); });
            sub.emplace_back(t.name.substr(4), [&tensor, tp] { tensor(*tp); });
        } else {
            top.emplace_back(t.name, [&tensor, tp] { tensor(*tp); });
        }
    }
    if (spec.with_epoch_entry) top.emplace_back("epoch", [&] { p.integer(7); });
    dict(top);
}

// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
// with the storage as a persistent id; `view` adds the legacy view_metadata slot.
inline void rebuild_tensor_v2(Pickle& p, const CheckpointSpec& spec, const TensorSpec& t, bool legacy) {
    const StorageSpec& s = spec.storages.at(t.storage);
    p.global("torch._utils", "_rebuild_tensor_v2").mark();
    p.mark().str("storage").global("torch", s.type).str(t.storage).str("cpu").integer(s.numel());
    if (legacy && t.view_offset >= 0)
        p.str(t.storage + "_view").integer(t.view_offset).integer(t.view_size).tuple_n(3);
    else if (legacy)
        p.none();
    p.tuple().binpersid();
    p.integer(t.offset);
    shape_tuple(p, t.size);
    shape_tuple(p, t.stride);
    p.boolean(false).ordered_dict_call().tuple().reduce();
}

inline std::string swap_elements(const std::string& data, size_t element_size) {
    std::string out = data;
    for (size_t i = 0; i + element_size <= out.size(); i += element_size)
        for (size_t j = 0; j < element_size / 2; ++j) std::swap(out[i + j], out[i + element_size - 1 - j]);
    return out;
}

// The legacy stream: magic, protocol, sys_info, object, keys, storages.
inline std::string legacy_checkpoint(const CheckpointSpec& spec, bool little_endian = true) {
    Pickle p;
    p.proto().op(0x8a).op(10).raw(std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10)).stop();
    p.proto().integer(1001).stop();
    p.proto().empty_dict().mark().str("protocol_version").integer(1001).str("little_endian").boolean(little_endian);
    p.str("type_sizes").empty_dict().mark().str("short").integer(2).str("int").integer(4).str("long").integer(8);
    p.setitems().setitems().stop();
    p.proto();
    state_dict(p, spec, false, [&](const TensorSpec& t) { rebuild_tensor_v2(p, spec, t, true); });
    p.stop();
    p.proto().empty_list().mark();
    for (const auto& kv : spec.storages) p.str(kv.first);
    p.appends().stop();
    for (const auto& [key, s] : spec.storages) {
        const uint64_t n = uint64_t(s.numel());
        std::string count(8, '\0');
        for (int i = 0; i < 8; ++i) count[size_t(little_endian ? i : 7 - i)] = char((n >> (8 * i)) & 0xff);
        p.raw(count).raw(little_endian ? s.data : swap_elements(s.data, s.element_size));
    }
    return p.bytes;
}

// The tar container as PyTorch 0.1.x wrote it, from Python 2: pickles with
// Python 2 strings, ints beyond 32 bits as INT text, OrderedDict([[k, v]]).
// Storage keys and tensor keys are the saving process's pointers.
struct TarView {  // an entry of the storage view list
    int64_t key, root_key, offset, size;
};
inline std::string tar_block(const std::string& name, size_t size, char type) {
    std::string h(512, '\0');
    std::memcpy(&h[0], name.data(), std::min<size_t>(name.size(), 100));
    std::snprintf(&h[100], 8, "%07o", 0644);
    std::snprintf(&h[108], 8, "%07o", 0);
    std::snprintf(&h[116], 8, "%07o", 0);
    std::snprintf(&h[124], 12, "%011zo", size);
    std::snprintf(&h[136], 12, "%011o", 1484000000u);
    h[156] = type;
    std::memcpy(&h[257], "ustar\0" "00", 8);
    std::memset(&h[148], ' ', 8);
    unsigned sum = 0;
    for (char c : h) sum += uint8_t(c);
    std::snprintf(&h[148], 8, "%06o", sum);
    h[155] = ' ';
    return h;
}
inline std::string tar_member(const std::string& name, const std::string& body) {
    // Python's tarfile in PAX format writes a pax header with the float mtime first.
    const std::string record = " mtime=1484000000.123456\n";  // "<length> key=value\n"
    const std::string pax = std::to_string(record.size() + 2) + record;
    std::string out = tar_block("././@PaxHeader", pax.size(), 'x') + pax;
    out.resize((out.size() + 511) / 512 * 512, '\0');
    out += tar_block(name, body.size(), '0') + body;
    out.resize((out.size() + 511) / 512 * 512, '\0');
    return out;
}
// `content_end` receives the end of the last member's data: shorter prefixes are corrupt.
inline std::string tar_checkpoint(const CheckpointSpec& spec, const std::vector<TarView>& views = {},
                                  size_t* content_end = nullptr) {
    const int64_t base = 94000000000000;  // cdata-like keys, beyond 32 bits
    std::map<std::string, int64_t> storage_key;
    int64_t next = base;
    for (const auto& kv : spec.storages) storage_key[kv.first] = (next += 64);
    for (const auto& v : views) storage_key[std::to_string(v.key)] = v.key;
    std::vector<int64_t> tensor_key;
    for (size_t i = 0; i < spec.tensors.size(); ++i) tensor_key.push_back(base + 100000 + int64_t(i) * 48);

    Pickle sys;
    sys.proto().empty_dict().mark().str2("protocol_version").integer(1000).str2("little_endian").boolean(true);
    sys.str2("type_sizes").empty_dict().mark().str2("short").integer(2).str2("int").integer(4);
    sys.str2("long").integer(8).setitems().setitems().stop();

    Pickle obj;
    obj.proto();
    state_dict(obj, spec, true, [&](const TensorSpec& t) {
        const size_t i = size_t(&t - spec.tensors.data());
        obj.str2(std::to_string(tensor_key[i])).binpersid();
    });
    obj.stop();

    Pickle tensors;
    tensors.proto().integer(int64_t(spec.tensors.size())).stop();
    for (size_t i = 0; i < spec.tensors.size(); ++i) {
        const TensorSpec& t = spec.tensors[i];
        const std::string type = spec.storages.count(t.storage) ? spec.storages.at(t.storage).type : "FloatStorage";
        tensors.proto().int_text(tensor_key[i]).int_text(storage_key.at(t.storage));
        tensors.global("torch", tensor_type_of(type)).tuple_n(3).stop();
        tensors.le(t.size.size(), 4).le(0, 4);
        for (int64_t d : t.size) tensors.le(uint64_t(d), 8);
        for (int64_t d : t.stride) tensors.le(uint64_t(d), 8);
        tensors.le(uint64_t(t.offset), 8);
    }

    Pickle storages;
    storages.proto().integer(int64_t(spec.storages.size())).stop();
    for (const auto& [key, s] : spec.storages) {
        storages.proto().int_text(storage_key.at(key)).str2("cpu").global("torch", s.type).tuple_n(3).stop();
        storages.le(uint64_t(s.numel()), 8).raw(s.data);
    }
    storages.proto().empty_list();
    if (!views.empty()) {
        storages.mark();
        for (const auto& v : views) {
            storages.mark().int_text(v.key).int_text(v.root_key).integer(v.offset).integer(v.size).tuple();
        }
        storages.appends();
    }
    storages.stop();

    std::string out = tar_member("sys_info", sys.bytes) + tar_member("pickle", obj.bytes) +
                      tar_member("tensors", tensors.bytes);
    out += tar_member("storages", storages.bytes);
    if (content_end) *content_end = out.size() - ((512 - storages.bytes.size() % 512) % 512);
    return out + std::string(1024, '\0');
}

#ifdef NST_HAVE_LIBZIP
// The zip container (PyTorch >= 1.6): archive/data.pkl, archive/data/<key>,
// archive/byteorder, archive/version. `skip_storage` leaves one data entry out.
inline std::string zip_checkpoint(const CheckpointSpec& spec, const std::string& skip_storage = "") {
    Pickle p;
    p.proto();
    state_dict(p, spec, false, [&](const TensorSpec& t) { rebuild_tensor_v2(p, spec, t, false); });
    p.stop();
    char tmpl[] = "/tmp/nst_test_zip_XXXXXX";
    const int fd = mkstemp(tmpl);
    NST_CHECK(fd >= 0, "zip_checkpoint: mkstemp failed");
    close(fd);
    int err = 0;
    zip_t* z = zip_open(tmpl, ZIP_TRUNCATE, &err);
    NST_CHECK(z, "zip_checkpoint: zip_open failed");
    std::vector<std::pair<std::string, std::string>> entries = {
        {"archive/data.pkl", p.bytes}, {"archive/byteorder", "little"}, {"archive/version", "3\n"}};
    for (const auto& [key, s] : spec.storages)
        if (key != skip_storage) entries.emplace_back("archive/data/" + key, s.data);
    for (const auto& [name, data] : entries) {
        zip_source_t* src = zip_source_buffer(z, data.data(), data.size(), 0);
        const zip_int64_t index = src ? zip_file_add(z, name.c_str(), src, ZIP_FL_OVERWRITE) : -1;
        NST_CHECK(index >= 0, "zip_checkpoint: add failed");
        // PyTorch stores entries uncompressed
        NST_CHECK(zip_set_file_compression(z, zip_uint64_t(index), ZIP_CM_STORE, 0) == 0, "zip_checkpoint: store failed");
    }
    NST_CHECK(zip_close(z) == 0, "zip_checkpoint: close failed");
    std::FILE* f = std::fopen(tmpl, "rb");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    std::fclose(f);
    std::remove(tmpl);
    return out;
}
#endif

// Writes bytes to a fresh temporary file and removes it when destroyed.
class TempFile {
public:
    explicit TempFile(const std::string& bytes, const std::string& suffix = ".pth") {
        char tmpl[] = "/tmp/nst_test_XXXXXX";
        const int fd = mkstemp(tmpl);
        NST_CHECK(fd >= 0, "TempFile: mkstemp failed");
        close(fd);
        path_ = std::string(tmpl) + suffix;
        std::rename(tmpl, path_.c_str());
        std::FILE* f = std::fopen(path_.c_str(), "wb");
        NST_CHECK(f && std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size(), "TempFile: write failed");
        std::fclose(f);
    }
    ~TempFile() { std::remove(path_.c_str()); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace nst::test
