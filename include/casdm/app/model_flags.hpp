#pragma once
// The sizes of a model as a training program's options give them — θ's U-Net, optional
// overrides for φ's, T, the feature loss's side and weights, class conditioning — checked against
// the preset they are for, and turned into the DenoiserOptions and ObjectiveOptions the model is
// built from (label dropout goes to TrainerOptions). The defaults are casdm-train's (CPU-sized:
// 16 channels, T = 1000); DenoiserOptions' own are the paper's.
//
//   casdm::app::ModelFlags flags;               // filled by the program's options
//   flags.model_channels = 32;
//   flags.check("CasDM");                        // one line per misfit: "--phi-res-blocks: preset ..."
//   CasDM model(flags.denoiser(/*channels=*/1, /*image_size=*/28, /*classes=*/0), flags.objective("CasDM"));
#include "casdm/loss/options.hpp"
#include "casdm/presets.hpp"
#include "casdm/topology/options.hpp"

#include <fmt/format.h>

#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace casdm::app {

struct ModelFlags {
  int64_t diffusion_steps = 1000;  // --diffusion-steps, T
  // θ's U-Net (and φ's unless overridden).
  int64_t model_channels = 16, res_blocks = 1, heads = 4, norm_groups = 8;
  std::vector<int64_t> channel_mult{1, 2, 2}, attention{7};
  double dropout = 0;
  // φ's U-Net where it differs from θ's (cascaded presets): 0 or empty keeps θ's.
  int64_t phi_model_channels = 0, phi_res_blocks = 0;
  std::vector<int64_t> phi_channel_mult, phi_attention;
  // Feature-loss presets: the resize side (0: the loss's own) and the backbone's weights folder.
  int64_t feature_size = 0;
  std::string feature_weights;
  // Class conditioning: the data set's labels embedded in θ and φ, dropped with this probability.
  bool class_cond = false;
  double label_dropout = 0.1;
  // Loss weights λ by term, "NAME=VALUE" ("x0=0.5"), replacing the preset's (ObjectiveOptions::loss_weights).
  std::vector<std::string> loss_weights;

  /// loss_weights as ObjectiveOptions::loss_weights; a malformed entry, a term `preset` lacks, a negative
  /// or non-finite λ, or a term given twice is refused in one line naming it.
  std::map<std::string, double> loss_weight_map(std::string_view preset) const {
    const auto traits = presets::traits(preset);
    std::map<std::string, double> out;
    for (const auto& s : loss_weights) {
      const auto eq = s.find('=');
      double v = 0;
      const char* end = s.data() + s.size();
      auto r = eq == std::string::npos ? std::from_chars_result{end, std::errc::invalid_argument}
                                       : std::from_chars(s.data() + eq + 1, end, v);
      if (eq == std::string::npos || eq == 0 || r.ec != std::errc() || r.ptr != end)
        throw std::invalid_argument(fmt::format("--loss-weight {}: expected NAME=VALUE, e.g. x0=0.5", s));
      const auto name = s.substr(0, eq);
      std::vector<std::string> terms;
      for (const auto& [term, w] : traits.losses) terms.push_back(term);
      if (std::find(terms.begin(), terms.end(), name) == terms.end())
        throw std::invalid_argument(fmt::format("--loss-weight {}: preset {} has no loss term '{}' (its terms: {})", s,
                                                preset, name, fmt::join(terms, ", ")));
      if (!(v >= 0) || !std::isfinite(v))
        throw std::invalid_argument(fmt::format("--loss-weight {}: a weight is a finite number >= 0", s));
      if (!out.emplace(name, v).second)
        throw std::invalid_argument(fmt::format("--loss-weight {}: term '{}' is given twice", s, name));
    }
    return out;
  }

  /// Whether any of φ's sizes is overridden.
  bool phi_overridden() const {
    return phi_model_channels != 0 || phi_res_blocks != 0 || !phi_channel_mult.empty() || !phi_attention.empty();
  }

  /// Refuses, in one line naming the option, a setting that `preset` would not read: φ's sizes
  /// on a preset without a φ network, a feature-loss setting on a preset without one. Also an
  /// unknown preset.
  void check(std::string_view preset) const {
    const auto traits = presets::traits(preset);
    const std::pair<const char*, bool> phi[] = {{"--phi-model-channels", phi_model_channels != 0},
                                                {"--phi-channel-mult", !phi_channel_mult.empty()},
                                                {"--phi-res-blocks", phi_res_blocks != 0},
                                                {"--phi-attention", !phi_attention.empty()}};
    for (const auto& [option, set] : phi)
      if (set && !traits.phi_net)
        throw std::invalid_argument(
            fmt::format("{}: preset {} has no phi network (only the cascaded presets do)", option, preset));
    const std::pair<const char*, bool> features[] = {{"--feature-size", feature_size != 0},
                                                     {"--feature-weights", !feature_weights.empty()}};
    for (const auto& [option, set] : features)
      if (set && !traits.features)
        throw std::invalid_argument(fmt::format("{}: preset {} has no feature loss", option, preset));
    loss_weight_map(preset);
    if (!(label_dropout >= 0 && label_dropout <= 1))
      throw std::invalid_argument(fmt::format("--label-dropout: a probability in [0, 1], got {}", label_dropout));
  }

  /// The denoiser's sizes for images of `channels` x `image_size` x `image_size` and, with
  /// class_cond, `classes` classes (ignored without it).
  DenoiserOptions denoiser(int64_t channels, int64_t image_size, int64_t classes) const {
    if (class_cond && classes < 1)
      throw std::invalid_argument(fmt::format("--class-cond: the data set has {} classes", classes));
    auto net = net::UNetOptions()
                   .model_channels(model_channels)
                   .channel_mult(channel_mult)
                   .num_res_blocks(res_blocks)
                   .attention_resolutions(attention)
                   .num_heads(heads)
                   .norm_groups(norm_groups)
                   .dropout(dropout);
    auto o = DenoiserOptions()
                 .image_size(image_size)
                 .channels(channels)
                 .diffusion_steps(diffusion_steps)
                 .net(net)
                 .num_classes(class_cond ? classes : 0);
    if (phi_overridden()) {
      auto phi = net;
      if (phi_model_channels) phi.model_channels(phi_model_channels);
      if (phi_res_blocks) phi.num_res_blocks(phi_res_blocks);
      if (!phi_channel_mult.empty()) phi.channel_mult(phi_channel_mult);
      if (!phi_attention.empty()) phi.attention_resolutions(phi_attention);
      o.phi_net(phi);
    }
    return o;
  }

  /// One line for each attention resolution (--attention, --phi-attention) that no level of the
  /// U-Net of `o` has, naming the levels' sides: such a resolution adds no attention anywhere.
  static std::vector<std::string> unused_attention(const DenoiserOptions& o) {
    std::vector<std::string> out;
    auto check = [&](const net::UNetOptions& n, const char* flag) {
      std::vector<int64_t> sides;
      for (size_t level = 0; level < n.channel_mult().size(); ++level) sides.push_back(n.image_size() >> level);
      for (int64_t r : n.attention_resolutions())
        if (std::find(sides.begin(), sides.end(), r) == sides.end())
          out.push_back(fmt::format("{} {}: no level of the U-Net is {} wide (its levels: {}); no attention is added for it",
                                    flag, r, r, fmt::join(sides, ", ")));
    };
    check(o.theta_net(), "--attention");
    if (o.phi_net()) check(o.phi_net_options(), "--phi-attention");
    return out;
  }

  /// The objective's settings: the feature loss's side and weights, and the loss weights, checked
  /// against `preset`.
  ObjectiveOptions objective(std::string_view preset) const {
    auto o = ObjectiveOptions().feature_size(feature_size).feature_weights(feature_weights);
    if (!loss_weights.empty()) o.loss_weights(loss_weight_map(preset));
    return o;
  }
};

}  // namespace casdm::app
