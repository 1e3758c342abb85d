// Ctrl-C for every nst-run command: the first SIGINT, SIGTERM or SIGHUP (the
// terminal or ssh connection closed) asks the running command to stop at its
// next safe point (between the layers of a stylization, the tiles of a tiled
// one or of an optimization step, after an iteration or a training step:
// core/interrupt.hpp), so that it can clean up or save what it has; a
// second one ends the process at once:
// it kills the subprocesses listed here (an ffmpeg could otherwise go on
// writing a file just removed, or create it anew), then removes its
// temporary files (core/files.hpp).
#pragma once
#include <sys/types.h>

namespace nst_run {

void install_interrupt_handlers();
bool interrupted();
// Throws nst::Interrupted once Ctrl-C was pressed (core/interrupt.hpp: the
// library's long loops see the same request).
void check_interrupted();

// A child process for the second signal to kill; the handle goes to
// forget_child() before the child is reaped. -1 (not listed) past 16.
int remember_child(pid_t pid);
void forget_child(int handle);

}  // namespace nst_run
