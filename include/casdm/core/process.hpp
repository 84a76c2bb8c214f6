#pragma once
// The Gaussian diffusion process of DDPM in improved-diffusion's conventions (Nichol & Dhariwal
// 2021, the code Cas-DM builds on). Tables live in float64 on the CPU; a per-device float64 copy is
// cached so gathering on CUDA never syncs with the host. Coefficients are gathered in float64 and
// only then cast to the working dtype.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace casdm {

/// The diffusion process q(x_t | x_0) with its posterior, built from a float64 beta table.
/// Index t runs over 0..size()-1 of *this* process; `timestep_map()` maps it to the original
/// step (identity unless respaced) and `model_timesteps(t)` gives what the network receives:
/// the original step rescaled to t·1000/T_original.
///
/// A continuous process (Process::continuous, EDM's σ-parameterised form) has no trained steps: its
/// indices are noise levels σ_0 < σ_1 < … (a grid for the samplers that visit steps), any σ > 0 is one
/// of its levels (at_sigmas, at_sigma: exact, never snapped), and the network sees a time of σ alone,
/// `log_sigma_time · ln σ` (EDM's c_noise = ln(σ)/4). x_t stays in variance-preserving form,
/// x_t = x/√(1 + σ²) for EDM's x = x0 + σ·ε.
class Process {
 public:
  Process() = default;

  explicit Process(at::Tensor betas) : Process(std::move(betas), at::Tensor{}, 0) {}

  /// The continuous process at noise levels `sigmas` (strictly increasing, finite, > 0), the network
  /// seeing `log_sigma_time`·ln σ (≠ 0). ᾱ = 1/(1 + σ²) and 1 − ᾱ = σ²/(1 + σ²) are taken from σ
  /// directly, so small σ keep their precision.
  static Process continuous(const std::vector<double>& sigmas, double log_sigma_time) {
    if (!(log_sigma_time != 0) || !std::isfinite(log_sigma_time))
      throw std::invalid_argument(fmt::format("Process::continuous: the network's time is a finite non-zero multiple of ln σ, got {}",
                                              log_sigma_time));
    if (sigmas.empty()) throw std::invalid_argument("Process::continuous: no noise levels given");
    double prev = 0;
    for (double s : sigmas) {
      if (!(s > prev) || !std::isfinite(s))
        throw std::invalid_argument(fmt::format("Process::continuous: noise levels must be finite and increase from above 0, "
                                                "got {} after {}", s, prev));
      prev = s;
    }
    const auto sig = at::tensor(sigmas, at::kDouble);
    const auto s2 = sig.square();
    const auto abar = 1.0 / (1.0 + s2);
    const auto abar_prev = at::cat({at::ones({1}, at::kDouble), abar.slice(0, 0, abar.size(0) - 1)});
    Process out(1.0 - abar / abar_prev, at::Tensor{}, 0, abar, s2 / (1.0 + s2));
    out.log_sigma_time_ = log_sigma_time;
    out.time_scale_ = 1.0;
    out.model_steps_ = sig.log() * log_sigma_time;
    out.sigma_ = sig;
    return out;
  }
  /// Whether this is a continuous process (Process::continuous, and what is derived from one).
  bool is_continuous() const { return log_sigma_time_ != 0; }

  int64_t size() const { return betas_.size(0); }
  int64_t original_size() const { return original_T_; }

  const at::Tensor& betas() const { return betas_; }
  const at::Tensor& alphas_cumprod() const { return alphas_cumprod_; }
  const at::Tensor& alphas_cumprod_prev() const { return alphas_cumprod_prev_; }
  const at::Tensor& posterior_variance() const { return posterior_variance_; }
  const at::Tensor& posterior_log_variance_clipped() const { return posterior_log_variance_clipped_; }
  /// log of improved-diffusion's FIXED_LARGE variance [σ̃²_1, β_1, β_2, …].
  const at::Tensor& log_variance_fixed_large() const { return log_variance_fixed_large_; }
  const at::Tensor& posterior_mean_coef1() const { return posterior_mean_coef1_; }
  const at::Tensor& posterior_mean_coef2() const { return posterior_mean_coef2_; }
  /// The training step nearest each index (the step itself unless the process lies between steps:
  /// at_sigmas); what reports call a step's timestep.
  const at::Tensor& timestep_map() const { return timestep_map_; }
  /// The step of the original T-step process each index stands at, in float64: the step itself for a
  /// respacing, fractional for at_sigmas (where σ lies between two trained steps).
  const at::Tensor& model_steps() const { return model_steps_; }

  /// A process over a subset of the steps (improved-diffusion's SpacedDiffusion): keeps ᾱ at
  /// the chosen steps and recomputes β_i = 1 − ᾱ_i/ᾱ_last, uncapped. `use_timesteps` indexes
  /// *this* process and must be strictly increasing.
  Process respaced(const std::vector<int64_t>& use_timesteps) const {
    if (use_timesteps.empty()) throw std::invalid_argument("Process::respaced: no timesteps given");
    auto ac = alphas_cumprod_.accessor<double, 1>();
    auto map = timestep_map_.accessor<int64_t, 1>();
    auto here = model_steps_.accessor<double, 1>();
    std::vector<double> betas, steps;
    std::vector<int64_t> new_map;
    double last = 1.0;
    int64_t prev = -1;
    for (int64_t i : use_timesteps) {
      if (i <= prev || i >= size())
        throw std::invalid_argument(
            fmt::format("Process::respaced: timesteps must be increasing and in [0, {}), got {}", size(), i));
      prev = i;
      betas.push_back(1.0 - ac[i] / last);
      last = ac[i];
      new_map.push_back(map[i]);
      steps.push_back(here[i]);
    }
    if (is_continuous()) {  // the levels themselves, not their ratios' rounding
      std::vector<double> levels;
      auto sig = sigma_.accessor<double, 1>();
      for (int64_t i : use_timesteps) levels.push_back(sig[i]);
      auto out = continuous(levels, log_sigma_time_);
      out.timestep_map_ = at::tensor(new_map, at::kLong);
      out.original_T_ = original_T_;
      return out;
    }
    Process out(at::tensor(betas, at::kDouble), at::tensor(new_map, at::kLong), original_T_);
    out.model_steps_ = at::tensor(steps, at::kDouble);
    return out;
  }

  /// The process at exactly these noise levels, between the trained steps where they fall there
  /// (k-diffusion's DiscreteSchedule with quantize=False): ᾱ_i = 1/(1 + σ_i²), and the network sees
  /// the step interpolated linearly in log σ between this process's two neighbouring steps (its
  /// sigma_to_t). `sigmas` strictly increasing, within this process's [σ_0, σ_{T−1}] (a relative
  /// 1e-9 outside is taken as the end); timestep_map() holds the nearest step. On a continuous
  /// process: any σ > 0, the network's time exact.
  Process at_sigmas(const std::vector<double>& sigmas) const { return at_levels(sigmas, true, true); }

  /// The process at the one noise level σ > 0, anywhere: ᾱ = 1/(1 + σ²), the network seeing the step
  /// interpolated as by at_sigmas (`interpolate`) or the nearest step (k-diffusion's quantize=True);
  /// beyond this process's ends, the end step (k-diffusion clamps the same way). What a sampler that
  /// leaves its steps (EDM's churn) evaluates the denoiser on.
  Process at_sigma(double sigma, bool interpolate) const { return at_levels({sigma}, interpolate, false); }

 private:
  Process at_levels(const std::vector<double>& sigmas, bool interpolate, bool within) const {
    if (sigmas.empty()) throw std::invalid_argument("Process::at_sigmas: no noise levels given");
    if (is_continuous()) within = false;
    auto sig = this->sigmas().contiguous();
    const double* s = sig.data_ptr<double>();
    const int64_t T = size();
    auto steps_here = model_steps_.contiguous();
    const double* here = steps_here.data_ptr<double>();
    auto map = timestep_map_.accessor<int64_t, 1>();
    std::vector<double> betas, steps;
    std::vector<int64_t> nearest;
    double last_abar = 1.0, prev = 0.0;
    for (double want : sigmas) {
      if (!(want > prev) || !std::isfinite(want))
        throw std::invalid_argument(fmt::format("Process::at_sigmas: noise levels must be finite and increase from above "
                                                "0, got {} after {}", want, prev));
      prev = want;
      if (within && (want < s[0] * (1 - 1e-9) || want > s[T - 1] * (1 + 1e-9)))
        throw std::invalid_argument(fmt::format("Process::at_sigmas: σ = {} lies outside the process's [{}, {}]", want,
                                                s[0], s[T - 1]));
      const double lw = std::log(std::clamp(want, s[0], s[T - 1]));
      // The last step whose σ is at most this one (T − 2 at most), and the share of the way to the next.
      int64_t lo = 0;
      while (lo < T - 2 && std::log(s[lo + 1]) <= lw) ++lo;
      const int64_t hi = std::min(lo + 1, T - 1);
      const double w = hi == lo ? 0.0 : std::clamp((std::log(s[lo]) - lw) / (std::log(s[lo]) - std::log(s[hi])), 0.0, 1.0);
      const double step = interpolate ? (1 - w) * here[lo] + w * here[hi] : here[w <= 0.5 ? lo : hi];
      const double abar = 1.0 / (1.0 + want * want);
      betas.push_back(1.0 - abar / last_abar);
      last_abar = abar;
      steps.push_back(step);
      nearest.push_back(is_continuous() ? map[w <= 0.5 ? lo : hi] : static_cast<int64_t>(std::nearbyint(step)));
    }
    if (is_continuous()) {
      auto out = continuous(sigmas, log_sigma_time_);
      out.timestep_map_ = at::tensor(nearest, at::kLong);
      out.original_T_ = original_T_;
      return out;
    }
    Process out(at::tensor(betas, at::kDouble), at::tensor(nearest, at::kLong), original_T_);
    out.model_steps_ = at::tensor(steps, at::kDouble);
    return out;
  }

 public:
  /// σ_i = √((1−ᾱ_i)/ᾱ_i) for every index (float64, CPU); a continuous process's own levels.
  const at::Tensor& sigmas() const { return sigma_; }

  /// Network input for index t: original step · 1000 / T_original (a continuous process:
  /// log_sigma_time·ln σ_t), in float32 on t's device.
  at::Tensor model_timesteps(const at::Tensor& t) const {
    auto steps = table(model_steps_, t.device());
    return steps.index_select(0, t.reshape({-1})).to(at::kFloat).mul_(time_scale_);
  }

  /// Gathers table[t] in float64 on t's device, casts to `like`'s dtype and shapes it [N,1,1,…].
  at::Tensor gather(const at::Tensor& tab, const at::Tensor& t, const at::Tensor& like) const {
    return gather(tab, t, like.dim(), like.scalar_type());
  }
  /// Gathers table[t] on t's device as `type`, shaped [N,1,…] with `dim` dimensions.
  at::Tensor gather(const at::Tensor& tab, const at::Tensor& t, int64_t dim, at::ScalarType type) const {
    auto v = table(tab, t.device()).index_select(0, t.reshape({-1}));
    std::vector<int64_t> shape(static_cast<size_t>(dim), 1);
    shape[0] = v.size(0);
    return v.to(type).reshape(shape);
  }

  /// x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε
  at::Tensor q_sample(const at::Tensor& x0, const at::Tensor& t, const at::Tensor& noise) const {
    check_same_shape(x0, noise, "q_sample");
    return gather(sqrt_alphas_cumprod_, t, x0) * x0 + gather(sqrt_one_minus_alphas_cumprod_, t, x0) * noise;
  }

  /// v = √ᾱ_t·ε − √(1−ᾱ_t)·x0 (Salimans & Ho 2022, the v-parameterisation).
  at::Tensor v_target(const at::Tensor& x0, const at::Tensor& t, const at::Tensor& noise) const {
    check_same_shape(x0, noise, "v_target");
    return gather(sqrt_alphas_cumprod_, t, x0) * noise - gather(sqrt_one_minus_alphas_cumprod_, t, x0) * x0;
  }
  /// x0 = √ᾱ_t·x_t − √(1−ᾱ_t)·v
  at::Tensor predict_x0_from_v(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& v) const {
    check_same_shape(x_t, v, "predict_x0_from_v");
    return gather(sqrt_alphas_cumprod_, t, x_t) * x_t - gather(sqrt_one_minus_alphas_cumprod_, t, x_t) * v;
  }
  /// ε = √(1−ᾱ_t)·x_t + √ᾱ_t·v
  at::Tensor predict_eps_from_v(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& v) const {
    check_same_shape(x_t, v, "predict_eps_from_v");
    return gather(sqrt_one_minus_alphas_cumprod_, t, x_t) * x_t + gather(sqrt_alphas_cumprod_, t, x_t) * v;
  }
  /// SNR(t) = ᾱ_t/(1−ᾱ_t), gathered like `like` ([N, 1, 1, …]).
  at::Tensor snr(const at::Tensor& t, const at::Tensor& like) const { return gather(snr_, t, like); }

  struct Posterior {
    at::Tensor mean, variance, log_variance;
  };
  /// q(x_{t−1} | x_t, x0): mean = c1·x0 + c2·x_t, variance = β_t(1−ᾱ_prev)/(1−ᾱ_t).
  Posterior q_posterior_mean_variance(const at::Tensor& x0, const at::Tensor& x_t, const at::Tensor& t) const {
    check_same_shape(x0, x_t, "q_posterior_mean_variance");
    return {q_posterior_mean(x0, x_t, t), gather(posterior_variance_, t, x_t),
            gather(posterior_log_variance_clipped_, t, x_t)};
  }
  at::Tensor q_posterior_mean(const at::Tensor& x0, const at::Tensor& x_t, const at::Tensor& t) const {
    return gather(posterior_mean_coef1_, t, x_t) * x0 + gather(posterior_mean_coef2_, t, x_t) * x_t;
  }

  /// x0 = √(1/ᾱ_t)·x_t − √(1/ᾱ_t − 1)·ε
  at::Tensor predict_x0_from_eps(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& eps) const {
    check_same_shape(x_t, eps, "predict_x0_from_eps");
    return gather(sqrt_recip_alphas_cumprod_, t, x_t) * x_t - gather(sqrt_recipm1_alphas_cumprod_, t, x_t) * eps;
  }
  /// ε = (√(1/ᾱ_t)·x_t − x0) / √(1/ᾱ_t − 1)
  at::Tensor predict_eps_from_x0(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& x0) const {
    check_same_shape(x_t, x0, "predict_eps_from_x0");
    return (gather(sqrt_recip_alphas_cumprod_, t, x_t) * x_t - x0) / gather(sqrt_recipm1_alphas_cumprod_, t, x_t);
  }

  /// 0 where t == 0, else 1, shaped like `like`'s batch.
  at::Tensor nonzero_mask(const at::Tensor& t, const at::Tensor& like) const {
    std::vector<int64_t> shape(static_cast<size_t>(like.dim()), 1);
    shape[0] = t.numel();
    return t.ne(0).to(like.scalar_type()).reshape(shape);
  }

 private:
  /// `abar`, `one_minus_abar`: ᾱ and 1 − ᾱ where known more precisely than β's product (continuous).
  Process(at::Tensor betas, at::Tensor timestep_map, int64_t original_T, at::Tensor abar = {}, at::Tensor one_minus_abar = {}) {
    if (!betas.defined() || betas.dim() != 1 || betas.size(0) < 1)
      throw std::invalid_argument("Process: betas must be a non-empty 1-D tensor");
    betas_ = betas.to(at::kCPU, at::kDouble).contiguous().clone();
    // A continuous process's levels may lie closer than β's rounding (a training batch): β = 0 there.
    if ((abar.defined() ? betas_.lt(0) : betas_.le(0)).any().item<bool>() || betas_.gt(1).any().item<bool>())
      throw std::invalid_argument("Process: betas must lie in (0, 1]");
    const int64_t T = betas_.size(0);
    original_T_ = original_T > 0 ? original_T : T;
    timestep_map_ = timestep_map.defined() ? timestep_map.to(at::kLong).contiguous() : at::arange(T, at::kLong);
    model_steps_ = timestep_map_.to(at::kDouble);
    time_scale_ = 1000.0 / static_cast<double>(original_T_);
    auto alphas = 1.0 - betas_;
    alphas_cumprod_ = abar.defined() ? abar : alphas.cumprod(0);
    const auto one_minus = one_minus_abar.defined() ? one_minus_abar : 1.0 - alphas_cumprod_;
    alphas_cumprod_prev_ = at::cat({at::ones({1}, at::kDouble), alphas_cumprod_.slice(0, 0, T - 1)});
    sqrt_alphas_cumprod_ = alphas_cumprod_.sqrt();
    sqrt_one_minus_alphas_cumprod_ = one_minus.sqrt();
    sqrt_recip_alphas_cumprod_ = (1.0 / alphas_cumprod_).sqrt();
    sqrt_recipm1_alphas_cumprod_ = one_minus_abar.defined() ? (one_minus / alphas_cumprod_).sqrt() : (1.0 / alphas_cumprod_ - 1.0).sqrt();
    snr_ = alphas_cumprod_ / one_minus;
    sigma_ = (one_minus / alphas_cumprod_).sqrt();
    posterior_variance_ = betas_ * (1.0 - alphas_cumprod_prev_) / (1.0 - alphas_cumprod_);
    // log of the variance with its first entry (0) replaced by the second, as improved-diffusion.
    auto pv = posterior_variance_.clone();
    if (T > 1) pv[0] = posterior_variance_[1];
    posterior_log_variance_clipped_ = pv.log();
    auto large = betas_.clone();
    if (T > 1) large[0] = posterior_variance_[1];
    log_variance_fixed_large_ = large.log();
    posterior_mean_coef1_ = betas_ * alphas_cumprod_prev_.sqrt() / (1.0 - alphas_cumprod_);
    posterior_mean_coef2_ = (1.0 - alphas_cumprod_prev_) * alphas.sqrt() / (1.0 - alphas_cumprod_);
    cache_ = std::make_shared<Cache>();
  }

  static void check_same_shape(const at::Tensor& a, const at::Tensor& b, const char* what) {
    if (a.sizes() != b.sizes())
      throw std::invalid_argument(fmt::format("Process::{}: shapes differ, [{}] vs [{}]", what,
                                              fmt::join(a.sizes(), ","), fmt::join(b.sizes(), ",")));
  }

  // Tables copied once per device (float64 stays float64: the cast happens after gathering).
  struct Cache {
    std::mutex mutex;
    std::map<std::tuple<const void*, int, int>, at::Tensor> tables;
  };
  at::Tensor table(const at::Tensor& tab, const c10::Device& device) const {
    if (device.is_cpu()) return tab;
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto& slot = cache_->tables[{tab.data_ptr(), static_cast<int>(device.type()), static_cast<int>(device.index())}];
    if (!slot.defined()) slot = tab.to(device);
    return slot;
  }

  at::Tensor betas_, alphas_cumprod_, alphas_cumprod_prev_, sqrt_alphas_cumprod_, sqrt_one_minus_alphas_cumprod_,
      sqrt_recip_alphas_cumprod_, sqrt_recipm1_alphas_cumprod_, posterior_variance_, posterior_log_variance_clipped_, log_variance_fixed_large_,
      posterior_mean_coef1_, posterior_mean_coef2_, snr_, timestep_map_, model_steps_, sigma_;
  int64_t original_T_ = 0;
  double time_scale_ = 1, log_sigma_time_ = 0;  // log_sigma_time_ ≠ 0: continuous
  std::shared_ptr<Cache> cache_;
};

}  // namespace casdm
