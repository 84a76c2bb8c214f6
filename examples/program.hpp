#pragma once
// What the example programs share: choosing a preset by name, the settings a run keeps across a
// resume, output-folder checks and small formatting helpers.
#include "casdm/presets.hpp"
#include "casdm/train/trainer.hpp"

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <torch/cuda.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace casdm::examples {

/// "DDPM_Eps, DDPM_X0, ..." — every preset the programs know.
inline std::string preset_names() {
  std::string s;
  presets::for_each([&](const char* name, auto) { s += (s.empty() ? "" : ", ") + std::string(name); });
  return s;
}

/// Calls f(hana::type_c<Preset>) for the preset called `name`; unknown names are refused.
template <class F>
decltype(auto) with_preset(const std::string& name, F&& f) {
  bool found = false;
  int rc = 0;
  presets::for_each([&](const char* n, auto type) {
    if (name == n) {
      found = true;
      rc = f(type);
    }
  });
  if (!found) throw std::runtime_error("unknown preset '" + name + "'; choose one of: " + preset_names());
  return rc;
}

/// A preset's structure, for refusing options that mean nothing to it.
struct PresetTraits {
  bool phi_net = false;   // has a φ network of its own (cascaded)
  bool features = false;  // has a feature loss (reads feature_size / feature_weights)
};
inline PresetTraits traits_of(const std::string& name) {
  PresetTraits t;
  with_preset(name, [&](auto type) {
    using P = typename decltype(type)::type;
    t.phi_net = topology::uses_phi_net<typename P::Impl::topology_type>;
    t.features = P::Impl::losses_type::uses_features;
    return 0;
  });
  return t;
}

namespace detail {
inline std::string fmt(int64_t v) { return std::to_string(v); }
inline std::string fmt(const std::string& v) { return v; }
inline std::string fmt(bool v) { return v ? "true" : "false"; }
inline std::string fmt(double v) {
  char b[32];
  return std::string(b, std::to_chars(b, b + sizeof b, v).ptr);
}
template <class T>
std::string fmt(const std::vector<T>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + fmt(v[i]);
  return s;
}
template <class T>
T parse_one(const std::string& s) {
  if constexpr (std::is_same_v<T, std::string>) {
    return s;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (s != "true" && s != "false") throw std::invalid_argument("not true/false: " + s);
    return s == "true";
  } else {
    T v{};
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size()) throw std::invalid_argument("not a number: " + s);
    return v;
  }
}
template <class T>
void parse(const std::string& s, T& out) {
  out = parse_one<T>(s);
}
template <class T>
void parse(const std::string& s, std::vector<T>& out) {
  out.clear();
  size_t start = 0;
  while (start < s.size()) {
    const size_t end = std::min(s.find(',', start), s.size());
    out.push_back(parse_one<T>(s.substr(start, end - start)));
    start = end + 1;
  }
}
}  // namespace detail

/// The settings that define a run (kept in its checkpoints as "casdm.args.<name>"): a resumed run
/// takes them from the checkpoint, and refuses a command line that asks for other values.
class RunSettings {
 public:
  using Ref = std::variant<int64_t*, double*, bool*, std::string*, std::vector<int64_t>*, std::vector<double>*>;
  void add(const std::string& option, Ref ref) { refs_.emplace(option, ref); }

  std::map<std::string, std::string> values() const {
    std::map<std::string, std::string> out;
    for (const auto& [k, r] : refs_) out[k] = std::visit([](auto* p) { return detail::fmt(*p); }, r);
    return out;
  }

  /// Takes the stored values; `given` (options on this command line) must agree with them.
  void resume_from(const std::map<std::string, std::string>& stored, const CLI::App& app, const std::string& source) {
    const auto mine = values();
    std::string conflicts;
    for (const auto& [k, v] : mine) {
      auto it = stored.find(k);
      if (it == stored.end()) throw std::runtime_error(source + " does not record --" + k + " (not written by casdm-train?)");
      if (app.count("--" + k) && it->second != v)
        conflicts += "\n  --" + k + " " + v + " (the run has " + (it->second.empty() ? "\"\"" : it->second) + ")";
    }
    if (!conflicts.empty())
      throw std::runtime_error("a resumed run keeps its settings; these differ from " + source + ":" + conflicts);
    for (auto& [k, r] : refs_) {
      try {
        std::visit([&](auto* p) { detail::parse(stored.at(k), *p); }, r);
      } catch (const std::exception& e) {
        throw std::runtime_error(source + " has a damaged --" + k + ": " + e.what());
      }
    }
  }

 private:
  std::map<std::string, Ref> refs_;
};

/// --threads and --device, shared by the programs.
inline void add_machine_options(CLI::App& app, int64_t& threads, std::string& device) {
  app.add_option("--threads", threads, "CPU threads (0: all cores)")->capture_default_str();
  app.add_option("--device", device, "cpu, cuda, cuda:1, ...")->capture_default_str();
}

/// Applies --threads (0: every core) and checks --device: an unknown name or a CUDA device this
/// LibTorch cannot reach is refused with the reason.
inline c10::Device use_machine(int64_t threads, const std::string& device) {
  at::set_num_threads(threads > 0 ? static_cast<int>(threads)
                                  : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  std::optional<c10::Device> d;
  try {
    d = c10::Device(device);
  } catch (const c10::Error&) {
    throw std::runtime_error("--device " + device + ": not a device name (cpu, cuda, cuda:1, ...)");
  }
  if (d->is_cuda() && (!torch::cuda::is_available() || d->index() >= static_cast<int>(torch::cuda::device_count())))
    throw std::runtime_error("--device " + device + ": this LibTorch sees " + std::to_string(torch::cuda::device_count()) +
                             " CUDA device(s)");
  if (!d->is_cpu() && !d->is_cuda()) throw std::runtime_error("--device " + device + ": only cpu and cuda are supported");
  return *d;
}

/// A checkpoint file, or the newest checkpoint of a casdm-train output folder.
inline std::filesystem::path resolve_checkpoint(const std::filesystem::path& path) {
  if (!std::filesystem::is_directory(path)) return path;
  const auto dir = std::filesystem::exists(path / "checkpoints") ? path / "checkpoints" : path;
  auto latest = train::CheckpointDir(dir).latest();
  if (!latest) throw std::runtime_error("no checkpoint (ckpt-*.pt) in " + path.string());
  return *latest;
}

/// The model of checkpoint `c` with its raw weights ("raw") or an EMA copy ("ema": the one with
/// rate `ema_rate`, or the first when it is negative); `which` says which was loaded.
template <class Model>
Model model_from_checkpoint(const train::CheckpointInfo& c, const std::string& weights, double ema_rate, std::string& which) {
  Model model(c.options);
  std::string prefix = "model.";
  which = "raw";
  if (weights == "ema") {
    std::string rates;
    for (size_t i = 0; c.meta.count("ema." + std::to_string(i) + ".rate"); ++i) {
      const auto r = c.get("ema." + std::to_string(i) + ".rate");
      rates += (rates.empty() ? "" : ",") + r;
      if (prefix == "model." && (ema_rate < 0 || std::stod(r) == ema_rate)) {
        prefix = "ema." + std::to_string(i) + ".";
        which = "ema " + r;
      }
    }
    if (prefix == "model.")
      throw std::runtime_error(c.path.string() + " has EMA rates {" + rates + "}" +
                               (ema_rate < 0 ? "" : ", not " + detail::fmt(ema_rate)) +
                               "; choose one with --ema-rate or use --weights raw");
  }
  train::load_state_strict(*model, train::section(c.file, prefix), c.path.string());
  return model;
}

/// Creates `dir` and proves it writable, or throws naming it.
inline void require_writable_folder(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const auto probe = dir / ".casdm-write-test";
  {
    std::ofstream f(probe);
    if (ec || !f) throw std::runtime_error("output folder " + dir.string() + " is not writable");
  }
  std::filesystem::remove(probe);
}

/// Writes a text file atomically (temporary + rename): a crash leaves the old file or the new one.
inline void write_text(const std::filesystem::path& path, const std::string& text) {
  const auto tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    f << text;
    if (!f) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

/// 75 → "1m15s".
inline std::string duration(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  char b[32];
  if (s >= 3600)
    std::snprintf(b, sizeof b, "%lldh%02lldm", s / 3600, (s / 60) % 60);
  else if (s >= 60)
    std::snprintf(b, sizeof b, "%lldm%02llds", s / 60, s % 60);
  else
    std::snprintf(b, sizeof b, "%llds", s);
  return b;
}

}  // namespace casdm::examples
