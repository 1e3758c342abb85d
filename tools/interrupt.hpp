// Ctrl-C for every nst-run command: the first SIGINT, SIGTERM or SIGHUP (the
// terminal or ssh connection closed) asks the running command to stop at its
// next safe point (between the layers of a stylization, the tiles of a tiled
// one or of an optimization step, after an iteration or a training step:
// core/interrupt.hpp), so that it can clean up or save what it has; a
// second one ends the process at once:
// it kills the video code's ffmpeg processes, of which it hears through
// video/subprocess.hpp's hooks (an ffmpeg could otherwise go on writing a
// file just removed, or create it anew), then removes its temporary files
// (core/files.hpp).
#pragma once

namespace nst_run {

// The signal handlers, and the child-process hooks that list ffmpeg for them.
void install_interrupt_handlers();
bool interrupted();
// Throws nst::Interrupted once Ctrl-C was pressed (core/interrupt.hpp: the
// library's long loops see the same request).
void check_interrupted();

}  // namespace nst_run
