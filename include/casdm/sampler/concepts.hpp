#pragma once
// A sampler: light settings in the type, and a run that owns its whole step and any state it
// keeps between steps (ensmallen's shape; k-diffusion's samplers own their loop the same way).
//
//   struct MySampler {
//     static constexpr const char* name = "mine";
//     static constexpr int64_t default_steps = 100;
//     static std::string spacing(int64_t steps);    // improved-diffusion spec: "ddim100", "250", ...
//     class Run {                                    // made when a sampling run starts
//      public:
//       Run(const Process& p, const SampleOptions&);  // p: the process respaced by spacing(steps)
//       // x at index i of p → x at index i − 1 (the images, after i == 0). `denoise(x, t)` gives the
//       // Estimate (x̂0, ε̂) — mixed for dual/cascaded topologies, clipped if asked; call it as
//       // often as the method needs. Keep history (a multistep solver) in members.
//       at::Tensor step(const Denoise& denoise, const at::Tensor& x, int64_t i);
//     };
//   };
//
// The run is driven by sampler::run (below) from i = p.size() − 1 down to 0; nothing else in the
// library needs to know a new sampler. Provided: DDIM (sampler/ddim.hpp), Ancestral
// (sampler/ancestral.hpp).
#include "casdm/core/estimate.hpp"
#include "casdm/core/process.hpp"
#include "casdm/sampler/options.hpp"

#include <concepts>
#include <string>

namespace casdm::sampler {

template <class S>
concept Sampler = requires(int64_t n) {
  { S::name } -> std::convertible_to<const char*>;
  { S::default_steps } -> std::convertible_to<int64_t>;
  { S::spacing(n) } -> std::same_as<std::string>;
  typename S::Run;
} && std::constructible_from<typename S::Run, const Process&, const SampleOptions&> &&
    requires(typename S::Run& run, const Denoise& f, const at::Tensor& x, int64_t i) {
      { run.step(f, x, i) } -> std::same_as<at::Tensor>;
    };

/// Runs sampler S on process `p` from x = x_T down to t = 0 and returns the result (unclamped).
template <Sampler S>
at::Tensor run(const Process& p, const Denoise& denoise, at::Tensor x, const SampleOptions& so) {
  typename S::Run r(p, so);
  for (int64_t i = p.size() - 1; i >= 0; --i) x = r.step(denoise, x, i);
  return x;
}

/// The timestep tensor [n] holding index i, on x's device.
inline at::Tensor timesteps_like(const at::Tensor& x, int64_t i) {
  return at::full({x.size(0)}, i, x.options().dtype(at::kLong));
}

}  // namespace casdm::sampler
