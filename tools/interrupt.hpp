// Ctrl-C for every nst-run command: the first SIGINT/SIGTERM asks the running
// command to stop at its next safe point (after the current image, frame or
// iteration) so it can clean up or save what it has; a second one kills.
#pragma once

namespace nst_run {

void install_interrupt_handlers();
bool interrupted();

}  // namespace nst_run
