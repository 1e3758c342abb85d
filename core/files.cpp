#include "core/files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"

namespace nst {
namespace {

std::string errno_text() { return std::strerror(errno); }

// The temporaries a signal handler may have to delete: fixed storage and
// lock-free atomics, because a handler may neither allocate nor lock. A
// slot is free (0), being filled (1) or holds a path (2). Past 64 open
// temporaries the rest are only removed by their destructors.
struct TemporarySlot {
    std::atomic<int> state{0};
    char path[PATH_MAX];
};
static_assert(std::atomic<int>::is_always_lock_free, "remove_temporaries() needs lock-free atomics");
TemporarySlot g_temporaries[64];

// The longest file name the directory takes (255 on the usual file systems).
size_t name_limit(const std::string& dir) {
    const long limit = ::pathconf(dir.empty() ? "." : dir.c_str(), _PC_NAME_MAX);
    return limit > 0 ? size_t(limit) : 255;
}

}  // namespace

int remember_temporary(const std::string& path) {
    if (path.size() >= PATH_MAX) return -1;
    for (int i = 0; i < 64; ++i) {
        int expected = 0;
        if (!g_temporaries[i].state.compare_exchange_strong(expected, 1)) continue;
        std::memcpy(g_temporaries[i].path, path.c_str(), path.size() + 1);
        g_temporaries[i].state.store(2, std::memory_order_release);
        return i;
    }
    return -1;
}

void forget_temporary(int handle) {
    if (handle >= 0) g_temporaries[handle].state.store(0, std::memory_order_release);
}

void remove_temporaries() {
    for (TemporarySlot& slot : g_temporaries)
        if (slot.state.load(std::memory_order_acquire) == 2) ::unlink(slot.path);
}

namespace {

// The process that made a temporary called `name`, or -1 for a name that is
// not one: ".STEM.tmp-PID-N[.EXT]" (AtomicFile) or "nst-ffmpeg-PID-XXXXXX.log"
// (a subprocess's log, video/subprocess.cpp: mkostemps' six letters or digits).
long temporary_owner(const std::string& name) {
    auto number_at = [&](size_t at, size_t& end) -> long {
        end = at;
        while (end < name.size() && name[end] >= '0' && name[end] <= '9') ++end;
        if (end == at || end - at > 9) return -1;
        return std::strtol(name.c_str() + at, nullptr, 10);
    };
    size_t end = 0;
    const std::string log = "nst-ffmpeg-";
    if (name.rfind(log, 0) == 0) {
        const long pid = number_at(log.size(), end);
        const bool ours = pid > 0 && name.size() == end + 1 + 6 + 4 && name[end] == '-' &&
                          std::all_of(name.begin() + long(end) + 1, name.begin() + long(end) + 7,
                                      [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }) &&
                          name.compare(end + 7, 4, ".log") == 0;
        return ours ? pid : -1;
    }
    if (name.size() < 2 || name[0] != '.') return -1;
    for (size_t at = name.find(".tmp-", 1); at != std::string::npos; at = name.find(".tmp-", at + 1)) {
        const long pid = number_at(at + 5, end);
        if (pid < 0 || end >= name.size() || name[end] != '-') continue;
        size_t counter_end = 0;
        if (number_at(end + 1, counter_end) < 0) continue;
        // Then the end of the name, or the extension (no further dot).
        if (counter_end == name.size() || (name[counter_end] == '.' && name.find('.', counter_end + 1) == std::string::npos))
            return pid;
    }
    return -1;
}

}  // namespace

void remove_stale_temporaries(const std::string& dir) {
    DIR* d = ::opendir(dir.empty() ? "." : dir.c_str());
    if (!d) return;
    while (const dirent* entry = ::readdir(d)) {
        const std::string name = entry->d_name;
        const long pid = temporary_owner(name);
        // A live owner is left alone, whoever it is (a PID reused since is
        // taken for the owner: the file stays until that process ends).
        if (pid <= 0 || pid == long(::getpid()) || ::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;
        const std::string path = (dir.empty() ? std::string(".") : dir) + "/" + name;
        const int fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat st;
        struct flock lock = {};
        lock.l_type = F_WRLCK, lock.l_whence = SEEK_SET;
        // Locked: its run lives on another machine. No such locks here: the PID decides.
        const bool unowned = ::fcntl(fd, F_OFD_SETLK, &lock) == 0 || errno == EINVAL;
        if (unowned && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) ::unlink(path.c_str());
        ::close(fd);
    }
    ::closedir(d);
}

void require_regular_file(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0)
        fail(path + (errno == ENOENT ? ": no such file" : ": cannot open: " + errno_text()));
    NST_CHECK(!S_ISDIR(st.st_mode), path, ": is a directory, not a file");
    NST_CHECK(S_ISREG(st.st_mode), path, ": not a regular file (a FIFO, device or socket)");
}

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
    NST_CHECK(!path.empty(), "cannot write a file with an empty name");
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    NST_CHECK(!name.empty(), path, ": not a file name");
    // The extension as nst reads it (is_video_path, is_image_path): from the
    // last dot, so ".mp4" is a video named by its extension alone; but none
    // that leaves no room for our suffix (".x" and 250 more letters).
    const size_t dot = name.find_last_of('.');
    const size_t limit = name_limit(dir);
    std::string ext = dot == std::string::npos ? "" : name.substr(dot);
    if (ext.size() + 32 > limit) ext.clear();
    const std::string stem = name.substr(0, name.size() - ext.size());
    // Hidden, so a directory listing running meanwhile skips it. Opened with
    // O_EXCL and mode 0666 (not mkstemp's 0600), so the umask applies as for
    // any plain new file.
    static std::atomic<unsigned> counter{0};
    int fd = -1;
    for (int attempt = 0; fd < 0; ++attempt) {
        const std::string suffix = ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ext;
        // A destination name near the limit leaves no room for ours: shorten the stem.
        const size_t room = limit > 1 + suffix.size() ? limit - 1 - suffix.size() : 0;
        temp_path_ = dir + "." + stem.substr(0, room) + suffix;
        fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        NST_CHECK(fd >= 0 || (errno == EEXIST && attempt < 100), path,
                  ": cannot create a file in ", dir.empty() ? "." : dir, ": ", errno_text());
    }
    listed_ = remember_temporary(temp_path_);
    // The lock (see remove_stale_temporaries) on a description of its own,
    // so that closing the handle for a subprocess keeps it.
    lock_fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (lock_fd_ >= 0) {
        struct flock lock = {};
        lock.l_type = F_WRLCK, lock.l_whence = SEEK_SET;
        ::fcntl(lock_fd_, F_OFD_SETLK, &lock);  // best effort: without it the PID still protects
    }
    file_ = fdopen(fd, "wb");
    if (!file_) {
        const std::string reason = errno_text();
        ::close(fd);
        std::remove(temp_path_.c_str());
        forget_temporary(listed_);
        if (lock_fd_ >= 0) ::close(lock_fd_);
        fail(path + ": cannot open for writing: " + reason);
    }
}

AtomicFile::~AtomicFile() {
    if (file_) std::fclose(file_);
    if (!committed_) std::remove(temp_path_.c_str());
    forget_temporary(listed_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

void AtomicFile::write(const void* data, size_t bytes) {
    NST_CHECK(file_, path_, ": write after close");
    if (bytes == 0) return;
    NST_CHECK(std::fwrite(data, 1, bytes, file_) == bytes, path_, ": write failed: ",
              errno_text());
}

void AtomicFile::close_handle() {
    if (!file_) return;
    const bool ok = std::fclose(file_) == 0;
    file_ = nullptr;
    NST_CHECK(ok, path_, ": write failed: ", errno_text());
}

void AtomicFile::commit() {
    if (file_) {
        bool ok = std::fflush(file_) == 0 && fsync(fileno(file_)) == 0;
        ok = std::fclose(file_) == 0 && ok;
        file_ = nullptr;
        NST_CHECK(ok, path_, ": write failed: ", errno_text());
    }
    NST_CHECK(std::rename(temp_path_.c_str(), path_.c_str()) == 0, path_,
              ": cannot move the finished file into place: ", errno_text());
    committed_ = true;
}

}  // namespace nst
