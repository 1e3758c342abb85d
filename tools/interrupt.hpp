// Ctrl-C for every nst-run command: the first SIGINT, SIGTERM or SIGHUP (the
// terminal or ssh connection closed) asks the running command to stop at its
// next safe point (after the current image, frame or iteration), so that it
// can clean up or save what it has; a second one ends the process at once:
// it kills the subprocesses listed here (an ffmpeg could otherwise go on
// writing a file just removed, or create it anew), then removes its
// temporary files (core/files.hpp).
#pragma once
#include <sys/types.h>

namespace nst_run {

void install_interrupt_handlers();
bool interrupted();
// Throws nst::Error("interrupted") once Ctrl-C was pressed.
void check_interrupted();

// A child process for the second signal to kill; the handle goes to
// forget_child() before the child is reaped. -1 (not listed) past 16.
int remember_child(pid_t pid);
void forget_child(int handle);

}  // namespace nst_run
