#pragma once
// The preset a checkpoint or model file was trained as: the name its writer stored ("preset" in the
// run's settings), or else the registered preset with the file's identity (presets::find_by_identity),
// so that a file written by a user's own program with the library's Trainer is sampled and scored
// by the programs too.
//
//   auto info = casdm::train::read_checkpoint(path);
//   casdm::presets::visit(casdm::app::preset_of(info), [&](auto type) { ... });
#include "casdm/presets.hpp"
#include "casdm/train/checkpoint.hpp"

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace casdm::app {

inline std::string preset_of(const train::CheckpointInfo& c) {
  if (auto stored = c.get("preset"); !stored.empty()) return stored;
  const auto& id = c.model_type.empty() ? c.denoiser_type : c.model_type;
  if (auto found = presets::find_by_identity(id)) return *found;
  throw std::runtime_error(fmt::format("{} names no preset, and its model ({}) is none of the presets'", c.path.string(), id));
}

}  // namespace casdm::app
