#include "nets/training_data.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/autograd.hpp"
#include "core/device.hpp"
#include "core/error.hpp"
#include "core/image.hpp"
#include "core/ops.hpp"

namespace fs = std::filesystem;

namespace nst {
namespace {

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Fisher-Yates with our own generator: std::shuffle's algorithm differs
// between standard libraries, and the order must not.
std::vector<size_t> permutation(size_t n, uint64_t seed, uint64_t epoch) {
    std::vector<size_t> p(n);
    for (size_t i = 0; i < n; ++i) p[i] = i;
    uint64_t state = seed ^ (epoch * 0xD1B54A32D192ED03ull);
    for (size_t i = n; i > 1; --i) std::swap(p[i - 1], p[size_t(splitmix64(state) % i)]);
    return p;
}

}  // namespace

std::vector<std::string> TrainingImages::image_files(const std::string& dir) {
    std::error_code ec;
    NST_CHECK(fs::is_directory(dir, ec), "--data ", dir, ": not a directory");
    std::vector<std::string> files;
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file(ec) && is_image_path(it->path().string())) files.push_back(it->path().string());
    NST_CHECK(!ec, "--data ", dir, ": cannot list: ", ec.message());
    NST_CHECK(!files.empty(), "--data ", dir, ": no images (PNG, JPEG, BMP) in it or below it");
    std::sort(files.begin(), files.end());
    return files;
}

Tensor TrainingImages::load_square(const std::string& path, int size) {
    NoGradGuard no_grad;
    Tensor image = load_image(path);
    const int64_t h = image.size(2), w = image.size(3), side = std::min(h, w);
    const int top = int((h - side) / 2), left = int((w - side) / 2);
    image = pad(image, -top, -int(h - side - top), -left, -int(w - side - left));
    return resize_image(image, size, size);
}

TrainingImages::TrainingImages(const std::string& dir, int size, int batch, uint64_t seed,
                               uint64_t position, int workers)
    : files_(image_files(dir)), size_(size), batch_(batch), seed_(seed), cursor_(position),
      scheduled_(position) {
    NST_CHECK(size > 0 && size <= kMaxImageSide && batch > 0, "train: invalid image size ", size,
              " or batch ", batch);
    if (workers <= 0) workers = int(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
    window_ = uint64_t(std::max(2 * batch, workers));
    try {
        for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
    } catch (...) {  // a thread that cannot start: stop the others before failing
        stop();
        throw;
    }
}

void TrainingImages::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    changed_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
}

TrainingImages::~TrainingImages() { stop(); }

size_t TrainingImages::file_at(uint64_t sample) {
    const uint64_t n = files_.size(), epoch = sample / n;
    auto it = permutations_.find(epoch);
    if (it == permutations_.end()) {
        // Only the epochs in the window are needed; older ones go.
        while (!permutations_.empty() && permutations_.begin()->first + 1 < cursor_ / n)
            permutations_.erase(permutations_.begin());
        it = permutations_.emplace(epoch, permutation(files_.size(), seed_, epoch)).first;
    }
    return it->second[size_t(sample % n)];
}

void TrainingImages::work() {
    cpu_serial_thread();  // the workers run beside each other and the training step
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        changed_.wait(lock, [&] { return stop_ || scheduled_ < cursor_ + window_; });
        if (stop_) return;
        const uint64_t sample = scheduled_++;
        Result r;
        try {
            r.file = file_at(sample);  // allocates an epoch's permutation
        } catch (const std::exception& e) {
            r.why = e.what(), r.fatal = true;
        }
        const bool known_bad = !r.fatal && bad_.count(r.file) > 0;
        lock.unlock();
        if (r.fatal) {
        } else if (known_bad) {
            r.why = "unreadable";
        } else {
            try {
                r.image = load_square(files_[r.file], size_);
            } catch (const OutOfMemoryError& e) {
                r.why = e.what(), r.fatal = true;
            } catch (const std::bad_alloc&) {
                r.why = "out of memory decoding " + files_[r.file], r.fatal = true;
            } catch (const std::exception& e) {
                r.why = e.what();
            }
        }
        lock.lock();
        ready_.emplace(sample, std::move(r));
        changed_.notify_all();
    }
}

size_t TrainingImages::skipped() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return bad_.size();
}

Tensor TrainingImages::next() {
    const size_t plane = size_t(3) * size_t(size_) * size_t(size_);
    std::vector<float> data(plane * size_t(batch_));
    for (int got = 0; got < batch_;) {
        Result r;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            changed_.wait(lock, [&] { return ready_.count(cursor_) > 0; });
            auto it = ready_.find(cursor_);
            r = std::move(it->second);
            ready_.erase(it);
            ++cursor_;
        }
        changed_.notify_all();  // the window moved
        if (r.fatal) throw OutOfMemoryError("train: " + r.why);
        if (!r.image.defined()) {
            bool first_time;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                first_time = bad_.insert(r.file).second;
            }
            if (first_time && on_skip_) on_skip_(files_[r.file], r.why);
            NST_CHECK(skipped() < files_.size(), "train: none of the ", files_.size(),
                      " image files under --data could be read");
            continue;
        }
        const std::vector<float> pixels = r.image.to_vector();
        std::memcpy(data.data() + plane * size_t(got), pixels.data(), plane * sizeof(float));
        ++got;
    }
    return Tensor::from_vector(data, {batch_, 3, size_, size_});
}

}  // namespace nst
