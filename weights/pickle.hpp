// A small, safe unpickler: the subset of Python's pickle machine that PyTorch
// checkpoints use (protocols 0-2 as written by Python 2 and 3, plus the
// protocol 4 framing opcodes), for weights/pth.cpp.
//
// Python's own unpickler imports and calls whatever a file names; this one
// calls nothing by itself. GLOBAL, REDUCE, NEWOBJ, BUILD and persistent ids
// go to the caller's hooks, which accept only the few names a state dict
// needs and fail on anything else. Every read is bounds-checked against the
// buffer and every stack access against the current MARK, so a truncated or
// corrupt file ends in an nst::Error naming the byte offset, never in a crash.
// Values are shared_ptrs (the memo and the stack share objects, as in
// Python); their destructor is iterative, so even a deliberately deep nesting
// cannot overflow the C++ stack when it is freed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace nst::pickle {

// Host objects (PyTorch storages, tensors) that the hooks put into the graph.
struct Opaque {
    virtual ~Opaque() = default;
};

struct Value;
using ValuePtr = std::shared_ptr<Value>;

enum class Kind { None, Bool, Int, BigInt, Float, String, Tuple, List, Dict, Global, Object };

struct Value {
    Kind kind = Kind::None;
    bool boolean = false;
    int64_t integer = 0;
    double real = 0;
    // String: the text or bytes (Python 2 str, Python 3 str and bytes alike);
    // BigInt: little-endian two's complement bytes of an int beyond 64 bits.
    std::string text;
    std::string module, name;                           // Global
    std::vector<ValuePtr> items;                        // Tuple, List
    // Dict, in insertion order; an equal key may repeat: the last one wins.
    std::vector<std::pair<ValuePtr, ValuePtr>> entries;
    std::shared_ptr<Opaque> object;                     // Object

    Value() = default;
    explicit Value(Kind k) : kind(k) {}
    Value(const Value&) = delete;
    Value& operator=(const Value&) = delete;
    ~Value();

    bool is(Kind k) const { return kind == k; }
};

ValuePtr make_none();
ValuePtr make_int(int64_t v);
ValuePtr make_string(std::string s);
ValuePtr make_tuple(std::vector<ValuePtr> items);
ValuePtr make_dict();
ValuePtr make_object(std::shared_ptr<Opaque> object);

// "int", "tuple of 3", "global torch.FloatStorage", ... for error messages.
std::string describe(const Value& v);

struct Hooks {
    // GLOBAL / STACK_GLOBAL: return the Global value, or throw when not allowed.
    std::function<ValuePtr(const std::string& module, const std::string& name)> find_class;
    // REDUCE (callable(*args)) and NEWOBJ (cls.__new__(cls, *args)).
    std::function<ValuePtr(const Value& callable, const Value& args)> reduce;
    // BUILD: set `state` on `object`.
    std::function<void(Value& object, const ValuePtr& state)> build;
    // BINPERSID / PERSID.
    std::function<ValuePtr(const ValuePtr& pid)> persistent_load;
};

// Runs one pickle that starts at data[pos] and returns the object it builds;
// pos moves past its STOP opcode. `context` (e.g. "vgg.pth: data.pkl") starts
// every error message. Offsets in messages are relative to `data`.
ValuePtr unpickle(const uint8_t* data, size_t size, size_t& pos, const Hooks& hooks,
                  const std::string& context);

}  // namespace nst::pickle
