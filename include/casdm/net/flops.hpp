#pragma once
// What a U-Net costs, counted from its options (no network is built):
// - flops: floating-point operations of one forward pass per image, 2 per multiply-add of every
//   convolution, linear layer and attention product (q·kᵀ and w·v). GroupNorm, activations, the
//   embedding lookup and other elementwise work are not counted, as fvcore and PyTorch's
//   FlopCounterMode count. A training step is ≈ 3× its forward (backward ≈ 2×); what benchmarks
//   divide by time to give TFLOP/s and MFU.
// - parameters: exactly the network's (a test holds it equal to the built UNet's).
// - activations: an estimate of the values one image's forward keeps for backward — each block's
//   inputs, normalised and activated copies, convolution outputs, and attention's weights — what a
//   training step's memory grows by per image (train::check_memory).
//
//   auto f = casdm::net::forward_flops(options.theta_net(), 1, 1);   // θ of a 1-channel model
//   auto p = casdm::net::cost(options.theta_net(), 1, 1).parameters;
//
// bench/pytorch_eager.py counts the same by forward hooks on its replica of the network; a test
// holds the two equal.
#include "casdm/net/unet_options.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace casdm::net {

struct Cost {
  int64_t flops = 0, parameters = 0, activations = 0;
};

/// The cost of UNet(o) on one image of `o.image_size()`² with `in` input and `out` output channels
/// (what arch::UNet / arch::FixResCNN set as o's in/out channels). `resample` false counts the
/// Fix-Res CNN (no down/up-sampling; attention as given).
inline Cost cost(const UNetOptions& o, int64_t in, int64_t out, bool resample = true) {
  const int64_t mc = o.model_channels(), emb = 4 * mc;
  int64_t side = o.image_size();
  Cost c;
  int64_t& total = c.flops;
  auto conv = [&](int64_t cin, int64_t cout, int64_t k, int64_t out_side) {
    total += 2 * cin * cout * k * k * out_side * out_side;
    c.parameters += cin * cout * k * k + cout;
    c.activations += cout * out_side * out_side;
  };
  auto linear = [&](int64_t a, int64_t b) {
    total += 2 * a * b;
    c.parameters += a * b + b;
  };
  auto norm = [&](int64_t ch) {  // GroupNorm and the SiLU after it: two copies kept
    c.parameters += 2 * ch;
    c.activations += 2 * ch * side * side;
  };
  auto attends = [&](int64_t level) {
    const auto& r = o.attention_resolutions();
    return std::find(r.begin(), r.end(), o.image_size() >> level) != r.end();
  };
  auto res_block = [&](int64_t cin, int64_t cout) {
    c.activations += cin * side * side;  // the block's input
    norm(cin);
    conv(cin, cout, 3, side);
    linear(emb, o.use_scale_shift_norm() ? 2 * cout : cout);
    norm(cout);
    conv(cout, cout, 3, side);
    if (cin != cout) conv(cin, cout, 1, side);
  };
  auto attention = [&](int64_t ch) {
    const int64_t L = side * side;
    total += 2 * ch * 3 * ch * L;  // qkv
    total += 2 * 2 * L * L * ch;   // q·kᵀ and w·v over all heads
    total += 2 * ch * ch * L;      // proj
    norm(ch);
    c.parameters += ch * 3 * ch + 3 * ch + ch * ch + ch;  // qkv and proj (1×1)
    c.activations += 3 * ch * L + 2 * o.num_heads() * L * L + 2 * ch * L;  // qkv; weights, softmax; w·v, proj
  };
  linear(mc, emb);
  linear(emb, emb);
  if (o.num_classes() > 0) c.parameters += (o.num_classes() + 1) * emb;
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
  norm(ch);
  conv(ch, out, 3, side);
  return c;
}

/// FLOP of one forward pass (cost(o, in, out, resample).flops).
inline int64_t forward_flops(const UNetOptions& o, int64_t in, int64_t out, bool resample = true) {
  return cost(o, in, out, resample).flops;
}

}  // namespace casdm::net
