#pragma once
// Text of messages and files, through fmt: tensor shapes and numbers that read back exactly.
#include <c10/util/ArrayRef.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <string>

namespace casdm::io {

/// "[2,3,8,8]": a tensor's sizes in messages.
inline std::string shape_str(c10::IntArrayRef sizes) { return fmt::format("[{}]", fmt::join(sizes, ",")); }

/// The shortest text that reads back as exactly `d` (std::to_chars: "0.1", "1e-04", "3"); the form
/// checkpoints store numbers in, so it must not change between versions.
inline std::string number_str(double d) {
  char buf[32];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, d).ptr);
}

/// A duration for people: 75 → "1m15s", 4000 → "1h06m", 9 → "9s".
inline std::string duration_str(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

}  // namespace casdm::io
