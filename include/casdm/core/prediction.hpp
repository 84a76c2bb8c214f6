#pragma once
// What a topology predicts at one step, and what loss terms see.
#include "casdm/core/process.hpp"

namespace casdm {

struct Prediction {
  /// ε′: an ε head's output, or derived from x0′ (x0-only).
  at::Tensor eps;
  /// x0′: an x0 head's output, or derived from ε′ (ε-only).
  at::Tensor x0;
  /// Mixing weight r ∈ (0, 1), [N, 1, H, W] (broadcast over channels); undefined when the
  /// topology does not mix.
  at::Tensor r;
  /// x0⋆ = x0 derived from ε′ (or v′): the ε branch of a mixed mean. Defined with r. CascadedEDM's θ
  /// outputs it (EDM's D_θ), with θ's graph.
  at::Tensor x0_star;
  /// v′ = √ᾱ·ε′ − √(1−ᾱ)·x0′: a v head's output (VOnly, CascadedV); undefined elsewhere.
  at::Tensor v;

  bool has_mix() const { return r.defined(); }
};

/// Everything a loss term may read for one training batch.
struct LossInputs {
  const Process& process;
  at::Tensor x0, x_t, t, noise;
  const Prediction& pred;
};

}  // namespace casdm
