// The video library's child processes (video/subprocess.hpp), run with
// /bin/sh in place of ffmpeg: pipes both ways, the log quoted in errors, and
// the program's hooks told of each child while it can still be killed.
#include <catch2/catch.hpp>
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "video/subprocess.hpp"

using namespace nst;

namespace {

// What the hooks were told, in order: +pid on start, -pid on end.
std::vector<long> g_events;
std::vector<pid_t> g_pids;  // by handle
bool g_alive_at_end = false;

int started(pid_t pid) {
    g_events.push_back(pid);
    g_pids.push_back(pid);
    return int(g_pids.size()) - 1;
}

void ending(int handle) {
    const pid_t pid = g_pids.at(size_t(handle));
    g_events.push_back(-long(pid));
    // Ended but not reaped: the pid is still this child's, so a program may
    // still kill it (a zombie takes signal 0).
    g_alive_at_end = ::kill(pid, 0) == 0;
}

struct HooksForTheTest {
    HooksForTheTest() {
        g_events.clear(), g_pids.clear();
        set_child_process_hooks({started, ending});
    }
    ~HooksForTheTest() { set_child_process_hooks({}); }
};

std::string read_all(Subprocess& p) {
    std::string text;
    char buf[256];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p.pipe())) > 0) text.append(buf, n);
    return text;
}

}  // namespace

TEST_CASE("a child's output comes through its pipe, and the hooks hear of its start and end before it is reaped") {
    HooksForTheTest hooks;
    pid_t pid = 0;
    {
        Subprocess child({"/bin/sh", "-c", "echo frames"}, "r", "sh (reading)");
        REQUIRE(g_events.size() == 1);
        pid = pid_t(g_events[0]);
        CHECK(pid > 0);
        CHECK(read_all(child) == "frames\n");
        CHECK(child.close());
        CHECK(g_events == std::vector<long>{pid, -long(pid)});
        CHECK(g_alive_at_end);
    }
    CHECK(g_events.size() == 2);  // told once, not again by the destructor
    CHECK((::kill(pid, 0) == -1 && errno == ESRCH));  // reaped
}

TEST_CASE("a failing child's log is quoted, and the hooks hear of every child, however it ends") {
    HooksForTheTest hooks;
    {
        Subprocess child({"/bin/sh", "-c", "cat > /dev/null; echo 'encoder: out of luck' >&2; exit 3"}, "w",
                         "out.mp4: sh (encoding)");
        CHECK(std::fputs("a frame", child.pipe()) >= 0);
        CHECK_THROWS_WITH(child.finish(), "out.mp4: sh (encoding) failed: encoder: out of luck");
        CHECK(child.log_lines() == std::vector<std::string>{"encoder: out of luck"});
    }
    {
        // Left to the destructor, as after an error elsewhere: the pipe closes, the child ends.
        Subprocess child({"/bin/sh", "-c", "cat > /dev/null"}, "w", "sh");
    }
    {
        Subprocess child({"/bin/sh", "-c", "exit 2"}, "r", "sh");
        CHECK_FALSE(child.close());
        CHECK(child.reason() == "exit status 2");
    }
    REQUIRE(g_events.size() == 6);
    for (size_t i = 0; i < 6; i += 2) CHECK(g_events[i + 1] == -g_events[i]);
    CHECK_THROWS_AS(Subprocess({"/nonexistent/ffmpeg"}, "r", "ffmpeg"), Error);
}

TEST_CASE("without hooks nothing is told, and hooks are set both or neither") {
    g_events.clear();
    set_child_process_hooks({});
    Subprocess child({"/bin/sh", "-c", "true"}, "r", "sh");
    CHECK(child.close());
    CHECK(g_events.empty());
    CHECK_THROWS_AS(set_child_process_hooks({started, nullptr}), Error);
}
