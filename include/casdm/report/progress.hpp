#pragma once
// Progress of a run: on a terminal, one line redrawn in place (step/total, a bar, steps/s, ETA,
// the latest losses); in a file, a pipe or CI, plain lines every `every` steps, as a log wants them.
//
//   casdm::report::Progress progress(first_step, last_step, casdm::report::ProgressOptions().every(100));
//   progress.update(step, log.last());         // after each step
//   progress.print("step 7 skipped: ...");     // a message: the live line is cleared, then redrawn
//   progress.done();                           // ends the live line
#include "casdm/io/text.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace casdm::report {

/// Whether `out` is a terminal a line can be redrawn on: a TTY, TERM not "dumb", and not under CI
/// (the CI variable set, as GitHub Actions, GitLab and most runners set it).
inline bool is_live_terminal(FILE* out) {
  if (!out || !::isatty(::fileno(out))) return false;
  const char* term = std::getenv("TERM");
  const char* ci = std::getenv("CI");
  return !(term && std::string_view(term) == "dumb") && !(ci && *ci && std::string_view(ci) != "false");
}

struct ProgressOptions {
  /// Plain mode: a line every this many steps (and at the last step).
  ProgressOptions& every(int64_t n) { return every_ = std::max<int64_t>(n, 1), *this; }
  /// Live mode: the line is redrawn at most this often.
  ProgressOptions& redraw_seconds(double s) { return redraw_seconds_ = s, *this; }
  /// Forces live (true) or plain (false) mode; unset: live on a terminal (is_live_terminal).
  ProgressOptions& live(std::optional<bool> on) { return live_ = on, *this; }
  /// The live line's width in characters (0: the terminal's, or 100).
  ProgressOptions& width(int columns) { return width_ = columns, *this; }
  int64_t every_ = 100;
  double redraw_seconds_ = 0.1;
  std::optional<bool> live_;
  int width_ = 0;
};

class Progress {
 public:
  Progress(int64_t first, int64_t last, ProgressOptions options = {}, FILE* out = stderr)
      : first_(first), last_(last), o_(options), out_(out), live_(o_.live_.value_or(is_live_terminal(out))),
        start_(std::chrono::steady_clock::now()) {}
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress() { done(); }

  bool live() const { return live_; }

  /// The shortest time a rate is measured over (below it the line says "? steps/s").
  static constexpr double min_rate_seconds = 0.01;

  /// "350/1200 [======>       ]  29% | 12.3 steps/s | ETA 1m09s | total 0.031 eps 0.030": after
  /// step `step` of the run, with `details` (the latest losses) at the end, cut to `width`
  /// characters (0: whole); without the bar and percentage when `with_bar` is false.
  std::string line(int64_t step, std::string_view details, int width, bool with_bar = true) const {
    const double secs = seconds(), done = static_cast<double>(step - first_);
    // A rate needs a measurable time: steps reported within min_rate_seconds of the start say "?".
    const double rate = secs >= min_rate_seconds ? done / secs : 0;
    const double frac = last_ > 0 ? std::clamp(static_cast<double>(step) / static_cast<double>(last_), 0.0, 1.0) : 1;
    const std::string eta = rate > 0 ? io::duration_str(static_cast<double>(last_ - step) / rate) : "?";
    std::string s = fmt::format("{}/{}", step, last_);
    if (with_bar) s += fmt::format(" {} {:3.0f}%", bar(frac, 20), 100 * frac);
    s += rate > 0 ? fmt::format(" | {:.3g} steps/s | ETA {}", rate, eta) : fmt::format(" | ? steps/s | ETA {}", eta);
    if (!details.empty()) s += fmt::format(" | {}", details);
    if (width > 0 && static_cast<int>(s.size()) > width) s.resize(static_cast<size_t>(std::max(width - 1, 0))), s += "…";
    return s;
  }

  /// After step `step`: live, redraws the line (at most every redraw_seconds, always at the last
  /// step); plain, prints a line every `every` steps and at the last.
  void update(int64_t step, std::string_view details) {
    const auto now = std::chrono::steady_clock::now();
    if (live_) {
      if (step != last_ && drawn_ && std::chrono::duration<double>(now - last_draw_).count() < o_.redraw_seconds_) return;
      fmt::print(out_, "\r\x1b[2K{}", line(step, details, columns()));
      std::fflush(out_);
      drawn_ = true;
      last_draw_ = now;
      last_line_ = {step, std::string(details)};
    } else if (step % o_.every_ == 0 || step == last_) {
      fmt::print(out_, "step {}\n", line(step, details, 0, false));
      std::fflush(out_);
    }
  }

  /// Prints a message on its own line; live, the progress line is cleared first and drawn again after.
  void print(std::string_view message) {
    if (live_ && drawn_) fmt::print(out_, "\r\x1b[2K");
    fmt::print(out_, "{}\n", message);
    if (live_ && drawn_) fmt::print(out_, "{}", line(last_line_.first, last_line_.second, columns()));
    std::fflush(out_);
  }

  /// Ends the live line (a newline after it); plain mode: nothing.
  void done() {
    if (live_ && drawn_) fmt::print(out_, "\n"), std::fflush(out_);
    drawn_ = false;
  }

  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

  /// "[=====>    ]": `fraction` of `width` cells.
  static std::string bar(double fraction, int width) {
    const int full = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * width);
    std::string s = "[" + std::string(static_cast<size_t>(full), '=');
    if (full < width) s += '>', s += std::string(static_cast<size_t>(width - full - 1), ' ');
    return s + "]";
  }

 private:
  int columns() const {
    if (o_.width_ > 0) return o_.width_;
    winsize w{};
    if (::ioctl(::fileno(out_), TIOCGWINSZ, &w) == 0 && w.ws_col > 0) return w.ws_col - 1;
    return 100;
  }

  int64_t first_, last_;
  ProgressOptions o_;
  FILE* out_;
  bool live_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_{};
  std::pair<int64_t, std::string> last_line_{0, {}};
};

}  // namespace casdm::report
