// PyTorch checkpoint reader (weights/pth.cpp) and its unpickler (weights/pickle.cpp).
// The checkpoints are assembled byte by byte in tests/pth_writer.hpp, so the
// three containers are tested without PyTorch; files written by PyTorch
// itself (tools/reference/make_pth_fixtures.py) are checked too once they
// are committed under tests/data/pth.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include "core/error.hpp"
#include "weights/pickle.hpp"
#include "weights/pth.hpp"
#include "pth_writer.hpp"

using namespace nst;
using namespace nst::test;
using Catch::Matchers::Contains;
using namespace std::string_literals;

namespace {

std::map<std::string, Tensor> load(const std::string& bytes, const PthFilter& wanted = {}) {
    return load_pth_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test.pth",
                          Device::cpu(), wanted);
}

// Storages: "0" floats 0.5, 1.5, ..., 23.5; "1" doubles; "2" halves.
// Tensors: contiguous, sharing storage "0" at an offset, transposed-strided,
// 0-dim, in a nested dict, double and half.
CheckpointSpec small_spec() {
    CheckpointSpec spec;
    std::vector<float> f(24);
    for (size_t i = 0; i < f.size(); ++i) f[i] = float(i) + 0.5f;
    spec.storages["0"] = {"FloatStorage", 4, raw_bytes(f)};
    spec.storages["1"] = {"DoubleStorage", 8, raw_bytes(std::vector<double>{1.5, -2.25, 1e-3, 12345.678})};
    spec.storages["2"] = {"HalfStorage", 2, raw_bytes(std::vector<uint16_t>{0x3c00, 0xc000, 0x3555, 0x0001})};
    spec.tensors = {
        {"features.0.weight", "0", 0, {2, 3, 2, 2}, {12, 4, 2, 1}},
        {"features.0.bias", "0", 4, {2}, {1}},
        {"strided", "0", 1, {3, 4}, {1, 6}},
        {"double", "1", 0, {2, 2}, {2, 1}},
        {"half", "2", 0, {4}, {1}},
        {"scalar", "0", 23, {}, {}},
        {"sub.x", "0", 2, {2}, {3}},
    };
    return spec;
}

struct Expected {
    Shape shape;
    std::vector<float> values;
};
std::map<std::string, Expected> small_expected() {
    std::vector<float> all(24);
    for (size_t i = 0; i < all.size(); ++i) all[i] = float(i) + 0.5f;
    return {
        {"features.0.weight", {{2, 3, 2, 2}, all}},
        {"features.0.bias", {{2}, {4.5f, 5.5f}}},
        {"strided", {{3, 4}, {1.5f, 7.5f, 13.5f, 19.5f, 2.5f, 8.5f, 14.5f, 20.5f, 3.5f, 9.5f, 15.5f, 21.5f}}},
        {"double", {{2, 2}, {1.5f, -2.25f, float(1e-3), float(12345.678)}}},
        {"half", {{4}, {1.f, -2.f, 0.333251953125f, 5.9604644775390625e-8f}}},
        {"scalar", {{}, {23.5f}}},
        {"sub.x", {{2}, {2.5f, 5.5f}}},
    };
}

void check_tensors(const std::map<std::string, Tensor>& got, const std::map<std::string, Expected>& want) {
    std::set<std::string> got_names, want_names;
    for (const auto& kv : got) got_names.insert(kv.first);
    for (const auto& kv : want) want_names.insert(kv.first);
    CHECK(got_names == want_names);
    for (const auto& [name, e] : want) {
        INFO(name);
        auto it = got.find(name);
        REQUIRE(it != got.end());
        CHECK(it->second.shape() == e.shape);
        CHECK(it->second.to_vector() == e.values);  // exact: conversions of exact values
        CHECK(it->second.is_contiguous());
        CHECK_FALSE(it->second.requires_grad());
    }
}

// Every strict prefix shorter than `min_valid` must fail cleanly.
void check_truncations(const std::string& bytes, size_t min_valid) {
    for (size_t n = 0; n < min_valid; ++n) {
        INFO("truncated to " << n << " of " << bytes.size() << " bytes");
        CHECK_THROWS_AS(load(bytes.substr(0, n)), Error);
    }
}

// Any single corrupted byte: an nst::Error or a successful load, never a crash
// (run under AddressSanitizer to see the "never" hold).
void check_corruptions(const std::string& bytes) {
    for (size_t i = 0; i < bytes.size(); ++i) {
        for (uint8_t v : {uint8_t(~uint8_t(bytes[i])), uint8_t(0), uint8_t(0x7f), uint8_t(0x80)}) {
            std::string bad = bytes;
            bad[i] = char(v);
            try {
                load(bad);
            } catch (const Error&) {
            }
        }
    }
}

}  // namespace

TEST_CASE("pth: legacy stream with views, shared storages, double and half", "[pth]") {
    CheckpointSpec spec = small_spec();
    const std::string bytes = legacy_checkpoint(spec);
    const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
    CHECK(detect_pth_container(data, bytes.size(), "x") == PthContainer::Legacy);
    check_tensors(load(bytes), small_expected());

    SECTION("from a file") {
        TempFile file(bytes);
        check_tensors(load_pth(file.path()), small_expected());
    }
    SECTION("a storage view in the persistent id (view_metadata)") {
        spec.tensors.push_back({"viewed", "0", 1, {3}, {2}, 2, 6});  // view [2, 8): elements 3, 5, 7
        auto want = small_expected();
        want["viewed"] = {{3}, {3.5f, 5.5f, 7.5f}};
        check_tensors(load(legacy_checkpoint(spec)), want);
    }
    SECTION("big-endian file") {
        check_tensors(load(legacy_checkpoint(spec, false)), small_expected());
    }
    SECTION("filter") {
        auto got = load(bytes, [](const std::string& name) { return name.rfind("features.", 0) == 0; });
        CHECK(got.size() == 2);
        CHECK(got.count("features.0.weight") == 1);
    }
    SECTION("expanded tensors (stride 0) are copied out, absurd ones refused") {
        spec.tensors.push_back({"expanded", "0", 1, {3, 2}, {0, 1}});
        auto want = small_expected();
        want["expanded"] = {{3, 2}, {1.5f, 2.5f, 1.5f, 2.5f, 1.5f, 2.5f}};
        check_tensors(load(legacy_checkpoint(spec)), want);
        spec.tensors.push_back({"huge", "0", 0, {int64_t(1) << 40}, {0}});
        CHECK_THROWS_WITH(load(legacy_checkpoint(spec)), Contains("'huge'") && Contains("refusing"));
    }
    SECTION("a tensor reaching past its storage") {
        spec.tensors.push_back({"bad", "0", 20, {2, 3}, {3, 1}});  // last element 20 + 3 + 2 = 25 > 23
        CHECK_THROWS_WITH(load(legacy_checkpoint(spec)), Contains("'bad'") && Contains("storage of 24"));
    }
}

TEST_CASE("pth: tar container, Python 2 pickles, storage views", "[pth]") {
    CheckpointSpec spec = small_spec();
    spec.tensors.push_back({"viewed", "777", 1, {3}, {2}});
    const std::vector<TarView> views = {{777, 94000000000064, 2, 6}};  // storage "0" has the first key
    size_t content_end = 0;
    const std::string bytes = tar_checkpoint(spec, views, &content_end);
    CHECK(detect_pth_container(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x") ==
          PthContainer::Tar);
    auto want = small_expected();
    want["viewed"] = {{3}, {3.5f, 5.5f, 7.5f}};
    check_tensors(load(bytes), want);

    SECTION("truncation") {
        check_truncations(bytes, content_end);
        // The end-of-archive blocks are optional, as for Python's tarfile.
        check_tensors(load(bytes.substr(0, content_end)), want);
    }
    SECTION("corruption") { check_corruptions(bytes.substr(0, content_end)); }
}

TEST_CASE("pth: zip container", "[pth]") {
    if (!pth_zip_supported()) {
        WARN("built without libzip: zip checkpoints are not readable");
        return;
    }
#ifdef NST_HAVE_LIBZIP
    const CheckpointSpec spec = small_spec();
    const std::string bytes = zip_checkpoint(spec);
    CHECK(detect_pth_container(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x") ==
          PthContainer::Zip);
    check_tensors(load(bytes), small_expected());

    SECTION("from a file") {
        TempFile file(bytes);
        check_tensors(load_pth(file.path()), small_expected());
    }
    SECTION("unwanted storages are never read") {
        const std::string missing = zip_checkpoint(spec, "1");  // no data/1: "double"'s storage
        CHECK_THROWS_WITH(load(missing), Contains("archive/data/1"));
        auto got = load(missing, [](const std::string& name) { return name != "double"; });
        CHECK(got.size() == 6);
    }
    SECTION("truncation") { check_truncations(bytes, bytes.size()); }
    SECTION("corruption") { check_corruptions(bytes); }
#endif
}

TEST_CASE("pth: truncated or corrupt legacy streams give errors, never crashes", "[pth]") {
    const std::string bytes = legacy_checkpoint(small_spec());
    check_truncations(bytes, bytes.size());
    check_corruptions(bytes);
    // A storage whose element count disagrees with its persistent id.
    std::string bad = bytes;
    bad[bytes.size() - (8 + 24 * 4 + 8 + 4 * 8 + 8 + 4 * 2)] ^= 1;  // the count of storage "0"
    CHECK_THROWS_WITH(load(bad), Contains("storage 0"));
}

TEST_CASE("pth: only state dicts are read; other pickled objects are refused", "[pth]") {
    auto legacy_with_object = [](const Pickle& object) {
        Pickle p;
        p.proto().op(0x8a).op(10).raw(std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10)).stop();
        p.proto().integer(1001).stop().proto().empty_dict().stop();
        p.raw(object.bytes);
        p.proto().empty_list().stop();
        return p.bytes;
    };
    Pickle call;
    call.proto().global("os", "system").str("echo owned").tuple_n(1).reduce().stop();
    CHECK_THROWS_WITH(load(legacy_with_object(call)), Contains("os.system"));

    Pickle model;
    model.proto().global("torchvision.models.vgg", "VGG").tuple_n(0).op(0x81).stop();
    CHECK_THROWS_WITH(load(legacy_with_object(model)), Contains("torchvision.models.vgg.VGG") &&
                                                           Contains("state_dict"));

    Pickle list;
    list.proto().empty_list().stop();
    CHECK_THROWS_WITH(load(legacy_with_object(list)), Contains("not a dict of tensors"));

    CHECK_THROWS_WITH(load("hello, this is text and no checkpoint"), Contains("not a PyTorch checkpoint"));
    CHECK_THROWS_WITH(load(""), Contains("not a PyTorch checkpoint"));
    CHECK_THROWS_WITH(load_pth("/nonexistent/vgg19.pth"), Contains("/nonexistent/vgg19.pth"));
}

TEST_CASE("pickle: opcodes of protocols 0 to 4", "[pth][pickle]") {
    using namespace nst::pickle;
    auto run = [](const std::string& bytes, const Hooks& hooks = {}) {
        size_t pos = 0;
        ValuePtr v = unpickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), pos, hooks, "t");
        CHECK(pos == bytes.size());
        return v;
    };
    SECTION("protocol 0 text opcodes, memo, DUP and POP") {
        // [1, -5, 123456789012, 1.5, (1, 2), (1, 2), 7, True]
        ValuePtr v = run("(lp0\nI1\naI-5\naL123456789012L\naF1.5\na(I1\nI2\ntp1\nag1\naI7\n20aI01\na.");
        REQUIRE(v->kind == Kind::List);
        REQUIRE(v->items.size() == 8);
        CHECK(v->items[0]->integer == 1);
        CHECK(v->items[1]->integer == -5);
        CHECK(v->items[2]->integer == 123456789012);
        CHECK(v->items[3]->real == 1.5);
        CHECK(v->items[4]->items.size() == 2);
        CHECK(v->items[5] == v->items[4]);  // GET shares the memoized object
        CHECK(v->items[6]->integer == 7);
        CHECK(v->items[7]->kind == Kind::Bool);
    }
    SECTION("protocol 4: FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL, LONG1") {
        Hooks hooks;
        hooks.find_class = [](const std::string& m, const std::string& n) {
            auto g = std::make_shared<Value>(Kind::Global);
            g->module = m;
            g->name = n;
            return g;
        };
        std::string b = "\x80\x04\x95\x20\x00\x00\x00\x00\x00\x00\x00"s;  // embedded NULs: a std::string literal
        b += "\x8c\x05torch\x94\x8c\x0c" "FloatStorage\x94\x93\x94";
        b += "\x8a\x02\xff\x7f\x8a\x01\xfe\x87\x94.";
        ValuePtr v = run(b, hooks);
        REQUIRE(v->kind == Kind::Tuple);
        CHECK(v->items[0]->kind == Kind::Global);
        CHECK(v->items[0]->name == "FloatStorage");
        CHECK(v->items[1]->integer == 0x7fff);
        CHECK(v->items[2]->integer == -2);
    }
    SECTION("deep nesting is freed without recursion") {
        std::string b = "\x80\x02)";
        b.append(1000000, '\x85');  // (((...),),)
        b += '.';
        ValuePtr v = run(b);
        CHECK(v->kind == Kind::Tuple);
    }
    SECTION("errors name the opcode's byte offset") {
        CHECK_THROWS_WITH(run("\x80\x02\x85."), Contains("byte 2") && Contains("underflow"));
        CHECK_THROWS_WITH(run("\x80\x02h\x05."), Contains("memo"));
        CHECK_THROWS_WITH(run("\x80\x02\xff."), Contains("0xff"));
        CHECK_THROWS_WITH(run("\x80\x02X\xff\xff\x00\x00ab."s), Contains("truncated"));
        CHECK_THROWS_WITH(run("\x80\x02" "cos\nsystem\n."), Contains("os.system"));
        // TUPLE2 with one item above the MARK: items below a MARK are out of reach
        CHECK_THROWS_WITH(run("\x80\x02K\x01(K\x02\x86."), Contains("underflow"));
    }
    SECTION("a container put inside itself is refused (a shared_ptr cycle would leak)") {
        // d = {}; d[0] = d   and   l = []; l.append([l])   (found by fuzz_pth as a leak)
        CHECK_THROWS_WITH(run("\x80\x02}q\x00K\x00h\x00s."s), Contains("inside itself"));
        CHECK_THROWS_WITH(run("\x80\x02]q\x00]h\x00" "a\x85" "a."s), Contains("inside itself"));
        CHECK_THROWS_WITH(run("\x80\x02]q\x00(h\x00" "e."s), Contains("inside itself"));
        // sharing without a cycle is fine: [x, x] with x = []
        ValuePtr v = run("\x80\x02](]q\x01h\x01" "e."s);
        CHECK(v->items.size() == 2);
        CHECK(v->items[0] == v->items[1]);
    }
}

#ifdef NST_PTH_FIXTURES
#include <nlohmann/json.hpp>

// ---- files written by PyTorch (tools/reference/make_pth_fixtures.py) --------------------------

namespace {

std::string read_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    REQUIRE(f);
    std::string out;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    std::fclose(f);
    return out;
}

}  // namespace

TEST_CASE("pth: checkpoints written by PyTorch", "[pth][fixtures]") {
    const std::string dir = NST_PTH_FIXTURES;
    const std::string text = read_file(dir + "/expected.json");
    const nlohmann::json expected = nlohmann::json::parse(text);
    REQUIRE(expected.contains("files"));
    for (const auto& [file, spec] : expected.at("files").items()) {
        INFO(file);
        const std::string container = spec.at("container").get<std::string>();
        if (container == "zip" && !pth_zip_supported()) {
            WARN("built without libzip: " << file << " skipped");
            continue;
        }
        const std::string bytes = read_file(dir + "/" + file);
        CHECK(pth_container_name(detect_pth_container(reinterpret_cast<const uint8_t*>(bytes.data()),
                                                      bytes.size(), file)) == container);
        std::map<std::string, Expected> want;
        for (const auto& [name, t] : spec.at("tensors").items()) {
            Expected e;
            for (const auto& d : t.at("shape")) e.shape.push_back(d.get<int64_t>());
            for (const auto& v : t.at("values")) e.values.push_back(v.get<float>());
            want[name] = e;
        }
        check_tensors(load_pth(dir + "/" + file), want);
        check_truncations(bytes, container == "tar" ? 0 : bytes.size());
    }
}
#endif
