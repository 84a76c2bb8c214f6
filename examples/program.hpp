#pragma once
// What the example programs share: option validators in the programs' words, --threads/--device,
// output-folder checks and small helpers. Choosing a preset by name (casdm::presets::visit),
// loading a trained denoiser (casdm::train::load_denoiser), the settings a run keeps across a
// resume (casdm::app::RunSettings), a whole training run (casdm::app::run_training) and the
// machine's threads, device and precision (casdm/app/machine.hpp) are library calls.
#include "casdm/presets.hpp"
#include "casdm/app/machine.hpp"
#include "casdm/app/run_settings.hpp"
#include "casdm/app/sampling.hpp"
#include "casdm/io/files.hpp"
#include "casdm/sampler/registry.hpp"
#include "casdm/train/previews.hpp"
#include "casdm/train/trainer.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::examples {

/// "DDPM_Eps, DDPM_X0, ..." — every preset the programs know (for --help).
inline std::string preset_names() { return fmt::format("{}", fmt::join(presets::names(), ", ")); }

/// Range checks for options, with messages in the program's words ("--steps: must be an integer
/// >= 1, got 'abc'"): each element of a list option is checked alone.
template <class T>
CLI::Validator in_range(T lo, T hi, bool lo_open = false, bool hi_open = false) {
  std::string want = std::is_integral_v<T> ? "an integer" : "a number";
  if (hi == std::numeric_limits<T>::max())
    want += fmt::format(" {} {}", lo_open ? ">" : ">=", lo);
  else
    want += fmt::format(" in {}{}, {}{}", lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        T v{};
        auto r = std::from_chars(s.data(), s.data() + s.size(), v);
        bool ok = r.ec == std::errc() && r.ptr == s.data() + s.size() && (lo_open ? v > lo : v >= lo) &&
                  (hi_open ? v < hi : v <= hi);
        if constexpr (!std::is_integral_v<T>) ok = ok && std::isfinite(v);
        if (ok) return std::string();
        // What was given, as given (never a value it was read as), but not a page of it.
        const auto given = s.size() > 24 ? fmt::format("{}…' ({} characters)", s.substr(0, 20), s.size()) : s + "'";
        return fmt::format("must be {}, got '{}", want, given);
      },
      "", "");
}
template <class T>
CLI::Validator at_least(T lo) {
  return in_range<T>(lo, std::numeric_limits<T>::max());
}

/// Parses the command line; a usage error is one line ("casdm-train: --steps: must be ...") and exit
/// status 2. Returns the status to exit with, or -1 to go on.
inline int parse_command_line(CLI::App& app, int argc, char** argv, const char* program) {
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::string what = e.what();
    if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    fmt::print(stderr, "{}: {} (see --help)\n", program, what);
    return 2;
  }
}

/// An error as a program prints it: LibTorch's errors without their C++ backtrace (first line),
/// and a refused library setting (SettingError) under the program's flag for it: `flags[setting]`,
/// else the setting's name as a flag ("feature_weights" → "--feature-weights").
inline std::string message(const std::exception& e, const std::map<std::string, std::string>& flags = {}) {
  if (const auto* s = dynamic_cast<const SettingError*>(&e)) {
    auto it = flags.find(s->setting);
    std::string flag = it != flags.end() ? it->second : "--" + s->setting;
    if (it == flags.end()) std::replace(flag.begin(), flag.end(), '_', '-');
    return flag + ": " + s->detail;
  }
  const auto* c = dynamic_cast<const c10::Error*>(&e);
  if (!c) return e.what();
  std::string s = c->what_without_backtrace();
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

/// --threads and --device, shared by the programs.
inline void add_machine_options(CLI::App& app, int64_t& threads, std::string& device) {
  app.add_option("--threads", threads, "CPU threads (0: all cores)")->capture_default_str()->check(in_range<int64_t>(0, 4096));
  app.add_option("--device", device, "cpu, cuda, cuda:1, ...")->capture_default_str();
}

using app::use_machine;     // applies --threads, checks --device (casdm/app/machine.hpp)
using app::precision_type;  // --precision as the networks' autocast type

/// The weights choice of --weights ema|raw and --ema-rate (negative: the first EMA copy).
inline train::Weights weights_choice(const std::string& weights, double ema_rate) {
  if (weights == "raw") return train::Weights::raw();
  return train::Weights::ema_copy(ema_rate < 0 ? std::nullopt : std::optional<double>(ema_rate));
}

/// The sampling options of casdm-sample and casdm-eval (app::SamplingRequest): --sampler, --steps,
/// --eta, --exact-sigmas, --churn, --churn-tmin, --churn-tmax, --churn-noise, --class, --guidance;
/// returns them (casdm-eval refuses them where it draws nothing).
inline std::vector<CLI::Option*> add_sampling_options(CLI::App& app, app::SamplingRequest& r) {
  return {
      app.add_option("--sampler", r.sampler, "one of: " + sampler::help())->capture_default_str()->check(CLI::IsMember(sampler::names())),
      app.add_option("--steps", r.steps, "sampling steps (0: the sampler's default, as listed under --sampler; at most T)")
          ->capture_default_str()->check(at_least<int64_t>(0)),
      app.add_option("--eta", r.eta, "eta in [0, 1] of ddim and the stochastic samplers (0: deterministic; default ddim's 0, the others' 1)")
          ->capture_default_str()->check(in_range<double>(0, 1)),
      app.add_flag("--exact-sigmas", r.exact_sigmas, "the sigma-spaced samplers (" + sampler::exact_sigma_names() +
                   ") at their spacing's exact sigma, the network seeing steps interpolated between trained ones (default: "
                   "each sigma snapped to the nearest trained step)"),
      app.add_option("--churn", r.churn.amount, "EDM's S_churn for euler and heun: noise added before each step (0: none)")
          ->capture_default_str()->check(in_range<double>(0, 1e6)),
      app.add_option("--churn-tmin", r.churn.t_min, "churn only at sigma >= this")->capture_default_str()->check(in_range<double>(0, 1e9)),
      app.add_option("--churn-tmax", r.churn.t_max, "churn only at sigma <= this (default: no bound)")->check(in_range<double>(0, 1e9)),
      app.add_option("--churn-noise", r.churn.noise, "EDM's S_noise, the churn noise's scale")->capture_default_str()
          ->check(in_range<double>(0, 10)),
      app.add_option("--class", r.cls, "class-conditional checkpoints: the class of every sample, or 'all' (class i % K for sample i)"),
      app.add_option("--guidance", r.guidance, "classifier-free guidance scale w (0: the conditional model alone; needs --class)")
          ->capture_default_str()->check(in_range<double>(0, 1e6))};
}

/// app::SamplingRequest::settle with the options the command line gave.
inline void settle_sampling(const CLI::App& app, app::SamplingRequest& r) {
  r.settle([&](std::string_view flag) { return app.count(std::string(flag)) > 0; });
}

using io::require_writable_folder;  // creates the folder, or says it is not writable

/// Writes a text file atomically (io::write_atomic): a crash or a full disk leaves the old file.
inline void write_text(const std::filesystem::path& path, const std::string& text) { io::write_atomic(path, text); }

}  // namespace casdm::examples
