#pragma once
// A noise schedule: a stateless policy giving the float64 betas of a T-step process.
//
//   struct MySchedule {
//     static constexpr const char* name = "my";
//     static at::Tensor betas(int64_t T);  // 1-D, float64, CPU, values in (0, 1]
//   };
#include <ATen/core/Tensor.h>

#include <concepts>
#include <cstdint>
#include <vector>

namespace casdm::schedule {

template <class S>
concept Schedule = requires(int64_t T) {
  { S::name } -> std::convertible_to<const char*>;
  { S::betas(T) } -> std::same_as<at::Tensor>;
};

/// A schedule of a continuous process: its levels for T, the network's time per ln σ, and the
/// training draw of σ.
template <class S>
concept Continuous = Schedule<S> && requires(int64_t n) {
  { S::sigmas(n) } -> std::same_as<std::vector<double>>;
  { S::training_sigmas(n) } -> std::same_as<at::Tensor>;
  { S::log_sigma_time } -> std::convertible_to<double>;
};

}  // namespace casdm::schedule
