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

namespace casdm::schedule {

template <class S>
concept Schedule = requires(int64_t T) {
  { S::name } -> std::convertible_to<const char*>;
  { S::betas(T) } -> std::same_as<at::Tensor>;
};

}  // namespace casdm::schedule
