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

#include <memory>
#include <stdexcept>
#include <string>

namespace casdm::app {

inline std::string preset_of(const train::CheckpointInfo& c) {
  if (auto stored = c.get("preset"); !stored.empty()) return stored;
  const auto& id = c.model_type.empty() ? c.denoiser_type : c.model_type;
  if (auto found = presets::find_by_identity(id)) return *found;
  throw std::runtime_error(fmt::format("{} names no preset, and its model ({}) is none of the presets'", c.path.string(), id));
}

/// The denoiser of checkpoint `c` — whichever registered preset wrote it (preset_of) — with
/// `weights`, on `device`, behind AnyDenoiser (only the loading is compiled per preset); `which`
/// names the weights used.
inline std::shared_ptr<AnyDenoiser> load_any_denoiser(const train::CheckpointInfo& c, const train::Weights& weights,
                                                      const c10::Device& device, std::string* which = nullptr) {
  return presets::visit(preset_of(c), [&](auto type) -> std::shared_ptr<AnyDenoiser> {
    auto d = train::load_denoiser<typename decltype(type)::type::Denoiser>(c, weights, which);
    d->to(device);
    return d.ptr();
  });
}

}  // namespace casdm::app
