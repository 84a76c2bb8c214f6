#pragma once
// How a program asks a checkpoint for samples — the sampler by its registered name, its step count,
// η, exact σ, churn, the class and the guidance scale — checked against the sampler (a setting it
// has not is refused, not ignored) and against the checkpoint's model, then turned into the
// SampleOptions of the run and into the record that samples.pt and the evaluation JSON keep.
// casdm-sample and casdm-eval read it from their options; a program of a user's does the same.
//
//   casdm::app::SamplingRequest r;
//   r.sampler = "heun"; r.steps = 18; r.churn.amount = 40;
//   r.settle([&](std::string_view flag) { return flag == "--churn"; });   // which settings were given
//   const auto labels = r.labels(64, info);                                // after checking against info
//   auto so = r.options(labels);
#include "casdm/app/preset_of.hpp"
#include "casdm/sampler/options.hpp"
#include "casdm/io/text.hpp"
#include "casdm/sampler/registry.hpp"
#include "casdm/train/checkpoint.hpp"
#include "casdm/train/previews.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

namespace casdm::app {

struct SamplingRequest {
  std::string sampler = "ddim";
  int64_t steps = 0;  // 0: the sampler's default (after checked(): the count run)
  double eta = 0;     // ddim and the stochastic samplers; settle() puts the sampler's default where none was given
  bool exact_sigmas = false;  // SampleOptions::exact_sigmas
  Churn churn = {};           // SampleOptions::churn
  std::string cls;            // "", a class index or "all"
  double guidance = 0;
  /// Set by checked(): the checkpoint's model has a continuous σ process (EDM's), on which the
  /// σ-spaced samplers take every σ exactly, exact_sigmas or not.
  bool continuous = false;

  /// Refuses, in one line naming the program's option, a setting the sampler has not (`given(flag)`:
  /// whether the user set that option: "--eta", "--churn", "--churn-tmin", "--churn-tmax",
  /// "--churn-noise"), exact σ for a sampler on trained steps, an empty churn range and guidance
  /// without a class; η not given becomes the sampler's default.
  void settle(const std::function<bool(std::string_view)>& given) {
    const auto i = sampler::info(sampler);
    if (!i.eta && given("--eta"))
      throw std::invalid_argument(fmt::format("--eta: the {} sampler has no eta (ddim and the stochastic samplers have)", sampler));
    if (!given("--eta")) eta = i.default_eta;
    if (exact_sigmas && !i.exact_sigmas)
      throw std::invalid_argument(fmt::format("--exact-sigmas: the {} sampler visits trained steps; the sigma-spaced samplers "
                                              "take exact sigmas ({})", sampler, sampler::exact_sigma_names()));
    for (const char* flag : {"--churn", "--churn-tmin", "--churn-tmax", "--churn-noise"})
      if (!i.churn && given(flag))
        throw std::invalid_argument(fmt::format("{}: the {} sampler has no churn (euler and heun have)", flag, sampler));
    if (churn.t_max < churn.t_min)
      throw std::invalid_argument(fmt::format("--churn-tmax {} is below --churn-tmin {}", io::number_str(churn.t_max),
                                              io::number_str(churn.t_min)));
    if (guidance != 0 && cls.empty()) throw std::invalid_argument("--guidance: needs --class (guidance steers towards a class)");
  }

  /// The step count against the checkpoint's T (0 becomes the sampler's default) and the labels
  /// --class asks of its model for n samples: none for "", class i % K for sample i for "all", else
  /// one class k in [0, K).
  at::Tensor checked(int64_t n, const train::CheckpointInfo& c) {
    const auto y = labels(n, c);  // the class first: the more specific misfit
    continuous = presets::traits(preset_of(c)).continuous;
    steps = sampler::resolve_steps(sampler, c.denoiser_options.diffusion_steps(), steps, "--steps");
    return y;
  }

  /// The labels --class asks of the checkpoint's model for n samples (see checked()).
  at::Tensor labels(int64_t n, const train::CheckpointInfo& c) const {
    if (cls.empty()) return {};
    const int64_t classes = c.denoiser_options.num_classes();
    if (classes < 1)
      throw std::invalid_argument(fmt::format("--class: {} is an unconditional model (trained without --class-cond)", c.path.string()));
    if (cls == "all") return train::cycling_labels(n, classes);
    int64_t k = 0;
    const auto r = std::from_chars(cls.data(), cls.data() + cls.size(), k);
    if (r.ec != std::errc() || r.ptr != cls.data() + cls.size())
      throw std::invalid_argument(fmt::format("--class: expected an integer or 'all', got '{}'", cls));
    if (k < 0 || k >= classes)
      throw std::invalid_argument(fmt::format("--class {}: the model has {} classes (0 to {})", k, classes, classes - 1));
    return at::full({n}, k, at::kLong);
  }

  /// Whether the sampler visits its σ exactly: asked for, or a σ-spaced sampler on a continuous model.
  bool exact() const { return exact_sigmas || (continuous && sampler::info(sampler).exact_sigmas); }

  /// The run's SampleOptions (η only for a sampler that has one).
  SampleOptions options(const at::Tensor& y) const {
    auto so = SampleOptions().steps(steps).labels(y).guidance(guidance).exact_sigmas(exact_sigmas).churn(churn);
    if (sampler::has_eta(sampler)) so.eta(eta);
    return so;
  }

  /// "ddim 50 steps" (a picture's caption).
  std::string caption() const { return fmt::format("{} {} steps", sampler, steps); }
  /// ", class all, guidance 2", or "" without a class.
  std::string class_caption() const {
    return cls.empty() ? std::string() : fmt::format(", class {}, guidance {}", cls, io::number_str(guidance));
  }

  /// samples.pt's strings: sampler, steps, eta, sigmas, churn, class, guidance.
  std::map<std::string, std::string> record() const {
    return {{"sampler", sampler},
            {"steps", fmt::format("{}", steps)},
            {"eta", io::number_str(eta)},
            {"sigmas", exact() ? "exact" : "snapped"},
            {"churn", fmt::format("{} in [{}, {}], noise {}", io::number_str(churn.amount), io::number_str(churn.t_min),
                                  io::number_str(churn.t_max), io::number_str(churn.noise))},
            {"class", cls},
            {"guidance", io::number_str(guidance)}};
  }

  /// The evaluation JSON's "sampler": kind and steps, and where the sampler has them η, the σ
  /// (snapped or exact) and a churn amount above 0.
  nlohmann::json json() const {
    nlohmann::json j{{"kind", sampler}, {"steps", steps}};
    if (sampler::has_eta(sampler)) j["eta"] = eta;
    if (sampler::info(sampler).exact_sigmas) j["sigmas"] = exact() ? "exact" : "snapped";
    if (churn.amount > 0) {
      j["churn"] = {{"amount", churn.amount}, {"t_min", churn.t_min}, {"noise", churn.noise}};
      if (std::isfinite(churn.t_max)) j["churn"]["t_max"] = churn.t_max;
    }
    return j;
  }
};

}  // namespace casdm::app
