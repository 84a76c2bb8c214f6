#pragma once
// Every sampler of the library by name, for programs that choose one at run time — the one list that
// programs' help and choices and the reports' labels read:
//   casdm::sampler::visit("heun", [&](auto type) { using S = typename decltype(type)::type; ... });
//   casdm::sampler::names();   // {"ddim", "ancestral", "dpmpp2m", "euler", "heun", "euler-a", ...}
//   casdm::sampler::info("dpmpp2m").label;   // "DPM-Solver++(2M)"
// Each with its default step count (DDIM 100, ancestral 1000, DPM-Solver++ 20, Euler 20, Heun 10,
// the stochastic σ-space samplers 20).
// A new sampler is its header and one entry in All below; a sampler may give `label` (a table's
// column header) and `description` (a table's text), else its name stands for both.
#include "casdm/sampler/ancestral.hpp"
#include "casdm/sampler/ddim.hpp"
#include "casdm/sampler/dpm_solver.hpp"
#include "casdm/sampler/karras.hpp"
#include "casdm/sampler/sde.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace casdm::sampler {

template <class T>
struct type_tag {
  using type = T;
};

using All = std::tuple<DDIM<>, Ancestral<>, DPMSolverPP<>, Euler<>, Heun<>, EulerAncestral<>, DPMSolverPP2MSDE<>,
                       DPMSolverPP2MSDE<20, Correction::heun>, DPMSolverPP3MSDE<>>;

/// What the programs and reports say of a registered sampler.
struct Info {
  std::string name, label, description;
  int64_t default_steps = 0;
  bool eta = false;        // reads SampleOptions::eta
  double default_eta = 0;  // η when none is given
  bool exact_sigmas = false;  // σ-spaced: takes SampleOptions::exact_sigmas
  bool churn = false;         // reads SampleOptions::churn (EDM's stochastic Euler and Heun)
};

template <class S>
Info info_of() {
  Info i{S::name, label<S>(), S::name, S::default_steps, false};
  if constexpr (requires { S::description; }) i.description = S::description;
  if constexpr (requires { S::default_eta; }) i.eta = true, i.default_eta = S::default_eta;
  i.exact_sigmas = spacing::SigmaSpacing<typename S::Spacing>;
  i.churn = has_churn<S>;
  return i;
}

/// Every registered sampler, in order.
inline std::vector<Info> infos() {
  return std::apply([](auto... s) { return std::vector<Info>{info_of<decltype(s)>()...}; }, All{});
}

inline std::vector<std::string> names() {
  return std::apply([](auto... s) { return std::vector<std::string>{decltype(s)::name...}; }, All{});
}

/// The registered sampler called `name`; an unknown name is refused, listing the known ones.
inline Info info(std::string_view name) {
  for (auto& i : infos())
    if (i.name == name) return i;
  throw std::invalid_argument(fmt::format("unknown sampler '{}'; choose one of: {}", name, fmt::join(names(), ", ")));
}

/// "ddim (DDIM (η = 0), 100 steps), ancestral (…)": every sampler for a program's --help.
inline std::string help() {
  std::vector<std::string> parts;
  for (const auto& i : infos()) parts.push_back(fmt::format("{} ({}, {} steps)", i.name, i.description, i.default_steps));
  return fmt::format("{}", fmt::join(parts, ", "));
}

/// Calls f(type_tag<S>{}) for the sampler called `name` and returns what f returns (the same type
/// for every sampler); an unknown name is refused, listing the known ones.
template <class F>
auto visit(std::string_view name, F&& f) {
  return std::apply(
      [&](auto... s) {
        using R = decltype(f(type_tag<DDIM<>>{}));
        if constexpr (std::is_void_v<R>) {
          bool found = false;
          ((!found && name == decltype(s)::name ? (found = true, f(type_tag<decltype(s)>{}), 0) : 0), ...);
          if (!found)
            throw std::invalid_argument(fmt::format("unknown sampler '{}'; choose one of: {}", name, fmt::join(names(), ", ")));
        } else {
          std::optional<R> out;
          ((!out && name == decltype(s)::name ? (out.emplace(f(type_tag<decltype(s)>{})), 0) : 0), ...);
          if (!out)
            throw std::invalid_argument(fmt::format("unknown sampler '{}'; choose one of: {}", name, fmt::join(names(), ", ")));
          return R(std::move(*out));
        }
      },
      All{});
}

/// Whether registered sampler `name` reads SampleOptions::eta (DDIM and the stochastic σ-space samplers;
/// the others refuse one).
inline bool has_eta(std::string_view name) {
  for (const auto& i : infos())
    if (i.name == name) return i.eta;
  return false;
}

/// The names of the registered samplers that take SampleOptions::exact_sigmas ("dpmpp2m, euler, …").
inline std::string exact_sigma_names() {
  std::vector<std::string> out;
  for (const auto& i : infos())
    if (i.exact_sigmas) out.push_back(i.name);
  return fmt::format("{}", fmt::join(out, ", "));
}

/// Refuses, in one line starting "<what> <steps>: ", a step count that sampler `name` cannot take
/// on a process of T training steps — before any work, where sampling would refuse it only when it
/// starts: more than T, or what the sampler's spacing cannot lay out (DDIM's integer stride: with
/// T = 1000, 999 cannot be made, 500 and 1000 can; the message names the nearest counts that can).
/// 0, the sampler's default, passes; a sampler not in the registry (a user's) is held to T only.
inline void check_steps(std::string_view name, int64_t T, int64_t steps, std::string_view what = "steps") {
  if (steps < 0) throw std::invalid_argument(fmt::format("{} {}: a step count is >= 0 (0: the sampler's default)", what, steps));
  if (steps == 0) return;
  std::string why = steps > T ? fmt::format("more than the model's T = {}", T) : std::string();
  std::apply([&](auto... s) {
    ((name == decltype(s)::name ? (void)(why = spacing::refusal<typename decltype(s)::Spacing>(T, steps, label<decltype(s)>()))
                                : void()), ...);
  }, All{});
  if (!why.empty()) throw std::invalid_argument(fmt::format("{} {}: {}", what, steps, why));
}

/// The step count a run of sampler `name` takes on a process of T steps: `steps` after check_steps,
/// or for 0 the sampler's default (at most T).
inline int64_t resolve_steps(std::string_view name, int64_t T, int64_t steps, std::string_view what = "steps") {
  check_steps(name, T, steps, what);
  return steps > 0 ? steps : std::min(info(name).default_steps, T);
}

}  // namespace casdm::sampler
