// The photos a transformation network trains on (`nst-run train --data DIR`):
// every image file under a directory, decoded, centre-cropped to a square and
// resized to size x size on worker threads ahead of the GPU, in an order
// shuffled each epoch from the seed.
//
// The stream is a pure function of (files, seed, position): sample i comes
// from epoch i / n at place i % n of that epoch's permutation, and a batch is
// the next `batch` readable samples. Saving position() in a checkpoint and
// passing it back therefore resumes exactly the batches an uninterrupted run
// would have seen, however many threads decode. Batches run on across epoch
// boundaries, so every batch is full.
//
// An unreadable file (corrupt, truncated, not an image) is skipped: reported
// once through the callback, counted, and passed over in later epochs. Running
// out of memory while decoding is not the file's fault: next() throws.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor.hpp"

namespace nst {

class TrainingImages {
public:
    // Throws nst::Error when DIR has no image files. workers <= 0: one per
    // core, at most 8.
    TrainingImages(const std::string& dir, int size, int batch, uint64_t seed, uint64_t position = 0,
                   int workers = 0);
    ~TrainingImages();
    TrainingImages(const TrainingImages&) = delete;
    TrainingImages& operator=(const TrainingImages&) = delete;

    // The next batch [batch, 3, size, size], RGB 0..255, on the CPU. Throws
    // nst::Error once every file has proved unreadable.
    Tensor next();

    uint64_t position() const { return cursor_; }  // samples consumed, skipped ones included
    size_t files() const { return files_.size(); }
    size_t skipped() const;  // distinct unreadable files so far
    // Called from next() (the caller's thread) once per unreadable file.
    void on_skip(std::function<void(const std::string& path, const std::string& why)> callback) {
        on_skip_ = std::move(callback);
    }

    // One photo as training sees it: centre square, resized to size x size.
    static Tensor load_square(const std::string& path, int size);
    // The photos under dir (recursively) that a stream over it reads, sorted;
    // throws nst::Error when there are none.
    static std::vector<std::string> image_files(const std::string& dir);

private:
    struct Result {
        Tensor image;        // undefined when the file could not be read
        std::string why;     // the error
        bool fatal = false;  // out of memory: not the file's fault, so not skipped
        size_t file = 0;
    };
    size_t file_at(uint64_t sample);  // under the lock
    void work();
    void stop();  // ends and joins the workers

    std::vector<std::string> files_;
    int size_, batch_;
    uint64_t seed_;
    uint64_t cursor_;     // next sample next() takes
    uint64_t scheduled_;  // next sample a worker takes
    uint64_t window_;     // how far workers run ahead of the cursor
    std::map<uint64_t, std::vector<size_t>> permutations_;  // by epoch
    std::map<uint64_t, Result> ready_;
    std::set<size_t> bad_;
    std::function<void(const std::string&, const std::string&)> on_skip_;
    bool stop_ = false;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::thread> workers_;
};

}  // namespace nst
