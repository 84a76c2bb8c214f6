#pragma once
// The machine a program runs on, as its options name it: how many CPU threads, which device, and
// the networks' precision there — each refused in one line when this LibTorch cannot do it.
//
//   const auto device = casdm::app::use_machine(/*threads=*/0, "cuda:1");  // 0: every core
//   trainer_options.precision(casdm::app::precision_type("bf16", device));
#include <ATen/Parallel.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace casdm::app {

/// Sets LibTorch's CPU threads (0: every core) and checks the device: an unknown name, a kind
/// other than cpu/cuda, or a CUDA device this LibTorch cannot reach is refused with the reason.
inline c10::Device use_machine(int64_t threads, const std::string& device) {
  if (threads < 0) throw std::invalid_argument(fmt::format("--threads {}: must be >= 0 (0: every core)", threads));
  std::optional<c10::Device> d;
  try {
    d = c10::Device(device);
  } catch (const c10::Error&) {
    throw std::runtime_error(fmt::format("--device {}: not a device name (cpu, cuda, cuda:1, ...)", device));
  }
  if (!d->is_cpu() && !d->is_cuda())
    throw std::runtime_error(fmt::format("--device {}: only cpu and cuda are supported", device));
  if (d->is_cuda() && (!torch::cuda::is_available() || d->index() >= static_cast<int>(torch::cuda::device_count())))
    throw std::runtime_error(
        fmt::format("--device {}: this LibTorch sees {} CUDA device(s)", device, torch::cuda::device_count()));
  at::set_num_threads(threads > 0 ? static_cast<int>(threads)
                                  : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  return *d;
}

/// --precision fp32|bf16|fp16 as the networks' autocast type on `device`. fp16 is CUDA's (training
/// scales the loss dynamically, train::LossScaler); LibTorch's CPU autocast runs bfloat16 only.
inline at::ScalarType precision_type(const std::string& name, c10::Device device) {
  if (name == "fp32") return at::kFloat;
  if (name == "bf16") return at::kBFloat16;
  if (name == "fp16" && device.is_cuda()) return at::kHalf;
  if (name == "fp16")
    throw std::runtime_error(fmt::format("--precision fp16: float16 autocast needs a CUDA device (LibTorch's CPU "
                                         "autocast runs bfloat16 only; on {} use bf16)",
                                         device.str()));
  throw std::runtime_error(fmt::format("--precision {}: expected fp32, bf16 or fp16", name));
}

}  // namespace casdm::app
