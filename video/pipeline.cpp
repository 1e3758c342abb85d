#include "video/pipeline.hpp"

#include <malloc.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "core/device.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace nst {
namespace {

// Batches handed from one stage to the next (the frame budget below bounds
// how many). close(): no more will come (pop drains what is there, then
// says so); stop(): give up at once (push and pop return false / nothing,
// whatever is queued).
class BatchQueue {
public:
    bool push(FrameBatch batch) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopped_) return false;
        items_.push_back(std::move(batch));
        changed_.notify_all();
        return true;
    }
    std::optional<FrameBatch> pop() {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stopped_ || closed_ || !items_.empty(); });
        if (stopped_ || items_.empty()) return std::nullopt;
        FrameBatch batch = std::move(items_.front());
        items_.pop_front();
        return batch;
    }
    void close() { set(closed_); }
    void stop() { set(stopped_); }

private:
    void set(bool& flag) {
        std::lock_guard<std::mutex> lock(mutex_);
        flag = true;
        changed_.notify_all();
    }
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<FrameBatch> items_;
    bool closed_ = false, stopped_ = false;
};

// The first error of any stage; the others stop when it is set.
class FirstError {
public:
    void set(std::exception_ptr error) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::move(error);
    }
    void rethrow() {
        if (error_) std::rethrow_exception(error_);
    }

private:
    std::mutex mutex_;
    std::exception_ptr error_;
};

// Frames read but not yet written: the reader takes one before each frame,
// the writer gives it back once the frame is out. What bounds the host
// memory (a 1080p frame in flight is its input, its stylization and its
// guide: about 31 MB), whatever the batch.
class FrameBudget {
public:
    explicit FrameBudget(int64_t frames) : left_(frames) {}
    // false once stopped
    bool take() {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stopped_ || left_ > 0; });
        if (stopped_) return false;
        --left_;
        return true;
    }
    void give() { update([&] { ++left_; }); }
    void stop() { update([&] { stopped_ = true; }); }

private:
    template <class F>
    void update(F f) {
        std::lock_guard<std::mutex> lock(mutex_);
        f();
        changed_.notify_all();
    }
    std::mutex mutex_;
    std::condition_variable changed_;
    int64_t left_;
    bool stopped_ = false;
};

// The guides' workers: threads that outlive the frames, so that each keeps
// its optical flow's buffers from one frame to the next (video/flow.cpp).
// Their own loops run serially: they run beside each other. Jobs still
// queued when the pipeline ends are finished first (at most one a worker).
class GuideWorkers {
public:
    explicit GuideWorkers(int count) {
        try {
            for (int i = 0; i < count; ++i) threads_.emplace_back([this] { work(); });
        } catch (...) {  // no more threads to be had: those started end first
            finish();
            throw;
        }
    }
    ~GuideWorkers() { finish(); }
    // The guide of `current` (previous: null for the first frame).
    std::shared_future<Guide> add(std::shared_ptr<const Frame> previous, std::shared_ptr<const Frame> current) {
        Job job{std::move(previous), std::move(current), {}};
        std::shared_future<Guide> result = job.result.get_future().share();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            jobs_.push_back(std::move(job));
        }
        changed_.notify_one();
        return result;
    }

private:
    struct Job {
        std::shared_ptr<const Frame> previous, current;
        std::promise<Guide> result;
    };
    void finish() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            done_ = true;
        }
        changed_.notify_all();
        for (std::thread& t : threads_) t.join();
    }
    void work() {
        cpu_serial_thread();
        for (;;) {
            Job job;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                changed_.wait(lock, [&] { return done_ || !jobs_.empty(); });
                if (jobs_.empty()) return;
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            try {
                job.result.set_value(stabilizer_guide(job.previous.get(), *job.current));
            } catch (...) {
                job.result.set_exception(std::current_exception());
            }
        }
    }
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<Job> jobs_;
    bool done_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace

void run_video_pipeline(const FrameSource& source, const FrameSink& sink, const VideoPipelineOptions& o,
                        const std::function<void(FrameBatch&)>& stylize, const std::function<void()>& frame_written) {
    NST_CHECK(o.width > 0 && o.height > 0 && o.batch >= 1, "video pipeline: frames of ", o.width, "x", o.height,
              " in batches of ", o.batch);
    const size_t frame_bytes = size_t(o.width) * o.height * 3;
    // A guide worker and a frame in flight per core.
    const int threads = cpu_threads();
    std::optional<GuideWorkers> workers;
    if (o.stabilize) workers.emplace(threads);

    // One batch stylized while the next is read and the last written, and a
    // guide a worker ahead.
    FrameBudget budget(2 * int64_t(o.batch) + threads);
    BatchQueue to_stylize, to_write;
    FirstError error;
    std::atomic<bool> stopped{false};
    auto fail = [&] {
        error.set(std::current_exception());
        stopped = true;
        budget.stop();
        to_stylize.stop();
        to_write.stop();
    };

    auto read = [&] {
        try {
            std::deque<std::shared_future<Guide>> in_flight;  // at most one a worker
            std::shared_ptr<const Frame> previous;
            std::vector<uint8_t> rgb;
            bool more = true;
            while (more) {
                FrameBatch batch;
                batch.input.reserve(frame_bytes * size_t(o.batch));
                // After a stop is asked for the reader just ends; the calling thread reports it.
                while (batch.count < o.batch &&
                       (more = !interrupt_requested() && budget.take() && source.read(rgb))) {
                    NST_CHECK(rgb.size() == frame_bytes, "video: a frame of ", rgb.size(), " bytes, expected ",
                              frame_bytes);
                    batch.input.insert(batch.input.end(), rgb.begin(), rgb.end());
                    ++batch.count;
                    if (!o.stabilize) continue;
                    auto current = std::make_shared<const Frame>(Frame{o.width, o.height, rgb});
                    while (!in_flight.empty() &&
                           in_flight.front().wait_for(std::chrono::seconds(0)) == std::future_status::ready)
                        in_flight.pop_front();
                    if (int(in_flight.size()) >= threads) {
                        in_flight.front().wait();
                        in_flight.pop_front();
                    }
                    in_flight.push_back(workers->add(previous, current));
                    batch.guides.push_back(in_flight.back());
                    previous = std::move(current);
                }
                if (stopped) return;
                if (batch.count > 0 && !to_stylize.push(std::move(batch))) return;
            }
            to_stylize.close();
        } catch (...) {
            fail();
        }
    };
    auto write = [&] {
        try {
            cpu_adopt_threads();  // the stabilizer's blend: OpenMP loops of its own
            Stabilizer stabilizer(o.stabilize_weight);
            Frame frame{o.width, o.height, {}};
            while (std::optional<FrameBatch> batch = to_write.pop()) {
                NST_CHECK(batch->stylized.size() == size_t(batch->count) * frame_bytes, "video: ",
                          batch->stylized.size(), " bytes of stylized frames for ", batch->count, " frames of ",
                          o.width, "x", o.height);
                for (int i = 0; i < batch->count && !stopped; ++i) {
                    const auto first = batch->stylized.begin() + std::ptrdiff_t(i * frame_bytes);
                    frame.rgb.assign(first, first + std::ptrdiff_t(frame_bytes));
                    if (o.stabilize) stabilizer.next(batch->guides[size_t(i)].get(), frame);
                    sink.write(frame.rgb);
                    budget.give();
                    if (frame_written) frame_written();
                }
            }
        } catch (...) {
            fail();
        }
    };
    std::thread read_thread(read), write_thread;
    try {
        write_thread = std::thread(write);
    } catch (...) {  // no thread to be had: the reader stops too
        fail();
        read_thread.join();
        throw;
    }
    try {
        while (std::optional<FrameBatch> batch = to_stylize.pop()) {
            check_interrupt();
            stylize(*batch);
            if (!to_write.push(std::move(*batch))) break;
        }
        to_write.close();
    } catch (...) {
        fail();
    }
    read_thread.join();
    write_thread.join();
    error.rethrow();
    check_interrupt();  // the reader stopped early: the clip is not whole
}

void keep_freed_frame_memory() {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

}  // namespace nst
