#pragma once
// Checkpoints and model files of trained denoisers, and loading a denoiser from either.
//
//   auto info = casdm::train::read_checkpoint("out/casdm/checkpoints/ckpt-000001200.pt");
//   auto d = casdm::train::load_denoiser<casdm::presets::CasDM::Denoiser>(info);          // first EMA
//   auto r = casdm::train::load_denoiser<casdm::presets::CasDM::Denoiser>(info, casdm::train::Weights::raw());
//   casdm::train::save_denoiser(*d, "casdm.pt");                 // a model file: weights + options
//   auto back = casdm::train::load_denoiser<casdm::presets::CasDM::Denoiser>("casdm.pt");
//
// Format 2 (casdm-checkpoint-2, casdm-denoiser-2; docs/checkpoints.md). A tensor file (io/tensor_file.hpp)
// whose metadata strings are exactly
//   casdm.format    "casdm-checkpoint-2" or "casdm-denoiser-2"
//   casdm.identity  the model's stable identity (checkpoints): "cosine | cascaded(unet <- x0star, unet) | eps:1 + x0:1 + mu:1"
//   casdm.denoiser  the denoiser's: "cosine | cascaded(unet <- x0star, unet)"
//   casdm.step      optimiser steps taken (checkpoints)
//   casdm.config    one JSON document of the run's settings in the library's option names:
//                   {"denoiser": {...}, "objective": {...}, "trainer": {...}, "run": {...}}
//   casdm.checksum  the CRC-32 of the records above (detail::records_checksum), checked on read
// and the tensors "model.*", "ema.<i>.*", "optim.*", "rng.cpu", "rng.cuda" (a model file: the
// denoiser's), each with its CRC-32. Anything else is refused naming the file and the key.
// Format 1 (written before 2026-12-07) is refused naming casdm-upgrade, which converts it once
// (examples/format1.hpp). Neither holds a frozen metric network.
#include "casdm/core/errors.hpp"
#include "casdm/loss/options.hpp"
#include "casdm/topology/options_io.hpp"
#include "casdm/io/tensor_file.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::train {

inline constexpr const char* checkpoint_format = "casdm-checkpoint-2";
inline constexpr const char* denoiser_format = "casdm-denoiser-2";
/// The formats before 2026-12-07: refused (OlderFormat), converted by casdm-upgrade.
inline constexpr const char* checkpoint_format_1 = "casdm-checkpoint-1";
inline constexpr const char* denoiser_format_1 = "casdm-denoiser-1";

/// A checkpoint or model file of a format this build no longer reads, which casdm-upgrade converts.
struct OlderFormat : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {

/// The JSON type of a DenoiserOptions field (options_to_map's names; the last part after '.').
enum class OptionKind { integer, real, boolean, integers, text };
inline std::optional<OptionKind> option_kind(const std::string& key) {
  static const std::map<std::string, OptionKind> kinds{
      {"image_size", OptionKind::integer}, {"channels", OptionKind::integer}, {"diffusion_steps", OptionKind::integer},
      {"num_classes", OptionKind::integer}, {"model_channels", OptionKind::integer}, {"channel_mult", OptionKind::integers},
      {"num_res_blocks", OptionKind::integer}, {"attention_resolutions", OptionKind::integers},
      {"num_heads", OptionKind::integer}, {"dropout", OptionKind::real}, {"use_scale_shift_norm", OptionKind::boolean},
      {"norm_groups", OptionKind::integer}, {"resample", OptionKind::boolean}, {"middle_attention", OptionKind::boolean}};
  auto it = kinds.find(key.substr(key.rfind('.') + 1));
  if (it == kinds.end()) return std::nullopt;
  return it->second;
}

/// An options_to_map value as JSON of its kind ("1,2,2" → [1, 2, 2]).
inline nlohmann::json option_json(const std::string& key, const std::string& v) {
  switch (option_kind(key).value_or(OptionKind::text)) {
    case OptionKind::integer: return std::stoll(v);
    case OptionKind::real: return std::stod(v);
    case OptionKind::boolean: return v == "true";
    case OptionKind::integers: {
      auto arr = nlohmann::json::array();
      for (size_t p = 0; p < v.size();) {
        auto q = v.find(',', p);
        arr.push_back(std::stoll(v.substr(p, q - p)));
        p = q == std::string::npos ? v.size() : q + 1;
      }
      return arr;
    }
    case OptionKind::text: break;
  }
  return v;
}

/// A JSON scalar (or list of integers) as text: integers in decimal, reals by io::number_str, booleans "true"/"false", lists "1,2,2". Anything else is refused naming `key`.
inline std::string json_text(const nlohmann::json& v, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return fmt::format("{}", v.get<int64_t>());
  if (v.is_number()) return io::number_str(v.get<double>());
  if (v.is_array() && std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_number_integer(); })) {
    std::vector<int64_t> xs;
    for (const auto& e : v) xs.push_back(e.template get<int64_t>());
    return fmt::format("{}", fmt::join(xs, ","));
  }
  throw std::invalid_argument(fmt::format("config '{}' is {}, not a value", key,
                                          v.is_object() ? "an object" : v.is_null() ? "null" : "a list of other values"));
}

}  // namespace detail

/// The "denoiser" section of a format-2 config: DenoiserOptions with the nets as objects:
/// {"image_size": 32, ..., "net": {"model_channels": 128, ...}}.
inline nlohmann::json denoiser_config(const DenoiserOptions& o) {
  auto j = nlohmann::json::object();
  for (const auto& [k, v] : options_to_map(o)) {
    if (auto dot = k.find('.'); dot != std::string::npos)
      j[k.substr(0, dot)][k.substr(dot + 1)] = detail::option_json(k, v);
    else
      j[k] = detail::option_json(k, v);
  }
  return j;
}

/// The "objective" section: feature-loss side and weights path, the λ of every term, and the checksum
/// of the frozen metric networks' weights (if any).
inline nlohmann::json objective_config(const ObjectiveOptions& o, const std::vector<std::pair<std::string, double>>& weights,
                                       const std::string& weights_checksum) {
  nlohmann::json j = {{"feature_size", o.feature_size()}, {"feature_weights", o.feature_weights()}};
  j["loss_weights"] = nlohmann::json::object();
  for (const auto& [name, w] : weights) j["loss_weights"][name] = w;
  if (!weights_checksum.empty()) j["weights_checksum"] = weights_checksum;
  return j;
}

/// What a checkpoint or model file says about itself, read without building a model.
struct CheckpointInfo {
  std::filesystem::path path;
  io::TensorFile file;
  int64_t step = 0;
  /// The model's identity (Model::Impl::identity()), empty in model files.
  std::string model_type;
  /// The denoiser's identity (Denoiser::Impl::identity()).
  std::string denoiser_type;
  /// The denoiser's options (what rebuilds it) and the objective's settings (checkpoints; a model
  /// file's are the defaults).
  DenoiserOptions denoiser_options;
  ObjectiveOptions objective_options;
  /// The settings document (casdm.config).
  nlohmann::json config;
  /// Every other setting as a flat string: "trainer.*", "ema.<i>.rate", "external.checksum", and the
  /// caller's ("preset", "args.*").
  std::map<std::string, std::string> meta;
  /// What choosing this file passed over (CheckpointDir::resume_point: newer files that are corrupt).
  std::vector<std::string> notes;

  std::string get(const std::string& key, const std::string& fallback = "") const {
    auto it = meta.find(key);
    return it == meta.end() ? fallback : it->second;
  }
  bool is_model_file() const { return get("format") == denoiser_format; }
  /// The metadata under `prefix` ("args." → a program's stored settings), the prefix removed.
  std::map<std::string, std::string> meta_under(const std::string& prefix) const {
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : meta)
      if (k.rfind(prefix, 0) == 0) out.emplace(k.substr(prefix.size()), v);
    return out;
  }
  /// The EMA rates the checkpoint holds, in order (as written: "0.9999").
  std::vector<std::string> ema_rates() const {
    std::vector<std::string> out;
    for (size_t i = 0; meta.count(fmt::format("ema.{}.rate", i)); ++i) out.push_back(get(fmt::format("ema.{}.rate", i)));
    return out;
  }
};

namespace detail {

/// Format 2's config read into CheckpointInfo's options and its flat settings (meta), checking every
/// section and key: one this build does not know is refused naming it.
inline void read_config(CheckpointInfo& c, bool model_file) {
  const auto& j = c.config;
  if (!j.is_object()) throw std::invalid_argument("casdm.config is not a JSON object");
  static const std::set<std::string> checkpoint_sections{"denoiser", "objective", "trainer", "run"};
  static const std::set<std::string> model_sections{"denoiser", "run"};
  const auto& known = model_file ? model_sections : checkpoint_sections;
  for (const auto& [k, v] : j.items()) {
    if (!known.count(k))
      throw std::invalid_argument(fmt::format("casdm.config has a section '{}' this build does not know (it reads: {})", k,
                                              fmt::join(known, ", ")));
    if (!v.is_object()) throw std::invalid_argument(fmt::format("casdm.config section '{}' is not an object", k));
  }
  if (!j.contains("denoiser")) throw std::invalid_argument("casdm.config has no 'denoiser' section");
  std::map<std::string, std::string> opts;
  auto option = [&](const std::string& key, const nlohmann::json& v) {
    if (!option_kind(key))
      throw std::invalid_argument(fmt::format("casdm.config has 'denoiser.{}', a setting this build does not know", key));
    opts[key] = json_text(v, "denoiser." + key);
  };
  for (const auto& [k, v] : j["denoiser"].items()) {
    if (k == "net" || k == "phi_net") {
      if (!v.is_object()) throw std::invalid_argument(fmt::format("casdm.config 'denoiser.{}' is not an object", k));
      for (const auto& [nk, nv] : v.items()) option(k + "." + nk, nv);
    } else {
      option(k, v);
    }
  }
  if (j.contains("objective")) {
    for (const auto& [k, v] : j["objective"].items()) {
      auto& o = c.objective_options;
      if (k == "feature_size") {
        if (!v.is_number_integer()) throw std::invalid_argument("casdm.config 'objective.feature_size' is not an integer");
        o.feature_size(v.get<int64_t>());
      } else if (k == "feature_weights") {
        if (!v.is_string()) throw std::invalid_argument("casdm.config 'objective.feature_weights' is not a string");
        o.feature_weights(v.get<std::string>());
      } else if (k == "loss_weights") {
        if (!v.is_object()) throw std::invalid_argument("casdm.config 'objective.loss_weights' is not an object");
        for (const auto& [name, w] : v.items()) {
          if (!w.is_number()) throw std::invalid_argument(fmt::format("casdm.config 'objective.loss_weights.{}' is not a number", name));
          o.loss_weights()[name] = w.get<double>();
        }
      } else if (k == "weights_checksum") {
        c.meta["external.checksum"] = json_text(v, "objective." + k);
      } else {
        throw std::invalid_argument(fmt::format("casdm.config has 'objective.{}', a setting this build does not know", k));
      }
    }
  } else if (!model_file) {
    throw std::invalid_argument("casdm.config has no 'objective' section");
  }
  if (j.contains("trainer")) {
    static const std::set<std::string> trainer_keys{"lr", "weight_decay", "grad_clip", "micro_batch", "skipped_steps",
                                                    "loss_scale", "loss_scale_good_steps", "ema_rates", "label_dropout"};
    for (const auto& [k, v] : j["trainer"].items()) {
      if (!trainer_keys.count(k))
        throw std::invalid_argument(fmt::format("casdm.config has 'trainer.{}', a setting this build does not know", k));
      if (k == "ema_rates") {
        if (!v.is_array()) throw std::invalid_argument("casdm.config 'trainer.ema_rates' is not a list");
        for (size_t i = 0; i < v.size(); ++i) {
          if (!v[i].is_number()) throw std::invalid_argument("casdm.config 'trainer.ema_rates' holds a value that is not a number");
          c.meta[fmt::format("ema.{}.rate", i)] = json_text(v[i], "trainer.ema_rates");
        }
      } else {
        c.meta["trainer." + k] = json_text(v, "trainer." + k);
      }
    }
  } else if (!model_file) {
    throw std::invalid_argument("casdm.config has no 'trainer' section");
  }
  if (j.contains("run"))
    for (const auto& [k, v] : j["run"].items()) {
      if (!v.is_string()) throw std::invalid_argument(fmt::format("casdm.config 'run.{}' is not a string", k));
      if (c.meta.count(k)) throw std::invalid_argument(fmt::format("casdm.config 'run.{}' names a setting of the library", k));
      c.meta[k] = v.get<std::string>();
    }
  c.denoiser_options = options_from_map(opts);
}

}  // namespace detail

namespace detail {
/// The CRC-32 of a format-2 file's records — each of format, identity, denoiser, step and config as
/// "key=value" and a NUL — as 8 hex digits: a flipped bit in a setting is found on read, as one in
/// a tensor is by the tensor's own CRC.
inline std::string records_checksum(const std::map<std::string, std::string>& meta) {
  uLong crc = crc32_z(0L, Z_NULL, 0);
  for (const char* k : {"format", "identity", "denoiser", "step", "config"}) {
    auto it = meta.find(k);
    if (it == meta.end()) continue;
    const std::string record = std::string(k) + "=" + it->second + '\0';
    crc = crc32_z(crc, reinterpret_cast<const Bytef*>(record.data()), record.size());
  }
  return fmt::format("{:08x}", crc);
}
/// Adds casdm.checksum to a format-2 file's metadata, last, before it is written.
inline void seal(io::TensorFile& f) { f.meta["checksum"] = records_checksum(f.meta); }
}  // namespace detail

/// Reads a checkpoint or model file and its metadata; any other file is refused naming what it is
/// (one of format 1 by OlderFormat, naming casdm-upgrade), and a file holding an entry this build
/// does not know is refused naming the entry.
inline CheckpointInfo read_checkpoint(const std::filesystem::path& path) {
  CheckpointInfo c;
  c.path = path;
  c.file = io::read_tensor_file(path);
  const auto& raw = c.file.meta;
  auto raw_get = [&](const std::string& k) {
    auto it = raw.find(k);
    return it == raw.end() ? std::string() : it->second;
  };
  const auto format = raw_get("format");
  if (format.empty())
    throw std::runtime_error(fmt::format("{} is not a casdm checkpoint or model file (no casdm.format entry; "
                                         "another program's torch.save?)",
                                         path.string()));
  if (format == checkpoint_format_1 || format == denoiser_format_1)
    throw OlderFormat(fmt::format("{} is a {} of format 1 (written before 2026-12-07), which this build no longer "
                                  "reads; convert it once, in place: casdm-upgrade {}",
                                  path.string(), format == denoiser_format_1 ? "model file" : "checkpoint", path.string()));
  if (format != checkpoint_format && format != denoiser_format)
    throw std::runtime_error(fmt::format("{} has format '{}'; this build reads '{}' and '{}'", path.string(), format,
                                         checkpoint_format, denoiser_format));
  const bool model_file = format == denoiser_format;
  try {
    static const std::set<std::string> checkpoint_keys{"format", "identity", "denoiser", "step", "config", "checksum"};
    static const std::set<std::string> model_keys{"format", "denoiser", "config", "checksum"};
    for (const auto& [k, v] : raw)
      if (!(model_file ? model_keys : checkpoint_keys).count(k))
        throw std::invalid_argument(fmt::format("it holds an entry this build does not know: 'casdm.{}'", k));
    for (const char* k : {"denoiser", "config", "checksum"})
      if (!raw.count(k)) throw std::invalid_argument(fmt::format("it lacks 'casdm.{}'", k));
    if (!model_file)
      for (const char* k : {"identity", "step"})
        if (!raw.count(k)) throw std::invalid_argument(fmt::format("it lacks 'casdm.{}'", k));
    if (const auto want = detail::records_checksum(raw); raw_get("checksum") != want)
      throw std::invalid_argument(fmt::format("its settings fail their checksum (casdm.checksum {}, computed {}): "
                                              "a record was changed after it was written",
                                              raw_get("checksum"), want));
    if (!model_file) {
      static const std::regex tensor_name(R"((model|optim|ema\.\d+)\..+|rng\.(cpu|cuda))");
      for (const auto& [k, v] : c.file.tensors)
        if (!std::regex_match(k, tensor_name))
          throw std::invalid_argument(fmt::format("it holds a tensor this build does not know: '{}'", k));
    }
    c.config = nlohmann::json::parse(raw_get("config"), nullptr, /*allow_exceptions=*/false);
    if (c.config.is_discarded()) throw std::invalid_argument("its casdm.config is not valid JSON");
    c.meta["format"] = format;
    c.meta["model"] = c.model_type = raw_get("identity");
    c.meta["denoiser"] = c.denoiser_type = raw_get("denoiser");
    if (model_file)
      c.meta.erase("model");
    else
      c.meta["step"] = raw_get("step");
    detail::read_config(c, model_file);
    const auto step = c.get("step", "0");
    c.step = -1;
    if (std::from_chars(step.data(), step.data() + step.size(), c.step).ptr != step.data() + step.size() || c.step < 0)
      throw std::invalid_argument(fmt::format("casdm.step '{}' is not a step count", step));
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{} has damaged metadata: {}", path.string(), e.what()));
  }
  return c;
}

/// Whether file `c` holds a denoiser of type DImpl (a DenoiserImpl): their identities are the same.
template <class DImpl>
bool holds_denoiser(const CheckpointInfo& c) {
  return c.denoiser_type == DImpl::identity();
}

/// Whether checkpoint `c` holds a model of type MImpl (a ModelImpl), whatever sampler either names:
/// their identities are the same.
template <class MImpl>
bool holds_model(const CheckpointInfo& c) {
  return c.model_type == MImpl::identity();
}

/// The tensors of `f` under `prefix`, with the prefix removed. Files written before 2026-11-27 also
/// held the feature losses' frozen networks ("feature_*"): those are left out, so such files load.
inline std::map<std::string, at::Tensor> section(const io::TensorFile& f, const std::string& prefix) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [k, v] : f.tensors)
    if (k.rfind(prefix, 0) == 0 && k.compare(prefix.size(), 8, "feature_") != 0) out.emplace(k.substr(prefix.size()), v);
  return out;
}

/// Which weights of a checkpoint to load: an EMA copy (the one of rate `ema_rate`, or the first
/// when unset) or the raw trained weights.
struct Weights {
  bool ema = true;
  std::optional<double> ema_rate;
  static Weights raw() { return {false, std::nullopt}; }
  static Weights ema_copy(std::optional<double> rate = std::nullopt) { return {true, rate}; }
};

/// The tensors of `c` that `w` chooses, with a description ("raw", "ema 0.9999"); a missing
/// EMA rate is refused naming the rates the file has. A model file has one set: any choice takes it.
inline std::map<std::string, at::Tensor> chosen_weights(const CheckpointInfo& c, const Weights& w,
                                                        std::string* which = nullptr) {
  auto say = [&](std::string s) {
    if (which) *which = std::move(s);
  };
  if (c.is_model_file()) {
    say("model file");
    return section(c.file, "");
  }
  if (!w.ema) {
    say("raw");
    return section(c.file, "model.");
  }
  const auto rates = c.ema_rates();
  for (size_t i = 0; i < rates.size(); ++i) {
    if (!w.ema_rate || std::stod(rates[i]) == *w.ema_rate) {
      say("ema " + rates[i]);
      return section(c.file, fmt::format("ema.{}.", i));
    }
  }
  throw std::runtime_error(fmt::format("{} has EMA rates {{{}}}{}; choose one of them or the raw weights",
                                       c.path.string(), fmt::join(rates, ","),
                                       w.ema_rate ? fmt::format(", not {}", io::number_str(*w.ema_rate)) : ""));
}

/// A denoiser of type D rebuilt from a checkpoint or model file (its options) with the weights `w`
/// chooses, loaded strictly. A file of another denoiser type is refused naming both.
template <class D>
D load_denoiser(const CheckpointInfo& c, const Weights& w = {}, std::string* which = nullptr) {
  using Impl = typename D::Impl;
  if (!c.denoiser_type.empty() && !holds_denoiser<Impl>(c))
    throw std::runtime_error(fmt::format("{} holds another denoiser{}: {}, not {}", c.path.string(),
                                         c.get("preset").empty() ? "" : " (preset " + c.get("preset") + ")",
                                         c.denoiser_type, Impl::identity()));
  D d(c.denoiser_options);
  io::load_state_strict(*d, chosen_weights(c, w, which), c.path.string());
  return d;
}
template <class D>
D load_denoiser(const std::filesystem::path& path, const Weights& w = {}, std::string* which = nullptr) {
  return load_denoiser<D>(read_checkpoint(path), w, which);
}

/// Writes a model file (format 2): the denoiser's tensors, its identity and options, and `extra`
/// settings of the caller (config section "run": "preset", ...).
template <class DImpl>
void save_denoiser(const DImpl& d, const std::filesystem::path& path, const std::map<std::string, std::string>& extra = {}) {
  io::TensorFile f;
  f.meta["format"] = denoiser_format;
  f.meta["denoiser"] = DImpl::identity();
  nlohmann::json config = {{"denoiser", denoiser_config(d.options)}, {"run", nlohmann::json::object()}};
  for (const auto& [k, v] : extra) config["run"][k] = v;
  f.meta["config"] = config.dump();
  detail::seal(f);
  f.tensors = io::state_of(d);
  io::write_tensor_file(path, f);
}

/// A run's checkpoint folder: files ckpt-<step>.pt, of which the newest `keep` are kept.
class CheckpointDir {
 public:
  explicit CheckpointDir(std::filesystem::path dir, int64_t keep = 3) : dir_(std::move(dir)), keep_(keep) { check_keep(keep_); }
  /// The one rule on `keep`: at least 2, so that a resume has one to fall back to when the newest is
  /// damaged (resume_point).
  static void check_keep(int64_t keep) {
    if (keep < 2)
      throw std::invalid_argument(fmt::format("checkpoints to keep must be >= 2 (a resume falls back to the one before "
                                              "a damaged newest), got {}", keep));
  }
  const std::filesystem::path& path() const { return dir_; }

  std::filesystem::path file_for(int64_t step) const { return dir_ / fmt::format("ckpt-{:09d}.pt", step); }

  /// The step a checkpoint file's name says (ckpt-<step>.pt), or none: another file, or a number
  /// beyond int64.
  static std::optional<int64_t> step_of(const std::filesystem::path& file) {
    static const std::regex re(R"(ckpt-(\d+)\.pt)");
    std::smatch m;
    const auto name = file.filename().string();
    if (!std::regex_match(name, m, re)) return std::nullopt;
    int64_t step = 0;
    const auto digits = m[1].str();
    if (std::from_chars(digits.data(), digits.data() + digits.size(), step).ptr != digits.data() + digits.size())
      return std::nullopt;
    return step;
  }

  /// The checkpoint files, oldest first.
  std::vector<std::filesystem::path> list() const {
    std::vector<std::pair<int64_t, std::filesystem::path>> found;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir_, ec))
      if (auto step = step_of(e.path())) found.emplace_back(*step, e.path());
    std::sort(found.begin(), found.end());
    std::vector<std::filesystem::path> out;
    for (auto& [s, p] : found) out.push_back(p);
    return out;
  }

  std::optional<std::filesystem::path> latest() const {
    auto l = list();
    if (l.empty()) return std::nullopt;
    return l.back();
  }

  /// The newest checkpoint here that reads, holds the step its name says, and is of the same model
  /// (identity and denoiser options) as the next older readable one — a file copied in from another
  /// run is not adopted. Each file passed over is named, with why, in `passed`; none: no checkpoint
  /// qualifies.
  std::optional<CheckpointInfo> newest_valid(std::vector<std::pair<std::filesystem::path, std::string>>& passed) const {
    const auto files = list();
    std::optional<CheckpointInfo> candidate;
    std::filesystem::path candidate_file;
    for (auto it = files.rbegin(); it != files.rend(); ++it) {
      try {
        auto c = read_checkpoint(*it);
        if (c.is_model_file()) throw std::runtime_error(it->string() + " is a model file, not a checkpoint");
        if (c.step != *step_of(*it))
          throw std::runtime_error(fmt::format("{} holds step {}, not the step its name says", it->string(), c.step));
        if (candidate && (c.model_type != candidate->model_type ||
                          !options_differences(c.denoiser_options, candidate->denoiser_options).empty())) {
          passed.emplace_back(candidate_file, fmt::format("{} holds another model than {}, the run's checkpoint before "
                                                          "it: {}", candidate_file.string(), it->filename().string(),
                                                          candidate->model_type));
          candidate = std::move(c);  // the older one is the run's; go on checking it against its own predecessor
          candidate_file = *it;
          continue;
        }
        if (candidate) return candidate;
        candidate = std::move(c);
        candidate_file = *it;
      } catch (const OlderFormat&) {  // not damaged: the whole folder wants converting
        throw OlderFormat(fmt::format("{} holds checkpoints of format 1 (written before 2026-12-07), which this build "
                                      "no longer reads; convert them once, in place: casdm-upgrade {}",
                                      dir_.string(), dir_.string()));
      } catch (const std::exception& e) {
        if (!candidate) passed.emplace_back(*it, e.what());
        else return candidate;  // an unreadable predecessor says nothing against the candidate
      }
    }
    return candidate;
  }

  /// The checkpoint a run in this folder continues from: `from` when given, else the newest valid
  /// one here when `resume` (newest_valid: files passed over are moved aside to <name>.damaged, so
  /// that they hold no place among the kept checkpoints, and named in its `notes`); none there is a
  /// SettingError "resume". A fresh run (neither) gets none, and is refused (SettingError
  /// "checkpoints") when the folder already holds checkpoints: continuing would mix two runs, and
  /// starting over would overwrite one.
  std::optional<CheckpointInfo> resume_point(bool resume, const std::filesystem::path& from = {}) const {
    if (!from.empty()) return read_checkpoint(from);
    auto newest = latest();
    if (resume) {
      if (!newest) throw SettingError("resume", fmt::format("no checkpoint in {}", dir_.string()));
      std::vector<std::pair<std::filesystem::path, std::string>> passed;
      auto c = newest_valid(passed);
      std::vector<std::string> why;
      for (const auto& [file, reason] : passed) why.push_back("passing over " + reason);
      if (!c) throw SettingError("resume", fmt::format("no valid checkpoint in {} ({})", dir_.string(), fmt::join(why, "; ")));
      for (size_t i = 0; i < passed.size(); ++i) {
        auto aside = passed[i].first;
        aside += ".damaged";
        std::error_code ec;
        std::filesystem::rename(passed[i].first, aside, ec);
        c->notes.push_back(ec ? fmt::format("{} (could not move it aside: {})", why[i], ec.message())
                              : fmt::format("{}; moved it aside to {}", why[i], aside.filename().string()));
      }
      if (!passed.empty())
        c->notes.push_back(fmt::format("resuming from {}, the newest valid checkpoint", c->path.filename().string()));
      return c;
    }
    if (newest)
      throw SettingError("checkpoints", fmt::format("{} holds checkpoints of an earlier run: resume it, or choose "
                                                    "another folder",
                                                    dir_.string()));
    return std::nullopt;
  }

  /// Saves trainer `t` as ckpt-<step>.pt, then removes the oldest checkpoints until `keep` remain
  /// up to that step: the file just written is never removed, and files of later steps (another
  /// branch of the run) are neither counted nor removed.
  template <class Trainer>
  std::filesystem::path save(const Trainer& t, const std::map<std::string, std::string>& extra = {}) const {
    std::filesystem::create_directories(dir_);
    const int64_t step = t.step_count();
    auto file = file_for(step);
    t.save(file, extra);
    std::vector<std::filesystem::path> upto;
    for (const auto& f : list())
      if (*step_of(f) <= step) upto.push_back(f);
    for (size_t i = 0; i + static_cast<size_t>(keep_) < upto.size(); ++i) std::filesystem::remove(upto[i]);
    return file;
  }

 private:
  std::filesystem::path dir_;
  int64_t keep_;
};

/// A checkpoint file, or the newest valid checkpoint (CheckpointDir::newest_valid) of a casdm-train
/// output folder (or its checkpoints/): damaged and stray files are passed over, left in place.
inline std::filesystem::path resolve_checkpoint(const std::filesystem::path& path) {
  if (!std::filesystem::is_directory(path)) return path;
  const auto dir = std::filesystem::exists(path / "checkpoints") ? path / "checkpoints" : path;
  const CheckpointDir ckpts(dir);
  if (!ckpts.latest()) throw std::runtime_error(fmt::format("no checkpoint (ckpt-*.pt) in {}", path.string()));
  std::vector<std::pair<std::filesystem::path, std::string>> passed;
  auto c = ckpts.newest_valid(passed);
  if (!c) {
    std::vector<std::string> why;
    for (const auto& p : passed) why.push_back(p.second);
    throw std::runtime_error(fmt::format("no valid checkpoint in {} ({})", path.string(), fmt::join(why, "; ")));
  }
  return c->path;
}

}  // namespace casdm::train
