#pragma once
// The one place where LibTorch versions differ. casdm builds against Debian's LibTorch 1.13
// (CPU) and PyTorch 2.x's LibTorch (CUDA); everything version-dependent sits here.
#include <torch/version.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/GradMode.h>
#include <torch/cuda.h>

#include <stdexcept>
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

/// Autocast on `device`'s type to `dtype` for the scope (nothing for float32): LibTorch's mixed
/// precision — convolutions, linear layers and matrix products in `dtype`, the rest as its inputs.
/// Like Python's torch.autocast it counts its nesting and clears the cache of cast weights when the
/// outermost scope ends (else a later scope would reuse weights cast before an optimiser step).
class Autocast {
 public:
  Autocast(c10::Device device, at::ScalarType dtype) : type_(device.type()), on_(dtype != at::kFloat) {
    if (!on_) return;
    if (type_ != c10::DeviceType::CPU && type_ != c10::DeviceType::CUDA)
      throw std::invalid_argument("autocast: only cpu and cuda");
#if CASDM_TORCH_AT_LEAST(2, 4)
    was_on_ = at::autocast::is_autocast_enabled(type_);
    was_dtype_ = at::autocast::get_autocast_dtype(type_);
    at::autocast::set_autocast_enabled(type_, true);
    at::autocast::set_autocast_dtype(type_, dtype);
#else
    const bool cpu = type_ == c10::DeviceType::CPU;
    was_on_ = cpu ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
    was_dtype_ = cpu ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
    cpu ? at::autocast::set_cpu_enabled(true) : at::autocast::set_enabled(true);
    cpu ? at::autocast::set_autocast_cpu_dtype(dtype) : at::autocast::set_autocast_gpu_dtype(dtype);
#endif
    at::autocast::increment_nesting();
  }
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;
  ~Autocast() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if CASDM_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_enabled(type_, was_on_);
    at::autocast::set_autocast_dtype(type_, was_dtype_);
#else
    const bool cpu = type_ == c10::DeviceType::CPU;
    cpu ? at::autocast::set_cpu_enabled(was_on_) : at::autocast::set_enabled(was_on_);
    cpu ? at::autocast::set_autocast_cpu_dtype(was_dtype_) : at::autocast::set_autocast_gpu_dtype(was_dtype_);
#endif
  }

 private:
  c10::DeviceType type_;
  bool on_, was_on_ = false;
  at::ScalarType was_dtype_ = at::kFloat;
};

}  // namespace casdm::compat
