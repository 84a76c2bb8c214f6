#pragma once
// The run-time settings of a training objective: what the loss terms read besides the prediction.
// They belong to whoever trains (a checkpoint keeps them in its "objective" section), not to the
// denoiser: a resumed run may change them (a moved weights folder, another λ), and the trainer
// reports each change.
//
//   casdm::ObjectiveOptions().feature_weights("weights/").loss_weights({{"x0", 0.5}})
#include <torch/arg.h>

#include <cstdint>
#include <map>
#include <string>

namespace casdm {

struct ObjectiveOptions {
  /// Side to which feature losses resize images; 0 means the loss's own default (224).
  TORCH_ARG(int64_t, feature_size) = 0;
  /// Folder of the exported weights of a feature loss's backbone, where it needs one.
  TORCH_ARG(std::string, feature_weights) = "";
  /// λ of loss terms by name ("x0" → 0.5), replacing the type's ratio for this run: a sweep over λ
  /// needs no new type. A name the loss set lacks, or a negative or non-finite λ, is refused when the
  /// objective is built.
  using LossWeights = std::map<std::string, double>;
  TORCH_ARG(LossWeights, loss_weights) = {};
};

}  // namespace casdm
