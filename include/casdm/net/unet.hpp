#pragma once
// improved-diffusion's U-Net (`UNetModel`), the θ and default φ network of Cas-DM, and its
// fixed-resolution variant (paper Table 4, "Fix-Res CNN": every down- and up-sampling removed).
//
//   casdm::net::UNet net(casdm::net::UNetOptions(3, 3).model_channels(64).channel_mult({1, 2}));
//   auto out = net(x, t);   // x: [N,3,H,W], t: [N] (already rescaled to the 0..1000 range)
#include <fmt/format.h>
#include "casdm/net/blocks.hpp"
#include "casdm/net/unet_options.hpp"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>

#include <algorithm>
#include <vector>

namespace casdm::net {

/// One entry of the encoder or decoder path: any of a res block, an attention block and a
/// resampling op, applied in that order.
struct StageImpl : torch::nn::Cloneable<StageImpl> {
  enum class Resample { None, Down, Up };
  struct Spec {
    int64_t in = 0, out = 0;  // res block channels (0: no res block)
    bool attention = false;
    Resample resample = Resample::None;
    int64_t resample_channels = 0;
  };
  StageImpl(Spec spec, UNetOptions o) : spec_(spec), options_(std::move(o)) { reset(); }
  void reset() override {
    const auto& o = options_;
    const int64_t emb = 4 * o.model_channels();
    if (spec_.out)
      res = register_module("res", ResBlock(ResBlockOptions(spec_.in, emb, spec_.out)
                                                .dropout(o.dropout())
                                                .use_scale_shift_norm(o.use_scale_shift_norm())
                                                .norm_groups(o.norm_groups())));
    if (spec_.attention) attn = register_module("attn", AttentionBlock(spec_.out, o.num_heads(), o.norm_groups()));
    if (spec_.resample == Resample::Down)
      resample_conv = register_module("down", conv3x3(spec_.resample_channels, spec_.resample_channels, 2));
    if (spec_.resample == Resample::Up)
      resample_conv = register_module("up", conv3x3(spec_.resample_channels, spec_.resample_channels));
  }
  at::Tensor forward(at::Tensor x, const at::Tensor& emb) {
    if (res) x = res->forward(x, emb);
    if (attn) x = attn->forward(x);
    if (spec_.resample == Resample::Up)
      x = at::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2});
    if (resample_conv) x = conv_forward(resample_conv, x);
    return x;
  }
  Spec spec_;
  UNetOptions options_;
  ResBlock res{nullptr};
  AttentionBlock attn{nullptr};
  torch::nn::Conv2d resample_conv{nullptr};
};
TORCH_MODULE(Stage);

struct UNetImpl : torch::nn::Cloneable<UNetImpl> {
  explicit UNetImpl(UNetOptions o = {}) : options(std::move(o)) { reset(); }

  void reset() override {
    const auto& o = options;
    validate();
    const int64_t mc = o.model_channels(), emb = 4 * mc;
    time_embed = register_module("time_embed", torch::nn::Sequential(torch::nn::Linear(mc, emb), torch::nn::SiLU(),
                                                                      torch::nn::Linear(emb, emb)));
    if (o.num_classes() > 0) label_emb = register_module("label_emb", torch::nn::Embedding(o.num_classes() + 1, emb));
    in_conv = register_module("in_conv", conv3x3(o.in_channels(), mc));
    encoder = register_module("encoder", torch::nn::ModuleList());
    decoder = register_module("decoder", torch::nn::ModuleList());
    auto attends = [&](int64_t level) {
      const int64_t res = o.image_size() >> level;
      return std::find(o.attention_resolutions().begin(), o.attention_resolutions().end(), res) !=
             o.attention_resolutions().end();
    };
    using R = StageImpl::Resample;
    std::vector<int64_t> skip_channels{mc};
    int64_t ch = mc;
    const auto& mult = o.channel_mult();
    const int64_t levels = static_cast<int64_t>(mult.size());
    for (int64_t level = 0; level < levels; ++level) {
      for (int64_t i = 0; i < o.num_res_blocks(); ++i) {
        const int64_t out = mult[level] * mc;
        encoder->push_back(Stage(StageImpl::Spec{ch, out, attends(level)}, o));
        ch = out;
        skip_channels.push_back(ch);
      }
      if (level + 1 < levels) {
        // Fix-Res keeps an entry here (identity) so both variants skip-connect the same way.
        encoder->push_back(Stage(StageImpl::Spec{0, 0, false, o.resample() ? R::Down : R::None, ch}, o));
        skip_channels.push_back(ch);
      }
    }
    middle = register_module("middle", torch::nn::ModuleList());
    middle->push_back(Stage(StageImpl::Spec{ch, ch, o.middle_attention()}, o));
    middle->push_back(Stage(StageImpl::Spec{ch, ch, false}, o));
    for (int64_t level = levels - 1; level >= 0; --level) {
      for (int64_t i = 0; i <= o.num_res_blocks(); ++i) {
        const int64_t out = mult[level] * mc;
        const bool up = level > 0 && i == o.num_res_blocks();
        decoder->push_back(Stage(
            StageImpl::Spec{ch + skip_channels.back(), out, attends(level), up && o.resample() ? R::Up : R::None, out}, o));
        skip_channels.pop_back();
        ch = out;
      }
    }
    out_norm = register_module("out_norm", GroupNorm32(o.norm_groups(), ch));
    out_conv = register_module("out_conv", zeroed(conv3x3(ch, o.out_channels())));
  }

  /// x: [N, in_channels, H, W]; t: [N] timesteps (float, the rescaled 0..1000 range); y: [N] class
  /// indices in [0, num_classes] (num_classes: no label), or undefined for no label at all. The
  /// indices are not range-checked here (that would sync with the device): the model's entry
  /// points check them.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y = {}) {
    check_input(x, t);
    auto emb = time_embed->forward(timestep_embedding(t, options.model_channels()).to(x.device()));
    if (label_emb) {
      if (y.defined() && (y.dim() != 1 || y.size(0) != x.size(0)))
        throw std::invalid_argument("UNet: expected one class label per image");
      emb = emb + label_emb->forward(y.defined() ? y.to(x.device(), at::kLong)
                                                 : at::full({x.size(0)}, options.num_classes(), x.options().dtype(at::kLong)));
    } else if (y.defined()) {
      throw std::invalid_argument("UNet: class labels given to an unconditional network (num_classes 0)");
    }
    std::vector<at::Tensor> skips;
    auto h = conv_forward(in_conv, x);
    skips.push_back(h);
    for (const auto& m : *encoder) {
      h = m->as<StageImpl>()->forward(h, emb);
      skips.push_back(h);
    }
    for (const auto& m : *middle) h = m->as<StageImpl>()->forward(h, emb);
    for (const auto& m : *decoder) {
      h = m->as<StageImpl>()->forward(at::cat({h, skips.back()}, 1), emb);
      skips.pop_back();
    }
    return conv_forward(out_conv, at::silu(out_norm->forward(h)));
  }

  UNetOptions options;
  torch::nn::Sequential time_embed{nullptr};
  torch::nn::Embedding label_emb{nullptr};  // with num_classes > 0
  torch::nn::Conv2d in_conv{nullptr}, out_conv{nullptr};
  torch::nn::ModuleList encoder{nullptr}, middle{nullptr}, decoder{nullptr};
  GroupNorm32 out_norm{nullptr};

 private:
  void validate() const {
    const auto& o = options;
    auto fail = [](const std::string& m) { throw std::invalid_argument("UNet: " + m); };
    if (o.in_channels() < 1 || o.out_channels() < 1) fail("in_channels and out_channels must be >= 1");
    if (o.channel_mult().empty()) fail("channel_mult is empty");
    if (o.num_res_blocks() < 1) fail("num_res_blocks must be >= 1");
    if (o.model_channels() < 1) fail(fmt::format("model_channels must be >= 1, got {}", o.model_channels()));
    for (auto m : o.channel_mult())
      if (m < 1) fail(fmt::format("channel_mult entries must be >= 1, got {}", m));
    for (auto r : o.attention_resolutions())
      if (r < 1) fail(fmt::format("attention_resolutions entries must be >= 1, got {}", r));
    if (o.num_heads() < 1) fail(fmt::format("num_heads must be >= 1, got {}", o.num_heads()));
    if (o.norm_groups() < 1) fail(fmt::format("norm_groups must be >= 1, got {}", o.norm_groups()));
    if (!(o.dropout() >= 0 && o.dropout() < 1)) fail(fmt::format("dropout must be in [0, 1), got {}", o.dropout()));
    if (o.image_size() < 1) fail(fmt::format("image_size must be >= 1, got {}", o.image_size()));
    if (o.channel_mult().size() > 16) fail("channel_mult has more than 16 levels");
    if (o.num_classes() < 0 || o.num_classes() > 1000000)
      fail(fmt::format("num_classes must be in [0, 1000000], got {}", o.num_classes()));
    if (o.resample()) {
      const int64_t factor = int64_t{1} << (o.channel_mult().size() - 1);
      if (o.image_size() % factor != 0)
        fail(fmt::format("image_size {} is not divisible by 2^(levels-1) = {}; use fewer channel_mult levels or pad "
                         "the images",
                         o.image_size(), factor));
    }
  }
  void check_input(const at::Tensor& x, const at::Tensor& t) const {
    const auto& o = options;
    if (x.dim() != 4 || x.size(1) != o.in_channels())
      throw std::invalid_argument(fmt::format("UNet: expected input [N, {}, H, W], got a tensor with {} dims{}",
                                              o.in_channels(), x.dim(),
                                              x.dim() >= 2 ? fmt::format(" and {} channels", x.size(1)) : ""));
    if (o.resample()) {
      const int64_t factor = int64_t{1} << (o.channel_mult().size() - 1);
      if (x.size(2) % factor || x.size(3) % factor)
        throw std::invalid_argument(fmt::format("UNet: height and width must be divisible by {}", factor));
    }
    if (t.dim() != 1 || t.size(0) != x.size(0))
      throw std::invalid_argument("UNet: expected one timestep per image");
  }
};

/// `TORCH_MODULE(UNet)`, spelled out so the holder can carry a default constructor.
class UNet : public torch::nn::ModuleHolder<UNetImpl> {
 public:
  using torch::nn::ModuleHolder<UNetImpl>::ModuleHolder;
  using Impl = UNetImpl;
};

namespace arch {

/// Network policies: how a topology builds θ or φ from the model's network options.
/// A policy provides `name` and `make(options, in_channels, out_channels)` returning a module
/// holder whose `forward(x, t)` gives [N, out_channels, H, W].
struct UNet {
  static constexpr const char* name = "unet";
  /// The options of the network `make` builds (what net::forward_flops counts).
  static UNetOptions configure(UNetOptions o, int64_t in, int64_t out) {
    return o.in_channels(in).out_channels(out).resample(true);
  }
  static net::UNet make(UNetOptions o, int64_t in, int64_t out) { return net::UNet(configure(std::move(o), in, out)); }
};

/// The Fix-Res CNN of the paper's Table 4: the U-Net without down/up-sampling and with fewer
/// attention layers — only the coarsest listed resolution keeps attention (paper: "we remove a
/// few attention layers ... to make it easier for training"), plus the middle block.
struct FixResCNN {
  static constexpr const char* name = "fixres";
  static UNetOptions configure(UNetOptions o, int64_t in, int64_t out) {
    auto res = o.attention_resolutions();
    if (!res.empty()) res = {*std::min_element(res.begin(), res.end())};
    return o.in_channels(in).out_channels(out).resample(false).attention_resolutions(res);
  }
  static net::UNet make(UNetOptions o, int64_t in, int64_t out) { return net::UNet(configure(std::move(o), in, out)); }
};

}  // namespace arch
}  // namespace casdm::net
