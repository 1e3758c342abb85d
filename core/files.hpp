// Files from and for users.
//
// Output is atomic: everything nst writes (weights, images, videos, logs)
// goes to a temporary file in the destination's directory and is renamed
// over the destination only once complete. A crash, a full disk or an error
// midway therefore never leaves a half-written file under the requested
// name, and a reader never sees one. The temporary lives in the same
// directory because rename() is atomic only within one file system. Every
// temporary is also listed where a signal handler can find it:
// remove_temporaries() deletes them when a second Ctrl-C (or SIGTERM, SIGHUP)
// ends the process at once, without unwinding. A process killed outright
// (SIGKILL) leaves them; their names hold its PID, by which the next run
// writing there knows them (remove_stale_temporaries()).
//
// Input is opened only when it is a regular file: a FIFO would block in
// open() or read() forever, a device would never end.
#pragma once
#include <cstdio>
#include <string>

namespace nst {

class AtomicFile {
public:
    // Creates the temporary file (same directory, same extension, so tools
    // that pick a format by extension, like ffmpeg, still work on it). Its
    // name is the destination's, hidden and with a suffix, shortened where
    // that would pass the file system's name limit.
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
    int listed_ = -1;  // remember_temporary()'s handle
    int lock_fd_ = -1;  // holds the temporary's lock until it is renamed or removed
};

// Deletes every AtomicFile temporary of this process, and every file listed
// with remember_temporary(). Async-signal-safe: for a signal handler that is
// about to end the process.
void remove_temporaries();
// Lists another temporary file (a subprocess's log) for remove_temporaries();
// the handle goes to forget_temporary() once the file is gone. At most 64
// are listed at a time; past that the handle is -1 and the file is not.
int remember_temporary(const std::string& path);
void forget_temporary(int handle);

// Deletes what processes that are gone left in `dir` of their temporaries:
// AtomicFile's (".out.tmp-PID-N.png") and subprocess logs
// ("nst-ffmpeg-PID-XXXXXX.log"), whose PID is no running process. A
// process killed outright (SIGKILL, a crash, the power) cannot remove its
// own; the next run writing to the same place does. A PID is only this
// machine's, so an AtomicFile also holds a lock on its temporary (an open
// file description lock, which NFS passes on and which dies with its
// process): a temporary still locked, by a run on another machine sharing
// the directory, is left alone.
void remove_stale_temporaries(const std::string& dir);

// Throws nst::Error unless `path` names a regular file (after symbolic
// links): "PATH: no such file", "PATH: is a directory", "PATH: not a regular
// file (a FIFO, device or socket)". Opens nothing, so it never blocks.
void require_regular_file(const std::string& path);

}  // namespace nst
