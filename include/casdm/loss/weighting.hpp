#pragma once
// Per-timestep weights of a regression term (EpsMSE, X0MSE, VMSE), applied by loss::Weighted:
//
//   loss::Weighted<loss::EpsMSE<>, loss::weighting::MinSNR<>>     // Min-SNR-5 on L_ε
//
// Min-SNR-γ (Hang et al. 2023) weights each image's x0 error by min(SNR_t, γ), SNR_t = ᾱ_t/(1−ᾱ_t).
// A term on another target carries the same weight expressed in its own error: with x_t fixed,
// ‖ε − ε′‖² = SNR·‖x0 − x0′‖² and ‖v − v′‖² = (SNR + 1)·‖x0 − x0′‖², so
//   L_x0: min(SNR, γ),   L_ε: min(SNR, γ)/SNR,   L_v: min(SNR, γ)/(SNR + 1).
// The weighted term is mean over the batch of w(t_i)·(mean squared error of image i).
#include "casdm/core/names.hpp"
#include "casdm/core/prediction.hpp"

#include <concepts>
#include <ratio>
#include <string>
#include <type_traits>

namespace casdm::loss::weighting {

/// What a term regresses: its error relates to the x0 error by a factor of the SNR.
enum class Target { eps, x0, v };

/// Every timestep alike (the paper): the mean over all elements.
struct Uniform {
  static constexpr const char* name = "uniform";
};

/// Min-SNR-γ; γ = 5 is the paper's choice.
template <class Gamma = std::ratio<5>>
struct MinSNR {
  static_assert(Gamma::num > 0 && Gamma::den > 0, "casdm rule: Min-SNR's gamma must be positive");
  static constexpr const char* name = "min-snr";
  static std::string spec() { return "min-snr(" + names::ratio<Gamma>() + ")"; }
  static constexpr double gamma = static_cast<double>(Gamma::num) / static_cast<double>(Gamma::den);
  /// The weight of a term on `target` for images of signal-to-noise ratio `snr`.
  static at::Tensor weight(const at::Tensor& snr, Target target) {
    auto clipped = snr.clamp_max(gamma);
    switch (target) {
      case Target::eps: return clipped / snr;
      case Target::v: return clipped / (snr + 1);
      case Target::x0: break;
    }
    return clipped;
  }
};

/// EDM's loss weight (Karras et al. 2022): λ(σ) = (σ² + σ_d²)/(σ·σ_d)² on the x0 error, which with
/// σ² = 1/SNR is SNR + 1/σ_d²; on ε (λ/SNR) and v (λ/(SNR + 1)) as above. σ_d = SigmaData (0.5).
template <class SigmaData = std::ratio<1, 2>>
struct EDM {
  static_assert(SigmaData::num > 0 && SigmaData::den > 0, "casdm rule: EDM's sigma_data must be positive");
  static constexpr const char* name = "edm";
  static std::string spec() {
    return std::is_same_v<SigmaData, std::ratio<1, 2>> ? std::string(name) : "edm(" + names::ratio<SigmaData>() + ")";
  }
  static constexpr double sigma_data = static_cast<double>(SigmaData::num) / static_cast<double>(SigmaData::den);
  static at::Tensor weight(const at::Tensor& snr, Target target) {
    auto lambda = snr + 1.0 / (sigma_data * sigma_data);
    switch (target) {
      case Target::eps: return lambda / snr;
      case Target::v: return lambda / (snr + 1);
      case Target::x0: break;
    }
    return lambda;
  }
};

/// A weighting policy: Uniform, or a type with weight(snr, target).
template <class W>
concept Weighting = std::same_as<W, Uniform> || requires(const at::Tensor& snr, Target t) {
  { W::name } -> std::convertible_to<const char*>;
  { W::weight(snr, t) } -> std::same_as<at::Tensor>;
};

/// The term ‖target − pred‖² under weighting W (see above).
template <Weighting W>
at::Tensor mse(const at::Tensor& target, const at::Tensor& pred, const LossInputs& in, Target kind) {
  if constexpr (std::is_same_v<W, Uniform>) {
    return (target - pred).square().mean();
  } else {
    auto per_image = (target - pred).square().flatten(1).mean(1);  // [N]
    return (W::weight(in.process.snr(in.t, per_image), kind) * per_image).mean();
  }
}

}  // namespace casdm::loss::weighting
