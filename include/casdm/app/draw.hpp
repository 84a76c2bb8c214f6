#pragma once
// The samples of a checkpoint, as casdm-sample and casdm-eval draw them: the denoiser it holds
// rebuilt and loaded (the chosen weights; no loss, so no metric network's weights are needed), moved
// to the device, in the precision asked for, and n images drawn by eval::draw_samples.
//
//   std::string which;   // "ema 0.9999", "raw", "model file"
//   auto x = casdm::app::draw_from_checkpoint<casdm::presets::CasDM>(
//       info, "ddim", {}, c10::Device("cpu"), 64, casdm::eval::DrawOptions().batch(16), &which);
//
// The sampler is named at run time (the registry's names): the code is compiled once per preset
// and once per sampler, not once per pair.
#include "casdm/eval/draw.hpp"
#include "casdm/train/checkpoint.hpp"

#include <c10/core/Device.h>

#include <string>
#include <string_view>

namespace casdm::app {

/// `sampler`: a registered sampler's name; where it is the name of Model's own sampler, that type is
/// used (its compile-time step count is the default).
template <class Model>
at::Tensor draw_from_checkpoint(const train::CheckpointInfo& c, std::string_view sampler, const train::Weights& weights,
                                const c10::Device& device, int64_t n, const eval::DrawOptions& options,
                                std::string* which = nullptr, at::ScalarType precision = at::kFloat) {
  (void)casdm::sampler::info(sampler);  // an unknown name refused before the model is loaded
  auto denoiser = train::load_denoiser<typename Model::Denoiser>(c, weights, which);
  denoiser->to(device);
  denoiser->precision(precision);
  using Own = typename Model::Impl::sampler_type;
  if (sampler == std::string_view(Own::name)) return eval::draw_samples<Own>(denoiser, n, options);
  return eval::draw_samples(sampler, denoiser, n, options);
}

}  // namespace casdm::app
