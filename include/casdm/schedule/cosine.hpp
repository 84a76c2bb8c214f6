#pragma once
// Cosine schedule (Nichol & Dhariwal 2021, eq. 17), the paper's default:
//   ᾱ(s) = cos²((s + 0.008)/1.008 · π/2),  β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), 0.999)
#include <fmt/format.h>
#include "casdm/schedule/concepts.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::schedule {

struct Cosine {
  static constexpr const char* name = "cosine";
  static at::Tensor betas(int64_t T) {
    if (T < 1) throw std::invalid_argument(fmt::format("schedule::Cosine: T must be >= 1, got {}", T));
    auto alpha_bar = [](double s) {
      const double c = std::cos((s + 0.008) / 1.008 * std::numbers::pi / 2);
      return c * c;
    };
    std::vector<double> b(static_cast<size_t>(T));
    for (int64_t i = 0; i < T; ++i) {
      const double t1 = static_cast<double>(i) / static_cast<double>(T);
      const double t2 = static_cast<double>(i + 1) / static_cast<double>(T);
      b[static_cast<size_t>(i)] = std::min(1.0 - alpha_bar(t2) / alpha_bar(t1), 0.999);
    }
    return at::tensor(b, at::kDouble);
  }
};
static_assert(Schedule<Cosine>);

}  // namespace casdm::schedule
