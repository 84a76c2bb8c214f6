#pragma once
// Stopping a program that samples on SIGINT or SIGTERM, between two batches: the batch under way
// finishes, what was kept before (a cache of scores, a checkpoint) stays, nothing is half-written.
//
//   casdm::train::StopSignals signals("this batch of samples");
//   auto x = casdm::eval::draw_samples<S>(d, n, casdm::eval::DrawOptions().progress(
//       casdm::app::stop_between_batches(signals, casdm::eval::print_draw_progress())));
//   ... catch (const casdm::app::Stopped& s) { return 128 + s.signal; }
#include "casdm/train/stop.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <stdexcept>

namespace casdm::app {

/// Thrown where a program stops for a signal; `signal` is SIGINT or SIGTERM.
struct Stopped : std::runtime_error {
  explicit Stopped(int sig) : std::runtime_error(fmt::format("stopped by {}", train::StopSignals::name(sig))), signal(sig) {}
  int signal;
};

/// A progress callback for eval::DrawOptions: calls `inner` (if any), then throws Stopped if
/// `signals` has received a signal. `signals` must outlive the callback.
inline std::function<void(int64_t, int64_t, double)> stop_between_batches(
    const train::StopSignals& signals, std::function<void(int64_t, int64_t, double)> inner = {}) {
  return [&signals, inner = std::move(inner)](int64_t done, int64_t n, double seconds) {
    if (inner) inner(done, n, seconds);
    if (const int sig = signals.requested()) throw Stopped(sig);
  };
}

}  // namespace casdm::app
