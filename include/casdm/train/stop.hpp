#pragma once
// Stopping a long run cleanly on SIGINT or SIGTERM: the first signal is recorded and the loop
// finishes its step (a training step, a batch of samples), saves what it has and exits; a second
// one ends the process at once.
//
//   casdm::train::StopSignals stop;                    // handlers installed for its lifetime
//   for (...) {
//     trainer.step(loader.next());
//     if (stop.requested()) { save(); return 128 + stop.requested(); }
//   }
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace casdm::train {

class StopSignals {
 public:
  /// `unit` names what finishes before the stop, in the line printed at the first signal:
  /// "stopping after this step (a second Ctrl-C exits at once)".
  explicit StopSignals(const char* unit = "this step") {
    received() = 0;
    // Composed here, not in the handler (which may only write).
    const int n = std::snprintf(message(), message_size, "\nstopping after %s (a second Ctrl-C exits at once)\n", unit);
    message_length() = n < 0 ? 0 : std::min(static_cast<size_t>(n), message_size - 1);
    struct sigaction sa {};
    sa.sa_handler = &StopSignals::handle;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocking read returns EINTR rather than waiting on
    if (::sigaction(SIGINT, &sa, &old_int_) != 0 || ::sigaction(SIGTERM, &sa, &old_term_) != 0)
      throw std::runtime_error("cannot install the SIGINT/SIGTERM handlers");
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  ~StopSignals() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }

  /// The signal received (SIGINT or SIGTERM), or 0.
  int requested() const { return received().load(); }
  /// "SIGINT", "SIGTERM" or "signal N".
  static const char* name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal"; }

 private:
  static constexpr size_t message_size = 160;
  static char* message() {
    static char m[message_size] = {};
    return m;
  }
  static size_t& message_length() {
    static size_t n = 0;
    return n;
  }
  static std::atomic<int>& received() {
    static std::atomic<int> s{0};
    return s;
  }
  static void handle(int sig) {
    if (received().exchange(sig) != 0) {  // the second signal: leave now, as the default would
      static const char msg[] = "\nsecond signal: exiting at once, without saving\n";
      [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
      ::_exit(128 + sig);
    }
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, message(), message_length());
  }

  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace casdm::train
