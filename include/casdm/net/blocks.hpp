#pragma once
// Building blocks of improved-diffusion's U-Net (Nichol & Dhariwal 2021, `unet.py`): residual
// blocks conditioned on a timestep embedding (optionally by scale-shift norm), multi-head
// self-attention over pixels, strided-conv down- and nearest+conv up-sampling.
#include <fmt/format.h>
#include "casdm/core/compat.hpp"
#include "casdm/net/attention.hpp"

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <ATen/Context.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <variant>

namespace casdm::net {

/// Sinusoidal embedding of (possibly fractional) timesteps: [cos(t·f_i), sin(t·f_i)],
/// f_i = exp(−ln(max_period)·i/half), zero-padded to odd `dim`.
inline at::Tensor timestep_embedding(const at::Tensor& t, int64_t dim, double max_period = 10000.0) {
  const int64_t half = dim / 2;
  auto freqs = at::exp(-std::log(max_period) * at::arange(half, t.options().dtype(at::kFloat)) /
                       static_cast<double>(half));
  auto args = t.to(at::kFloat).unsqueeze(1) * freqs.unsqueeze(0);
  auto emb = at::cat({at::cos(args), at::sin(args)}, -1);
  if (dim % 2) emb = at::cat({emb, at::zeros_like(emb.slice(1, 0, 1))}, -1);
  return emb;
}

/// GroupNorm computed in float32 whatever the input dtype (improved-diffusion's GroupNorm32).
struct GroupNorm32Impl : torch::nn::Cloneable<GroupNorm32Impl> {
  GroupNorm32Impl(int64_t groups, int64_t channels) : groups_(groups), channels_(channels) { reset(); }
  void reset() override {
    if (groups_ < 1 || channels_ % groups_ != 0)
      throw std::invalid_argument(
          fmt::format("GroupNorm: {} channels are not divisible into {} groups (set norm_groups)", channels_, groups_));
    norm = register_module("norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups_, channels_)));
  }
  at::Tensor forward(const at::Tensor& x) { return norm->forward(x.to(at::kFloat)).to(x.scalar_type()); }
  int64_t groups_, channels_;
  torch::nn::GroupNorm norm{nullptr};
};
TORCH_MODULE(GroupNorm32);

inline torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

namespace detail {
// torch::nn's option variants are c10::variant in LibTorch 1.13 and std::variant in 2.x: found by
// argument-dependent lookup either way.
template <class T, class V>
bool holds(const V& v) {
  using std::holds_alternative;
  return holds_alternative<T>(v);
}
template <class T, class V>
const T& get(const V& v) {
  using std::get;
  return get<T>(v);
}
}  // namespace detail

/// `conv->forward(x)`, except for one image on the CPU in float32 without autograd (a sampler's
/// batch of 1): there LibTorch's choice of kernel (1.13's ConvParams::use_mkldnn) takes its native
/// im2col convolution for inputs of at most 20480 values (and for 1x1 kernels on one thread), 3-13x
/// slower on this U-Net's layers than oneDNN's, which is called directly for every such layer
/// instead (docs/performance.md, "Fixed: a sampler's batch of one"). Results differ from the native
/// kernel's by float32 rounding only.
inline at::Tensor conv_forward(torch::nn::Conv2d& conv, const at::Tensor& x) {
  const auto& o = conv->options;
  if (x.dim() == 4 && x.size(0) == 1 && x.device().is_cpu() &&
      x.scalar_type() == at::kFloat && !at::GradMode::is_enabled() && at::globalContext().userEnabledMkldnn() &&
      at::hasMKLDNN() && o.groups() == 1 && !o.transposed() && detail::holds<torch::ExpandingArray<2>>(o.padding()) &&
      detail::holds<torch::enumtype::kZeros>(o.padding_mode()) && !x.is_mkldnn()) {
    const auto& pad = detail::get<torch::ExpandingArray<2>>(o.padding());
    return at::mkldnn_convolution(x.contiguous(), conv->weight, conv->bias, *pad, *o.stride(), *o.dilation(), 1);
  }
  return conv->forward(x);
}

template <class M>
M zeroed(M m) {
  torch::NoGradGuard g;
  for (auto& p : m->parameters()) p.zero_();
  return m;
}

struct ResBlockOptions {
  ResBlockOptions(int64_t channels, int64_t emb_channels, int64_t out_channels)
      : channels_(channels), emb_channels_(emb_channels), out_channels_(out_channels) {}
  TORCH_ARG(int64_t, channels);
  TORCH_ARG(int64_t, emb_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(double, dropout) = 0.0;
  TORCH_ARG(bool, use_scale_shift_norm) = true;
  TORCH_ARG(int64_t, norm_groups) = 32;
};

/// h = conv(SiLU(GN(x))); h += emb (or GN(h)·(1+scale)+shift); h = conv(drop(SiLU(·))); x + h.
/// The last conv starts at zero so every block starts as the identity.
struct ResBlockImpl : torch::nn::Cloneable<ResBlockImpl> {
  explicit ResBlockImpl(ResBlockOptions o) : options(std::move(o)) { reset(); }
  void reset() override {
    const auto& o = options;
    in_norm = register_module("in_norm", GroupNorm32(o.norm_groups(), o.channels()));
    in_conv = register_module("in_conv", conv3x3(o.channels(), o.out_channels()));
    emb_proj = register_module(
        "emb_proj", torch::nn::Linear(o.emb_channels(), o.use_scale_shift_norm() ? 2 * o.out_channels() : o.out_channels()));
    out_norm = register_module("out_norm", GroupNorm32(o.norm_groups(), o.out_channels()));
    dropout = register_module("dropout", torch::nn::Dropout(o.dropout()));
    out_conv = register_module("out_conv", zeroed(conv3x3(o.out_channels(), o.out_channels())));
    skip = o.channels() == o.out_channels()
               ? torch::nn::Conv2d{nullptr}
               : register_module("skip", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.channels(), o.out_channels(), 1)));
  }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& emb) {
    auto h = conv_forward(in_conv, at::silu(in_norm->forward(x)));
    auto e = emb_proj->forward(at::silu(emb)).to(h.scalar_type()).unsqueeze(-1).unsqueeze(-1);
    if (options.use_scale_shift_norm()) {
      auto ss = e.chunk(2, 1);
      h = out_norm->forward(h) * (1 + ss[0]) + ss[1];
    } else {
      h = out_norm->forward(h + e);
    }
    h = conv_forward(out_conv, dropout->forward(at::silu(h)));
    return (skip ? conv_forward(skip, x) : x) + h;
  }
  ResBlockOptions options;
  GroupNorm32 in_norm{nullptr}, out_norm{nullptr};
  torch::nn::Conv2d in_conv{nullptr}, out_conv{nullptr}, skip{nullptr};
  torch::nn::Linear emb_proj{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(ResBlock);

/// Self-attention over all pixels with `heads` heads; output projection starts at zero.
struct AttentionBlockImpl : torch::nn::Cloneable<AttentionBlockImpl> {
  AttentionBlockImpl(int64_t channels, int64_t heads, int64_t norm_groups)
      : channels_(channels), heads_(heads), norm_groups_(norm_groups) {
    reset();
  }
  void reset() override {
    if (heads_ < 1 || channels_ % heads_ != 0)
      throw std::invalid_argument(
          fmt::format("AttentionBlock: {} channels do not split into {} heads", channels_, heads_));
    norm = register_module("norm", GroupNorm32(norm_groups_, channels_));
    qkv = register_module("qkv", torch::nn::Conv1d(torch::nn::Conv1dOptions(channels_, 3 * channels_, 1)));
    proj = register_module("proj", zeroed(torch::nn::Conv1d(torch::nn::Conv1dOptions(channels_, channels_, 1))));
  }
  at::Tensor forward(const at::Tensor& x) {
    const int64_t B = x.size(0), C = x.size(1), L = x.size(2) * x.size(3), d = C / heads_;
    auto h = qkv->forward(norm->forward(x).reshape({B, C, L}));   // [B, 3C, L]
    auto parts = h.reshape({B * heads_, 3 * d, L}).split(d, 1);   // per head: q, k, v as [BH, d, L]
    auto a = net::attention(parts[0].transpose(1, 2), parts[1].transpose(1, 2), parts[2].transpose(1, 2));
    auto out = proj->forward(a.transpose(1, 2).reshape({B, C, L}));
    return x + out.reshape(x.sizes());
  }
  int64_t channels_, heads_, norm_groups_;
  GroupNorm32 norm{nullptr};
  torch::nn::Conv1d qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(AttentionBlock);

}  // namespace casdm::net
