#pragma once
// Timestep spacings: which `steps` of a process's T steps a sampler visits. A spacing is a policy —
// a name and a function of the process and the step count — that a sampler names as its `Spacing`:
//
//   struct MySpacing {
//     static constexpr const char* name = "mine";
//     // `steps` strictly increasing indices of p (index 0 included); std::invalid_argument if not.
//     static std::vector<int64_t> timesteps(const Process& p, int64_t steps);
//     // Optional: why `steps` ≤ T cannot be laid out on T, or "" (checked before any work).
//     static std::string refusal(int64_t T, int64_t steps);
//     // Optional, for a spacing laid out in σ: the `steps` target σ themselves, ascending, which a run
//     // with SampleOptions::exact_sigmas visits instead of the nearest steps (Process::at_sigmas).
//     static std::vector<double> sigmas(const Process& p, int64_t steps);
//   };
//
// Provided: Stride (improved-diffusion's "ddimN", DDIM's), Even (improved-diffusion's "N", the
// ancestral sampler's), Karras (ρ = 7 in σ, Euler's and Heun's) and LogSNR (uniform in log σ,
// DPM-Solver++'s). space_timesteps reads improved-diffusion's spec strings ("ddim100", "250",
// "10,20,30") with the same rules, for comparisons with its code.
#include "casdm/core/process.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace casdm::sampler::spacing {

template <class P>
concept Spacing = requires(const Process& p, int64_t n) {
  { P::name } -> std::convertible_to<const char*>;
  { P::timesteps(p, n) } -> std::same_as<std::vector<int64_t>>;
};

/// The one integer-stride rule (improved-diffusion's "ddimN"): the steps 0, s, 2s, … < T for the
/// stride s ≥ 1 that makes exactly `steps` of them. With T = 1000, 500 and 1000 can be made, 999
/// cannot.
struct Stride {
  static constexpr const char* name = "stride";
  /// "" when a stride makes `steps`; else "takes the steps of T = 20 at an integer stride, which
  /// makes 10 or 20 but not 15" (the nearest counts that can be made).
  static std::string refusal(int64_t T, int64_t steps) {
    int64_t below = 0, above = 0;
    for (int64_t s = 1; s < T; ++s) {  // improved-diffusion: range(1, T)
      const int64_t count = (T + s - 1) / s;
      if (count == steps) return {};
      if (count < steps) below = std::max(below, count);
      if (count > steps) above = above == 0 ? count : std::min(above, count);
    }
    return fmt::format("takes the steps of T = {} at an integer stride, which makes {} but not {}", T,
                       below && above ? fmt::format("{} or {}", below, above) : fmt::format("{}", below ? below : above),
                       steps);
  }
  static std::vector<int64_t> timesteps(const Process& p, int64_t steps) { return timesteps(p.size(), steps); }
  static std::vector<int64_t> timesteps(int64_t T, int64_t steps) {
    if (steps < 1 || steps > T)
      throw std::invalid_argument(fmt::format("stride spacing: {} steps out of T = {}", steps, T));
    if (auto why = refusal(T, steps); !why.empty())
      throw std::invalid_argument(fmt::format("stride spacing: {} steps: {}", steps, why));
    std::vector<int64_t> out;
    for (int64_t s = 1; s < T; ++s)
      if ((T + s - 1) / s == steps) {
        for (int64_t i = 0; i < T; i += s) out.push_back(i);
        break;
      }
    return out;
  }
};

/// improved-diffusion's section rule: T split into counts.size() sections (the first T % n one
/// step longer), section k strided by (size − 1)/(count − 1) from its start and rounded half to
/// even (Python's round); the union, sorted.
inline std::vector<int64_t> sections(int64_t T, const std::vector<int64_t>& counts) {
  if (T < 1 || counts.empty()) throw std::invalid_argument(fmt::format("sections: T = {} in {} sections", T, counts.size()));
  const int64_t n = static_cast<int64_t>(counts.size()), size_per = T / n, extra = T % n;
  std::vector<int64_t> out;
  int64_t start = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t size = size_per + (i < extra ? 1 : 0), count = counts[static_cast<size_t>(i)];
    if (count < 0 || size < count)
      throw std::invalid_argument(fmt::format("sections: cannot divide a section of {} steps into {}", size, count));
    const double frac_stride = count <= 1 ? 1.0 : static_cast<double>(size - 1) / static_cast<double>(count - 1);
    double cur = 0.0;
    for (int64_t k = 0; k < count; ++k) {
      out.push_back(start + static_cast<int64_t>(std::nearbyint(cur)));  // half to even
      cur += frac_stride;
    }
    start += size;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

/// `steps` steps spread evenly over 0 … T − 1, both ends included (one section).
struct Even {
  static constexpr const char* name = "even";
  static std::vector<int64_t> timesteps(const Process& p, int64_t steps) {
    if (steps < 1 || steps > p.size())
      throw std::invalid_argument(fmt::format("even spacing: {} steps out of T = {}", steps, p.size()));
    return sections(p.size(), {steps});
  }
};

/// n distinct indices of `p` whose σ = √((1−ᾱ)/ᾱ) follow σ_max^(1/ρ) → σ_min^(1/ρ) linearly (ρ > 0,
/// Karras et al. 2022, eq. 5) or log σ linearly (ρ = 0: uniform in log-SNR, Lu et al. 2022), each
/// the index nearest in log σ. σ_min is σ at index 0, σ_max = min(σ at the last index, 80) (EDM's
/// σ_max for data in [−1, 1]; a cosine schedule's last σ is ~2e4, where every image is noise
/// already). Where two targets fall on one index (σ changes fastest at the ends) the later moves up
/// to the next free one, so the result always has n steps, ascending, index 0 included.
/// The n target noise levels themselves, ascending (what sigma_timesteps snaps to steps, and what a
/// run with SampleOptions::exact_sigmas visits); the ends are σ_min and σ_max exactly.
inline std::vector<double> sigma_targets(const Process& p, int64_t n, double rho) {
  const int64_t T = p.size();
  if (n < 1) throw std::invalid_argument(fmt::format("σ spacing: cannot choose {} steps", n));
  auto sig = p.sigmas().contiguous();
  const auto* s = sig.data_ptr<double>();
  const double lo = s[0], hi = std::max(lo, std::min(s[T - 1], 80.0));
  std::vector<double> out;
  for (int64_t k = 0; k < n; ++k) {
    const double f = n == 1 ? 1.0 : static_cast<double>(k) / static_cast<double>(n - 1);  // 0: σ_min, 1: σ_max
    const double target = f == 0 ? lo : f == 1 ? hi
                          : rho > 0 ? std::pow(std::pow(lo, 1 / rho) + f * (std::pow(hi, 1 / rho) - std::pow(lo, 1 / rho)), rho)
                                    : std::exp(std::log(lo) + f * (std::log(hi) - std::log(lo)));
    out.push_back(target);
  }
  return out;
}

inline std::vector<int64_t> sigma_timesteps(const Process& p, int64_t n, double rho) {
  const int64_t T = p.size();
  if (n < 1 || n > T) throw std::invalid_argument(fmt::format("σ spacing: cannot choose {} steps out of {}", n, T));
  auto sig = p.sigmas().contiguous();
  const auto* s = sig.data_ptr<double>();
  std::vector<int64_t> out;
  for (const double target : sigma_targets(p, n, rho)) {
    const double lt = std::log(target);
    int64_t best = 0;
    for (int64_t i = 1; i < T; ++i)
      if (std::abs(std::log(s[i]) - lt) < std::abs(std::log(s[best]) - lt)) best = i;
    out.push_back(best);
  }
  for (size_t k = 1; k < out.size(); ++k) out[k] = std::max(out[k], out[k - 1] + 1);
  for (int64_t k = n - 1; k >= 0; --k) out[static_cast<size_t>(k)] = std::min(out[static_cast<size_t>(k)], T - n + k);
  return out;
}

struct Karras {
  static constexpr const char* name = "karras";
  static std::vector<int64_t> timesteps(const Process& p, int64_t steps) { return sigma_timesteps(p, steps, 7.0); }
  static std::vector<double> sigmas(const Process& p, int64_t steps) { return sigma_targets(p, steps, 7.0); }
};

struct LogSNR {
  static constexpr const char* name = "log-snr";
  static std::vector<int64_t> timesteps(const Process& p, int64_t steps) { return sigma_timesteps(p, steps, 0.0); }
  static std::vector<double> sigmas(const Process& p, int64_t steps) { return sigma_targets(p, steps, 0.0); }
};

/// Whether spacing P lays its steps out in σ (and so can visit its σ exactly, between trained steps).
template <class P>
concept SigmaSpacing = Spacing<P> && requires(const Process& p, int64_t n) {
  { P::sigmas(p, n) } -> std::same_as<std::vector<double>>;
};

/// Why sampler `who` cannot take `steps` steps of spacing P on T training steps, or "": a count
/// below 1, more than T, or P's own rule (Stride's).
template <Spacing P>
std::string refusal(int64_t T, int64_t steps, std::string_view who) {
  if (steps < 1) return "a step count is >= 1";
  if (steps > T) return fmt::format("more than the model's T = {}", T);
  if constexpr (requires { { P::refusal(T, steps) } -> std::convertible_to<std::string>; })
    if (auto why = P::refusal(T, steps); !why.empty()) return fmt::format("{} {}", who, why);
  return {};
}

/// improved-diffusion's `space_timesteps`: "ddimN" is Stride's N steps, otherwise `spec` is a comma
/// list of section counts (sections()). Returns the steps sorted ascending.
inline std::vector<int64_t> space_timesteps(int64_t T, const std::string& spec) {
  if (T < 1) throw std::invalid_argument(fmt::format("space_timesteps: T must be >= 1, got {}", T));
  auto parse_int = [&](const std::string& s) -> int64_t {
    size_t pos = 0;
    int64_t v = 0;
    try {
      v = std::stoll(s, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    if (s.empty() || pos != s.size())
      throw std::invalid_argument("space_timesteps: cannot read '" + s + "' in spec '" + spec + "'");
    return v;
  };
  if (spec.rfind("ddim", 0) == 0) return Stride::timesteps(T, parse_int(spec.substr(4)));
  std::vector<int64_t> counts;
  for (size_t start = 0;;) {
    const size_t comma = spec.find(',', start);
    counts.push_back(parse_int(spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return sections(T, counts);
}

}  // namespace casdm::sampler::spacing
