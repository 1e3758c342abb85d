// Reading PyTorch checkpoints: the three containers (weights/pth.hpp) share one
// model. Unpickling builds StorageRefs (a root storage, or a view into one)
// and TensorRefs (storage, offset, size, stride) without touching tensor data;
// the containers differ only in how a root storage's bytes are found. Only
// then are the wanted tensors bounds-checked and copied out, so a 548 MB
// torchvision file costs the pages of the tensors asked for, not the whole
// file, and a zip checkpoint's unwanted storages are never decompressed.
#include "weights/pth.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#ifdef NST_HAVE_LIBZIP
#include <zip.h>
#endif

#include "core/dtype.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "weights/pickle.hpp"

namespace nst {

namespace {

using pickle::Kind;
using pickle::Value;
using pickle::ValuePtr;

// ---- element types -------------------------------------------------------------------

enum class Scalar { F32, F64, F16, BF16, I64, I32, I16, I8, U8, Bool };
struct ScalarType {
    const char* storage;  // torch.<storage> / torch.cuda.<storage>
    const char* tensor;   // the tar container names tensor types too
    Scalar scalar;
    size_t size;
};
const ScalarType kScalarTypes[] = {
    {"FloatStorage", "FloatTensor", Scalar::F32, 4},
    {"DoubleStorage", "DoubleTensor", Scalar::F64, 8},
    {"HalfStorage", "HalfTensor", Scalar::F16, 2},
    {"BFloat16Storage", "BFloat16Tensor", Scalar::BF16, 2},
    {"LongStorage", "LongTensor", Scalar::I64, 8},
    {"IntStorage", "IntTensor", Scalar::I32, 4},
    {"ShortStorage", "ShortTensor", Scalar::I16, 2},
    {"CharStorage", "CharTensor", Scalar::I8, 1},
    {"ByteStorage", "ByteTensor", Scalar::U8, 1},
    {"BoolStorage", "BoolTensor", Scalar::Bool, 1},
};

const ScalarType* storage_type(const std::string& name) {
    for (const auto& t : kScalarTypes)
        if (name == t.storage) return &t;
    return nullptr;
}

// One element, from bytes stored in the file's byte order.
float element_to_float(const uint8_t* p, const ScalarType& t, bool swap) {
    uint8_t b[8];
    for (size_t i = 0; i < t.size; ++i) b[i] = swap ? p[t.size - 1 - i] : p[i];
    switch (t.scalar) {
        case Scalar::F32: { float v; std::memcpy(&v, b, 4); return v; }
        case Scalar::F64: { double v; std::memcpy(&v, b, 8); return float(v); }
        case Scalar::F16: { uint16_t v; std::memcpy(&v, b, 2); return f16_to_float(v); }
        case Scalar::BF16: { uint16_t v; std::memcpy(&v, b, 2); return bf16_to_float(v); }
        case Scalar::I64: { int64_t v; std::memcpy(&v, b, 8); return float(v); }
        case Scalar::I32: { int32_t v; std::memcpy(&v, b, 4); return float(v); }
        case Scalar::I16: { int16_t v; std::memcpy(&v, b, 2); return float(v); }
        case Scalar::I8: return float(int8_t(b[0]));
        case Scalar::U8: return float(b[0]);
        case Scalar::Bool: return b[0] ? 1.f : 0.f;
    }
    return 0.f;
}

// ---- the object model ------------------------------------------------------------------

struct RootStorage {
    std::string key;
    const ScalarType* type = nullptr;
    int64_t numel = 0;
    const uint8_t* data = nullptr;  // numel * type->size bytes, once located
    std::vector<uint8_t> owned;     // backing for data when read out of a zip entry
};
struct StorageRef : pickle::Opaque {
    std::shared_ptr<RootStorage> root;
    int64_t offset = 0, numel = 0;  // a view: elements [offset, offset + numel) of root
};
struct TensorRef : pickle::Opaque {
    std::shared_ptr<StorageRef> storage;
    int64_t offset = 0;
    Shape size, stride;
};

// Sizes in checkpoints are checked against this before any multiplication.
constexpr int64_t kMaxElements = int64_t(1) << 56;
// The largest tensor materialized beyond its storage's size (1 GiB of floats).
constexpr int64_t kMaxExpandedElements = int64_t(1) << 28;

template <class T>
std::shared_ptr<T> as(const ValuePtr& v) {
    if (!v || v->kind != Kind::Object) return nullptr;
    return std::dynamic_pointer_cast<T>(v->object);
}

// ---- the reader ------------------------------------------------------------------------

class Reader {
public:
    Reader(const uint8_t* data, size_t size, std::string name, Device device,
           const PthFilter& wanted)
        : data_(data), size_(size), name_(std::move(name)), device_(device), wanted_(wanted) {}

    std::map<std::string, Tensor> read() {
        ValuePtr root;
        switch (detect_pth_container(data_, size_, name_)) {
            case PthContainer::Legacy: root = read_legacy(); break;
            case PthContainer::Zip: root = read_zip(); break;
            case PthContainer::Tar: root = read_tar(); break;
        }
        std::vector<std::pair<std::string, std::shared_ptr<TensorRef>>> found;
        collect(root, "", 0, found);
        std::map<std::string, Tensor> out;
        for (auto& [name, ref] : found) {
            if (wanted_ && !wanted_(name)) continue;
            out[name] = materialize(name, *ref);  // a later duplicate wins, as in Python
        }
        return out;
    }

private:
    template <class... Args>
    [[noreturn]] void error(const Args&... args) const {
        fail(detail::concat("pth: ", name_, ": ", args...));
    }

    // ---- shared pickle hooks ----
    pickle::Hooks hooks() {
        pickle::Hooks h;
        h.find_class = [this](const std::string& m, const std::string& n) { return find_class(m, n); };
        h.reduce = [this](const Value& f, const Value& args) { return reduce(f, args, 0); };
        h.build = [this](Value& object, const ValuePtr&) {
            // OrderedDict attributes (_metadata) and tensor state carry nothing we need.
            const bool tensor = object.kind == Kind::Object &&
                                dynamic_cast<TensorRef*>(object.object.get()) != nullptr;
            if (object.kind != Kind::Dict && !tensor)
                error("BUILD on a ", pickle::describe(object), " is not supported");
        };
        return h;
    }

    ValuePtr find_class(const std::string& module, const std::string& name) {
        static const char* const kAllowed[][2] = {
            {"collections", "OrderedDict"},
            {"torch._utils", "_rebuild_tensor"},
            {"torch._utils", "_rebuild_tensor_v2"},
            {"torch._utils", "_rebuild_parameter"},
            {"torch._utils", "_rebuild_parameter_with_state"},
            {"torch._tensor", "_rebuild_from_type_v2"},
            {"torch", "Size"},
            {"torch", "Tensor"},
            {"torch._tensor", "Tensor"},
            {"torch.nn.parameter", "Parameter"},
        };
        bool ok = false;
        for (const auto& a : kAllowed) ok = ok || (module == a[0] && name == a[1]);
        if (module == "torch" || module == "torch.cuda")
            for (const auto& t : kScalarTypes) ok = ok || name == t.storage || name == t.tensor;
        if (!ok)
            error("the checkpoint refers to the Python object ", module, ".", name,
                  ", which this reader does not load: it reads state dicts (dicts of tensors), "
                  "not arbitrary pickled objects such as a whole model (save one with "
                  "torch.save(model.state_dict(), path))");
        auto g = std::make_shared<Value>(Kind::Global);
        g->module = module;
        g->name = name;
        return g;
    }

    std::shared_ptr<TensorRef> tensor_arg(const Value& args, size_t i, const char* fn) {
        auto t = as<TensorRef>(args.items[i]);
        if (!t) error(fn, ": argument ", i, " is a ", pickle::describe(*args.items[i]), ", not a tensor");
        return t;
    }
    int64_t int_arg(const Value& args, size_t i, const char* fn) {
        const Value& v = *args.items[i];
        if (v.kind != Kind::Int) error(fn, ": argument ", i, " is a ", pickle::describe(v), ", not an int");
        return v.integer;
    }
    Shape shape_arg(const Value& args, size_t i, const char* fn) {
        const Value& v = *args.items[i];
        if (v.kind != Kind::Tuple && v.kind != Kind::List)
            error(fn, ": argument ", i, " is a ", pickle::describe(v), ", not a tuple of ints");
        Shape s;
        for (const auto& d : v.items) {
            if (d->kind != Kind::Int) error(fn, ": argument ", i, " holds a ", pickle::describe(*d));
            s.push_back(d->integer);
        }
        return s;
    }

    ValuePtr reduce(const Value& f, const Value& args, int depth) {
        const std::string& fn = f.name;
        const size_t n = args.items.size();
        auto need = [&](size_t lo, size_t hi) {
            if (n < lo || n > hi) error(f.module, ".", fn, " called with ", n, " arguments");
        };
        if (fn == "OrderedDict") {  // py3: OrderedDict() + SETITEMS; py2: OrderedDict([[k, v], ...])
            need(0, 1);
            ValuePtr d = pickle::make_dict();
            if (n == 1) {
                const Value& items = *args.items[0];
                if (items.kind == Kind::Dict) {
                    d->entries = items.entries;
                } else if (items.kind == Kind::List || items.kind == Kind::Tuple) {
                    for (const auto& kv : items.items) {
                        if ((kv->kind != Kind::List && kv->kind != Kind::Tuple) || kv->items.size() != 2)
                            error("OrderedDict built from a ", pickle::describe(*kv), ", not a pair");
                        d->entries.emplace_back(kv->items[0], kv->items[1]);
                    }
                } else {
                    error("OrderedDict built from a ", pickle::describe(items));
                }
            }
            return d;
        }
        if (fn == "Size") {
            need(1, 1);
            const Value& dims = *args.items[0];
            if (dims.kind != Kind::Tuple && dims.kind != Kind::List) error("torch.Size of a ", pickle::describe(dims));
            return pickle::make_tuple(dims.items);
        }
        if (fn == "_rebuild_tensor" || fn == "_rebuild_tensor_v2") {
            // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
            if (fn == "_rebuild_tensor") need(4, 4); else need(6, 7);
            auto t = std::make_shared<TensorRef>();
            t->storage = as<StorageRef>(args.items[0]);
            if (!t->storage) error(fn, ": argument 0 is a ", pickle::describe(*args.items[0]), ", not a storage");
            t->offset = int_arg(args, 1, fn.c_str());
            t->size = shape_arg(args, 2, fn.c_str());
            t->stride = shape_arg(args, 3, fn.c_str());
            if (t->size.size() != t->stride.size())
                error(fn, ": size ", shape_str(t->size), " and stride ", shape_str(t->stride), " differ in rank");
            return pickle::make_object(t);
        }
        if (fn == "_rebuild_parameter" || fn == "_rebuild_parameter_with_state") {
            need(3, 4);
            return pickle::make_object(tensor_arg(args, 0, fn.c_str()));
        }
        if (fn == "_rebuild_from_type_v2") {  // (func, type, args, state): func(*args)
            need(4, 4);
            const Value& inner = *args.items[0];
            if (inner.kind != Kind::Global || inner.name == fn || depth > 0 ||
                args.items[2]->kind != Kind::Tuple)
                error(fn, " with unsupported arguments");
            return reduce(inner, *args.items[2], depth + 1);
        }
        error("the checkpoint calls ", f.module, ".", fn, ", which is not supported");
    }

    // ('storage', storage_type, key, location, numel[, view_metadata]) in the
    // legacy stream (with view_metadata) and the zip container (without).
    ValuePtr storage_from_pid(const ValuePtr& pid) {
        const Value& p = *pid;
        if (p.kind != Kind::Tuple || p.items.size() < 5 || p.items[0]->kind != Kind::String ||
            p.items[0]->text != "storage")
            error("unsupported persistent id ", pickle::describe(p), " (expected ('storage', ...))");
        const Value& type = *p.items[1];
        const ScalarType* st = type.kind == Kind::Global ? storage_type(type.name) : nullptr;
        if (!st) error("persistent id with storage type ", pickle::describe(type));
        if (p.items[2]->kind != Kind::String) error("storage key is a ", pickle::describe(*p.items[2]));
        const std::string& key = p.items[2]->text;
        if (p.items[4]->kind != Kind::Int) error("storage ", key, ": size is a ", pickle::describe(*p.items[4]));
        const int64_t numel = p.items[4]->integer;
        auto root = root_storage(key, st, numel);

        auto ref = std::make_shared<StorageRef>();
        ref->root = root;
        ref->numel = numel;
        if (p.items.size() >= 6 && p.items[5]->kind != Kind::None) {  // view_metadata
            const Value& view = *p.items[5];
            if (view.kind != Kind::Tuple || view.items.size() != 3 ||
                view.items[1]->kind != Kind::Int || view.items[2]->kind != Kind::Int)
                error("storage ", key, ": bad view metadata ", pickle::describe(view));
            set_view(*ref, view.items[1]->integer, view.items[2]->integer);
        }
        return pickle::make_object(ref);
    }

    // The root storage of `key`: created on first sight, checked for
    // consistency when several persistent ids share it.
    std::shared_ptr<RootStorage> root_storage(const std::string& key, const ScalarType* st,
                                              int64_t numel) {
        if (numel < 0 || numel > kMaxElements) error("storage ", key, ": bad element count ", numel);
        auto& slot = storages_[key];
        if (!slot) {
            slot = std::make_shared<RootStorage>();
            slot->key = key;
            slot->type = st;
            slot->numel = numel;
        } else if (slot->type != st || slot->numel != numel) {
            error("storage ", key, " is described twice with different types or sizes");
        }
        return slot;
    }

    void set_view(StorageRef& ref, int64_t offset, int64_t numel) {
        const RootStorage& root = *ref.root;
        if (offset < 0 || numel < 0 || offset > root.numel || numel > root.numel - offset)
            error("storage ", root.key, ": view [", offset, ", +", numel, ") outside its ",
                  root.numel, " elements");
        ref.offset = offset;
        ref.numel = numel;
    }

    // ---- the state dict -> named tensors ----
    void collect(const ValuePtr& v, const std::string& prefix, int depth,
                 std::vector<std::pair<std::string, std::shared_ptr<TensorRef>>>& out) {
        if (v->kind != Kind::Dict) {
            if (depth == 0)
                error("holds a ", pickle::describe(*v), ", not a dict of tensors (a state dict)");
            return;
        }
        if (depth > 8) return;  // deeper nesting is not a state dict
        for (const auto& [k, value] : v->entries) {
            std::string key;
            if (k->kind == Kind::String) key = k->text;
            else if (k->kind == Kind::Int) key = std::to_string(k->integer);
            else continue;
            const std::string name = prefix.empty() ? key : prefix + "." + key;
            if (auto t = as<TensorRef>(value)) out.emplace_back(name, t);
            else if (value->kind == Kind::Dict) collect(value, name, depth + 1, out);
            // other values (epoch numbers, strings, ...) are not tensors: skipped
        }
    }

    Tensor materialize(const std::string& name, const TensorRef& t) {
        const StorageRef& s = *t.storage;
        RootStorage& root = *s.root;
        int64_t numel = 1, last = t.offset;
        if (t.offset < 0) error("tensor '", name, "': negative storage offset ", t.offset);
        for (size_t d = 0; d < t.size.size(); ++d) {
            if (t.size[d] < 0 || t.stride[d] < 0 || t.size[d] > kMaxElements || t.stride[d] > kMaxElements)
                error("tensor '", name, "': bad size ", shape_str(t.size), " or stride ", shape_str(t.stride));
            if (t.size[d] == 0) numel = 0;
            else if (numel != 0 && numel > kMaxElements / t.size[d])
                error("tensor '", name, "': size ", shape_str(t.size), " is too large");
            else numel *= t.size[d];
        }
        if (numel > 0) {
            for (size_t d = 0; d < t.size.size(); ++d) {  // the last element it reaches
                if (t.stride[d] != 0 && t.size[d] - 1 > kMaxElements / t.stride[d])
                    error("tensor '", name, "': stride ", shape_str(t.stride), " is too large");
                last += (t.size[d] - 1) * t.stride[d];
                if (last > kMaxElements) error("tensor '", name, "': stride ", shape_str(t.stride), " is too large");
            }
            if (last >= s.numel)
                error("tensor '", name, "' of size ", shape_str(t.size), ", stride ", shape_str(t.stride),
                      ", offset ", t.offset, " reaches element ", last, " of a storage of ", s.numel);
        }
        // Overlapping strides (stride 0: an expanded tensor) can make a tensor
        // larger than its storage; a crafted file could ask for terabytes that way.
        if (numel > std::max<int64_t>(s.numel, kMaxExpandedElements))
            error("tensor '", name, "' of size ", shape_str(t.size), " repeats the ", s.numel,
                  " elements of its storage ", numel, " times over; refusing to expand it");
        if (numel > 0) locate(root);
        const size_t esize = root.type->size;
        const uint8_t* base = numel > 0 ? root.data + size_t(s.offset) * esize : nullptr;
        std::vector<float> values(static_cast<size_t>(numel));
        const bool fast = !big_endian_ && root.type->scalar == Scalar::F32;
        // Odometer over the dims; the innermost dim is walked in one run.
        const size_t rank = t.size.size();
        std::vector<int64_t> index(rank, 0);
        const int64_t inner = rank ? t.size[rank - 1] : 1, inner_stride = rank ? t.stride[rank - 1] : 1;
        for (int64_t out = 0; out < numel; out += inner) {
            int64_t at = t.offset;
            for (size_t d = 0; d + 1 < rank; ++d) at += index[d] * t.stride[d];
            if (fast && inner_stride == 1) {
                std::memcpy(&values[size_t(out)], base + size_t(at) * 4, size_t(inner) * 4);
            } else {
                for (int64_t i = 0; i < inner; ++i)
                    values[size_t(out + i)] =
                        element_to_float(base + size_t(at + i * inner_stride) * esize, *root.type, big_endian_);
            }
            for (size_t d = rank > 1 ? rank - 1 : 0; d-- > 0;) {  // next row
                if (++index[d] < t.size[d]) break;
                index[d] = 0;
            }
        }
        return Tensor::from_vector(values, t.size, device_);
    }

    void locate(RootStorage& root) {
        if (root.data) return;
        if (container_ == PthContainer::Zip) {
            read_zip_storage(root);
            return;
        }
        error("storage ", root.key, " is used by a tensor but the file holds no data for it");
    }

    // ---- little helpers for the binary parts ----
    int64_t read_i64(const uint8_t* p) const {
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v |= uint64_t(p[big_endian_ ? 7 - i : i]) << (8 * i);
        return int64_t(v);
    }
    int32_t read_i32(const uint8_t* p) const {
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v |= uint32_t(p[big_endian_ ? 3 - i : i]) << (8 * i);
        return int32_t(v);
    }
    // The little_endian flag of a sys_info dict (legacy stream and tar).
    void read_sys_info(const ValuePtr& info) {
        if (info->kind != Kind::Dict) error("system info is a ", pickle::describe(*info), ", not a dict");
        for (const auto& [k, v] : info->entries)
            if (k->kind == Kind::String && k->text == "little_endian" && v->kind == Kind::Bool)
                big_endian_ = !v->boolean;
    }
    // Storage keys of the tar container are ints (the saving process's
    // pointers), written as ints or as their decimal strings.
    std::string int_key(const Value& v, const char* what) const {
        if (v.kind == Kind::Int) return std::to_string(v.integer);
        if (v.kind == Kind::String && !v.text.empty() && v.text.size() < 24 &&
            v.text.find_first_not_of("-0123456789") == std::string::npos)
            return std::to_string(std::stoll(v.text));
        error(what, " is a ", pickle::describe(v), ", not an integer key");
    }

    // ---- legacy stream ----
    ValuePtr read_legacy() {
        container_ = PthContainer::Legacy;
        size_t pos = 0;
        pickle::Hooks none;
        ValuePtr magic = pickle::unpickle(data_, size_, pos, none, name_ + ": magic number");
        static const uint8_t kMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
        if (magic->kind != Kind::BigInt || magic->text.size() != sizeof kMagic ||
            std::memcmp(magic->text.data(), kMagic, sizeof kMagic) != 0)
            error("not a PyTorch checkpoint (wrong magic number)");
        ValuePtr version = pickle::unpickle(data_, size_, pos, none, name_ + ": protocol version");
        if (version->kind != Kind::Int || version->integer != 1001)
            error("unsupported legacy protocol version ", pickle::describe(*version), " (expected 1001)");
        read_sys_info(pickle::unpickle(data_, size_, pos, none, name_ + ": system info"));

        pickle::Hooks h = hooks();
        h.persistent_load = [this](const ValuePtr& pid) { return storage_from_pid(pid); };
        ValuePtr root = pickle::unpickle(data_, size_, pos, h, name_ + ": object");

        ValuePtr keys = pickle::unpickle(data_, size_, pos, none, name_ + ": storage keys");
        if (keys->kind != Kind::List) error("storage key list is a ", pickle::describe(*keys));
        for (const auto& k : keys->items) {
            if (k->kind != Kind::String) error("storage key is a ", pickle::describe(*k));
            auto it = storages_.find(k->text);
            if (it == storages_.end()) error("storage ", k->text, " is listed but used by no tensor");
            RootStorage& s = *it->second;
            if (size_ - pos < 8) error("truncated before storage ", s.key, " (byte ", pos, ")");
            const int64_t count = read_i64(data_ + pos);
            pos += 8;
            if (count != s.numel)
                error("storage ", s.key, " holds ", count, " elements, the object expects ", s.numel,
                      " (corrupt file?)");
            const uint64_t bytes = uint64_t(s.numel) * s.type->size;
            if (bytes > size_ - pos)
                error("truncated in storage ", s.key, ": needs ", bytes, " bytes at byte ", pos,
                      ", the file has ", size_ - pos, " left");
            s.data = data_ + pos;
            pos += size_t(bytes);
        }
        return root;
    }

    // ---- zip ----
#ifdef NST_HAVE_LIBZIP
    struct ZipCloser {
        void operator()(zip_t* z) const { zip_discard(z); }
    };
    std::unique_ptr<zip_t, ZipCloser> zip_;
    std::string zip_prefix_;

    // The whole of entry `name`, which must hold exactly `expected` bytes
    // when expected >= 0. zip_fread checks the CRC when it reaches the end.
    bool read_zip_entry(const std::string& name, int64_t expected, std::vector<uint8_t>& out) {
        const zip_int64_t index = zip_name_locate(zip_.get(), name.c_str(), 0);
        if (index < 0) return false;
        zip_stat_t st;
        zip_stat_init(&st);
        if (zip_stat_index(zip_.get(), zip_uint64_t(index), 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
            error("cannot read the size of zip entry ", name, ": ", zip_strerror(zip_.get()));
        if (expected >= 0 && st.size != uint64_t(expected))
            error("zip entry ", name, " holds ", st.size, " bytes, the checkpoint expects ", expected);
        // Deflate expands at most ~1032x: a header claiming more is corrupt, and
        // must not get to size an allocation.
        const uint64_t packed = (st.valid & ZIP_STAT_COMP_SIZE) ? st.comp_size : uint64_t(size_);
        if (packed > size_ || st.size > packed * 1032 + 4096)
            error("zip entry ", name, " claims ", st.size, " bytes from ", packed, " (corrupt file?)");
        zip_file_t* f = zip_fopen_index(zip_.get(), zip_uint64_t(index), 0);
        if (!f) error("cannot open zip entry ", name, ": ", zip_strerror(zip_.get()));
        out.resize(size_t(st.size) + 1);  // one spare byte: a longer entry is caught below
        zip_uint64_t got = 0;
        zip_int64_t n = 0;
        while (got < out.size() && (n = zip_fread(f, out.data() + got, out.size() - got)) > 0)
            got += zip_uint64_t(n);
        std::string why = n < 0 ? zip_file_strerror(f) : "";
        zip_fclose(f);
        if (n < 0) error("zip entry ", name, " is corrupt: ", why);
        if (got != st.size) error("zip entry ", name, " holds ", got, " bytes, its header says ", st.size);
        out.resize(size_t(st.size));
        return true;
    }

    ValuePtr read_zip() {
        container_ = PthContainer::Zip;
        zip_error_t err;
        zip_error_init(&err);
        zip_source_t* src = zip_source_buffer_create(data_, size_, 0, &err);
        if (!src) error("cannot read as zip: ", zip_error_strerror(&err));
        zip_t* z = zip_open_from_source(src, ZIP_RDONLY, &err);
        if (!z) {
            zip_source_free(src);
            const std::string why = zip_error_strerror(&err);
            zip_error_fini(&err);
            error("not a readable zip archive: ", why);
        }
        zip_error_fini(&err);
        zip_.reset(z);

        // The pickle is <dir>/data.pkl; <dir> is "archive" or the saved file's stem.
        const zip_int64_t count = zip_get_num_entries(z, 0);
        bool found = false;
        for (zip_int64_t i = 0; i < count && !found; ++i) {
            const char* entry = zip_get_name(z, zip_uint64_t(i), 0);
            if (!entry) continue;
            const std::string e = entry;
            const size_t slash = e.find('/');
            if (slash != std::string::npos && e.compare(slash + 1, std::string::npos, "data.pkl") == 0) {
                zip_prefix_ = e.substr(0, slash + 1);
                found = true;
            }
        }
        if (!found) error("a zip archive without <dir>/data.pkl: not a PyTorch checkpoint");

        std::vector<uint8_t> byteorder;
        if (read_zip_entry(zip_prefix_ + "byteorder", -1, byteorder)) {
            const std::string order(byteorder.begin(), byteorder.end());
            if (order != "little" && order != "big") error("unknown byteorder '", order.substr(0, 20), "'");
            big_endian_ = order == "big";
        }
        std::vector<uint8_t> pkl;
        read_zip_entry(zip_prefix_ + "data.pkl", -1, pkl);
        pickle::Hooks h = hooks();
        h.persistent_load = [this](const ValuePtr& pid) { return storage_from_pid(pid); };
        size_t pos = 0;
        return pickle::unpickle(pkl.data(), pkl.size(), pos, h, name_ + ": " + zip_prefix_ + "data.pkl");
    }

    void read_zip_storage(RootStorage& root) {
        const std::string entry = zip_prefix_ + "data/" + root.key;
        if (!read_zip_entry(entry, root.numel * int64_t(root.type->size), root.owned))
            error("storage ", root.key, " is used by a tensor but the zip has no entry ", entry);
        root.data = root.owned.data();
    }
#else
    ValuePtr read_zip() {
        error("a zip checkpoint (PyTorch >= 1.6), but this build of nst has no zip support: "
              "install libzip-dev and rebuild (or re-save the file in PyTorch with "
              "_use_new_zipfile_serialization=False)");
    }
    void read_zip_storage(RootStorage&) { error("no zip support"); }
#endif

    // ---- tar ----
    struct Span {
        const uint8_t* data = nullptr;
        size_t size = 0;
    };

    // ustar headers, with the pax ('x') and GNU long-name ('L') records that
    // Python's tarfile writes: its PAX format stores every member's float
    // mtime in a pax record, so each member is preceded by one.
    std::map<std::string, Span> tar_members() {
        std::map<std::string, Span> members;
        size_t pos = 0;
        std::string next_name;
        int64_t next_size = -1;
        while (size_ - pos >= 512) {
            const uint8_t* h = data_ + pos;
            bool zero = true;
            for (int i = 0; i < 512 && zero; ++i) zero = h[i] == 0;
            if (zero) break;  // end-of-archive marker
            unsigned sum = 0;
            for (int i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
            if (int64_t(sum) != tar_number(h + 148, 8, pos))
                error("tar header checksum mismatch at byte ", pos, " (corrupt file?)");
            int64_t size = tar_number(h + 124, 12, pos);
            if (next_size >= 0) size = next_size;
            if (size < 0 || uint64_t(size) > size_ - pos - 512)
                error("tar member at byte ", pos, " claims ", size, " bytes, past the end of the file");
            const Span body{h + 512, size_t(size)};
            const char type = char(h[156]);
            std::string name = field(h, 100);
            const std::string prefix = field(h + 345, 155);
            if (!prefix.empty() && std::memcmp(h + 257, "ustar\0", 6) == 0) name = prefix + "/" + name;
            pos += 512 + (size_t(size) + 511) / 512 * 512;
            if (pos > size_) pos = size_;
            if (type == 'x') {
                parse_pax(body, next_name, next_size);
                continue;
            }
            if (type == 'L') {
                next_name = field(body.data, body.size);
                continue;
            }
            if (type == 'g') continue;
            if (!next_name.empty()) name = next_name;
            next_name.clear();
            next_size = -1;
            while (name.compare(0, 2, "./") == 0) name.erase(0, 2);
            if (type == '0' || type == '\0') members[name] = body;
        }
        return members;
    }

    static std::string field(const uint8_t* p, size_t n) {
        size_t len = 0;
        while (len < n && p[len] != 0) ++len;
        return std::string(reinterpret_cast<const char*>(p), len);
    }

    // Octal text (NUL/space padded), or base-256 when the high bit is set.
    int64_t tar_number(const uint8_t* p, size_t n, size_t at) const {
        if (p[0] & 0x80) {
            if (p[0] != 0x80) error("tar header at byte ", at, ": unsupported number encoding");
            uint64_t v = 0;
            for (size_t i = 1; i < n; ++i) {
                if (v >> 55) error("tar header at byte ", at, ": number too large");
                v = (v << 8) | p[i];
            }
            return int64_t(v);
        }
        size_t i = 0;
        while (i < n && p[i] == ' ') ++i;
        int64_t v = 0;
        bool digits = false;
        for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i, digits = true) v = v * 8 + (p[i] - '0');
        for (; i < n; ++i)
            if (p[i] != ' ' && p[i] != 0) error("tar header at byte ", at, ": bad numeric field");
        if (!digits) error("tar header at byte ", at, ": empty numeric field");
        return v;
    }

    // Records "<len> <key>=<value>\n"; we use path and size.
    void parse_pax(Span body, std::string& name, int64_t& size) const {
        size_t pos = 0;
        while (pos < body.size) {
            size_t len = 0, i = pos;
            while (i < body.size && body.data[i] >= '0' && body.data[i] <= '9' && len < body.size)
                len = len * 10 + (body.data[i++] - '0');
            if (i >= body.size || body.data[i] != ' ' || len > body.size - pos || pos + len <= i + 1)
                error("malformed pax header record");
            const std::string record(reinterpret_cast<const char*>(body.data + i + 1), pos + len - i - 1);
            pos += len;
            const size_t eq = record.find('=');
            if (eq == std::string::npos || record.empty() || record.back() != '\n')
                error("malformed pax header record");
            const std::string key = record.substr(0, eq), value = record.substr(eq + 1, record.size() - eq - 2);
            if (key == "path") name = value;
            if (key == "size") {
                if (value.empty() || value.size() > 18 || value.find_first_not_of("0123456789") != std::string::npos)
                    error("bad pax size '", value.substr(0, 20), "'");
                size = std::stoll(value);
            }
        }
    }

    ValuePtr read_tar() {
        container_ = PthContainer::Tar;
        std::map<std::string, Span> members = tar_members();
        auto member = [&](const char* name) {
            auto it = members.find(name);
            if (it == members.end()) error("a tar archive without a '", name, "' member: not a PyTorch checkpoint");
            return it->second;
        };
        pickle::Hooks classes;  // the metadata pickles name storage and tensor types
        classes.find_class = [this](const std::string& m, const std::string& n) { return find_class(m, n); };

        if (members.count("sys_info")) {
            const Span s = members["sys_info"];
            size_t pos = 0;
            read_sys_info(pickle::unpickle(s.data, s.size, pos, {}, name_ + ": sys_info"));
        }

        // storages: count, then per storage (key, location, type), int64 count, bytes; then views
        const Span st = member("storages");
        const std::string st_ctx = name_ + ": storages";
        size_t pos = 0;
        ValuePtr count = pickle::unpickle(st.data, st.size, pos, classes, st_ctx);
        if (count->kind != Kind::Int || count->integer < 0 || uint64_t(count->integer) > st.size)
            error("storage count is ", pickle::describe(*count));
        std::map<std::string, std::shared_ptr<StorageRef>> storage_by_key;
        for (int64_t i = 0; i < count->integer; ++i) {
            ValuePtr rec = pickle::unpickle(st.data, st.size, pos, classes, st_ctx);
            if (rec->kind != Kind::Tuple || rec->items.size() != 3 || rec->items[2]->kind != Kind::Global ||
                !storage_type(rec->items[2]->name))
                error("storage record is a ", pickle::describe(*rec), ", not (key, location, storage type)");
            const std::string key = int_key(*rec->items[0], "storage key");
            if (st.size - pos < 8) error("storages member truncated at storage ", key);
            const int64_t numel = read_i64(st.data + pos);
            pos += 8;
            if (storages_.count(key)) error("storage ", key, " appears twice");
            auto root = root_storage(key, storage_type(rec->items[2]->name), numel);
            const uint64_t bytes = uint64_t(numel) * root->type->size;
            if (bytes > st.size - pos)
                error("storages member truncated in storage ", key, ": needs ", bytes, " bytes, has ", st.size - pos);
            root->data = st.data + pos;
            pos += size_t(bytes);
            auto ref = std::make_shared<StorageRef>();
            ref->root = root;
            ref->numel = numel;
            storage_by_key[key] = ref;
        }
        ValuePtr views = pickle::unpickle(st.data, st.size, pos, classes, st_ctx);
        if (views->kind != Kind::List) error("storage view list is a ", pickle::describe(*views));
        for (const auto& v : views->items) {  // (view key, root key, offset, size)
            if (v->kind != Kind::Tuple || v->items.size() != 4 || v->items[2]->kind != Kind::Int ||
                v->items[3]->kind != Kind::Int)
                error("storage view is a ", pickle::describe(*v));
            auto root = storage_by_key.find(int_key(*v->items[1], "storage view root"));
            if (root == storage_by_key.end()) error("storage view of an unknown storage");
            auto ref = std::make_shared<StorageRef>();
            ref->root = root->second->root;
            set_view(*ref, v->items[2]->integer, v->items[3]->integer);
            storage_by_key[int_key(*v->items[0], "storage view key")] = ref;
        }

        // tensors: count, then per tensor (key, storage key, type), ndim (8 bytes), sizes, strides, offset
        const Span ts = member("tensors");
        const std::string ts_ctx = name_ + ": tensors";
        pos = 0;
        count = pickle::unpickle(ts.data, ts.size, pos, classes, ts_ctx);
        if (count->kind != Kind::Int || count->integer < 0 || uint64_t(count->integer) > ts.size)
            error("tensor count is ", pickle::describe(*count));
        for (int64_t i = 0; i < count->integer; ++i) {
            ValuePtr rec = pickle::unpickle(ts.data, ts.size, pos, classes, ts_ctx);
            if (rec->kind != Kind::Tuple || rec->items.size() != 3)
                error("tensor record is a ", pickle::describe(*rec), ", not (key, storage key, type)");
            const std::string key = int_key(*rec->items[0], "tensor key");
            if (ts.size - pos < 8) error("tensors member truncated at tensor ", key);
            const int32_t ndim = read_i32(ts.data + pos);  // written as 8 bytes; the high half is unused
            pos += 8;
            if (ndim < 0 || ndim > 64) error("tensor ", key, ": bad number of dimensions ", ndim);
            if (ts.size - pos < size_t(ndim) * 16 + 8) error("tensors member truncated at tensor ", key);
            auto t = std::make_shared<TensorRef>();
            for (int32_t d = 0; d < ndim; ++d) t->size.push_back(read_i64(ts.data + pos + 8 * size_t(d)));
            pos += 8 * size_t(ndim);
            for (int32_t d = 0; d < ndim; ++d) t->stride.push_back(read_i64(ts.data + pos + 8 * size_t(d)));
            pos += 8 * size_t(ndim);
            t->offset = read_i64(ts.data + pos);
            pos += 8;
            if (rec->items[1]->kind == Kind::None) {  // an empty tensor without storage
                if (ndim != 0) error("tensor ", key, " has no storage but ", ndim, " dimensions");
                t->size = {0};
                t->stride = {1};
                t->offset = 0;
                auto empty = std::make_shared<StorageRef>();
                empty->root = std::make_shared<RootStorage>();
                empty->root->type = &kScalarTypes[0];
                t->storage = empty;
            } else {
                auto s = storage_by_key.find(int_key(*rec->items[1], "tensor storage key"));
                if (s == storage_by_key.end()) error("tensor ", key, " refers to an unknown storage");
                t->storage = s->second;
            }
            tensors_by_key_[key] = t;
        }

        // pickle: the object; its tensors are persistent ids (the keys above)
        const Span pk = member("pickle");
        pickle::Hooks h = hooks();
        h.persistent_load = [this](const ValuePtr& pid) {
            if (pid->kind == Kind::Tuple)
                error("the checkpoint holds a pickled nn.Module (with its source), not a state dict");
            auto it = tensors_by_key_.find(int_key(*pid, "persistent id"));
            if (it == tensors_by_key_.end()) error("persistent id ", pickle::describe(*pid), " names no tensor");
            return pickle::make_object(it->second);
        };
        pos = 0;
        return pickle::unpickle(pk.data, pk.size, pos, h, name_ + ": pickle");
    }

    const uint8_t* data_;
    size_t size_;
    std::string name_;
    Device device_;
    const PthFilter& wanted_;
    PthContainer container_ = PthContainer::Legacy;
    bool big_endian_ = false;
    std::map<std::string, std::shared_ptr<RootStorage>> storages_;
    std::map<std::string, std::shared_ptr<TensorRef>> tensors_by_key_;
};

// A read-only mapping of a whole file: the OS pages in only what is read.
class MappedFile {
public:
    explicit MappedFile(const std::string& path) {
        require_regular_file(path);
        const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        NST_CHECK(fd >= 0, "pth: cannot open ", path, ": ", std::strerror(errno));
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(fd);
            fail(detail::concat("pth: ", path, " is not a regular file"));
        }
        size_ = size_t(st.st_size);
        if (size_ > 0) {
            void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                const int e = errno;
                ::close(fd);
                fail(detail::concat("pth: cannot map ", path, ": ", std::strerror(e)));
            }
            data_ = static_cast<const uint8_t*>(p);
        }
        ::close(fd);
    }
    ~MappedFile() {
        if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }

private:
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace

const char* pth_container_name(PthContainer container) {
    switch (container) {
        case PthContainer::Zip: return "zip";
        case PthContainer::Legacy: return "legacy";
        case PthContainer::Tar: return "tar";
    }
    return "?";
}

PthContainer detect_pth_container(const uint8_t* data, size_t size, const std::string& name) {
    if (size >= 4 && data[0] == 'P' && data[1] == 'K' &&
        ((data[2] == 3 && data[3] == 4) || (data[2] == 5 && data[3] == 6)))
        return PthContainer::Zip;
    if (size >= 512 && std::memcmp(data + 257, "ustar", 5) == 0) return PthContainer::Tar;
    if (size >= 2 && data[0] == 0x80 && data[1] >= 2 && data[1] <= 5) return PthContainer::Legacy;
    std::string head;
    for (size_t i = 0; i < std::min<size_t>(size, 8); ++i) {
        head += ' ';
        head += "0123456789abcdef"[data[i] >> 4];
        head += "0123456789abcdef"[data[i] & 15];
    }
    fail(detail::concat("pth: ", name, " is not a PyTorch checkpoint: it is neither a zip archive, a tar "
                        "archive nor a pickle (", size, " bytes, starting with", head.empty() ? " nothing" : head,
                        ")"));
}

std::map<std::string, Tensor> load_pth_bytes(const uint8_t* data, size_t size, const std::string& name,
                                             Device device, const PthFilter& wanted) {
    Reader reader(data, size, name, device, wanted);
    try {
        return reader.read();
    } catch (const std::bad_alloc&) {
        fail(detail::concat("pth: ", name, ": out of memory while reading (", size, " bytes)"));
    }
}

std::map<std::string, Tensor> load_pth(const std::string& path, Device device, const PthFilter& wanted) {
    MappedFile file(path);
    return load_pth_bytes(file.data(), file.size(), path, device, wanted);
}

bool pth_zip_supported() {
#ifdef NST_HAVE_LIBZIP
    return true;
#else
    return false;
#endif
}

}  // namespace nst
