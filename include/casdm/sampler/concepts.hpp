#pragma once
// A sampler: how one reverse step turns a prediction into x_{t−1}.
// The model runs the loop (respacing, clipping, the mixed mean of dual/cascaded topologies);
// a sampler supplies the respacing and the per-branch mean and noise scale:
//
//   struct MySampler {
//     static constexpr const char* name = "mine";
//     static constexpr int64_t default_steps = 100;
//     static constexpr double default_eta = 0.0;
//     static std::string spacing(int64_t steps);                 // an improved-diffusion spec
//     static at::Tensor mean(const Process&, const at::Tensor& x_t, const at::Tensor& t,
//                            const at::Tensor& x0, const at::Tensor& eps, double eta);
//     static at::Tensor noise_scale(const Process&, const at::Tensor& t, const at::Tensor& like, double eta);
//   };
// A mixed topology's step is r·mean(x0′, ε(x0′)) + (1−r)·mean(x0⋆, ε′) + noise_scale·z
// (An et al. 2024, eq. 16–17; mean is the DDIM mean for DDIM, the posterior mean for DDPM).
#include "casdm/core/process.hpp"

#include <concepts>
#include <string>

namespace casdm::sampler {

template <class S>
concept Sampler = requires(int64_t n, const Process& p, const at::Tensor& x, double eta) {
  { S::name } -> std::convertible_to<const char*>;
  { S::default_steps } -> std::convertible_to<int64_t>;
  { S::default_eta } -> std::convertible_to<double>;
  { S::spacing(n) } -> std::same_as<std::string>;
  { S::mean(p, x, x, x, x, eta) } -> std::same_as<at::Tensor>;
  { S::noise_scale(p, x, x, eta) } -> std::same_as<at::Tensor>;
};

}  // namespace casdm::sampler
