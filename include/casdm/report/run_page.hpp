#pragma once
// The page of a training run (casdm-train writes it as <out>/index.html): its figures, its loss
// chart, its sample grids over time, its checkpoints and its settings, on one self-contained page
// that reloads itself while the run goes on.
//
//   casdm::report::RunPage page;
//   page.title = "casdm-train: CasDM";
//   page.figures = {{"steps/s", "12.3"}};
//   page.losses = {"loss.svg", "training losses"};
//   page.write("out/index.html");
#include "casdm/report/chart.hpp"
#include "casdm/report/html.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <functional>
#include <map>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace casdm::report {

struct RunPage {
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  std::string title;
  /// Still training: the page asks the browser to reload it every `refresh_seconds`.
  bool running = false;
  int refresh_seconds = 30;
  std::string status;      // one line: "step 400 of 1200", "finished", "stopped by SIGTERM at step 371"
  Pairs figures;           // steps/s, data wait, parameters, loss means, ...
  Figure losses;           // the loss chart (src empty: none yet)
  std::vector<Figure> grids;  // sample grids, oldest first
  Figure data;             // a grid of training images (src empty: none)
  Pairs checkpoints;       // file (relative), note
  Pairs settings;          // the run's settings

  /// The sample grids in `dir` named as casdm-train names them ("samples-<step>.png", then
  /// "samples.png" for `last_step`), oldest first, each captioned by `caption(step)`.
  template <class Caption>
  static std::vector<Figure> grids_in(const std::filesystem::path& dir, int64_t last_step, Caption&& caption) {
    std::vector<std::pair<int64_t, std::string>> found;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      const auto name = e.path().filename().string();
      int64_t step = -1;
      if (name == "samples.png") {
        step = last_step;
      } else if (name.size() > 12 && name.rfind("samples-", 0) == 0 && name.substr(name.size() - 4) == ".png") {
        const auto digits = name.substr(8, name.size() - 12);
        if (digits.find_first_not_of("0123456789") == std::string::npos && digits.size() < 19) step = std::stoll(digits);
      }
      if (step >= 0) found.emplace_back(step, name);
    }
    std::sort(found.begin(), found.end());
    std::vector<Figure> out;
    for (const auto& [step, name] : found) out.push_back({name, caption(step)});
    return out;
  }

  Html html() const {
    Html page(title);
    if (running) page.refresh(refresh_seconds);
    if (!status.empty()) page.paragraph(status);
    page.heading("Figures").pairs(figures);
    if (!losses.src.empty()) page.heading("Losses").figure(losses);
    if (!grids.empty()) page.heading("Samples").gallery(grids, 280);
    if (!data.src.empty()) page.heading("Data").figure(data, 280);
    if (!checkpoints.empty()) page.heading("Checkpoints").files(checkpoints);
    page.heading("Settings").pairs(settings);
    return page;
  }
  void write(const std::filesystem::path& path) const { html().write(path); }
};

/// A training run at one moment, in plain values: what write_run_folder() shows.
struct RunState {
  std::string title, status, preset, device, data_source;
  bool running = false;
  int64_t step = 0, last = 0, trained = 0, frozen = 0, skipped = 0, threads = 1;
  double steps_per_second = -1, data_wait_fraction = 0;  // steps_per_second < 0: not known yet
  const std::vector<std::vector<double>>* curves = nullptr;  // the loss log's, one per series
  int64_t curves_from = 0;  // the step before the curves' first value
  std::vector<std::string> series;
  std::map<std::string, double> loss_means;
  std::vector<std::filesystem::path> checkpoints;
  std::map<std::string, std::string> settings;
  std::function<std::string(int64_t)> caption;  // what the grid of a step shows
};

/// run.json of a training run: the state's figures under fixed keys (preset, settings, data,
/// device, threads, steps, parameters, frozen_parameters, skipped_steps, steps_per_second,
/// data_wait_fraction, loss_series, loss_mean_last_10pct) and the program's own `extra` keys,
/// written atomically.
inline nlohmann::json run_json(const RunState& s, nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json j = {{"preset", s.preset}, {"settings", s.settings}, {"data", s.data_source}, {"device", s.device},
                      {"threads", s.threads}, {"steps", s.last}, {"parameters", s.trained},
                      {"skipped_steps", s.skipped}, {"steps_per_second", s.steps_per_second},
                      {"data_wait_fraction", s.data_wait_fraction}, {"loss_series", s.series},
                      {"loss_mean_last_10pct", s.loss_means}};
  if (s.frozen > 0) j["frozen_parameters"] = s.frozen;
  j.update(extra);
  return j;
}

/// Writes a run folder's loss.png, loss.svg and index.html (its grids "samples-<step>.png",
/// data.png, losses.csv and run.json linked where present).
inline void write_run_folder(const std::filesystem::path& dir, const RunState& s) {
  auto chart = loss_chart(s.curves ? *s.curves : std::vector<std::vector<double>>(s.series.size()), s.series,
                          s.preset + ": training losses", s.curves_from);
  chart.write(dir / "loss.png");
  chart.write(dir / "loss.svg");
  RunPage page;
  page.title = s.title;
  page.running = s.running;
  page.status = s.status;
  page.figures = {{"step", fmt::format("{} of {}", s.step, s.last)},
                  {"steps/s (this invocation)", s.steps_per_second >= 0 ? fmt::format("{:.3g}", s.steps_per_second) : "-"},
                  {"data wait", fmt::format("{:.3g} %", 100 * s.data_wait_fraction)},
                  {"parameters (trained)", fmt::format("{}", s.trained)},
                  {"skipped steps (non-finite)", fmt::format("{}", s.skipped)},
                  {"device, threads", fmt::format("{}, {}", s.device, s.threads)}};
  if (s.frozen > 0) page.figures.emplace_back("parameters (frozen metric network)", fmt::format("{}", s.frozen));
  for (const auto& [k, v] : s.loss_means)
    page.figures.emplace_back("loss " + k + " (mean of the last 10 %)", fmt::format("{:.4g}", v));
  page.losses = {"loss.svg", "Every loss term at every step (log scale): the raw values faint, their moving average bold."};
  page.grids = RunPage::grids_in(dir, s.last, s.caption ? s.caption : [](int64_t step) { return fmt::format("step {}", step); });
  if (std::filesystem::exists(dir / "data.png")) page.data = {"data.png", "Training images (" + s.data_source + ")"};
  for (const auto& c : s.checkpoints) page.checkpoints.emplace_back("checkpoints/" + c.filename().string(), "");
  if (std::filesystem::exists(dir / "losses.csv")) page.checkpoints.emplace_back("losses.csv", "every loss term at every step");
  if (std::filesystem::exists(dir / "run.json")) page.checkpoints.emplace_back("run.json", "the settings and figures");
  for (const auto& [k, v] : s.settings) page.settings.emplace_back(k, v);
  page.write(dir / "index.html");
}

}  // namespace casdm::report
