// A line printed when the process dies of a signal, so that a kernel crash in a long
// `convkit check` run names the problem and pass it was on.
#pragma once

#include <string>

namespace convkit::cli {

/// Installs handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT that write the current
/// note (and the signal number) to stderr, then die of the same signal as before.
void install_crash_note();

/// Replaces the note (truncated to 2 KiB). Cheap: a copy into a static buffer.
void set_crash_note(const std::string& text);

}  // namespace convkit::cli
