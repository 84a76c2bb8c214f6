#pragma once
// Swin-T (Liu et al. 2021) as torchvision builds it (`torchvision.models.swin_t()`): the `features`
// trunk with torchvision's parameter and buffer names ("features.<i>…"), so its ImageNet weights
// load as they are; the final norm and classifier head are left out. Patch 4, embedding 96,
// depths (2, 2, 6, 2), heads (3, 6, 12, 24), window 7, shifted windows on every second block,
// LayerNorm eps 1e-5. In eval mode (stochastic depth and dropout off), as a metric network runs.
//
// Input: ImageNet-normalised images [N, 3, H, W]; any side ≥ 4 works (windows are padded as
// torchvision pads them, and the shift is dropped where a window covers the whole map).
//
//   casdm::metric::SwinT net;
//   auto stages = net->stages(x);   // [N, H/4, W/4, 96], [N, H/8, W/8, 192], …/16 384, …/32 768
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <ATen/ATen.h>

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::metric {

/// torchvision's ShiftedWindowAttention (window 7): qkv and proj linears, a learnt relative
/// position bias table indexed by the buffer relative_position_index.
class WindowAttentionImpl : public torch::nn::Cloneable<WindowAttentionImpl> {
 public:
  WindowAttentionImpl(int64_t dim, int64_t heads, int64_t window, int64_t shift)
      : dim_(dim), heads_(heads), window_(window), shift_(shift) {
    reset();
  }
  void reset() override {
    qkv = register_module("qkv", torch::nn::Linear(dim_, 3 * dim_));
    proj = register_module("proj", torch::nn::Linear(dim_, dim_));
    relative_position_bias_table =
        register_parameter("relative_position_bias_table", at::zeros({(2 * window_ - 1) * (2 * window_ - 1), heads_}));
    // Index of the bias of (query i, key j) for i, j in a window flattened row-major.
    const auto c = at::arange(window_, at::kLong);
    const auto rows = c.repeat_interleave(window_), cols = c.repeat({window_});
    const auto dr = rows.unsqueeze(1) - rows.unsqueeze(0) + (window_ - 1);
    const auto dc = cols.unsqueeze(1) - cols.unsqueeze(0) + (window_ - 1);
    relative_position_index = register_buffer("relative_position_index", (dr * (2 * window_ - 1) + dc).flatten());
  }

  /// x: [B, H, W, C] → [B, H, W, C].
  at::Tensor forward(const at::Tensor& input) {
    const int64_t B = input.size(0), H = input.size(1), W = input.size(2), C = input.size(3), ws = window_;
    const int64_t pad_r = (ws - W % ws) % ws, pad_b = (ws - H % ws) % ws;
    auto x = at::constant_pad_nd(input, {0, 0, 0, pad_r, 0, pad_b});
    const int64_t pH = H + pad_b, pW = W + pad_r;
    const int64_t sh = ws >= pH ? 0 : shift_, sw = ws >= pW ? 0 : shift_;
    if (sh + sw > 0) x = at::roll(x, {-sh, -sw}, {1, 2});
    const int64_t nW = (pH / ws) * (pW / ws), N = ws * ws, hd = C / heads_;
    x = x.view({B, pH / ws, ws, pW / ws, ws, C}).permute({0, 1, 3, 2, 4, 5}).reshape({B * nW, N, C});
    auto qkv_ = qkv(x).reshape({B * nW, N, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
    auto q = qkv_[0] * std::pow(static_cast<double>(hd), -0.5), k = qkv_[1], v = qkv_[2];
    auto attn = at::matmul(q, k.transpose(-2, -1));
    const auto bias = relative_position_bias_table.index_select(0, relative_position_index.to(at::kLong))
                          .view({N, N, heads_})
                          .permute({2, 0, 1})
                          .unsqueeze(0);
    attn = attn + bias;
    if (sh + sw > 0) {
      // Regions that the cyclic shift brought together may not attend to each other.
      const auto& mask = shift_mask(pH, pW, sh, sw, x.options());
      attn = (attn.view({B, nW, heads_, N, N}) + mask.unsqueeze(1).unsqueeze(0)).view({B * nW, heads_, N, N});
    }
    x = at::matmul(at::softmax(attn, -1), v).transpose(1, 2).reshape({B * nW, N, C});
    x = proj(x);
    x = x.view({B, pH / ws, pW / ws, ws, ws, C}).permute({0, 1, 3, 2, 4, 5}).reshape({B, pH, pW, C});
    if (sh + sw > 0) x = at::roll(x, {sh, sw}, {1, 2});
    return x.slice(1, 0, H).slice(2, 0, W).contiguous();
  }

  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  at::Tensor relative_position_bias_table, relative_position_index;

 private:
  /// The additive mask [nW, N, N] (0 or −100) that keeps regions the cyclic shift brought
  /// together from attending to each other; made once per padded map size, shift and device.
  const at::Tensor& shift_mask(int64_t pH, int64_t pW, int64_t sh, int64_t sw, const at::TensorOptions& opts) {
    const std::array<int64_t, 4> key{pH, pW, sh, sw};
    if (mask_.defined() && mask_key_ == key && mask_.device() == opts.device() &&
        mask_.scalar_type() == opts.dtype().toScalarType())
      return mask_;
    const int64_t ws = window_, N = ws * ws, nW = (pH / ws) * (pW / ws);
    // torchvision labels 3×3 regions by Python slices (0, −ws), (−ws, −shift), (−shift, None),
    // in that order; with a shift of 0 along one side, "−0" reads as 0 there, as in Python.
    auto region = at::zeros({pH, pW}, opts);
    auto ranges = [ws](int64_t n, int64_t s) {
      return std::array<std::array<int64_t, 2>, 3>{{{0, n - ws}, {n - ws, s == 0 ? 0 : n - s}, {s == 0 ? 0 : n - s, n}}};
    };
    const auto hr = ranges(pH, sh), wr = ranges(pW, sw);
    int64_t count = 0;
    for (const auto& h : hr)
      for (const auto& w : wr) {
        if (h[0] < h[1] && w[0] < w[1]) region.slice(0, h[0], h[1]).slice(1, w[0], w[1]).fill_(static_cast<double>(count));
        ++count;
      }
    region = region.view({pH / ws, ws, pW / ws, ws}).permute({0, 2, 1, 3}).reshape({nW, N});
    auto diff = region.unsqueeze(1) - region.unsqueeze(2);
    mask_ = at::where(diff != 0, at::full({}, -100.0, diff.options()), at::zeros({}, diff.options()));
    mask_key_ = key;
    return mask_;
  }

  int64_t dim_, heads_, window_, shift_;
  at::Tensor mask_;  // shift_mask's cache: replaced, never written in place (a clone may share it)
  std::array<int64_t, 4> mask_key_{};
};
TORCH_MODULE(WindowAttention);

/// torchvision's SwinTransformerBlock: x + attn(norm1(x)), then x + mlp(norm2(x)); mlp is
/// Linear, GELU, Dropout, Linear, Dropout (so its linears are mlp.0 and mlp.3).
class SwinBlockImpl : public torch::nn::Cloneable<SwinBlockImpl> {
 public:
  SwinBlockImpl(int64_t dim, int64_t heads, int64_t window, int64_t shift)
      : dim_(dim), heads_(heads), window_(window), shift_(shift) {
    reset();
  }
  void reset() override {
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim_}).eps(1e-5)));
    attn = register_module("attn", WindowAttention(dim_, heads_, window_, shift_));
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim_}).eps(1e-5)));
    mlp = register_module("mlp", torch::nn::Sequential(torch::nn::Linear(dim_, 4 * dim_), torch::nn::GELU(),
                                                       torch::nn::Dropout(0.0), torch::nn::Linear(4 * dim_, dim_),
                                                       torch::nn::Dropout(0.0)));
  }
  at::Tensor forward(at::Tensor x) {
    x = x + attn(norm1(x));
    return x + mlp->forward(norm2(x));
  }
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  WindowAttention attn{nullptr};
  torch::nn::Sequential mlp{nullptr};

 private:
  int64_t dim_, heads_, window_, shift_;
};
TORCH_MODULE(SwinBlock);

/// torchvision's PatchMerging: 2×2 neighbours concatenated (padded to even sides), LayerNorm(4C),
/// Linear(4C → 2C, no bias).
class PatchMergingImpl : public torch::nn::Cloneable<PatchMergingImpl> {
 public:
  explicit PatchMergingImpl(int64_t dim) : dim_(dim) { reset(); }
  void reset() override {
    reduction = register_module("reduction", torch::nn::Linear(torch::nn::LinearOptions(4 * dim_, 2 * dim_).bias(false)));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4 * dim_}).eps(1e-5)));
  }
  at::Tensor forward(const at::Tensor& in) {
    auto x = at::constant_pad_nd(in, {0, 0, 0, in.size(2) % 2, 0, in.size(1) % 2});
    auto even = [](const at::Tensor& t, int64_t d, int64_t start) { return t.slice(d, start, t.size(d), 2); };
    x = at::cat({even(even(x, 1, 0), 2, 0), even(even(x, 1, 1), 2, 0), even(even(x, 1, 0), 2, 1),
                 even(even(x, 1, 1), 2, 1)},
                -1);
    return reduction(norm(x));
  }
  torch::nn::Linear reduction{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  int64_t dim_;
};
TORCH_MODULE(PatchMerging);

/// features.0: Conv2d(3, 96, 4, stride 4) as "0", channels-last, LayerNorm(96) as "2".
class SwinStemImpl : public torch::nn::Cloneable<SwinStemImpl> {
 public:
  SwinStemImpl() { reset(); }
  void reset() override {
    conv = register_module("0", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 96, 4).stride(4)));
    norm = register_module("2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({96}).eps(1e-5)));
  }
  at::Tensor forward(const at::Tensor& x) { return norm(conv(x).permute({0, 2, 3, 1})); }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(SwinStem);

/// One stage: blocks "0" … "depth−1", the odd ones with shifted windows.
class SwinStageImpl : public torch::nn::Cloneable<SwinStageImpl> {
 public:
  SwinStageImpl(int64_t dim, int64_t heads, int64_t depth, int64_t window)
      : dim_(dim), heads_(heads), depth_(depth), window_(window) {
    reset();
  }
  void reset() override {
    blocks.clear();
    for (int64_t b = 0; b < depth_; ++b)
      blocks.push_back(register_module(std::to_string(b), SwinBlock(dim_, heads_, window_, b % 2 ? window_ / 2 : 0)));
  }
  at::Tensor forward(at::Tensor x) {
    for (auto& b : blocks) x = b(x);
    return x;
  }
  std::vector<SwinBlock> blocks;

 private:
  int64_t dim_, heads_, depth_, window_;
};
TORCH_MODULE(SwinStage);

class SwinTImpl : public torch::nn::Cloneable<SwinTImpl> {
 public:
  static constexpr std::array<int64_t, 4> stage_channels{96, 192, 384, 768};

  SwinTImpl() { reset(); }
  /// `features` holds, as torchvision numbers them: 0 the patch embedding, 1, 3, 5, 7 the stages,
  /// 2, 4, 6 the patch mergings.
  void reset() override {
    constexpr int64_t embed = 96, window = 7;
    constexpr std::array<int64_t, 4> depths{2, 2, 6, 2}, heads{3, 6, 12, 24};
    features = torch::nn::Sequential(SwinStem());
    for (size_t s = 0; s < 4; ++s) {
      const int64_t dim = embed << s;
      features->push_back(SwinStage(dim, heads[s], depths[s], window));
      if (s < 3) features->push_back(PatchMerging(dim));
    }
    register_module("features", features);
  }

  /// The outputs of the four stages (features.1, .3, .5, .7), channels last, for ImageNet-
  /// normalised images [N, 3, H, W].
  std::vector<at::Tensor> stages(const at::Tensor& x) {
    if (x.dim() != 4 || x.size(1) != 3 || x.size(2) < 4 || x.size(3) < 4)
      throw std::invalid_argument("Swin-T: expected images [N, 3, H, W] with H, W ≥ 4");
    std::vector<at::Tensor> out;
    // Entries are looked up, not held: a clone (EMA copies) replaces them in place.
    auto h = features->at<SwinStemImpl>(0).forward(x);
    for (size_t s = 0; s < 4; ++s) {
      if (s > 0) h = features->at<PatchMergingImpl>(2 * s).forward(h);
      out.push_back(h = features->at<SwinStageImpl>(2 * s + 1).forward(h));
    }
    return out;
  }

  torch::nn::Sequential features{nullptr};
};
TORCH_MODULE(SwinT);

}  // namespace casdm::metric
