// The crash note of `convkit check`: a static buffer written out by an async-signal-safe handler.
#include "crash_note.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>

namespace convkit::cli {

namespace {

char note[2048];
std::atomic<std::size_t> note_size{0};

void write_all(const char* text, std::size_t n) {
  while (n > 0) {
    const ssize_t done = ::write(STDERR_FILENO, text, n);
    if (done <= 0) return;
    text += done;
    n -= static_cast<std::size_t>(done);
  }
}

// Only write(), signal() and raise(): all three are async-signal-safe.
extern "C" void on_fatal_signal(int sig) {
  char head[64] = "\nconvkit check: died of signal ";
  std::size_t n = std::strlen(head);
  char digits[8];
  int d = 0;
  for (int v = sig; v > 0 && d < 8; v /= 10) digits[d++] = static_cast<char>('0' + v % 10);
  while (d > 0) head[n++] = digits[--d];
  head[n++] = ' ';
  write_all(head, n);
  write_all(note, note_size.load());
  write_all("\n", 1);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

void install_crash_note() {
  for (const int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT})
    std::signal(sig, on_fatal_signal);
}

void set_crash_note(const std::string& text) {
  note_size.store(0);  // a signal during the copy prints nothing rather than a torn note
  const std::size_t n = std::min(text.size(), sizeof note);
  std::memcpy(note, text.data(), n);
  note_size.store(n);
}

}  // namespace convkit::cli
