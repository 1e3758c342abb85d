// Files for users (core/files.hpp): atomic outputs, and the temporaries a
// process killed outright leaves, which the next run removes by their
// owner's PID unless another machine's run still holds them locked.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>

#include "core/error.hpp"
#include "core/files.hpp"
#include "temp_dir.hpp"

using namespace nst;

namespace {

std::string fresh_dir(const std::string& name) {
    const std::string dir = test::temp_dir() + "/" + name;
    REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
    return dir;
}

bool exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

void touch(const std::string& path) { std::ofstream(path) << "x"; }

// A PID that no process has: from the largest possible one down.
long dead_pid() {
    long pid = 4194304;
    std::ifstream("/proc/sys/kernel/pid_max") >> pid;
    while (::kill(pid_t(pid), 0) == 0 || errno != ESRCH) --pid;
    return pid;
}

}  // namespace

TEST_CASE("files: an atomic output appears whole or not at all", "[files]") {
    const std::string dir = fresh_dir("atomic");
    {
        AtomicFile f(dir + "/out.png");
        f.write("abc", 3);
        CHECK_FALSE(exists(dir + "/out.png"));
        CHECK(f.temp_path().find("/.out.tmp-" + std::to_string(::getpid()) + "-") != std::string::npos);
        f.commit();
    }
    CHECK(exists(dir + "/out.png"));
    std::string temp;
    {
        AtomicFile f(dir + "/gone.png");
        temp = f.temp_path();
        CHECK(exists(temp));
    }
    CHECK_FALSE(exists(temp));
    CHECK_FALSE(exists(dir + "/gone.png"));
    // A name that is all extension keeps it (ffmpeg picks the format by it).
    {
        AtomicFile f(dir + "/.mp4");
        CHECK(f.temp_path().size() > 4);
        CHECK(f.temp_path().compare(f.temp_path().size() - 4, 4, ".mp4") == 0);
    }
    // A hidden name as long as the file system takes: no extension to keep, the name shortened.
    {
        const std::string name = "." + std::string(250, 'x');
        AtomicFile f(dir + "/" + name);
        f.write("abc", 3);
        f.commit();
        CHECK(exists(dir + "/" + name));
    }
}

TEST_CASE("files: temporaries of dead processes go, everything else stays", "[files]") {
    const std::string dir = fresh_dir("stale");
    const std::string dead = std::to_string(dead_pid()), alive = std::to_string(::getppid());
    const std::vector<std::string> stale = {
        ".out.tmp-" + dead + "-0.png", ".o.tmp-" + dead + "-12", "..tmp-" + dead + "-3.mp4",
        ".a.b.tmp-" + dead + "-0.csv", "nst-ffmpeg-" + dead + "-Ab12Cd.log"};
    const std::vector<std::string> kept = {
        ".out.tmp-" + alive + "-0.png",          // its process runs
        "nst-ffmpeg-" + alive + "-Ab12Cd.log",
        "out.tmp-" + dead + "-0.png",            // not hidden: not ours
        ".out.tmp-" + dead + "-0.png.bak",       // more after the extension
        ".out.tmp-" + dead + "-x.png",           // no counter
        ".out.tmp-" + dead + ".png",
        "nst-train-" + dead + "-1700000000.log",  // a user's log
        "nst-ffmpeg-" + dead + "-Ab12C.log",      // not mkostemps' six characters
        "nst-ffmpeg-" + dead + "-Ab12Cd.log.old",
        ".notes.tmp-1-2-3.txt.bak",
        "photo.png"};
    for (const auto& name : stale) touch(dir + "/" + name);
    for (const auto& name : kept) touch(dir + "/" + name);
    remove_stale_temporaries(dir);
    for (const auto& name : stale) {
        INFO(name);
        CHECK_FALSE(exists(dir + "/" + name));
    }
    for (const auto& name : kept) {
        INFO(name);
        CHECK(exists(dir + "/" + name));
    }
}

// A run on another machine sharing the directory: its PID means nothing
// here, but its lock on the temporary does.
TEST_CASE("files: a locked temporary stays whatever its PID", "[files]") {
    const std::string dir = fresh_dir("locked");
    const std::string path = dir + "/.out.tmp-" + std::to_string(dead_pid()) + "-0.png";
    touch(path);
    const int fd = ::open(path.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    struct flock lock = {};
    lock.l_type = F_WRLCK, lock.l_whence = SEEK_SET;
    REQUIRE(::fcntl(fd, F_OFD_SETLK, &lock) == 0);
    remove_stale_temporaries(dir);
    CHECK(exists(path));
    ::close(fd);  // the run ends
    remove_stale_temporaries(dir);
    CHECK_FALSE(exists(path));
    // AtomicFile holds such a lock on its own temporary while it lives.
    AtomicFile f(dir + "/mine.png");
    const int other = ::open(f.temp_path().c_str(), O_WRONLY);
    REQUIRE(other >= 0);
    CHECK(::fcntl(other, F_OFD_SETLK, &lock) == -1);
    f.close_handle();  // handed to a subprocess: still locked
    CHECK(::fcntl(other, F_OFD_SETLK, &lock) == -1);
    ::close(other);
}
