#pragma once
// Floating-point operations of one U-Net forward pass per image, counted from its options (no
// network is built): 2 per multiply-add of every convolution, linear layer and attention product
// (q·kᵀ and w·v). GroupNorm, activations, the embedding lookup and other elementwise work are not
// counted, as fvcore and PyTorch's FlopCounterMode count. A training step of a trained network is
// ≈ 3× its forward (backward ≈ 2×); what benchmarks divide by time to give TFLOP/s and MFU.
//
//   auto f = casdm::net::forward_flops(options.theta_net(), 1, 1);   // θ of a 1-channel model
//
// bench/pytorch_eager.py counts the same by forward hooks on its replica of the network; a test
// holds the two equal.
#include "casdm/net/unet_options.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace casdm::net {

/// FLOP of one forward pass of UNet(o) on one image of `o.image_size()`² with `in` input and
/// `out` output channels (what arch::UNet / arch::FixResCNN set as o's in/out channels).
/// `resample` false counts the Fix-Res CNN (no down/up-sampling; attention as given).
inline int64_t forward_flops(const UNetOptions& o, int64_t in, int64_t out, bool resample = true) {
  const int64_t mc = o.model_channels(), emb = 4 * mc;
  int64_t side = o.image_size(), total = 0;
  auto conv = [&](int64_t cin, int64_t cout, int64_t k, int64_t out_side) { total += 2 * cin * cout * k * k * out_side * out_side; };
  auto linear = [&](int64_t a, int64_t b) { total += 2 * a * b; };
  auto attends = [&](int64_t level) {
    const auto& r = o.attention_resolutions();
    return std::find(r.begin(), r.end(), o.image_size() >> level) != r.end();
  };
  auto res_block = [&](int64_t cin, int64_t cout) {
    conv(cin, cout, 3, side);
    linear(emb, o.use_scale_shift_norm() ? 2 * cout : cout);
    conv(cout, cout, 3, side);
    if (cin != cout) conv(cin, cout, 1, side);
  };
  auto attention = [&](int64_t c) {
    const int64_t L = side * side;
    total += 2 * c * 3 * c * L;  // qkv
    total += 2 * 2 * L * L * c;  // q·kᵀ and w·v over all heads
    total += 2 * c * c * L;      // proj
  };
  linear(mc, emb);
  linear(emb, emb);
  conv(in, mc, 3, side);
  std::vector<int64_t> skips{mc};
  int64_t ch = mc;
  const auto& mult = o.channel_mult();
  const int64_t levels = static_cast<int64_t>(mult.size());
  for (int64_t level = 0; level < levels; ++level) {
    for (int64_t i = 0; i < o.num_res_blocks(); ++i) {
      res_block(ch, mult[static_cast<size_t>(level)] * mc);
      ch = mult[static_cast<size_t>(level)] * mc;
      if (attends(level)) attention(ch);
      skips.push_back(ch);
    }
    if (level + 1 < levels) {
      if (resample) {
        side = (side + 1) / 2;  // 3×3, stride 2, padding 1
        conv(ch, ch, 3, side);
      }
      skips.push_back(ch);
    }
  }
  res_block(ch, ch);
  if (o.middle_attention()) attention(ch);
  res_block(ch, ch);
  for (int64_t level = levels - 1; level >= 0; --level) {
    for (int64_t i = 0; i <= o.num_res_blocks(); ++i) {
      const int64_t c = mult[static_cast<size_t>(level)] * mc;
      res_block(ch + skips.back(), c);
      skips.pop_back();
      ch = c;
      if (attends(level)) attention(ch);
      if (level > 0 && i == o.num_res_blocks() && resample) {
        side *= 2;
        conv(ch, ch, 3, side);
      }
    }
  }
  conv(ch, out, 3, side);
  return total;
}

}  // namespace casdm::net
