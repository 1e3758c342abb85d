#include "weights/pickle.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "core/error.hpp"

namespace nst::pickle {

// Frees children with an explicit work list instead of recursion: a value
// whose last owner we are hands its children over before it dies, so no
// destructor ever runs more than one level deep.
Value::~Value() {
    std::vector<ValuePtr> work;
    auto take = [&work](Value& v) {
        for (auto& item : v.items) work.push_back(std::move(item));
        for (auto& entry : v.entries) {
            work.push_back(std::move(entry.first));
            work.push_back(std::move(entry.second));
        }
        v.items.clear();
        v.entries.clear();
    };
    take(*this);
    while (!work.empty()) {
        ValuePtr v = std::move(work.back());
        work.pop_back();
        if (v && v.use_count() == 1) take(*v);
    }
}

ValuePtr make_none() { return std::make_shared<Value>(Kind::None); }
ValuePtr make_int(int64_t v) {
    auto p = std::make_shared<Value>(Kind::Int);
    p->integer = v;
    return p;
}
ValuePtr make_string(std::string s) {
    auto p = std::make_shared<Value>(Kind::String);
    p->text = std::move(s);
    return p;
}
ValuePtr make_tuple(std::vector<ValuePtr> items) {
    auto p = std::make_shared<Value>(Kind::Tuple);
    p->items = std::move(items);
    return p;
}
ValuePtr make_dict() { return std::make_shared<Value>(Kind::Dict); }
ValuePtr make_object(std::shared_ptr<Opaque> object) {
    auto p = std::make_shared<Value>(Kind::Object);
    p->object = std::move(object);
    return p;
}

std::string describe(const Value& v) {
    switch (v.kind) {
        case Kind::None: return "None";
        case Kind::Bool: return v.boolean ? "True" : "False";
        case Kind::Int: return "int " + std::to_string(v.integer);
        case Kind::BigInt: return "int of " + std::to_string(v.text.size()) + " bytes";
        case Kind::Float: return "float";
        case Kind::String: return "string '" + v.text.substr(0, 40) + "'";
        case Kind::Tuple: return "tuple of " + std::to_string(v.items.size());
        case Kind::List: return "list of " + std::to_string(v.items.size());
        case Kind::Dict: return "dict of " + std::to_string(v.entries.size());
        case Kind::Global: return "global " + v.module + "." + v.name;
        case Kind::Object: return "object";
    }
    return "?";
}

namespace {

class Machine {
public:
    Machine(const uint8_t* data, size_t size, size_t pos, const Hooks& hooks,
            const std::string& context)
        : data_(data), size_(size), pos_(pos), hooks_(hooks), context_(context) {}

    ValuePtr run(size_t& end);

private:
    static constexpr uint64_t kSearchBudget = 20'000'000;
    uint64_t search_steps_ = 0;

    template <class... Args>
    [[noreturn]] void error(const Args&... args) const {
        fail(detail::concat(context_, ": pickle opcode at byte ", op_pos_, ": ", args...));
    }

    // ---- reading -------------------------------------------------------------
    const uint8_t* take(uint64_t n) {
        if (n > size_ - pos_)
            error("needs ", n, " more bytes but the data ends after ", size_ - pos_,
                  " (truncated file?)");
        const uint8_t* p = data_ + pos_;
        pos_ += size_t(n);
        return p;
    }
    uint64_t read_le(int bytes) {
        const uint8_t* p = take(uint64_t(bytes));
        uint64_t v = 0;
        for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
        return v;
    }
    std::string read_bytes(uint64_t n) {
        const uint8_t* p = take(n);
        return std::string(reinterpret_cast<const char*>(p), size_t(n));
    }
    // Protocol 0 arguments: text up to a newline.
    std::string read_line() {
        const void* nl = std::memchr(data_ + pos_, '\n', size_ - pos_);
        if (!nl) error("unterminated text argument (truncated file?)");
        const size_t n = size_t(static_cast<const uint8_t*>(nl) - (data_ + pos_));
        std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
        pos_ += n + 1;
        return s;
    }
    int64_t parse_decimal(std::string s, const char* what) {
        if (!s.empty() && s.back() == 'L') s.pop_back();  // Python 2 longs
        if (s.empty()) error("empty ", what);
        errno = 0;
        char* end = nullptr;
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (errno != 0 || *end != '\0' || end == s.c_str())
            error("bad or out-of-range ", what, " '", s.substr(0, 40), "'");
        return int64_t(v);
    }

    // ---- the stack -------------------------------------------------------------
    size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
    void push(ValuePtr v) { stack_.push_back(std::move(v)); }
    ValuePtr pop() {
        if (stack_.size() <= floor()) error("stack underflow (corrupt pickle?)");
        ValuePtr v = std::move(stack_.back());
        stack_.pop_back();
        return v;
    }
    ValuePtr& top() {
        if (stack_.size() <= floor()) error("stack underflow (corrupt pickle?)");
        return stack_.back();
    }
    // Everything above the last MARK, which is dropped.
    std::vector<ValuePtr> pop_mark() {
        if (marks_.empty()) error("no MARK on the stack (corrupt pickle?)");
        const size_t m = marks_.back();
        marks_.pop_back();
        std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + std::ptrdiff_t(m)),
                                    std::make_move_iterator(stack_.end()));
        stack_.resize(m);
        return items;
    }

    Value& expect(ValuePtr& v, Kind kind, const char* opname) {
        if (!v || v->kind != kind) error(opname, " applied to a ", v ? describe(*v) : "null");
        return *v;
    }

    void memo_put(uint64_t key) { memo_[key] = top(); }
    ValuePtr memo_get(uint64_t key) {
        auto it = memo_.find(key);
        if (it == memo_.end()) error("memo entry ", key, " was never stored (corrupt pickle?)");
        return it->second;
    }

    // Appends without looking for equal keys (a quadratic search a crafted
    // file could exploit); the reader of the dict lets later entries win, as
    // Python's dict would.
    void set_items(ValuePtr& dict, std::vector<ValuePtr>& kv, const char* opname) {
        Value& d = expect(dict, Kind::Dict, opname);
        if (kv.size() % 2 != 0) error(opname, " with an odd number of items");
        for (const ValuePtr& v : kv) refuse_cycle(d, v, opname);
        for (size_t i = 0; i < kv.size(); i += 2) d.entries.emplace_back(kv[i], kv[i + 1]);
    }

    // Through the memo a list or dict can be put into itself. Python copes;
    // shared_ptrs would leak the cycle, and no checkpoint needs one, so it is
    // refused: a depth-first search from the value being added. The searches
    // of one pickle share a budget, so a crafted file cannot make them slow.
    void refuse_cycle(const Value& container, const ValuePtr& value, const char* opname) {
        std::vector<const Value*> todo{value.get()};
        std::unordered_set<const Value*> seen;
        while (!todo.empty()) {
            const Value* v = todo.back();
            todo.pop_back();
            if (!v || !seen.insert(v).second) continue;
            if (v == &container) error(opname, " would put a container inside itself");
            // Charged per reference followed, not per object: a list of a
            // million references to one object costs a million.
            search_steps_ += 1 + v->items.size() + 2 * v->entries.size();
            if (search_steps_ > kSearchBudget) error("the object graph is too tangled to check (", opname, ")");
            for (const ValuePtr& item : v->items) todo.push_back(item.get());
            for (const auto& [k, item] : v->entries) todo.push_back(k.get()), todo.push_back(item.get());
        }
    }

    ValuePtr make_global(const std::string& module, const std::string& name) {
        if (!hooks_.find_class) error("refers to ", module, ".", name, ", but no globals are allowed here");
        ValuePtr g = hooks_.find_class(module, name);
        if (!g) error("refers to ", module, ".", name, ", which is not allowed");
        return g;
    }

    const uint8_t* data_;
    size_t size_, pos_, op_pos_ = 0;
    const Hooks& hooks_;
    const std::string& context_;
    std::vector<ValuePtr> stack_;
    std::vector<size_t> marks_;
    std::unordered_map<uint64_t, ValuePtr> memo_;
};

ValuePtr Machine::run(size_t& end) {
    for (;;) {
        op_pos_ = pos_;
        const uint8_t op = *take(1);
        switch (op) {
            // ---- framing and protocol ----
            case 0x80: take(1); break;  // PROTO n
            case 0x95: read_le(8); break;  // FRAME: length of the next frame, only a hint
            case '.': {  // STOP
                ValuePtr result = pop();
                end = pos_;
                return result;
            }
            // ---- constants ----
            case 'N': push(make_none()); break;
            case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
                auto v = std::make_shared<Value>(Kind::Bool);
                v->boolean = op == 0x88;
                push(v);
                break;
            }
            case 'J': push(make_int(int64_t(int32_t(uint32_t(read_le(4)))))); break;  // BININT
            case 'K': push(make_int(int64_t(read_le(1)))); break;                      // BININT1
            case 'M': push(make_int(int64_t(read_le(2)))); break;                      // BININT2
            case 0x8a: case 0x8b: {  // LONG1, LONG4: little-endian two's complement
                const uint64_t n = read_le(op == 0x8a ? 1 : 4);
                std::string bytes = read_bytes(n);
                if (n <= 8) {
                    uint64_t u = 0;
                    for (size_t i = bytes.size(); i-- > 0;) u = (u << 8) | uint8_t(bytes[i]);
                    if (n > 0 && n < 8 && (uint8_t(bytes.back()) & 0x80)) u |= ~uint64_t(0) << (8 * n);
                    push(make_int(int64_t(u)));
                } else {
                    auto v = std::make_shared<Value>(Kind::BigInt);
                    v->text = std::move(bytes);
                    push(v);
                }
                break;
            }
            case 'I': {  // INT (text); "01"/"00" are protocol 0's True/False
                const std::string s = read_line();
                if (s == "01" || s == "00") {
                    auto v = std::make_shared<Value>(Kind::Bool);
                    v->boolean = s == "01";
                    push(v);
                } else {
                    push(make_int(parse_decimal(s, "INT")));
                }
                break;
            }
            case 'L': push(make_int(parse_decimal(read_line(), "LONG"))); break;
            case 'G': {  // BINFLOAT: big-endian double
                const uint8_t* p = take(8);
                uint64_t u = 0;
                for (int i = 0; i < 8; ++i) u = (u << 8) | p[i];
                auto v = std::make_shared<Value>(Kind::Float);
                std::memcpy(&v->real, &u, 8);
                push(v);
                break;
            }
            case 'F': {  // FLOAT (text)
                const std::string s = read_line();
                char* endp = nullptr;
                const double d = std::strtod(s.c_str(), &endp);
                if (s.empty() || *endp != '\0') error("bad FLOAT '", s.substr(0, 40), "'");
                auto v = std::make_shared<Value>(Kind::Float);
                v->real = d;
                push(v);
                break;
            }
            // ---- strings and bytes (all kept as raw bytes) ----
            case 0x8c: case 'U': case 'C': push(make_string(read_bytes(read_le(1)))); break;
            case 'X': case 'B': push(make_string(read_bytes(read_le(4)))); break;
            case 'T': {  // BINSTRING: signed 4-byte length
                const int32_t n = int32_t(uint32_t(read_le(4)));
                if (n < 0) error("negative string length");
                push(make_string(read_bytes(uint64_t(n))));
                break;
            }
            case 0x8d: case 0x8e: push(make_string(read_bytes(read_le(8)))); break;
            // ---- containers ----
            case ')': push(make_tuple({})); break;
            case ']': push(std::make_shared<Value>(Kind::List)); break;
            case '}': push(make_dict()); break;
            case '(': marks_.push_back(stack_.size()); break;
            case 't': push(make_tuple(pop_mark())); break;
            case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
                const size_t n = size_t(op - 0x84);
                std::vector<ValuePtr> items(n);
                for (size_t i = n; i-- > 0;) items[i] = pop();
                push(make_tuple(std::move(items)));
                break;
            }
            case 'l': {  // LIST
                auto v = std::make_shared<Value>(Kind::List);
                v->items = pop_mark();
                push(v);
                break;
            }
            case 'd': {  // DICT
                std::vector<ValuePtr> kv = pop_mark();
                ValuePtr d = make_dict();
                set_items(d, kv, "DICT");
                push(d);
                break;
            }
            case 'a': {  // APPEND
                ValuePtr item = pop();
                Value& list = expect(top(), Kind::List, "APPEND");
                refuse_cycle(list, item, "APPEND");
                list.items.push_back(std::move(item));
                break;
            }
            case 'e': {  // APPENDS
                std::vector<ValuePtr> items = pop_mark();
                Value& list = expect(top(), Kind::List, "APPENDS");
                for (const auto& item : items) refuse_cycle(list, item, "APPENDS");
                for (auto& item : items) list.items.push_back(std::move(item));
                break;
            }
            case 's': {  // SETITEM
                std::vector<ValuePtr> kv(2);
                kv[1] = pop();
                kv[0] = pop();
                set_items(top(), kv, "SETITEM");
                break;
            }
            case 'u': {  // SETITEMS
                std::vector<ValuePtr> kv = pop_mark();
                set_items(top(), kv, "SETITEMS");
                break;
            }
            // ---- stack manipulation ----
            case '0': pop(); break;  // POP
            case '1': pop_mark(); break;  // POP_MARK
            case '2': push(top()); break;  // DUP
            // ---- memo ----
            case 'q': memo_put(read_le(1)); break;  // BINPUT
            case 'r': memo_put(read_le(4)); break;  // LONG_BINPUT
            case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
            case 'p': memo_put(uint64_t(parse_decimal(read_line(), "PUT index"))); break;
            case 'h': push(memo_get(read_le(1))); break;  // BINGET
            case 'j': push(memo_get(read_le(4))); break;  // LONG_BINGET
            case 'g': push(memo_get(uint64_t(parse_decimal(read_line(), "GET index")))); break;
            // ---- objects: all through the caller's hooks ----
            case 'c': {  // GLOBAL "module\nname\n"
                std::string module = read_line();
                std::string name = read_line();
                push(make_global(module, name));
                break;
            }
            case 0x93: {  // STACK_GLOBAL
                ValuePtr name = pop();
                ValuePtr module = pop();
                push(make_global(expect(module, Kind::String, "STACK_GLOBAL").text,
                                 expect(name, Kind::String, "STACK_GLOBAL").text));
                break;
            }
            case 'R': case 0x81: {  // REDUCE, NEWOBJ
                ValuePtr args = pop();
                ValuePtr callable = pop();
                const char* opname = op == 'R' ? "REDUCE" : "NEWOBJ";
                expect(args, Kind::Tuple, opname);
                expect(callable, Kind::Global, opname);
                if (!hooks_.reduce) error(opname, " is not allowed here");
                ValuePtr result = hooks_.reduce(*callable, *args);
                if (!result) error(opname, " of ", describe(*callable), " gave nothing");
                push(std::move(result));
                break;
            }
            case 'b': {  // BUILD
                ValuePtr state = pop();
                if (!hooks_.build) error("BUILD is not allowed here");
                hooks_.build(*top(), state);
                break;
            }
            case 'Q': case 'P': {  // BINPERSID, PERSID
                ValuePtr pid = op == 'Q' ? pop() : make_string(read_line());
                if (!hooks_.persistent_load) error("persistent ids are not allowed here");
                ValuePtr v = hooks_.persistent_load(pid);
                if (!v) error("persistent id ", describe(*pid), " gave nothing");
                push(std::move(v));
                break;
            }
            default:
                error("unsupported or invalid opcode 0x", "0123456789abcdef"[op >> 4],
                      "0123456789abcdef"[op & 15], " (not a PyTorch checkpoint, or corrupt)");
        }
    }
}

}  // namespace

ValuePtr unpickle(const uint8_t* data, size_t size, size_t& pos, const Hooks& hooks,
                  const std::string& context) {
    NST_CHECK(pos <= size, context, ": pickle starts at byte ", pos, " past the end (", size,
              " bytes)");
    Machine m(data, size, pos, hooks, context);
    return m.run(pos);
}

}  // namespace nst::pickle
