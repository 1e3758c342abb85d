#include "tools/command_files.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "core/error.hpp"
#include "core/files.hpp"

namespace fs = std::filesystem;

namespace nst_run {
namespace {

std::string weakly_canonical_parent(const std::string& path) {
    std::error_code ec;
    const fs::path absolute = fs::absolute(path, ec);
    const fs::path parent = fs::weakly_canonical(absolute.parent_path(), ec);
    return (ec ? absolute.parent_path().lexically_normal() : parent).string();
}

// The directory entry a path names: `..` and links resolved up to its last part.
std::string entry_of(const std::string& path) {
    return (fs::path(weakly_canonical_parent(path)) / fs::path(path).filename()).string();
}

// Whether the absolute path is one of the series'; then its number in `n`.
bool in_series(const NumberedOutputs& s, const std::string& absolute, int64_t& n) {
    const fs::path p(absolute);
    const std::string name = p.filename().string();
    if (p.parent_path().string() != s.absolute_dir || name.size() <= s.stem.size() + s.ext.size() ||
        name.compare(0, s.stem.size(), s.stem) != 0 ||
        name.compare(name.size() - s.ext.size(), s.ext.size(), s.ext) != 0)
        return false;
    const std::string digits = name.substr(s.stem.size(), name.size() - s.stem.size() - s.ext.size());
    if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    n = std::stoll(digits);
    return n >= s.every && n <= s.last && n % s.every == 0 && s.name(n) == name;
}

void check_name_length(const std::string& what, const std::string& path, const std::string& dir) {
    const long limit = ::pathconf(dir.c_str(), _PC_NAME_MAX);
    const size_t length = fs::path(path).filename().string().size();
    NST_CHECK(limit <= 0 || length <= size_t(limit), what, " ", path, ": the name is ", length,
              " bytes long; the file system takes at most ", limit);
}

}  // namespace

std::string NumberedOutputs::name(int64_t n) const {
    std::string number = std::to_string(n);
    if (int(number.size()) < digits) number.insert(0, size_t(digits) - number.size(), '0');
    return stem + number + ext;
}

std::string NumberedOutputs::path(int64_t n) const { return (fs::path(dir) / name(n)).string(); }

NumberedOutputs numbered_outputs(const std::string& what, const std::string& out, const std::string& infix,
                                 const std::string& ext, int digits, int64_t every, int64_t last) {
    const fs::path p(out);
    NumberedOutputs s;
    s.what = what;
    s.dir = p.parent_path().string();
    s.absolute_dir = weakly_canonical_parent(out);
    s.stem = p.stem().string() + infix;
    s.ext = ext.empty() ? p.extension().string() : ext;
    s.digits = digits, s.every = every, s.last = last;
    return s;
}

void CommandFiles::add_input(const std::string& label, const std::string& path) {
    inputs_.emplace(entry_of(path), label);
    // Through links: the file itself, which a write to that path would replace.
    std::error_code ec;
    const fs::path target = fs::canonical(path, ec);
    if (!ec) inputs_.emplace(target.string(), label);
}

void CommandFiles::reads(const std::string& what, const std::string& path) {
    if (!path.empty()) add_input(what + " " + path, path);
}

void CommandFiles::reads_in(const std::string& what, const std::string& dir, const std::string& path) {
    add_input(what + " " + dir + " (its file " + path + ")", path);
}

void CommandFiles::reads_directory(const std::string& what, const std::string& dir) {
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
        if (it->is_regular_file(ec)) reads_in(what, dir, it->path().string());
}

void CommandFiles::writes(const std::string& what, const std::string& path) {
    const std::string entry = entry_of(path);
    check_name_length(what, path, fs::path(entry).parent_path().string());
    struct stat st;
    NST_CHECK(::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode), what, " ", path,
              ": exists and is not a regular file; give the name of a file to write");
    outputs_.emplace_back(entry, what + " " + path);
}

void CommandFiles::writes_numbered(const NumberedOutputs& series) {
    check_name_length(series.what, series.path(series.last), series.absolute_dir);
    series_.push_back(series);
}

void CommandFiles::check() const {
    std::unordered_map<std::string, const std::string*> written;
    for (const auto& [entry, label] : outputs_) {
        const auto input = inputs_.find(entry);
        NST_CHECK(input == inputs_.end(), label, ": the same file as ", input->second,
                  ", which it would overwrite; choose another name");
        const auto other = written.find(entry);
        NST_CHECK(other == written.end(), label, ": the same file as ", *other->second, "; choose another name");
        written.emplace(entry, &label);
    }
    for (const NumberedOutputs& s : series_) {
        int64_t n = 0;
        for (const auto& [name, label] : inputs_)
            NST_CHECK(!in_series(s, name, n), s.what, ": ", s.path(n), " is the same file as ", label,
                      ", which it would overwrite; choose another --out name");
        for (const auto& [entry, label] : outputs_)
            NST_CHECK(!in_series(s, entry, n), s.what, ": ", s.path(n), " is the same file as ", label,
                      "; choose another name");
    }
    std::set<std::string> dirs;
    for (const auto& output : outputs_) dirs.insert(fs::path(output.first).parent_path().string());
    for (const NumberedOutputs& s : series_) dirs.insert(s.absolute_dir);
    const char* tmp = std::getenv("TMPDIR");
    dirs.insert(tmp && *tmp ? tmp : "/tmp");
    for (const std::string& dir : dirs) nst::remove_stale_temporaries(dir);
}

}  // namespace nst_run
