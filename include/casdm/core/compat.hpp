#pragma once
// The one place where LibTorch versions differ. casdm builds against Debian's LibTorch 1.13
// (CPU) and PyTorch 2.x's LibTorch (CUDA); everything version-dependent sits here.
#include <torch/version.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/GradMode.h>
#include <torch/cuda.h>

#include <vector>

#define CASDM_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace casdm::compat {

/// Devices available to this process: the CPU, then every CUDA device.
inline std::vector<c10::Device> available_devices() {
  std::vector<c10::Device> out{c10::Device(c10::kCPU)};
  if (torch::cuda::is_available()) {
    for (int64_t i = 0; i < static_cast<int64_t>(torch::cuda::device_count()); ++i)
      out.emplace_back(c10::kCUDA, static_cast<c10::DeviceIndex>(i));
  }
  return out;
}

/// No-grad scope used by samplers. InferenceMode exists in both versions, but tensors made under
/// it cannot later enter autograd; samplers return images users may differentiate through
/// (e.g. a feature loss on samples), so plain no-grad is the safe choice on every version.
using NoGradGuard = c10::NoGradGuard;

}  // namespace casdm::compat

#include <ATen/ATen.h>
#include <cmath>

namespace casdm::compat {

/// softmax(q·kᵀ/√d)·v over [N, L, d] tensors. LibTorch ≥ 2.0 has a fused kernel (flash or
/// memory-efficient attention on CUDA); 1.13 gets the plain formula, with the softmax in float32.
inline at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
#if CASDM_TORCH_AT_LEAST(2, 0)
  return at::scaled_dot_product_attention(q, k, v);
#else
  const double scale = 1.0 / std::sqrt(std::sqrt(static_cast<double>(q.size(-1))));
  auto w = at::bmm(q * scale, (k * scale).transpose(1, 2));
  w = at::softmax(w.to(at::kFloat), -1).to(q.scalar_type());
  return at::bmm(w, v);
#endif
}

}  // namespace casdm::compat
