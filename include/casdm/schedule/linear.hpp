#pragma once
// Linear betas (Ho et al. 2020), scaled so any T matches the 1000-step schedule:
//   β = linspace(1e-4·1000/T, 0.02·1000/T, T)
#include <fmt/format.h>
#include "casdm/schedule/concepts.hpp"

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>

namespace casdm::schedule {

struct Linear {
  static constexpr const char* name = "linear";
  static at::Tensor betas(int64_t T) {
    if (T < 1) throw std::invalid_argument(fmt::format("schedule::Linear: T must be >= 1, got {}", T));
    const double scale = 1000.0 / static_cast<double>(T);
    return at::linspace(scale * 1e-4, scale * 0.02, T, at::kDouble);
  }
};
static_assert(Schedule<Linear>);

}  // namespace casdm::schedule
