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
#include "casdm/report/html.hpp"

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

}  // namespace casdm::report
