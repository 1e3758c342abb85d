#include "video/subprocess.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>

#include "core/error.hpp"
#include "core/files.hpp"

namespace nst {
namespace {

// Set once by a program at its start, read at every child's start.
std::mutex g_hooks_mutex;
ChildProcessHooks g_hooks;

ChildProcessHooks child_process_hooks() {
    std::lock_guard<std::mutex> lock(g_hooks_mutex);
    return g_hooks;
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
    if (from.empty()) return;
    for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
}

}  // namespace

void set_child_process_hooks(const ChildProcessHooks& hooks) {
    NST_CHECK(!hooks.started == !hooks.ending, "child-process hooks: set both or neither");
    std::lock_guard<std::mutex> lock(g_hooks_mutex);
    g_hooks = hooks;
}

Subprocess::Subprocess(const std::vector<std::string>& argv, const char* mode, const std::string& what)
    : what_(what) {
    for (const std::string& a : argv)
        if (a.rfind("file:", 0) == 0) shown_as_.emplace_back(a, a.substr(5));
    // Named after our PID, so that what a SIGKILL leaves is known by it.
    const char* tmp = std::getenv("TMPDIR");
    const bool from_env = tmp && *tmp;
    const std::string dir = from_env ? tmp : "/tmp";
    const std::string templ = dir + "/nst-ffmpeg-" + std::to_string(::getpid()) + "-XXXXXX.log";
    std::vector<char> buffer(templ.begin(), templ.end());
    buffer.push_back('\0');
    const int log_fd = mkostemps(buffer.data(), 4, O_CLOEXEC);
    NST_CHECK(log_fd >= 0, what, ": cannot create its log file in ", from_env ? "TMPDIR=" : "", dir, ": ",
              std::strerror(errno));
    log_path_ = buffer.data();
    log_listed_ = nst::remember_temporary(log_path_);
    const bool reading = mode[0] == 'r';
    int ends[2] = {-1, -1};
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    int error = ::pipe2(ends, O_CLOEXEC) == 0 ? 0 : errno;
    if (!error) {
        // The child's end of the pipe as its stdout (reading) or stdin
        // (writing), its stderr into the log, and no terminal at all.
        posix_spawn_file_actions_adddup2(&actions, reading ? ends[1] : ends[0], reading ? 1 : 0);
        if (reading) posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&actions, log_fd, 2);
        // Its own process group: a Ctrl-C at the terminal reaches nst-run
        // alone, which then stops at a frame boundary and ends ffmpeg itself.
        posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
        posix_spawnattr_setpgroup(&attributes, 0);
        std::vector<char*> args;
        for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        error = posix_spawn(&pid_, argv[0].c_str(), &actions, &attributes, args.data(), environ);
    }
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    ::close(log_fd);
    if (ends[reading ? 1 : 0] >= 0) ::close(ends[reading ? 1 : 0]);
    if (!error) {
        hooks_ = child_process_hooks();
        if (hooks_.started) hook_handle_ = hooks_.started(pid_);
        pipe_ = fdopen(ends[reading ? 0 : 1], reading ? "r" : "w");
        if (pipe_) return;
        error = errno;
        ::close(ends[reading ? 0 : 1]);  // the child sees EOF or EPIPE and ends
        wait();
    } else if (ends[reading ? 0 : 1] >= 0) {
        ::close(ends[reading ? 0 : 1]);
    }
    std::remove(log_path_.c_str());
    nst::forget_temporary(log_listed_);
    fail(what + ": cannot start: " + std::strerror(error));
}

int Subprocess::wait() {
    if (pid_ <= 0) return -1;
    // Until it has ended the program may kill it (nst-run: a second Ctrl-C
    // during a long wait, an encoder finishing); the program hears of its
    // end before it is reaped, after which its pid may be another process's.
    siginfo_t info;
    while (::waitid(P_PID, id_t(pid_), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
    if (hooks_.ending) hooks_.ending(hook_handle_);
    hooks_ = {};
    int status = -1;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
}

Subprocess::~Subprocess() {
    if (pipe_) std::fclose(pipe_);  // a reader gets EOF, a writer EPIPE: either ends
    wait();
    std::remove(log_path_.c_str());
    nst::forget_temporary(log_listed_);
}

void Subprocess::show_as(const std::string& actual, const std::string& shown) { shown_as_.emplace_back(actual, shown); }

std::vector<std::string> Subprocess::log_lines() const {
    std::ifstream in(log_path_);
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        // Indented: "    Last message repeated 2 times".
        if (line.empty() || line[0] == ' ') continue;
        const size_t at = line.find(" @ 0x"), close = line.find("] ");
        if (line[0] == '[' && at != std::string::npos && close != std::string::npos && at < close) {
            const std::string name = line.substr(1, at - 1);  // "NULL": a parser, which has none
            line = (name == "NULL" ? "" : name + ": ") + line.substr(close + 2);
        }
        for (const auto& [actual, shown] : shown_as_) replace_all(line, actual, shown);
        lines.push_back(line);
    }
    return lines;
}

std::string Subprocess::reason() const {
    const std::vector<std::string> lines = log_lines();
    if (!lines.empty()) return lines.front();
    if (status_ != -1 && WIFEXITED(status_)) return "exit status " + std::to_string(WEXITSTATUS(status_));
    if (status_ != -1 && WIFSIGNALED(status_)) return "killed by signal " + std::to_string(WTERMSIG(status_));
    return "killed";
}

bool Subprocess::close() {
    if (pipe_) std::fclose(pipe_);
    pipe_ = nullptr;
    if (pid_ > 0) status_ = wait();
    return status_ != -1 && WIFEXITED(status_) && WEXITSTATUS(status_) == 0;
}

void Subprocess::finish() {
    if (!close()) fail(what_ + " failed: " + reason());
}
}  // namespace nst
