#pragma once
// What a sampler steps with: one estimate (x̂0, ε̂) of the clean image and the noise at (x_t, t).
//
// A topology's Prediction becomes an Estimate here, once for every sampler. For a mixed topology
// (dual head, cascaded) the paper's step is r·μ(x0′, ε(x0′)) + (1−r)·μ(x0⋆, ε′) + σz (An et al.
// 2024, eq. 16–17). Every mean a sampler forms is affine in (x̂0, ε̂) with coefficients that depend
// on t only — DDIM's √ᾱ_prev·x̂0 + √(1−ᾱ_prev−σ²)·ε̂, the posterior's c1·x̂0 + c2·x_t — so mixing
// the two branches' means equals stepping once with the mixed estimate
//   x̂0 = r·x0′ + (1−r)·x0⋆,   ε̂ = r·ε(x0′) + (1−r)·ε′.
// Written this way, any sampler — a multistep solver included — runs on a mixed topology unchanged.
//
// Clipping (improved-diffusion's clip_denoised): each branch's x0 is clipped to [−1, 1] and its ε
// re-derived from the clipped x0; unclipped, the ε branch keeps ε′ itself.
#include "casdm/core/prediction.hpp"

#include <functional>

namespace casdm {

struct Estimate {
  at::Tensor x0, eps;
};

/// The denoiser as a sampler sees it: (x_t, t) ↦ Estimate, t indexing the sampler's process.
using Denoise = std::function<Estimate(const at::Tensor& x_t, const at::Tensor& t)>;
/// The denoiser at a noise level σ that need not be a step of the sampler's process (EDM's churn
/// raises σ before a step): x_t in variance-preserving form at σ, x_t = x/√(1 + σ²) for x = x0 + σ·ε.
using DenoiseAt = std::function<Estimate(const at::Tensor& x_t, double sigma)>;

/// The estimate of prediction `pr` made at (x_t, t) of process `p` (see above).
inline Estimate estimate(const Prediction& pr, const Process& p, const at::Tensor& x_t, const at::Tensor& t,
                         bool clip) {
  // One branch: its x0 (clipped if asked) and an ε consistent with it; an undefined ε is derived.
  auto branch = [&](at::Tensor x0, at::Tensor eps) {
    if (clip) x0 = x0.clamp(-1, 1);
    if (clip || !eps.defined()) eps = p.predict_eps_from_x0(x_t, t, x0);
    return Estimate{x0, eps};
  };
  if (!pr.has_mix()) return branch(pr.x0, pr.eps);
  const auto a = branch(pr.x0, at::Tensor{});  // the x0 head's branch
  const auto b = branch(pr.x0_star, pr.eps);   // the ε head's branch
  return {at::lerp(b.x0, a.x0, pr.r), at::lerp(b.eps, a.eps, pr.r)};
}

}  // namespace casdm
