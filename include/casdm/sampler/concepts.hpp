#pragma once
// A sampler: light settings in the type, and a run that owns its whole step and any state it
// keeps between steps (ensmallen's shape; k-diffusion's samplers own their loop the same way).
//
//   struct MySampler {
//     static constexpr const char* name = "mine";
//     static constexpr int64_t default_steps = 100;
//     using Spacing = casdm::sampler::spacing::Stride;  // which steps it visits (sampler/spacing.hpp)
//     class Run {                                    // made when a sampling run starts
//      public:
//       Run(const Process& p, const SampleOptions&);  // p: the process respaced by Spacing
//       // x at index i of p → x at index i − 1 (the images, after i == 0). `denoise(x, t)` gives the
//       // Estimate (x̂0, ε̂) — mixed for dual/cascaded topologies, clipped if asked; call it as
//       // often as the method needs. Keep history (a multistep solver) in members.
//       at::Tensor step(const Denoise& denoise, const at::Tensor& x, int64_t i);
//     };
//   };
//
// A sampler that leaves its steps (EDM's churn) takes step(denoise, at, x, i) instead, `at(x_t, σ)`
// being the denoiser at any σ (DenoiseAt), and says `static constexpr bool churn = true` if it reads
// SampleOptions::churn (every other sampler refuses a churn amount).
//
// The run is driven by sampler::run (below) from i = p.size() − 1 down to 0; nothing else in the
// library needs to know a new sampler. Provided: DDIM (sampler/ddim.hpp), Ancestral
// (sampler/ancestral.hpp).
#include "casdm/core/estimate.hpp"
#include "casdm/core/process.hpp"
#include "casdm/sampler/options.hpp"
#include "casdm/sampler/spacing.hpp"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <concepts>
#include <string>

namespace casdm::sampler {

template <class S>
concept Sampler = requires {
  { S::name } -> std::convertible_to<const char*>;
  { S::default_steps } -> std::convertible_to<int64_t>;
  typename S::Spacing;
  typename S::Run;
} && spacing::Spacing<typename S::Spacing> && std::constructible_from<typename S::Run, const Process&, const SampleOptions&> &&
    (requires(typename S::Run& run, const Denoise& f, const at::Tensor& x, int64_t i) {
      { run.step(f, x, i) } -> std::same_as<at::Tensor>;
    } || requires(typename S::Run& run, const Denoise& f, const DenoiseAt& g, const at::Tensor& x, int64_t i) {
      { run.step(f, g, x, i) } -> std::same_as<at::Tensor>;
    });

/// Whether sampler S reads SampleOptions::churn (Euler, Heun).
template <class S>
inline constexpr bool has_churn = requires { requires S::churn; };

namespace detail {
/// What SampleOptions::on_step is told after step (n − i) of a run on `p` (not a template).
inline SampleStep sample_step(const Process& p, int64_t i, const at::Tensor& x, const at::Tensor& x0) {
  return {p.size() - i, p.size(), p.timestep_map()[i].item<int64_t>(), p.sigmas()[i].item<double>(), x, x0};
}
}  // namespace detail

/// A sampler's name with its compile-time settings: S::spec() where it has one ("ddim(100)"), else
/// "name(default steps)" ("heun(10)"). Not part of a trained model's identity.
template <Sampler S>
std::string spec() {
  if constexpr (requires { { S::spec() } -> std::convertible_to<std::string>; })
    return std::string(S::spec());
  else
    return std::string(S::name) + "(" + std::to_string(S::default_steps) + ")";
}

/// Runs sampler S on process `p` from x = x_T down to t = 0 and returns the result (unclamped),
/// calling so.on_step() after every step. `denoise_at`: the denoiser at any σ, for a sampler that leaves its
/// steps (empty: such a sampler refuses to, e.g. a churn asked of it).
template <Sampler S>
at::Tensor run(const Process& p, const Denoise& denoise, at::Tensor x, const SampleOptions& so, const DenoiseAt& denoise_at = {}) {
  if constexpr (!has_churn<S>)
    if (so.churn().amount != 0)
      throw std::invalid_argument(fmt::format("the {} sampler has no churn (Euler's and Heun's, EDM's stochastic sampler)", S::name));
  typename S::Run r(p, so);
  const auto& report = so.on_step();
  at::Tensor first;  // a step's first estimate of x0, for the report
  const Denoise watched = [&](const at::Tensor& x_t, const at::Tensor& t) {
    auto e = denoise(x_t, t);
    if (!first.defined()) first = e.x0;
    return e;
  };
  const DenoiseAt watched_at = [&](const at::Tensor& x_t, double sigma) {
    auto e = denoise_at(x_t, sigma);
    if (!first.defined()) first = e.x0;
    return e;
  };
  const int64_t n = p.size();
  for (int64_t i = n - 1; i >= 0; --i) {
    first = at::Tensor();
    if constexpr (requires(const DenoiseAt& a) { r.step(denoise, a, x, i); })
      x = r.step(report ? watched : denoise, report && denoise_at ? watched_at : denoise_at, x, i);
    else
      x = r.step(report ? watched : denoise, x, i);
    if (report) report(detail::sample_step(p, i, x, first));
  }
  return x;
}

/// S::label where it has one ("DDIM"), else its name: what messages call it.
template <class S>
const char* label() {
  if constexpr (requires { { S::label } -> std::convertible_to<const char*>; })
    return S::label;
  else
    return S::name;
}

/// Process `p` respaced to the steps sampler S visits in a run of `steps` steps (its Spacing).
template <Sampler S>
Process respace(const Process& p, int64_t steps) {
  return p.respaced(S::Spacing::timesteps(p, steps));
}

/// The timestep tensor [n] holding index i, on x's device.
inline at::Tensor timesteps_like(const at::Tensor& x, int64_t i) {
  return at::full({x.size(0)}, i, x.options().dtype(at::kLong));
}

}  // namespace casdm::sampler
