#pragma once
// A refused setting, named the library's way. The library names its own options in messages
// (ObjectiveOptions' "feature_weights", CheckpointDir's "resume", a session's "batch"); a program
// that took the value from a flag says it in its own words: it catches SettingError and prints
// its flag for `setting` before `detail` (examples/program.hpp: casdm-train's "--feature-weights").
//
//   throw casdm::SettingError("feature_weights", "the LPIPS loss needs the folder of its weights");
//   // what(): "feature_weights: the LPIPS loss needs the folder of its weights"
#include <stdexcept>
#include <string>
#include <utility>

namespace casdm {

struct SettingError : std::invalid_argument {
  SettingError(const std::string& setting_, const std::string& detail_)
      : std::invalid_argument(setting_ + ": " + detail_), setting(setting_), detail(detail_) {}
  /// The library's name of the setting ("feature_weights", "resume", "checkpoints", "batch").
  std::string setting;
  /// What is wrong with it, in one line that does not repeat the name.
  std::string detail;
};

}  // namespace casdm
