#pragma once
// DenoiserOptions as flat "key" → "value" strings, the form format-1 checkpoints carried them in
// and format 2's JSON is made from (so a file rebuilds its own denoiser, and a resume with other
// sizes is refused by name).
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
    if (it == m.end()) throw std::invalid_argument("denoiser options: '" + prefix + key + "' is missing");
    return it->second;
  }
  [[noreturn]] void bad(const std::string& key, const char* what) const {
    throw std::invalid_argument("denoiser options: '" + prefix + key + "' = '" + raw(key) + "' is not " + what);
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
inline std::map<std::string, std::string> options_to_map(const DenoiserOptions& o) {
  std::map<std::string, std::string> m;
  m["image_size"] = fmt::format("{}", o.image_size());
  m["channels"] = fmt::format("{}", o.channels());
  m["diffusion_steps"] = fmt::format("{}", o.diffusion_steps());
  detail::put_net(m, "net.", o.net());
  if (o.phi_net()) detail::put_net(m, "phi_net.", *o.phi_net());
  if (o.num_classes() > 0) m["num_classes"] = fmt::format("{}", o.num_classes());  // unconditional: the keys of before
  return m;
}

/// The inverse of options_to_map; a missing or malformed entry is an error naming it, and so is a
/// key that is not a denoiser option.
inline DenoiserOptions options_from_map(const std::map<std::string, std::string>& m) {
  detail::MapReader r{m, ""};
  auto o = DenoiserOptions()
               .image_size(r.integer("image_size"))
               .channels(r.integer("channels"))
               .diffusion_steps(r.integer("diffusion_steps"))
               .net(detail::get_net(m, "net."));
  if (m.count("phi_net.model_channels")) o.phi_net(detail::get_net(m, "phi_net."));
  if (m.count("num_classes")) o.num_classes(r.integer("num_classes"));
  const auto known = options_to_map(o);
  for (const auto& [k, v] : m)
    if (!known.count(k)) throw std::invalid_argument("denoiser options: '" + k + "' is not one of them");
  return o;
}

/// "key: a vs b" for every field where `a` and `b` differ (empty when they are the same).
inline std::vector<std::string> options_differences(const DenoiserOptions& a, const DenoiserOptions& b) {
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
