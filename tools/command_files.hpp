// The files an nst-run command reads and writes, checked against each other
// before any work starts, so that no output can destroy an input or another
// output: the result, logs, snapshots, samples, checkpoints, imports,
// directory-mode outputs. Every output is written to a temporary and renamed
// into place (core/files.hpp), so what an output replaces is the directory
// entry its path names once `..` and symbolic links in its directory are
// resolved; an input is lost when that entry is the input's own, or the file
// the input's path leads to through symbolic links. A collision is one
// nst::Error naming both paths and the flags that gave them. Names longer
// than the file system takes are refused here too, not after the work.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace nst_run {

// A numbered series of outputs written during a run: DIR/STEM<n>EXT for n =
// every, 2 every, ... up to last, n zero-padded to `digits` at least
// (optimize's snapshots out_0100.png, train's samples out_sample_000500.png).
struct NumberedOutputs {
    std::string what;  // the flag that asks for them ("--save-every"), for messages
    std::string dir, absolute_dir, stem, ext;
    int digits = 1;
    int64_t every = 1, last = 0;
    std::string name(int64_t n) const;  // STEM<n>EXT
    std::string path(int64_t n) const;  // DIR/STEM<n>EXT, DIR as the user gave it
};
// out.png -> out<infix><n>.png, or with `ext` instead of out's own extension.
NumberedOutputs numbered_outputs(const std::string& what, const std::string& out, const std::string& infix,
                                 const std::string& ext, int digits, int64_t every, int64_t last);

class CommandFiles {
public:
    // `what` names the flag ("--content"); messages read "--content PATH".
    void reads(const std::string& what, const std::string& path);
    // A file the command reads because it is in `dir` ("--data DIR (its file PATH)").
    void reads_in(const std::string& what, const std::string& dir, const std::string& path);
    // Every regular file in a directory.
    void reads_directory(const std::string& what, const std::string& dir);
    // Throws at once for a name the file system cannot take, or an existing
    // path that is not a regular file (a directory, FIFO or device).
    void writes(const std::string& what, const std::string& path);
    void writes_numbered(const NumberedOutputs& series);
    // Throws nst::Error at the first collision. Then, the files being
    // fine, removes what runs killed outright left of their temporaries in
    // the directories this one writes to, and in TMPDIR (core/files.hpp:
    // remove_stale_temporaries).
    void check() const;

private:
    void add_input(const std::string& label, const std::string& path);
    // Absolute path -> the label of the file known by it ("--content c.png").
    std::unordered_map<std::string, std::string> inputs_;
    std::vector<std::pair<std::string, std::string>> outputs_;  // (absolute path, label)
    std::vector<NumberedOutputs> series_;
};

}  // namespace nst_run
