// safetensors: round trips, the dtypes read by conversion, and every way a
// file can be corrupt, each of which must be a readable nst::Error naming the
// file (never a crash or a garbage allocation).
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "core/error.hpp"
#include "weights/safetensors.hpp"
#include "temp_dir.hpp"

using namespace nst;

namespace {

using nst::test::temp_dir;

// A raw safetensors file from a header text and a data section.
std::string write_raw(const std::string& name, const std::string& header, const std::string& data,
                      uint64_t header_len_override = 0) {
    const std::string path = temp_dir() + "/" + name;
    std::ofstream out(path, std::ios::binary);
    const uint64_t len = header_len_override ? header_len_override : header.size();
    for (int i = 0; i < 8; ++i) out.put(char((len >> (8 * i)) & 0xff));
    out << header << data;
    return path;
}

std::string floats(std::initializer_list<float> values) {
    std::string s;
    for (float v : values) s.append(reinterpret_cast<const char*>(&v), 4);
    return s;
}

void require_error(const std::string& path, const std::string& fragment) {
    try {
        load_safetensors(path);
        FAIL("no error for " << path);
    } catch (const Error& e) {
        const std::string what = e.what();
        INFO(what);
        CHECK(what.find(path) != std::string::npos);  // names the file
        CHECK(what.find(fragment) != std::string::npos);
        CHECK(what.find('\n') == std::string::npos);  // one line
    }
}

}  // namespace

TEST_CASE("safetensors: tensors and metadata round-trip exactly", "[safetensors]") {
    const std::string path = temp_dir() + "/round.safetensors";
    std::map<std::string, Tensor> tensors = {
        {"conv.weight", Tensor::randn({4, 3, 3, 3}, 7)},
        {"norm.bias", Tensor::from_vector({1.f, -2.5f, 3e-8f}, {3})},
        {"scalar", Tensor::from_vector({42.f}, {})},
        {"empty", Tensor::zeros({0, 5})},
    };
    // A non-contiguous view is written in logical order.
    tensors["transposed"] = Tensor::randn({2, 3}, 8).permute({1, 0});
    const std::map<std::string, std::string> meta = {{"architecture", "nst.transformer"},
                                                     {"note", "ünïcode \"quoted\""}};
    save_safetensors(path, tensors, meta);
    const WeightFile w = load_safetensors(path);
    CHECK(w.metadata == meta);
    REQUIRE(w.tensors.size() == tensors.size());
    for (const auto& [name, t] : tensors) {
        INFO(name);
        REQUIRE(w.tensors.count(name));
        CHECK(w.tensors.at(name).shape() == t.shape());
        CHECK(w.tensors.at(name).to_vector() == t.to_vector());
    }
    const SafetensorsHeader h = read_safetensors_header(path);
    CHECK(h.entries.size() == tensors.size());
    // The data section starts 8-byte aligned.
    uint64_t header_len = 0;
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(&header_len), 8);
    CHECK(header_len % 8 == 0);
}

TEST_CASE("safetensors: overwriting is atomic and leaves no temporaries", "[safetensors]") {
    const std::string dir = temp_dir() + "/atomic";
    ::mkdir(dir.c_str(), 0777);
    const std::string path = dir + "/w.safetensors";
    save_safetensors(path, {{"a", Tensor::full({2}, 1.f)}});
    save_safetensors(path, {{"a", Tensor::full({2}, 2.f)}});
    CHECK(load_safetensors(path).tensors.at("a").to_vector() == std::vector<float>{2.f, 2.f});
    // A failed save (undefined tensor) leaves the previous file untouched.
    CHECK_THROWS_AS(save_safetensors(path, {{"a", Tensor()}}), Error);
    CHECK(load_safetensors(path).tensors.at("a").to_vector() == std::vector<float>{2.f, 2.f});
    // Only the file itself in the directory: no .tmp leftovers.
    int entries = 0;
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d)) entries += e->d_name[0] != '.' || std::strlen(e->d_name) > 2;
        closedir(d);
    }
    CHECK(entries == 1);
    // A directory that does not exist: an error naming the path, no crash.
    CHECK_THROWS_AS(save_safetensors(dir + "/missing/w.safetensors", {{"a", Tensor::zeros({1})}}),
                    Error);
}

TEST_CASE("safetensors: F16, BF16 and F64 are read as float32", "[safetensors]") {
    // 1.0, -2.0, 0.5, 65504 (max half), a subnormal half (2^-24)
    const uint16_t f16[] = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001};
    const uint16_t bf16[] = {0x3f80, 0xc040};  // 1.0, -3.0
    const double f64[] = {0.25, -1e10};
    std::string data(reinterpret_cast<const char*>(f16), sizeof f16);
    data.append(reinterpret_cast<const char*>(bf16), sizeof bf16);
    data.append(reinterpret_cast<const char*>(f64), sizeof f64);
    const std::string header =
        R"({"h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]},)"
        R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[10,14]},)"
        R"("d":{"dtype":"F64","shape":[2],"data_offsets":[14,30]}})";
    const WeightFile w = load_safetensors(write_raw("dtypes.safetensors", header, data));
    const std::vector<float> h = w.tensors.at("h").to_vector();
    CHECK(h[0] == 1.f);
    CHECK(h[1] == -2.f);
    CHECK(h[2] == 0.5f);
    CHECK(h[3] == 65504.f);
    CHECK(h[4] == std::ldexp(1.f, -24));
    CHECK(w.tensors.at("b").to_vector() == std::vector<float>{1.f, -3.f});
    CHECK(w.tensors.at("d").to_vector() == std::vector<float>{0.25f, -1e10f});
}

TEST_CASE("safetensors: corrupt files are readable errors naming the file", "[safetensors]") {
    const std::string ok_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    const std::string data = floats({1.f, 2.f});
    REQUIRE(load_safetensors(write_raw("ok.safetensors", ok_header, data)).tensors.size() == 1);

    SECTION("missing file") {
        require_error(temp_dir() + "/does_not_exist.safetensors", "no such file");
    }
    SECTION("shorter than the length field") {
        const std::string path = temp_dir() + "/tiny.safetensors";
        std::ofstream(path) << "abc";
        require_error(path, "no header");
    }
    SECTION("truncated payload") {
        require_error(write_raw("trunc.safetensors", ok_header, data.substr(0, 5)), "outside");
    }
    SECTION("huge header length") {
        require_error(write_raw("huge.safetensors", ok_header, data, uint64_t(1) << 62), "absurd");
    }
    SECTION("header length past the end of the file") {
        require_error(write_raw("past.safetensors", ok_header, data, 4096), "past the end");
    }
    SECTION("headers that break a rule") {
        struct Case {
            const char* file;
            std::string header;
            const char* error;
        };
        const Case cases[] = {
            {"outside.safetensors", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[1000,1008]}})", "outside"},
            {"overlap.safetensors",
             R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
             "overlap"},
            {"dtype.safetensors", R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", "unsupported dtype I64"},
            {"notjson.safetensors", "{this is not json}", "not valid JSON"},
            {"array.safetensors", "[1, 2]", "not a JSON object"},
            {"nooffsets.safetensors", R"({"a":{"dtype":"F32","shape":[2]}})", "has no data_offsets"},
            {"shape.safetensors", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "needs 12 bytes"},
            {"neg.safetensors", R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", "negative"},
            {"big.safetensors", R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
             "more bytes than the file has"},
            {"order.safetensors", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", "end before"},
            {"meta.safetensors", R"({"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
             "not a string"},
        };
        for (const Case& c : cases) {
            INFO(c.file << ": " << c.header);
            require_error(write_raw(c.file, c.header, data), c.error);
        }
    }
}
