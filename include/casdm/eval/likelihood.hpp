#pragma once
// The negative log-likelihood of data under a trained model, in bits per dimension, as
// improved-diffusion's calc_bpd_loop computes it: the variational bound's terms at every one of
// the T training steps (the KL between the true posterior q(x_{t−1} | x_t, x_0) and the model's
// p(x_{t−1} | x_t), and at t = 0 the discretised-Gaussian decoder's NLL of the 8-bit image), plus
// the prior term KL(q(x_T | x_0) ‖ N(0, I)). The model's mean is the posterior mean at its
// (clipped) x̂0 — the mixed estimate for the dual and cascaded topologies — and its variance is
// fixed: β̃_t ("small", improved-diffusion's FIXED_SMALL) or β_t with β̃_1 at t = 0 ("large",
// FIXED_LARGE, the variance casdm's ancestral sampler draws with).
//
//   auto bpd = casdm::eval::bits_per_dim(*denoiser, x0, casdm::eval::FixedVariance::large, gen);
//   bpd.total.mean();   // bits/dim of each image: bpd.total [N]; bpd.vb [N, T] (column 0: t = T − 1)
//
// Every formula in float64 on float64 inputs (the network runs in its own type).
#include <fmt/format.h>

#include "casdm/core/process.hpp"
#include "casdm/denoiser.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::eval {

/// KL(N(m1, e^{lv1}) ‖ N(m2, e^{lv2})) elementwise, in nats.
inline at::Tensor normal_kl(const at::Tensor& m1, const at::Tensor& lv1, const at::Tensor& m2, const at::Tensor& lv2) {
  return 0.5 * (-1.0 + lv2 - lv1 + (lv1 - lv2).exp() + (m1 - m2).pow(2) * (-lv2).exp());
}

/// The standard normal CDF in the tanh approximation the DDPM codebases use (kept for equal numbers).
inline at::Tensor approx_standard_normal_cdf(const at::Tensor& x) {
  return 0.5 * (1.0 + at::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x.pow(3))));
}

/// log p(x) in nats, elementwise, of 8-bit images x (in [−1, 1], 255 bins of width 2/255) under
/// N(means, e^{2 log_scales}) discretised to those bins, the outer bins open to ±∞.
inline at::Tensor discretized_gaussian_log_likelihood(const at::Tensor& x, const at::Tensor& means, const at::Tensor& log_scales) {
  if (x.sizes() != means.sizes() || x.sizes() != log_scales.sizes())
    throw std::invalid_argument("discretized_gaussian_log_likelihood: x, means and log_scales of different shapes");
  const auto centered = x - means;
  const auto inv_std = (-log_scales).exp();
  const auto cdf_plus = approx_standard_normal_cdf(inv_std * (centered + 1.0 / 255.0));
  const auto cdf_min = approx_standard_normal_cdf(inv_std * (centered - 1.0 / 255.0));
  const auto log_cdf_plus = cdf_plus.clamp_min(1e-12).log();
  const auto log_one_minus_cdf_min = (1.0 - cdf_min).clamp_min(1e-12).log();
  const auto log_delta = (cdf_plus - cdf_min).clamp_min(1e-12).log();
  return at::where(x < -0.999, log_cdf_plus, at::where(x > 0.999, log_one_minus_cdf_min, log_delta));
}

/// The model's fixed variance in the likelihood.
enum class FixedVariance { small, large };
inline const char* name(FixedVariance v) { return v == FixedVariance::small ? "small" : "large"; }
/// "small" or "large"; anything else is refused naming both.
inline FixedVariance parse_fixed_variance(const std::string& s) {
  if (s == "small") return FixedVariance::small;
  if (s == "large") return FixedVariance::large;
  throw std::invalid_argument(fmt::format("fixed variance '{}': small (the posterior's, beta-tilde) or large (beta)", s));
}

namespace detail {
inline at::Tensor mean_flat(const at::Tensor& x) {
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < x.dim(); ++d) dims.push_back(d);
  return dims.empty() ? x : x.mean(dims);
}
}  // namespace detail

/// The bound's term at steps t [N] in bits per dimension, for data x0, noisy x_t and the model's
/// x̂0 (`pred_x0`, clipped as the model gives it): the decoder's NLL where t = 0, else the KL of
/// the posteriors. [N].
inline at::Tensor vb_terms_bpd(const Process& p, const at::Tensor& x0, const at::Tensor& x_t, const at::Tensor& t,
                               const at::Tensor& pred_x0, FixedVariance v) {
  const auto x0d = x0.to(at::kDouble), xtd = x_t.to(at::kDouble), pd = pred_x0.to(at::kDouble);
  const auto true_mean = p.q_posterior_mean(x0d, xtd, t);
  const auto true_log_var = p.gather(p.posterior_log_variance_clipped(), t, xtd);
  const auto model_mean = p.q_posterior_mean(pd, xtd, t);
  const auto model_log_var =
      p.gather(v == FixedVariance::small ? p.posterior_log_variance_clipped() : p.log_variance_fixed_large(), t, xtd);
  const auto kl = detail::mean_flat(normal_kl(true_mean, true_log_var, model_mean, model_log_var)) / std::log(2.0);
  const auto nll =
      -detail::mean_flat(discretized_gaussian_log_likelihood(x0d, model_mean, (0.5 * model_log_var).expand_as(model_mean))) / std::log(2.0);
  return at::where(t.to(kl.device()).eq(0), nll, kl);
}

/// KL(q(x_T | x0) ‖ N(0, I)) in bits per dimension, [N].
inline at::Tensor prior_bpd(const Process& p, const at::Tensor& x0) {
  const auto x = x0.to(at::kDouble);
  const int64_t last = p.size() - 1;
  const double abar = p.alphas_cumprod()[last].item<double>();
  const auto mean = std::sqrt(abar) * x;
  const auto log_var = at::full_like(x, std::log1p(-abar));
  return detail::mean_flat(normal_kl(mean, log_var, at::zeros_like(x), at::zeros_like(x))) / std::log(2.0);
}

/// What bits_per_dim measured, per image: `total` [N] = Σ_t vb + prior; `vb`, `x0_mse`, `eps_mse`
/// [N, T] with column k at t = T − 1 − k (improved-diffusion's order); `prior` [N]. float64, CPU.
struct BitsPerDim {
  at::Tensor total, prior, vb, x0_mse, eps_mse;
};

/// The bits/dim of images x0 [N, C, H, W] (float in [−1, 1] from 8-bit images, or uint8) under the
/// denoiser `d`'s training process: at every t one draw of x_t (noise from `gen`, on the CPU),
/// the model's clipped estimate at it, and the bound's term. `y`: labels of a class-conditional
/// model. `progress(done, T)` after each t.
inline BitsPerDim bits_per_dim(AnyDenoiser& d, const at::Tensor& images, FixedVariance v, at::Generator gen, const at::Tensor& y = {},
                               const std::function<void(int64_t, int64_t)>& progress = {}) {
  const auto& p = d.process();
  if (p.is_continuous()) throw std::invalid_argument("bits per dimension: a continuous (EDM) process has no steps to sum the bound over");
  if (images.dim() != 4) throw std::invalid_argument("bits per dimension: expected images [N, C, H, W]");
  const auto& o = d.denoiser_options();
  if (images.size(1) != o.channels() || images.size(2) != o.image_size() || images.size(3) != o.image_size())
    throw std::invalid_argument(fmt::format("bits per dimension: images of {}x{}x{}, the model makes {}x{}x{}", images.size(1),
                                            images.size(2), images.size(3), o.channels(), o.image_size(), o.image_size()));
  auto& net = d.networks();
  const auto param = net.parameters().front();
  const auto x0 = (images.scalar_type() == at::kByte ? images.to(at::kDouble) / 127.5 - 1 : images.to(at::kDouble)).cpu();
  const int64_t n = x0.size(0), T = p.size();
  const bool was_training = net.is_training();
  net.eval();
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> vb, x0_mse, eps_mse;
  for (int64_t k = 0; k < T; ++k) {
    const int64_t step = T - 1 - k;
    const auto t = at::full({n}, step, at::kLong);
    const auto noise = at::randn(x0.sizes(), gen, at::TensorOptions().dtype(at::kDouble));
    const auto x_t = p.q_sample(x0, t, noise);
    const auto e = d.denoise(p, x_t.to(param.device(), param.scalar_type()), t.to(param.device()), /*clip=*/true, y);
    const auto pred = e.x0.to(at::kCPU, at::kDouble);
    vb.push_back(vb_terms_bpd(p, x0, x_t, t, pred, v));
    x0_mse.push_back(detail::mean_flat((pred - x0).pow(2)));
    eps_mse.push_back(detail::mean_flat((p.predict_eps_from_x0(x_t, t, pred) - noise).pow(2)));
    if (progress) progress(k + 1, T);
  }
  net.train(was_training);
  BitsPerDim b;
  b.vb = at::stack(vb, 1);
  b.x0_mse = at::stack(x0_mse, 1);
  b.eps_mse = at::stack(eps_mse, 1);
  b.prior = prior_bpd(p, x0);
  b.total = b.vb.sum(1) + b.prior;
  return b;
}

}  // namespace casdm::eval
