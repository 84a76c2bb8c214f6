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

}  // namespace casdm::io
