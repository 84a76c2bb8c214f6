#pragma once
// Every sampler of the library by name, for programs that choose one at run time:
//   casdm::sampler::visit("heun", [&](auto type) { using S = typename decltype(type)::type; ... });
//   casdm::sampler::names();   // {"ddim", "ancestral", "dpmpp2m", "euler", "heun"}
// Each with its default step count (DDIM 100, ancestral 1000, DPM-Solver++ 20, Euler 20, Heun 10).
#include "casdm/sampler/ancestral.hpp"
#include "casdm/sampler/ddim.hpp"
#include "casdm/sampler/dpm_solver.hpp"
#include "casdm/sampler/karras.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

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

using All = std::tuple<DDIM<>, Ancestral<>, DPMSolverPP<>, Euler<>, Heun<>>;

inline std::vector<std::string> names() {
  return std::apply([](auto... s) { return std::vector<std::string>{decltype(s)::name...}; }, All{});
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

/// Whether sampler `name` reads SampleOptions::eta (DDIM only; the others refuse one).
inline bool has_eta(std::string_view name) { return name == DDIM<>::name; }

}  // namespace casdm::sampler
