// Atomic file output: everything nst writes (weights, images, videos) goes to
// a temporary file in the destination's directory and is renamed over the
// destination only once complete. A crash, a full disk or an error midway
// therefore never leaves a half-written file under the requested name, and a
// reader never sees one. The temporary lives in the same directory because
// rename() is atomic only within one file system.
#pragma once
#include <cstdio>
#include <string>

namespace nst {

class AtomicFile {
public:
    // Creates the temporary file (same directory, same extension, so tools
    // that pick a format by extension, like ffmpeg, still work on it).
    explicit AtomicFile(const std::string& path);
    ~AtomicFile();  // removes the temporary unless commit() succeeded
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    std::FILE* file() const { return file_; }      // open for writing, binary
    const std::string& temp_path() const { return temp_path_; }
    const std::string& path() const { return path_; }

    // fwrite that throws nst::Error (naming the destination) on a short write.
    void write(const void* data, size_t bytes);
    // Closes the handle without committing, for writers that reopen the
    // temporary by name (an ffmpeg subprocess).
    void close_handle();
    // Flushes, syncs and renames the temporary to the destination.
    void commit();

private:
    std::string path_, temp_path_;
    std::FILE* file_ = nullptr;
    bool committed_ = false;
};

}  // namespace nst
