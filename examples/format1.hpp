#pragma once
// Converting checkpoints and model files of format 1 (written before 2026-12-07) to format 2, once:
// what casdm-upgrade does (examples/casdm_upgrade.cpp). The library reads format 2 only.
//
//   casdm::format1::upgrade_file("out/casdm/checkpoints/ckpt-000001200.pt");   // in place, verified
//
// Format 1 named a model by the C++ type GCC demangled ("casdm::ModelImpl<casdm::schedule::Cosine,
// ..., casdm::loss::EpsMSE<std::ratio<1l, 1l> >, ...>") and kept its settings as flat strings
// ("casdm.options.image_size", "casdm.trainer.lr"). Converting one turns the type it names into an
// identity, splits its settings into format 2's sections (the denoiser's options, the objective's,
// the trainer's, the run's) and writes them as one sealed config; its tensors are kept as they are.
//
// Format 1 is closed: the policies it could name are the ones below, each an old spelling with the
// registered name of the policy it meant — a record of that format, kept as literals rather than
// read from the policy headers (so this reads no network or loss). A test holds every entry equal to
// its policy's registered name.
#include "casdm/train/checkpoint.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::format1 {

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

/// A format-1 type name as an identity; none where it names a type format 1's table does not hold
/// (a policy of the user's own) or is not a type name at all.
inline std::optional<std::string> identity(const std::string& cxx) {
  try {
    size_t i = 0;
    auto id = identity(parse_type(cxx, i));
    return i == cxx.size() ? id : std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
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

/// A format-1 trainer setting ("trainer.lr", "ema.0.rate", ...; its text) as format 2's trainer
/// section holds it: a real or an integer, as the Trainer writes that setting. Format 1 had no other.
inline nlohmann::json trainer_value(const std::string& key, const std::string& text) {
  static const std::set<std::string> integers{"micro_batch", "skipped_steps", "loss_scale_good_steps"};
  static const std::set<std::string> reals{"lr", "weight_decay", "grad_clip", "loss_scale", "label_dropout", "rate"};
  const auto name = key.substr(key.rfind('.') + 1);
  const char *b = text.data(), *e = text.data() + text.size();
  if (integers.count(name)) {
    int64_t i = 0;
    if (std::from_chars(b, e, i).ptr == e && b != e) return i;
  } else if (reals.count(name)) {
    double d = 0;
    if (std::from_chars(b, e, d).ptr == e && b != e) return d;
  } else {
    throw std::invalid_argument(fmt::format("'casdm.{}' is a setting format 2 has no place for", key));
  }
  throw std::invalid_argument(fmt::format("'casdm.{}' = '{}' is not {}", key, text, integers.count(name) ? "an integer" : "a number"));
}

/// The λ of each term of a model identity's loss set, in order: "cosine | eps-only(unet) | eps:1 +
/// lpips(224):1/10" → {eps 1, lpips 0.1} (a term's name ends at its size, weighting or λ).
inline std::vector<std::pair<std::string, double>> term_weights(const std::string& model_identity) {
  std::vector<std::pair<std::string, double>> out;
  const auto set = model_identity.substr(model_identity.rfind(" | ") + 3);
  for (size_t p = 0; p < set.size();) {
    auto q = set.find(" + ", p);
    const auto term = set.substr(p, q == std::string::npos ? std::string::npos : q - p);
    const auto colon = term.rfind(':'), slash = term.find('/', colon);
    const double num = std::stod(term.substr(colon + 1)), den = slash == std::string::npos ? 1 : std::stod(term.substr(slash + 1));
    out.emplace_back(term.substr(0, term.find_first_of("(@:")), num / den);
    p = q == std::string::npos ? set.size() : q + 3;
  }
  return out;
}

/// Whether `f` (a tensor file's metadata, "casdm." stripped) is a format-1 checkpoint or model file.
inline bool is_format1(const io::TensorFile& f) {
  const auto it = f.meta.find("format");
  return it != f.meta.end() && (it->second == train::checkpoint_format_1 || it->second == train::denoiser_format_1);
}

/// The format-2 file that format-1 file `f` is: its type names as identities, its settings in format
/// 2's sections, sealed; its tensors as they are. A type format 1's table does not hold is refused
/// naming it (such a file cannot be converted), as is a setting format 2 has no place for.
inline io::TensorFile convert(const io::TensorFile& f) {
  if (!is_format1(f)) throw std::invalid_argument("it is not a format-1 checkpoint or model file");
  const auto& meta = f.meta;
  auto get = [&](const std::string& k) {
    auto it = meta.find(k);
    return it == meta.end() ? std::string() : it->second;
  };
  const bool model_file = get("format") == train::denoiser_format_1;
  auto known = [&](const char* key) {
    const auto cxx = get(key);
    if (cxx.empty()) throw std::invalid_argument(fmt::format("it lacks 'casdm.{}'", key));
    auto id = identity(cxx);
    if (!id) throw std::invalid_argument(fmt::format("its {} type names a part format 1's table does not hold: '{}'", key, cxx));
    return *id;
  };
  io::TensorFile out;
  out.tensors = f.tensors;
  out.meta["format"] = model_file ? train::denoiser_format : train::checkpoint_format;
  out.meta["denoiser"] = known("denoiser");
  const auto o = options(meta);
  nlohmann::json config = {{"denoiser", train::denoiser_config(o.denoiser)}, {"run", nlohmann::json::object()}};
  if (!model_file) {
    const auto model = known("model");
    out.meta["identity"] = model;
    out.meta["step"] = get("step");
    auto weights = term_weights(model);  // format 2 lists every term's λ: the type's, or the one format 1 kept
    for (const auto& [name, w] : o.objective.loss_weights()) {
      auto it = std::find_if(weights.begin(), weights.end(), [&](const auto& t) { return t.first == name; });
      if (it == weights.end())
        throw std::invalid_argument(fmt::format("'casdm.options.loss_weight.{}' names no term of its loss set", name));
      it->second = w;
    }
    config["objective"] = train::objective_config(o.objective, weights, get("external.checksum"));
    config["trainer"] = nlohmann::json::object();
    if (o.label_dropout) config["trainer"]["label_dropout"] = trainer_value("options.label_dropout", *o.label_dropout);
  }
  for (const auto& [k, v] : meta) {
    if (k == "format" || k == "model" || k == "denoiser" || k == "step" || k == "external.checksum" ||
        k.rfind("options.", 0) == 0 || k.rfind("crc32.", 0) == 0)
      continue;
    if (k.rfind("trainer.", 0) == 0 && !model_file) {
      config["trainer"][k.substr(8)] = trainer_value(k, v);
    } else if (k.rfind("ema.", 0) == 0 && !model_file) {
      size_t i = 0;
      const auto [end, ec] = std::from_chars(k.data() + 4, k.data() + k.size(), i);
      if (ec != std::errc() || std::string(end) != ".rate" || i != config["trainer"].value("ema_rates", nlohmann::json::array()).size())
        throw std::invalid_argument(fmt::format("'casdm.{}' is not an EMA rate in order", k));
      config["trainer"]["ema_rates"].push_back(trainer_value(k, v));
    } else {
      config["run"][k] = v;  // the caller's: "preset", a program's "args.*"
    }
  }
  out.meta["config"] = config.dump();
  train::detail::seal(out);
  return out;
}

/// Converts the format-1 file at `path` in place and says what it did: it is written beside, read back
/// as format 2 (identities, options, every tensor compared), and only then put in the original's
/// place. A file already of format 2 is left as it is ("already format 2"), as is, when `in_folder`
/// (found in a folder, not named), a file that is no casdm checkpoint; anything else is refused.
inline std::string upgrade_file(const std::filesystem::path& path, bool in_folder = false) {
  io::TensorFile f;
  try {
    f = io::read_tensor_file(path);
  } catch (const std::exception& e) {
    if (!in_folder) throw;
    return fmt::format("left as it is: {}", e.what());
  }
  if (!is_format1(f)) {
    auto it = f.meta.find("format");
    if (it != f.meta.end() && (it->second == train::checkpoint_format || it->second == train::denoiser_format))
      return fmt::format("{}: already format 2", path.string());
    if (in_folder && it == f.meta.end()) return fmt::format("{}: not a checkpoint or model file, left as it is", path.string());
    throw std::runtime_error(fmt::format("{} is not a casdm checkpoint or model file of format 1{}", path.string(),
                                         it == f.meta.end() ? "" : fmt::format(" (its format is '{}')", it->second)));
  }
  io::TensorFile v2;
  try {
    v2 = convert(f);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{} cannot be converted: {}", path.string(), e.what()));
  }
  auto beside = path;
  beside += ".upgrading";
  io::write_tensor_file(beside, v2);
  try {
    const auto back = train::read_checkpoint(beside);
    const auto o = options(f.meta);
    bool same = back.denoiser_type == v2.meta.at("denoiser") && back.file.tensors.size() == f.tensors.size() &&
                casdm::options_differences(back.denoiser_options, o.denoiser).empty();
    for (const auto& [k, t] : f.tensors) same = same && back.file.tensors.count(k) && at::equal(back.file.tensors.at(k), t);
    for (const auto& [k, v] : f.meta)
      if (k.rfind("trainer.", 0) == 0 || k.rfind("ema.", 0) == 0) same = same && back.get(k) == v;
    if (!same) throw std::runtime_error("it does not read back as the file it was converted from");
  } catch (const std::exception& e) {
    std::filesystem::remove(beside);
    throw std::runtime_error(fmt::format("{} was not converted: {}", path.string(), e.what()));
  }
  std::filesystem::rename(beside, path);
  return fmt::format("{}: converted to {} ({}{})", path.string(), v2.meta.at("format"),
                     v2.meta.count("step") ? "step " + v2.meta.at("step") + ", " : "",
                     v2.meta.count("identity") ? v2.meta.at("identity") : v2.meta.at("denoiser"));
}

}  // namespace casdm::format1
