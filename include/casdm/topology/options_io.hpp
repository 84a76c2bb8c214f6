#pragma once
// ModelOptions as flat "key" → "value" strings, the form checkpoints carry them in (so a
// checkpoint rebuilds its own model, and a resume with other sizes is refused by name).
//
//   auto meta = casdm::options_to_map(opts);        // {"image_size": "32", "net.channel_mult": "1,2,2,2", ...}
//   auto back = casdm::options_from_map(meta);      // equal to opts
//   auto diff = casdm::options_differences(a, b);   // {"net.model_channels: 64 vs 128"}
#include <fmt/format.h>
#include "casdm/topology/options.hpp"
#include "casdm/io/text.hpp"

#include <fmt/ranges.h>

#include <charconv>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm {

namespace detail {

inline std::string join_ints(const std::vector<int64_t>& v) {
  return fmt::format("{}", fmt::join(v, ","));
}

inline std::string format_double(double d) { return io::number_str(d); }

struct MapReader {
  const std::map<std::string, std::string>& m;
  std::string prefix;

  const std::string& raw(const std::string& key) const {
    auto it = m.find(prefix + key);
    if (it == m.end()) throw std::invalid_argument("model options: '" + prefix + key + "' is missing");
    return it->second;
  }
  [[noreturn]] void bad(const std::string& key, const char* what) const {
    throw std::invalid_argument("model options: '" + prefix + key + "' = '" + raw(key) + "' is not " + what);
  }
  int64_t integer(const std::string& key) const {
    const auto& s = raw(key);
    int64_t v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size()) bad(key, "an integer");
    return v;
  }
  double real(const std::string& key) const {
    const auto& s = raw(key);
    double v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size()) bad(key, "a number");
    return v;
  }
  bool boolean(const std::string& key) const {
    const auto& s = raw(key);
    if (s != "true" && s != "false") bad(key, "true or false");
    return s == "true";
  }
  std::vector<int64_t> integers(const std::string& key) const {
    const auto& s = raw(key);
    std::vector<int64_t> out;
    if (s.empty()) return out;
    const char* p = s.data();
    const char* end = s.data() + s.size();
    while (true) {
      int64_t v = 0;
      auto r = std::from_chars(p, end, v);
      if (r.ec != std::errc()) bad(key, "a comma-separated list of integers");
      out.push_back(v);
      if (r.ptr == end) break;
      if (*r.ptr != ',') bad(key, "a comma-separated list of integers");
      p = r.ptr + 1;
    }
    return out;
  }
};

inline void put_net(std::map<std::string, std::string>& m, const std::string& p, const net::UNetOptions& o) {
  m[p + "model_channels"] = fmt::format("{}", o.model_channels());
  m[p + "channel_mult"] = join_ints(o.channel_mult());
  m[p + "num_res_blocks"] = fmt::format("{}", o.num_res_blocks());
  m[p + "attention_resolutions"] = join_ints(o.attention_resolutions());
  m[p + "num_heads"] = fmt::format("{}", o.num_heads());
  m[p + "dropout"] = format_double(o.dropout());
  m[p + "use_scale_shift_norm"] = o.use_scale_shift_norm() ? "true" : "false";
  m[p + "norm_groups"] = fmt::format("{}", o.norm_groups());
  m[p + "resample"] = o.resample() ? "true" : "false";
  m[p + "middle_attention"] = o.middle_attention() ? "true" : "false";
}

inline net::UNetOptions get_net(const std::map<std::string, std::string>& m, const std::string& p) {
  MapReader r{m, p};
  return net::UNetOptions()
      .model_channels(r.integer("model_channels"))
      .channel_mult(r.integers("channel_mult"))
      .num_res_blocks(r.integer("num_res_blocks"))
      .attention_resolutions(r.integers("attention_resolutions"))
      .num_heads(r.integer("num_heads"))
      .dropout(r.real("dropout"))
      .use_scale_shift_norm(r.boolean("use_scale_shift_norm"))
      .norm_groups(r.integer("norm_groups"))
      .resample(r.boolean("resample"))
      .middle_attention(r.boolean("middle_attention"));
}

}  // namespace detail

/// Every field of `o` as a string; nested networks under "net." and "phi_net.".
inline std::map<std::string, std::string> options_to_map(const ModelOptions& o) {
  std::map<std::string, std::string> m;
  m["image_size"] = fmt::format("{}", o.image_size());
  m["channels"] = fmt::format("{}", o.channels());
  m["diffusion_steps"] = fmt::format("{}", o.diffusion_steps());
  m["feature_size"] = fmt::format("{}", o.feature_size());
  m["feature_weights"] = o.feature_weights();
  detail::put_net(m, "net.", o.net());
  if (o.phi_net()) detail::put_net(m, "phi_net.", *o.phi_net());
  if (o.num_classes() > 0) {  // unconditional models keep the keys of before
    m["num_classes"] = fmt::format("{}", o.num_classes());
    m["label_dropout"] = detail::format_double(o.label_dropout());
  }
  for (const auto& [name, w] : o.loss_weights()) m["loss_weight." + name] = detail::format_double(w);
  return m;
}

/// The inverse of options_to_map; a missing or malformed entry is an error naming it.
inline ModelOptions options_from_map(const std::map<std::string, std::string>& m) {
  detail::MapReader r{m, ""};
  auto o = ModelOptions()
               .image_size(r.integer("image_size"))
               .channels(r.integer("channels"))
               .diffusion_steps(r.integer("diffusion_steps"))
               .feature_size(r.integer("feature_size"))
               .feature_weights(r.raw("feature_weights"))
               .net(detail::get_net(m, "net."));
  if (m.count("phi_net.model_channels")) o.phi_net(detail::get_net(m, "phi_net."));
  if (m.count("num_classes")) {
    o.num_classes(r.integer("num_classes"));
    if (m.count("label_dropout")) o.label_dropout(r.real("label_dropout"));  // model files have none
  }
  std::map<std::string, double> weights;
  for (const auto& [k, v] : m)
    if (k.rfind("loss_weight.", 0) == 0) weights[k.substr(12)] = r.real(k);
  o.loss_weights(weights);
  return o;
}

/// Whether option `key` (options_to_map's name) shapes the denoiser — its networks, sizes, T and
/// classes — rather than how it is trained: the objective's feature_size, feature_weights and
/// loss_weight.<term>, and the trainer's label_dropout. A resume must match the first kind only.
inline bool is_denoiser_option(const std::string& key) {
  return key != "feature_size" && key != "feature_weights" && key != "label_dropout" && key.rfind("loss_weight.", 0) != 0;
}

/// "key: a vs b" for every field where `a` and `b` differ (empty when they are the same).
inline std::vector<std::string> options_differences(const ModelOptions& a, const ModelOptions& b);
/// The same for the denoiser's fields alone (is_denoiser_option; `denoiser`) or the others alone.
inline std::vector<std::string> options_differences(const ModelOptions& a, const ModelOptions& b, bool denoiser) {
  std::vector<std::string> out;
  for (auto& d : options_differences(a, b))
    if (is_denoiser_option(d.substr(0, d.find(':'))) == denoiser) out.push_back(std::move(d));
  return out;
}

inline std::vector<std::string> options_differences(const ModelOptions& a, const ModelOptions& b) {
  const auto ma = options_to_map(a), mb = options_to_map(b);
  std::vector<std::string> out;
  auto value = [](const std::map<std::string, std::string>& m, const std::string& k) {
    auto it = m.find(k);
    return it == m.end() ? std::string("(unset)") : "'" + it->second + "'";
  };
  std::map<std::string, int> keys;
  for (const auto& [k, v] : ma) keys[k];
  for (const auto& [k, v] : mb) keys[k];
  for (const auto& [k, unused] : keys)
    if (value(ma, k) != value(mb, k)) out.push_back(k + ": " + value(ma, k) + " vs " + value(mb, k));
  return out;
}

}  // namespace casdm
