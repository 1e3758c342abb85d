#include "core/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"

namespace nst {
namespace {

std::string errno_text() { return std::strerror(errno); }

}  // namespace

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
    NST_CHECK(!path.empty(), "cannot write a file with an empty name");
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    NST_CHECK(!name.empty(), path, ": not a file name");
    const size_t dot = name.find_last_of('.');
    const std::string ext = dot == std::string::npos || dot == 0 ? "" : name.substr(dot);
    // Hidden, so a directory listing running meanwhile skips it. Opened with
    // O_EXCL and mode 0666 (not mkstemp's 0600), so the umask applies as for
    // any plain new file.
    static std::atomic<unsigned> counter{0};
    int fd = -1;
    for (int attempt = 0; fd < 0; ++attempt) {
        temp_path_ = dir + "." + name + ".tmp-" + std::to_string(::getpid()) + "-" +
                     std::to_string(counter++) + ext;
        fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        NST_CHECK(fd >= 0 || (errno == EEXIST && attempt < 100), path,
                  ": cannot create a file in ", dir.empty() ? "." : dir, ": ", errno_text());
    }
    file_ = fdopen(fd, "wb");
    if (!file_) {
        const std::string reason = errno_text();
        ::close(fd);
        std::remove(temp_path_.c_str());
        fail(path + ": cannot open for writing: " + reason);
    }
}

AtomicFile::~AtomicFile() {
    if (file_) std::fclose(file_);
    if (!committed_) std::remove(temp_path_.c_str());
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
