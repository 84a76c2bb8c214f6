#pragma once
// app/: what a program composes from the layers below it (here train/ and report/), so that a
// user's program does not redo it. Needs the casdm::report target.
//
// The record of a training run that a program keeps while it trains: the run's page, loss charts
// and, at the end, run.json — what report::write_run_folder() and report::run_json() show,
// gathered from the trainer, its loss log and its checkpoint folder, with the run's clock kept
// here (steps/s counts training time only: preview grids and the work after the last step are
// left out).
//
//   casdm::app::RunReport report(out, trainer, log, ckpts, first, steps,
//       casdm::app::RunReportOptions().title("casdm-train: CasDM").preset("CasDM").data_source(set.source)
//           .data_wait_seconds([&] { return loader.wait_seconds(); })
//           .paused_seconds([&] { return previews.total_seconds(); }));
//   report.training(first);                        // the page, at the start
//   ... after a step: if (report.due()) report.training(step);
//   report.stop_clock();                           // training is over
//   report.finish(checkpoint, end_pictures(out, samples, "CasDM, step 1200", set, 64));  // run.json, final page
#include "casdm/data/idx.hpp"
#include "casdm/io/files.hpp"
#include "casdm/io/text.hpp"
#include "casdm/report/image_grid.hpp"
#include "casdm/report/run_page.hpp"
#include "casdm/train/checkpoint.hpp"
#include "casdm/train/loss_log.hpp"
#include "casdm/train/stop.hpp"
#include "casdm/train/trainer.hpp"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/arg.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace casdm::app {

struct RunReportOptions {
  using Settings = std::map<std::string, std::string>;
  TORCH_ARG(std::string, title);        // the page's title
  TORCH_ARG(std::string, preset);       // the model's name on the page, the chart and run.json
  TORCH_ARG(std::string, device) = "cpu";
  TORCH_ARG(std::string, data_source);  // where the training images come from
  TORCH_ARG(Settings, settings);  // the run's settings, listed as given
  TORCH_ARG(std::function<std::string(int64_t)>, caption);  // what the sample grid of a step shows
  /// The time spent waiting for data so far, in seconds (empty: none): the page's "data wait".
  TORCH_ARG(std::function<double()>, data_wait_seconds);
  /// The time spent so far on work inside the run that is not training (preview grids), in seconds:
  /// left out of steps/s.
  TORCH_ARG(std::function<double()>, paused_seconds);
  /// Seconds since any fixed start (empty: a steady clock started with the report).
  TORCH_ARG(std::function<double()>, clock);
  /// due(): seconds between two pages written at progress lines.
  TORCH_ARG(double, min_interval) = 15;
};

/// Keeps the page of `trainer`'s run in `dir`, from step `first` (where this invocation starts)
/// to step `last`; the trainer, loss log and checkpoint folder must outlive it.
template <class Model>
class RunReport {
 public:
  RunReport(std::filesystem::path dir, train::Trainer<Model>& trainer, const train::LossLog& log,
            const train::CheckpointDir& checkpoints, int64_t first, int64_t last, RunReportOptions o = {})
      : dir_(std::move(dir)), trainer_(trainer), log_(log), checkpoints_(checkpoints), first_(first), last_(last),
        o_(std::move(o)) {
    if (first < 0 || last < first)
      throw std::invalid_argument(fmt::format("RunReport: steps {} to {} are not a run", first, last));
    if (!(o_.min_interval() >= 0))
      throw std::invalid_argument(fmt::format("RunReport: min_interval must be >= 0, got {}", o_.min_interval()));
    if (!o_.clock()) {
      const auto start = std::chrono::steady_clock::now();
      o_.clock([start] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); });
    }
    start_ = o_.clock()();
    std::tie(trained_, frozen_) = train::parameter_counts(trainer.model());
  }

  /// The run after step `step`, as the page shows it.
  report::RunState state(int64_t step, std::string status, bool running) const {
    const double elapsed = stopped_at_ ? *stopped_at_ : o_.clock()() - start_;
    const double training = elapsed - (stopped_at_ ? paused_at_stop_ : paused());
    const double wait = stopped_at_ ? wait_at_stop_ : waited();
    report::RunState s;
    s.title = o_.title();
    s.status = std::move(status);
    s.preset = o_.preset();
    s.device = o_.device();
    s.data_source = o_.data_source();
    s.running = running;
    s.step = step;
    s.last = last_;
    s.trained = trained_;
    s.frozen = frozen_;
    s.skipped = trainer_.skipped_steps();
    s.threads = at::get_num_threads();
    s.steps_per_second = training > 0 && step > first_ ? static_cast<double>(step - first_) / training : -1.0;
    s.data_wait_fraction = wait / std::max(elapsed, 1e-9);
    s.curves = &log_.curves();
    s.curves_from = log_.first_step();
    s.series = log_.series();
    s.loss_means = log_.tail_means(0.1);
    s.checkpoints = checkpoints_.list();
    s.settings = o_.settings();
    s.caption = o_.caption();
    return s;
  }

  /// Writes the page and loss charts of the run after step `step`.
  void write(int64_t step, std::string status, bool running) {
    report::write_run_folder(dir_, state(step, std::move(status), running));
    written_at_ = o_.clock()();
  }
  /// The page of a run still training: "training: step <step> of <last>".
  void training(int64_t step) { write(step, fmt::format("training: step {} of {}", step, last_), true); }
  /// Whether min_interval seconds have passed since the page was last written (or since the start).
  bool due() const { return o_.clock()() - (written_at_ ? *written_at_ : start_) >= o_.min_interval(); }

  /// Training is over: the clock, the paused time and the data wait stop here; what comes after
  /// (the last grid, the figures) counts neither in steps/s nor in the data wait.
  void stop_clock() {
    if (stopped_at_) return;
    stopped_at_ = o_.clock()() - start_;
    paused_at_stop_ = paused();
    wait_at_stop_ = waited();
  }
  /// The page of a run stopped by `signal` after step `step`.
  void stopped(int64_t step, int signal) {
    stop_clock();
    write(step, fmt::format("stopped by {} after step {} (continue with --resume)", train::StopSignals::name(signal), step),
          false);
  }

  /// The end of the run: run.json (report::run_json() of the finished state with resumed_at_step,
  /// checkpoint, train_seconds_this_invocation, identity, loss_weights (as trained: the options'
  /// λ where set), changed_on_resume (Trainer::resume_changes, if any), then `extra`'s keys) and the final
  /// page, which links it. Returns what run.json holds.
  nlohmann::json finish(const std::filesystem::path& checkpoint, const nlohmann::json& extra = nlohmann::json::object()) {
    stop_clock();
    const auto s = state(last_, fmt::format("finished: {} steps in {} this invocation", last_,
                                            io::duration_str(*stopped_at_)), false);
    nlohmann::json own = {{"resumed_at_step", first_}, {"checkpoint", checkpoint.string()},
                          {"train_seconds_this_invocation", *stopped_at_}};
    own["identity"] = Model::Impl::identity();
    for (const auto& [name, weight] : trainer_.model()->objective()->weights()) own["loss_weights"][name] = weight;
    if (!trainer_.resume_changes().empty()) own["changed_on_resume"] = trainer_.resume_changes();
    own.update(extra);
    auto j = report::run_json(s, own);
    io::write_atomic(dir_ / "run.json", j.dump(2) + "\n");
    report::write_run_folder(dir_, s);
    written_at_ = o_.clock()();
    return j;
  }

 private:
  double paused() const { return o_.paused_seconds() ? o_.paused_seconds()() : 0.0; }
  double waited() const { return o_.data_wait_seconds() ? o_.data_wait_seconds()() : 0.0; }

  std::filesystem::path dir_;
  train::Trainer<Model>& trainer_;
  const train::LossLog& log_;
  const train::CheckpointDir& checkpoints_;
  int64_t first_, last_, trained_ = 0, frozen_ = 0;
  RunReportOptions o_;
  double start_ = 0, paused_at_stop_ = 0, wait_at_stop_ = 0;
  std::optional<double> stopped_at_, written_at_;
};

/// The pictures of a run's end, beside its page in `dir`: `samples` (model range [-1, 1], [N,C,H,W])
/// as samples.png with `caption`, the first `count` training images of `set` (uint8) as data.png.
/// Returns what run.json says of them: the set's size and image shape, and the mean and standard
/// deviation of the samples and of those training images, in the model's range (a model that has
/// learnt the data's brightness has a sample mean near the data's).
inline nlohmann::json end_pictures(const std::filesystem::path& dir, const at::Tensor& samples, const std::string& caption,
                                   const data::ImageSet& set, int64_t count) {
  if (!set.images.defined() || set.images.dim() != 4 || set.images.scalar_type() != at::kByte || set.images.size(0) < 1)
    throw std::invalid_argument("end_pictures: the training set must hold uint8 images [N >= 1, C, H, W]");
  if (count < 1) throw std::invalid_argument(fmt::format("end_pictures: count must be >= 1, got {}", count));
  report::write_grid(dir / "samples.png", samples, 8, caption);
  const auto data = set.images.slice(0, 0, std::min(count, set.size())).to(at::kDouble).div(127.5).sub(1);
  report::write_grid(dir / "data.png", data, 8, "training images: " + set.source);
  const auto x = samples.detach().to(at::kCPU, at::kDouble);
  return {{"images", set.size()},
          {"image_shape", {set.images.size(1), set.images.size(2), set.images.size(3)}},
          {"sample_mean", x.mean().item<double>()},
          {"sample_std", x.std().item<double>()},
          {"data_mean", data.mean().item<double>()},
          {"data_std", data.std().item<double>()}};
}

}  // namespace casdm::app
