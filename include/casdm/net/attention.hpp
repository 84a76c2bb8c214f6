#pragma once
// softmax(q·kᵀ/√d)·v for the U-Net's attention blocks, the fastest exact way each LibTorch has.
//
// LibTorch ≥ 2.0: at::scaled_dot_product_attention (flash / memory-efficient kernels).
// LibTorch 1.13 on the CPU, long sequences: the attention of one (batch·head) slice at a time, its
// L×L weights made, used and dropped while they are in cache, the backward pass making them again
// from q and k instead of reading stored ones (FlashAttention's trade at slice granularity). The
// plain formula writes N·L² floats four times per pass and keeps two of them for the backward: at
// the Fix-Res CNN's 28×28 (L = 784, N = 128) that is 315 MB a tensor, fresh pages every time, and
// 85 % of a training step (docs/performance.md). Otherwise the plain formula, softmax in float32.
// Sampling (no autograd) takes the sliced path from L = 64, training from L = 256.
#include "casdm/core/compat.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <dlfcn.h>

#include <cmath>
#include <cstdint>

namespace casdm::net {

namespace detail {

/// Sequences at least this long take the sliced path (1.13, CPU, float32/float64, no autocast):
/// below it the slices are too small to pay for their per-slice calls. Without autograd the
/// forward alone pays from shorter ones ([128, L, 8], 2 threads: at L = 64 the forward is 1.6×
/// faster sliced, forward + backward 1.7× slower).
inline constexpr int64_t kSlicedAttentionMinLength = 256;
inline constexpr int64_t kSlicedAttentionMinLengthNoGrad = 64;

/// Sets OpenBLAS's own thread count to 1 for its scope when the process's BLAS is OpenBLAS (as
/// Debian's LibTorch's is): the sliced attention calls BLAS from each of ATen's threads, and
/// OpenBLAS would start its own threads inside every call (a Fix-Res training step took 6.4 s
/// against 2.4 s). MKL notices the enclosing parallel region itself; other BLAS are left alone.
class SerialBlas {
 public:
  SerialBlas() {
    if (api().get && api().set) {
      saved_ = api().get();
      if (saved_ > 1) api().set(1);
    }
  }
  ~SerialBlas() {
    if (saved_ > 1) api().set(saved_);
  }
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;

 private:
  struct Api {
    int (*get)() = nullptr;
    void (*set)(int) = nullptr;
  };
  static const Api& api() {
    static const Api a{reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads")),
                       reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))};
    return a;
  }
  int saved_ = 0;
};

/// Exact attention over [N, L, d] tensors (any strides), one slice of N per task; the backward
/// recomputes each slice's weights. q is scaled by 1/√d before q·kᵀ (an N·L·d product, not an
/// L×L one per slice), and each task keeps its L×L buffers across slices, the softmax written in
/// place: the forward reuses one L×L array instead of making two a slice (product and softmax),
/// the backward two instead of three (a Fix-Res DDIM run 1.6× faster, docs/performance.md).
/// Results equal the plain formula's to float rounding.
struct SlicedAttention : torch::autograd::Function<SlicedAttention> {
  /// 1/√d for queries of width d.
  static double scale_of(const at::Tensor& q) { return 1.0 / std::sqrt(static_cast<double>(q.size(-1))); }
  /// softmax(qs·kᵀ) of one slice, into `s` ([Lq, Lk], reused; the softmax over it in place, which
  /// ATen's CPU kernel does element by element along each row).
  static const at::Tensor& weights_into(at::Tensor& s, const at::Tensor& qs, const at::Tensor& k) {
    at::mm_out(s, qs, k.t());
    at::_softmax_out(s, s, -1, /*half_to_float=*/false);
    return s;
  }
  /// The forward pass without autograd (inputs detached: the worker threads see none of the
  /// caller's grad-mode state).
  static at::Tensor run(const at::Tensor& qa, const at::Tensor& ka, const at::Tensor& va) {
    const auto qs = qa.detach().mul(scale_of(qa)), k = ka.detach(), v = va.detach();
    auto out = at::empty({qs.size(0), qs.size(1), v.size(2)}, v.options());
    SerialBlas serial_blas;
    at::parallel_for(0, qs.size(0), 1, [&](int64_t begin, int64_t end) {
      c10::NoGradGuard no_grad;
      auto s = at::empty({qs.size(1), k.size(1)}, qs.options());
      for (int64_t i = begin; i < end; ++i) {
        auto o = out.select(0, i);
        at::mm_out(o, weights_into(s, qs.select(0, i), k.select(0, i)), v.select(0, i));
      }
    });
    return out;
  }
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v) {
    auto out = run(q, k, v);
    ctx->save_for_backward({q, k, v, out});
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto q = saved[0].detach(), k = saved[1].detach(), v = saved[2].detach(), out = saved[3].detach();
    const auto go = grads[0].detach();
    const double scale = scale_of(q);
    const auto qs = q.mul(scale);
    // With S = qs·kᵀ: dS = P ⊙ (dO·vᵀ − rowsum(dO ⊙ O)); dq = scale·dS·k, dk = dSᵀ·qs, dv = Pᵀ·dO.
    const auto delta = (go * out).sum(-1, /*keepdim=*/true);
    auto dq = at::empty({q.size(0), q.size(1), q.size(2)}, q.options());
    auto dk = at::empty({k.size(0), k.size(1), k.size(2)}, k.options());
    auto dv = at::empty({v.size(0), v.size(1), v.size(2)}, v.options());
    SerialBlas serial_blas;
    at::parallel_for(0, q.size(0), 1, [&](int64_t begin, int64_t end) {
      c10::NoGradGuard no_grad;
      auto p = at::empty({q.size(1), k.size(1)}, q.options()), ds = at::empty_like(p);
      for (int64_t i = begin; i < end; ++i) {
        const auto qi = qs.select(0, i), ki = k.select(0, i), gi = go.select(0, i);
        weights_into(p, qi, ki);
        auto dvi = dv.select(0, i), dqi = dq.select(0, i), dki = dk.select(0, i);
        at::mm_out(dvi, p.t(), gi);
        at::mm_out(ds, gi, v.select(0, i).t());
        ds.sub_(delta.select(0, i)).mul_(p);
        at::mm_out(dqi, ds, ki);
        dqi.mul_(scale);
        at::mm_out(dki, ds.t(), qi);
      }
    });
    return {dq, dk, dv};
  }
};

inline bool needs_grad(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  return c10::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
}
inline bool takes_sliced_path(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  const auto t = q.scalar_type();
  return q.device().is_cpu() && !at::autocast::is_cpu_enabled() && (t == at::kFloat || t == at::kDouble) &&
         k.scalar_type() == t && v.scalar_type() == t &&
         q.size(1) >= (needs_grad(q, k, v) ? kSlicedAttentionMinLength : kSlicedAttentionMinLengthNoGrad);
}

}  // namespace detail

/// softmax(q·kᵀ/√d)·v over [N, L, d] tensors.
inline at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
#if !CASDM_TORCH_AT_LEAST(2, 0)
  if (detail::takes_sliced_path(q, k, v))
    return detail::needs_grad(q, k, v) ? detail::SlicedAttention::apply(q, k, v) : detail::SlicedAttention::run(q, k, v);
#endif
  return compat::attention(q, k, v);
}

}  // namespace casdm::net
