#pragma once
// Checkpoints and model files of trained denoisers, and loading a denoiser from either.
//
//   auto info = casdm::train::read_checkpoint("out/casdm/checkpoints/ckpt-000001200.pt");
//   auto d = casdm::train::load_denoiser<casdm::presets::CasDM::Denoiser>(info);          // first EMA
//   auto r = casdm::train::load_denoiser<casdm::presets::CasDM::Denoiser>(info, casdm::train::Weights::raw());
//   casdm::train::save_denoiser(*d, "casdm.pt");                 // a model file: weights + options
//   auto back = casdm::train::load_denoiser<casdm::presets::CasDM::Denoiser>("casdm.pt");
//
// A checkpoint (train/trainer.hpp writes it) is a tensor file (io/tensor_file.hpp) holding
// "model.*" (the denoiser), "ema.<i>.*", "optim.*", "rng.*" and metadata "casdm.format",
// "casdm.model", "casdm.denoiser", "casdm.step", "casdm.options.*", "casdm.ema.<i>.rate", ….
// A model file holds one denoiser's tensors with "casdm.format" = casdm-denoiser-1,
// "casdm.denoiser" and "casdm.options.*". Neither holds a frozen metric network.
#include "casdm/topology/options_io.hpp"
#include "casdm/io/tensor_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::train {

inline constexpr const char* checkpoint_format = "casdm-checkpoint-1";
inline constexpr const char* denoiser_format = "casdm-denoiser-1";

/// What a checkpoint or model file says about itself, read without building a model.
struct CheckpointInfo {
  std::filesystem::path path;
  io::TensorFile file;
  int64_t step = 0;
  std::string model_type;  // the Model's C++ type (checkpoints), empty in model files
  ModelOptions options;
  std::map<std::string, std::string> meta;  // every metadata string, "casdm." stripped
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

/// Reads a checkpoint or model file and its metadata; any other file is refused naming what it is.
inline CheckpointInfo read_checkpoint(const std::filesystem::path& path) {
  CheckpointInfo c;
  c.path = path;
  c.file = io::read_tensor_file(path);
  c.meta = c.file.meta;
  const auto format = c.get("format");
  if (format.empty())
    throw std::runtime_error(fmt::format("{} is not a casdm checkpoint or model file (no casdm.format entry; "
                                         "another program's torch.save?)",
                                         path.string()));
  if (format != checkpoint_format && format != denoiser_format)
    throw std::runtime_error(fmt::format("{} has format '{}'; this build reads '{}' and '{}'", path.string(), format,
                                         checkpoint_format, denoiser_format));
  c.model_type = c.get("model");
  try {
    c.step = std::stoll(c.get("step", "0"));
    std::map<std::string, std::string> opts;
    for (const auto& [k, v] : c.meta)
      if (k.rfind("options.", 0) == 0) opts.emplace(k.substr(8), v);
    c.options = options_from_map(opts);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{} has damaged metadata: {}", path.string(), e.what()));
  }
  return c;
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
  D d(c.options);
  if (auto t = c.get("denoiser"); !t.empty() && t != d->name())
    throw std::runtime_error(fmt::format("{} holds another denoiser{}: {}, not {}", c.path.string(),
                                         c.get("preset").empty() ? "" : " (preset " + c.get("preset") + ")", t,
                                         d->name()));
  io::load_state_strict(*d, chosen_weights(c, w, which), c.path.string());
  return d;
}
template <class D>
D load_denoiser(const std::filesystem::path& path, const Weights& w = {}, std::string* which = nullptr) {
  return load_denoiser<D>(read_checkpoint(path), w, which);
}

/// Writes a model file: the denoiser's tensors, its type and options, and `extra` metadata.
template <class DImpl>
void save_denoiser(const DImpl& d, const std::filesystem::path& path, const std::map<std::string, std::string>& extra = {}) {
  io::TensorFile f;
  f.meta = extra;
  f.meta["format"] = denoiser_format;
  f.meta["denoiser"] = d.name();
  for (const auto& [k, v] : options_to_map(d.options)) f.meta["options." + k] = v;
  f.tensors = io::state_of(d);
  io::write_tensor_file(path, f);
}

/// A run's checkpoint folder: files ckpt-<step>.pt, of which the newest `keep` are kept.
class CheckpointDir {
 public:
  explicit CheckpointDir(std::filesystem::path dir, int64_t keep = 3) : dir_(std::move(dir)), keep_(keep) {
    if (keep_ < 1) throw std::invalid_argument(fmt::format("checkpoints to keep must be >= 1, got {}", keep_));
  }
  const std::filesystem::path& path() const { return dir_; }

  std::filesystem::path file_for(int64_t step) const { return dir_ / fmt::format("ckpt-{:09d}.pt", step); }

  /// The checkpoint files, oldest first.
  std::vector<std::filesystem::path> list() const {
    std::vector<std::pair<int64_t, std::filesystem::path>> found;
    static const std::regex re(R"(ckpt-(\d+)\.pt)");
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
      std::smatch m;
      const auto name = e.path().filename().string();
      if (std::regex_match(name, m, re)) found.emplace_back(std::stoll(m[1]), e.path());
    }
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

  /// The checkpoint a run in this folder continues from: `from` when given, else the newest
  /// readable one here when `resume` (newer files that are corrupt or truncated are passed over and
  /// named in its `notes`). A fresh run (neither) gets none, and is refused when the folder already
  /// holds checkpoints: continuing would mix two runs, and starting over would overwrite one.
  std::optional<CheckpointInfo> resume_point(bool resume, const std::filesystem::path& from = {}) const {
    if (!from.empty()) return read_checkpoint(from);
    auto newest = latest();
    if (resume) {
      if (!newest) throw std::runtime_error(fmt::format("--resume: no checkpoint in {}", dir_.string()));
      std::vector<std::string> passed;
      const auto files = list();
      for (auto it = files.rbegin(); it != files.rend(); ++it) {
        try {
          auto c = read_checkpoint(*it);
          if (!passed.empty()) {
            c.notes = passed;
            c.notes.push_back(fmt::format("resuming from {}, the newest valid checkpoint", it->filename().string()));
          }
          return c;
        } catch (const std::exception& e) {
          passed.push_back(fmt::format("passing over {}", e.what()));
        }
      }
      throw std::runtime_error(fmt::format("--resume: no valid checkpoint in {} ({})", dir_.string(),
                                           fmt::join(passed, "; ")));
    }
    if (newest)
      throw std::runtime_error(fmt::format("{} holds checkpoints of an earlier run; continue it with --resume, or "
                                           "choose another --out",
                                           dir_.parent_path().string()));
    return std::nullopt;
  }

  /// Saves trainer `t` as ckpt-<step>.pt, then removes all but the newest `keep` checkpoints.
  template <class Trainer>
  std::filesystem::path save(const Trainer& t, const std::map<std::string, std::string>& extra = {}) const {
    std::filesystem::create_directories(dir_);
    auto file = file_for(t.step_count());
    t.save(file, extra);
    auto l = list();
    for (size_t i = 0; i + static_cast<size_t>(keep_) < l.size(); ++i) std::filesystem::remove(l[i]);
    return file;
  }

 private:
  std::filesystem::path dir_;
  int64_t keep_;
};

/// A checkpoint file, or the newest checkpoint of a casdm-train output folder (or its checkpoints/).
inline std::filesystem::path resolve_checkpoint(const std::filesystem::path& path) {
  if (!std::filesystem::is_directory(path)) return path;
  const auto dir = std::filesystem::exists(path / "checkpoints") ? path / "checkpoints" : path;
  auto latest = CheckpointDir(dir).latest();
  if (!latest) throw std::runtime_error(fmt::format("no checkpoint (ckpt-*.pt) in {}", path.string()));
  return *latest;
}

}  // namespace casdm::train
