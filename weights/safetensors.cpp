// Reading checks the header completely (JSON, dtypes, shapes, ranges) before
// any tensor data is read, so a corrupt or hostile file fails with one
// readable message instead of an allocation of garbage size. Tensors are read
// one at a time with a seek, so a large file is never held twice in memory.
#include "weights/safetensors.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/dtype.hpp"
#include "core/error.hpp"
#include "core/files.hpp"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

namespace nst {
namespace {

using json = nlohmann::json;

// The reference implementation's limit: real headers are kilobytes.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

size_t dtype_bytes(const std::string& dtype) {
    if (dtype == "F32") return 4;
    if (dtype == "F16" || dtype == "BF16") return 2;
    if (dtype == "F64") return 8;
    return 0;
}

std::vector<float> to_float32(const std::string& dtype, const std::vector<char>& raw) {
    const size_t n = raw.size() / dtype_bytes(dtype);
    std::vector<float> out(n);
    if (dtype == "F32") {
        std::memcpy(out.data(), raw.data(), raw.size());
    } else if (dtype == "F64") {
        for (size_t i = 0; i < n; ++i) {
            double d;
            std::memcpy(&d, raw.data() + 8 * i, 8);
            out[i] = float(d);
        }
    } else {
        for (size_t i = 0; i < n; ++i) {
            uint16_t h;
            std::memcpy(&h, raw.data() + 2 * i, 2);
            out[i] = dtype == "F16" ? f16_to_float(h) : bf16_to_float(h);
        }
    }
    return out;
}

struct Parsed {
    SafetensorsHeader header;
    uint64_t data_start = 0;  // file offset of the data section
};

Parsed parse_header(const std::string& path, std::ifstream& in) {
    auto bad = [&](const std::string& why) -> Error {
        return Error(path + ": not a valid safetensors file: " + why);
    };
    in.seekg(0, std::ios::end);
    NST_CHECK(in.good(), path, ": cannot read the file");
    const uint64_t file_size = uint64_t(in.tellg());
    in.seekg(0);
    if (file_size < 8) throw bad("only " + std::to_string(file_size) + " bytes, no header");
    unsigned char len_bytes[8];
    in.read(reinterpret_cast<char*>(len_bytes), 8);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = header_len << 8 | len_bytes[i];
    if (header_len > kMaxHeaderBytes)
        throw bad("header length " + std::to_string(header_len) + " bytes is absurd (limit " +
                  std::to_string(kMaxHeaderBytes) + ")");
    if (header_len > file_size - 8)
        throw bad("header length " + std::to_string(header_len) + " runs past the end of the " +
                  std::to_string(file_size) + "-byte file");
    std::string text(header_len, '\0');
    in.read(text.data(), std::streamsize(header_len));
    NST_CHECK(in.good(), path, ": cannot read the header");

    const json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (root.is_discarded()) throw bad("the header is not valid JSON");
    if (!root.is_object()) throw bad("the header is not a JSON object");

    Parsed parsed;
    parsed.data_start = 8 + header_len;
    parsed.header.file_size = file_size;
    const uint64_t data_size = file_size - parsed.data_start;
    for (const auto& item : root.items()) {
        const std::string& name = item.key();
        const json& value = item.value();
        if (name == "__metadata__") {
            if (!value.is_object()) throw bad("__metadata__ is not an object");
            for (const auto& m : value.items()) {
                if (!m.value().is_string())
                    throw bad("__metadata__ value of '" + m.key() + "' is not a string");
                parsed.header.metadata[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        const std::string where = "tensor '" + name + "'";
        if (!value.is_object()) throw bad(where + " is not an object");
        for (const char* key : {"dtype", "shape", "data_offsets"})
            if (!value.contains(key)) throw bad(where + " has no " + key);
        SafetensorsEntry e;
        e.name = name;
        if (!value["dtype"].is_string()) throw bad(where + ": dtype is not a string");
        e.dtype = value["dtype"].get<std::string>();
        const size_t elem = dtype_bytes(e.dtype);
        if (elem == 0)
            throw bad(where + " has unsupported dtype " + e.dtype + " (F32, F16, BF16, F64 are)");
        const json& shape = value["shape"];
        if (!shape.is_array()) throw bad(where + ": shape is not an array");
        uint64_t count = 1;
        for (const json& d : shape) {
            if (!d.is_number_unsigned()) throw bad(where + ": shape has a non-integer or negative size");
            const uint64_t v = d.get<uint64_t>();
            // Bounded by the file size, so no product can overflow before the check fails.
            if (v != 0 && count > data_size / v) {
                count = data_size + 1;
            } else {
                count *= v;
            }
            e.shape.push_back(int64_t(std::min<uint64_t>(v, uint64_t(1) << 62)));
        }
        const json& offsets = value["data_offsets"];
        if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
            !offsets[1].is_number_unsigned())
            throw bad(where + ": data_offsets is not a pair of non-negative integers");
        e.begin = offsets[0].get<uint64_t>();
        e.end = offsets[1].get<uint64_t>();
        if (e.begin > e.end) throw bad(where + ": data_offsets end before they begin");
        if (e.end > data_size)
            throw bad(where + ": data_offsets [" + std::to_string(e.begin) + ", " +
                      std::to_string(e.end) + "] lie outside the " + std::to_string(data_size) +
                      "-byte data section (file truncated?)");
        if (count > data_size || count * elem != e.end - e.begin)
            throw bad(where + ": shape " + shape_str(e.shape) + " of " + e.dtype + " needs " +
                      (count > data_size ? std::string("more bytes than the file has")
                                         : std::to_string(count * elem) + " bytes") +
                      ", data_offsets give " + std::to_string(e.end - e.begin));
        parsed.header.entries.push_back(std::move(e));
    }
    auto& entries = parsed.header.entries;
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    for (size_t i = 1; i < entries.size(); ++i)
        if (entries[i].begin < entries[i - 1].end)
            throw bad("tensors '" + entries[i - 1].name + "' and '" + entries[i].name +
                      "' overlap in the data section");
    return parsed;
}

std::ifstream open_for_reading(const std::string& path) {
    require_regular_file(path);
    std::ifstream in(path, std::ios::binary);
    NST_CHECK(in.is_open(), path, ": cannot open: ", std::strerror(errno));
    return in;
}

}  // namespace

SafetensorsHeader read_safetensors_header(const std::string& path) {
    std::ifstream in = open_for_reading(path);
    return parse_header(path, in).header;
}

WeightFile load_safetensors(const std::string& path, Device device) {
    std::ifstream in = open_for_reading(path);
    const Parsed parsed = parse_header(path, in);
    WeightFile out;
    out.metadata = parsed.header.metadata;
    std::vector<char> raw;
    for (const SafetensorsEntry& e : parsed.header.entries) {
        raw.resize(e.end - e.begin);
        in.seekg(std::streamoff(parsed.data_start + e.begin));
        in.read(raw.data(), std::streamsize(raw.size()));
        NST_CHECK(in.good(), path, ": cannot read the data of tensor '", e.name, "'");
        out.tensors[e.name] = Tensor::from_vector(to_float32(e.dtype, raw), e.shape).to(device);
    }
    return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    json header = json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (const auto& [name, t] : tensors) {
        NST_CHECK(!name.empty() && name != "__metadata__", path, ": invalid tensor name '",
                  name, "'");
        NST_CHECK(t.defined(), path, ": tensor '", name, "' is undefined");
        const uint64_t bytes = uint64_t(t.numel()) * 4;
        header[name] = {{"dtype", "F32"}, {"shape", t.shape()}, {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string text = header.dump();
    // Pad with spaces so the data section starts 8-byte aligned, as the
    // reference writer does (readers may then map the data in place).
    text.append((8 - text.size() % 8) % 8, ' ');
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; ++i) len_bytes[i] = (uint64_t(text.size()) >> (8 * i)) & 0xff;

    AtomicFile file(path);
    file.write(len_bytes, 8);
    file.write(text.data(), text.size());
    for (const auto& entry : tensors) {
        const std::vector<float> values = entry.second.to_vector();
        file.write(values.data(), values.size() * sizeof(float));
    }
    file.commit();
}

}  // namespace nst
