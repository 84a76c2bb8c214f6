#pragma once
// Reading checkpoints and model files of format 1 (written before 2026-12-07). Format 1 named a
// model by the C++ type GCC demangled ("casdm::ModelImpl<casdm::schedule::Cosine, ...,
// casdm::loss::EpsMSE<std::ratio<1l, 1l> >, ...>") and kept its settings as flat strings
// ("casdm.options.image_size", "casdm.trainer.lr"). This header turns such a file into what
// format 2 says: the identities of the types it names, the denoiser's and the objective's options,
// the trainer's settings. Nothing asks the compiler how it spells a type.
//
// Format 1 is closed: the policies it could name are the ones below, each an old spelling with the
// registered name of the policy it meant — a record of that format, kept here rather than read from
// the policy headers so that reading a checkpoint pulls in no network or loss (and stays C++17, as
// the fuzzing harness compiles it). A test holds every entry equal to its policy's registered name.
#include "casdm/loss/options.hpp"
#include "casdm/topology/options_io.hpp"

#include <fmt/format.h>

#include <charconv>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::train::format1 {

/// A C++ type as format 1 stored it ("casdm::X<a, b>", the "casdm::" dropped): a name and its arguments.
struct TypeName {
  std::string name;
  std::vector<TypeName> args;
};

inline TypeName parse_type(const std::string& s, size_t& i) {
  TypeName t;
  while (i < s.size() && s[i] == ' ') ++i;
  while (i < s.size() && s[i] != '<' && s[i] != ',' && s[i] != '>') t.name += s[i++];
  while (!t.name.empty() && t.name.back() == ' ') t.name.pop_back();
  if (t.name.rfind("casdm::", 0) == 0) t.name.erase(0, 7);
  if (i < s.size() && s[i] == '<') {
    do {
      ++i;
      t.args.push_back(parse_type(s, i));
    } while (i < s.size() && s[i] == ',');
    if (i >= s.size() || s[i] != '>') throw std::invalid_argument("unbalanced '<'");
    ++i;
    while (i < s.size() && s[i] == ' ') ++i;
  }
  return t;
}

/// The format-1 spelling of each policy (as parse_type leaves it), with the policy's registered name.
inline const std::map<std::string, std::string>& policy_names() {
  static const std::map<std::string, std::string> names{
      {"schedule::Cosine", "cosine"},
      {"schedule::Linear", "linear"},
      {"net::arch::UNet", "unet"},
      {"net::arch::FixResCNN", "fixres"},
      {"topology::phi_input::X0Star", "x0star"},
      {"topology::phi_input::Concat", "concat"},
      {"topology::EpsOnly", "eps-only"},
      {"topology::X0Only", "x0-only"},
      {"topology::VOnly", "v-only"},
      {"topology::DualHead", "dual-head"},
      {"topology::Cascaded", "cascaded"},
      {"loss::weighting::Uniform", "uniform"},
      {"loss::weighting::MinSNR", "min-snr"},
      {"loss::EpsMSE", "eps"},
      {"loss::X0MSE", "x0"},
      {"loss::VMSE", "v"},
      {"loss::MuMix", "mu"},
      {"loss::LPIPSBackbone", "lpips"},
      {"loss::ResNetBackbone", "resnet"},
      {"loss::InceptionBackbone", "inception"},
      {"loss::SwinBackbone", "swin"},
      {"loss::SmallVGGBackbone", "small_vgg"}};
  return names;
}

/// The identity (Model::Impl::identity(), Denoiser::Impl::identity(), in the grammar of
/// docs/policies.md) of a type format 1 named; nullopt for a type this build does not know.
inline std::optional<std::string> identity(const TypeName& t) {
  const auto& names = policy_names();
  auto arg = [&](size_t k) -> const TypeName& {
    if (k >= t.args.size()) throw std::invalid_argument("too few arguments");
    return t.args[k];
  };
  auto number = [](std::string n) {  // "1l", "224ll" → "1", "224"
    while (!n.empty() && (n.back() == 'l' || n.back() == 'L' || n.back() == 'u')) n.pop_back();
    return n;
  };
  auto ratio = [&](const TypeName& r) -> std::optional<std::string> {
    if (r.name != "std::ratio" || r.args.empty()) return std::nullopt;
    const auto num = number(r.args[0].name), den = r.args.size() > 1 ? number(r.args[1].name) : "1";
    return den == "1" ? num : num + "/" + den;
  };
  // The parts of `t` (each an identity), or nullopt if one is unknown.
  auto parts = [&](std::initializer_list<size_t> ks) -> std::optional<std::vector<std::string>> {
    std::vector<std::string> out;
    for (size_t k : ks) {
      auto p = identity(arg(k));
      if (!p) return std::nullopt;
      out.push_back(*p);
    }
    return out;
  };
  const auto named = names.find(t.name);
  if (named != names.end() && t.args.empty()) return named->second;  // a leaf: schedule, net, φ input, weighting
  if (t.name == "topology::Cascaded") {
    const bool v = t.args.size() > 3 && t.args[3].name == "topology::theta_head::V";
    const auto p = parts({0, 1, 2});
    if (!p) return std::nullopt;
    return fmt::format("{}({} <- {}, {})", v ? "cascaded-v" : named->second, (*p)[0], (*p)[1], (*p)[2]);
  }
  if (t.name.rfind("topology::", 0) == 0 && named != names.end()) {  // a one-network topology
    const auto p = parts({0});
    return p ? std::optional(named->second + "(" + (*p)[0] + ")") : std::nullopt;
  }
  if (t.name == "loss::weighting::MinSNR") {
    const auto g = ratio(arg(0));
    return g ? std::optional(named->second + "(" + *g + ")") : std::nullopt;
  }
  if (t.name.rfind("loss::", 0) == 0 && named != names.end()) {  // an MSE term: "eps:1"
    const auto w = ratio(arg(0));
    return w ? std::optional(named->second + ":" + *w) : std::nullopt;
  }
  if (t.name == "loss::Weighted") {  // "eps@min-snr(5):1": the term's name, its weighting, its λ
    const auto p = parts({0, 1});
    if (!p) return std::nullopt;
    const auto colon = (*p)[0].rfind(':');
    return (*p)[0].substr(0, colon) + "@" + (*p)[1] + (*p)[0].substr(colon);
  }
  if (t.name == "loss::Feature") {  // "lpips(224):1/10"
    const auto backbone = identity(arg(0));
    const auto w = ratio(arg(1));
    if (!backbone || !w) return std::nullopt;
    return fmt::format("{}({}):{}", *backbone, number(arg(2).name), *w);
  }
  if (t.name == "loss::Set") {
    std::string out;
    for (const auto& a : t.args) {
      auto term = identity(a);
      if (!term) return std::nullopt;
      out += (out.empty() ? "" : " + ") + *term;
    }
    return out;
  }
  if (t.name == "DenoiserImpl" || t.name == "ModelImpl") {  // a model's sampler is not part of its identity
    const auto p = t.name == "ModelImpl" ? parts({0, 1, 2}) : parts({0, 1});
    if (!p) return std::nullopt;
    return fmt::format("{}", fmt::join(*p, " | "));
  }
  return std::nullopt;
}

/// A format-1 type name as an identity; the name itself where this build does not know it (then it
/// matches no model of this build, and the refusal names it).
inline std::string identity(const std::string& cxx) {
  if (cxx.empty()) return cxx;
  try {
    size_t i = 0;
    auto id = identity(parse_type(cxx, i));
    return id && i == cxx.size() ? *id : cxx;
  } catch (const std::exception&) {
    return cxx;
  }
}

/// What a format-1 file's flat "options.*" settings hold: the denoiser's options, the objective's
/// (feature_size, feature_weights) and the trainer's label dropout, which format 1 kept among them.
struct Options {
  DenoiserOptions denoiser;
  ObjectiveOptions objective;
  std::optional<std::string> label_dropout;
};

inline Options options(const std::map<std::string, std::string>& meta) {
  std::map<std::string, std::string> denoiser;
  Options out;
  for (const auto& [key, v] : meta) {
    if (key.rfind("options.", 0) != 0) continue;
    const auto k = key.substr(8);
    if (k == "feature_size") {
      int64_t side = 0;
      if (std::from_chars(v.data(), v.data() + v.size(), side).ptr != v.data() + v.size())
        throw std::invalid_argument(fmt::format("'{}' = '{}' is not an integer", key, v));
      out.objective.feature_size(side);
    } else if (k == "feature_weights") {
      out.objective.feature_weights(v);
    } else if (k == "label_dropout") {
      out.label_dropout = v;
    } else if (k.rfind("loss_weight.", 0) == 0) {
      double w = 0;
      if (std::from_chars(v.data(), v.data() + v.size(), w).ptr != v.data() + v.size())
        throw std::invalid_argument(fmt::format("'{}' = '{}' is not a number", key, v));
      out.objective.loss_weights()[k.substr(12)] = w;
    } else {
      denoiser.emplace(k, v);
    }
  }
  out.denoiser = options_from_map(denoiser);
  return out;
}

}  // namespace casdm::train::format1
