// Stopping long work early. A caller asks for a stop (nst-run's Ctrl-C
// handler, tools/interrupt.hpp; an embedding program's own reason) and the
// work notices at its next safe point: between the layers of a
// stylization, between the tiles and passes of a tiled one, between the
// tiles of an optimization step. One lock-free flag, so a signal handler
// may set it. Training steps never stop halfway (a checkpoint must hold a
// whole step); their callers check between steps.
#pragma once
#include <stdexcept>

namespace nst {

// What check_interrupt() throws: the work was abandoned, nothing is wrong.
// Not an nst::Error, so that code going on past one failure (a directory's
// bad image) does not take a stop for another.
class Interrupted : public std::runtime_error {
public:
    Interrupted() : std::runtime_error("interrupted") {}
};

void request_interrupt() noexcept;  // async-signal-safe
bool interrupt_requested() noexcept;
// Forgets the request, for a program that goes on after stopping some work.
void clear_interrupt() noexcept;
// Throws Interrupted once a stop was requested.
void check_interrupt();

}  // namespace nst
