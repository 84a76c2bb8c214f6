#pragma once
// The samples of a checkpoint, as casdm-sample and casdm-eval draw them: the denoiser it holds
// rebuilt and loaded (the chosen weights; no loss, so no metric network's weights are needed), moved
// to the device, in the precision asked for, and n images drawn by eval::draw_samples.
//
//   std::string which;   // "ema 0.9999", "raw", "model file"
//   auto x = casdm::app::draw_from_checkpoint<casdm::presets::CasDM, casdm::sampler::DDIM<>>(
//       info, {}, c10::Device("cpu"), 64, casdm::eval::DrawOptions().batch(16), &which);
#include "casdm/eval/draw.hpp"
#include "casdm/train/checkpoint.hpp"

#include <c10/core/Device.h>

#include <string>

namespace casdm::app {

template <class Model, class Sampler>
at::Tensor draw_from_checkpoint(const train::CheckpointInfo& c, const train::Weights& weights, const c10::Device& device,
                                int64_t n, const eval::DrawOptions& options, std::string* which = nullptr,
                                at::ScalarType precision = at::kFloat) {
  auto denoiser = train::load_denoiser<typename Model::Denoiser>(c, weights, which);
  denoiser->to(device);
  denoiser->precision(precision);
  return eval::draw_samples<Sampler>(denoiser, n, options);
}

}  // namespace casdm::app
