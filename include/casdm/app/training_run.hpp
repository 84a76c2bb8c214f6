#pragma once
// A training run as casdm-train makes it, in one call: the data set opened and fitted, the model
// built (or resumed) and trained by a train::Session (checkpoints, SIGINT/SIGTERM, previews, data
// parallel), with the output folder's files as the session's hooks: the loss log, progress lines,
// sample grids, and the run's page, charts and run.json. A program parses its options into
// TrainingFlags and calls it; data-parallel ranks pass their process group.
//
//   casdm::app::TrainingFlags flags;            // casdm-train's defaults: CPU-sized CasDM, Fashion-MNIST
//   flags.preset = "CasDM"; flags.steps = 1200; flags.out = "out/casdm";
//   flags.check();                              // one line per misfit, before anything is written
//   auto end = casdm::app::run_training<casdm::presets::CasDM>(flags);
//   if (end.signal) ...                         // stopped early: end.checkpoint is where a resume goes on
//
// A resume passes the checkpoint (train::CheckpointDir::resume_point) and the settings the run keeps
// (RunSettings::values(), stored in every checkpoint as "args.<name>"). The output folder is made
// if missing; locking it against a second run (io::OutputFolder) is the caller's, as casdm-train
// does before it looks for a checkpoint.
#include "casdm/app/machine.hpp"
#include "casdm/app/model_flags.hpp"
#include "casdm/app/run_report.hpp"
#include "casdm/data/images.hpp"
#include "casdm/data/loader.hpp"
#include "casdm/io/files.hpp"
#include "casdm/report/image_grid.hpp"
#include "casdm/report/progress.hpp"
#include "casdm/sampler/registry.hpp"
#include "casdm/train/checkpoint.hpp"
#include "casdm/train/distributed.hpp"
#include "casdm/train/loss_log.hpp"
#include "casdm/train/session.hpp"
#include "casdm/train/trainer.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::app {

/// What a training run is asked to do, in casdm-train's option names and defaults.
struct TrainingFlags {
  // The run's settings (a program keeps them across a resume with RunSettings).
  std::string preset = "CasDM";
  std::string data = "/usr/share/datasets/fashion-mnist";  // IDX files, CIFAR-10 *.bin batches, or images
  std::string data_format = "auto";                        // auto, idx, cifar10 or images
  std::string fit = "pad";                                 // pad or resize (data::parse_fit)
  bool hflip = false;
  int64_t image_size = 0, batch = 32, micro_batch = 0, seed = 0;  // image_size 0: the data's
  double lr = 1e-3, weight_decay = 0, grad_clip = 0;
  std::vector<double> ema{0.99};  // EMA rates; the sample grids use the first
  std::string precision = "fp32";  // fp32, bf16 or fp16 (precision_type)
  ModelFlags model;                // T, the U-Nets, feature-loss and class-conditioning settings
  // This invocation's choices.
  int64_t steps = 1200;            // the step to reach
  int64_t checkpoint_every = 0;    // 0: a checkpoint at the end only
  int64_t keep = 3;                // checkpoints kept
  int64_t sample_every = 0;        // steps between sample grids (0: at the end only)
  int64_t samples = 64, sample_steps = 50;  // a grid's images and its DDIM steps
  int64_t log_every = 100, prefetch = 2, max_nonfinite = 3;
  std::string out = "out/casdm", device = "cpu";
  std::string program = "casdm-train";  // the run's page title and run.json name it

  /// Refuses, in one line naming the option, what the run could not do — before anything is read
  /// or written: a preset that would not read a model setting (ModelFlags::check), a micro-batch
  /// above the batch, a precision the device has not, an unknown --fit, a grid step count DDIM
  /// cannot lay out on T, and the counts that must be positive.
  void check() const {
    model.check(preset);
    const std::pair<const char*, int64_t> positive[] = {{"--steps", steps},     {"--batch", batch},
                                                        {"--samples", samples}, {"--sample-steps", sample_steps},
                                                        {"--log-every", log_every}, {"--max-nonfinite", max_nonfinite}};
    for (const auto& [option, v] : positive)
      if (v < 1) throw std::invalid_argument(fmt::format("{}: must be >= 1, got {}", option, v));
    if (micro_batch < 0 || micro_batch > batch)
      throw std::invalid_argument(fmt::format("--micro-batch {}: must be in [0, --batch {}]", micro_batch, batch));
    try {
      train::CheckpointDir::check_keep(keep);
    } catch (const std::exception& e) {
      throw std::invalid_argument(fmt::format("--keep: {}", e.what()));
    }
    if (checkpoint_every < 0 || sample_every < 0 || prefetch < 0 || image_size < 0 || seed < 0)
      throw std::invalid_argument("--checkpoint-every, --sample-every, --prefetch, --image-size and --seed must be >= 0");
    if (ema.empty()) throw std::invalid_argument("--ema: at least one rate");
    precision_type(precision, c10::Device(device));
    data::parse_fit(fit);
    sampler::check_steps("ddim", model.diffusion_steps, sample_steps, "--sample-steps");
  }
};

/// Trains `Model` as `a` asks (TrainingFlags::check first) and returns where it stopped: the last
/// step, the signal that stopped it (0: none; then 128 + signal is a program's exit status) and the
/// checkpoint written there. With `resume` it continues that checkpoint exactly (model, EMA copies,
/// optimiser, generators, data order); `settings` are stored in every checkpoint as "args.<name>".
/// With a process group, rank 0 alone writes, prints and samples.
template <class Model>
train::SessionEnd run_training(const TrainingFlags& a, const std::map<std::string, std::string>& settings = {},
                               const std::optional<train::CheckpointInfo>& resume = std::nullopt,
                               std::shared_ptr<train::ProcessGroup> group = nullptr) {
  namespace fs = std::filesystem;
  const auto device = c10::Device(a.device);
  const bool writer = !group || group->rank() == 0;
  const fs::path out = a.out;
  if (group) group->agree(settings);  // ranks started alike, or refused on every rank

  // Data first: a bad data set is refused before anything is written.
  auto set = data::open_dataset(a.data, a.data_format, true, a.fit == "resize" ? a.image_size : 0);
  const int64_t size = a.image_size > 0 ? a.image_size : set.images.size(2);
  set = data::fit(std::move(set), size, data::parse_fit(a.fit));
  const int64_t channels = set.images.size(1);
  if (writer) fmt::print(stderr, "data: {}, {} images {}x{}x{}\n", set.source, set.size(), channels, size, size);
  const int64_t classes = a.model.class_cond ? set.conditioning_classes("--class-cond") : 0;
  if (writer && classes > 0)
    fmt::print(stderr, "class-conditional: {} classes, label dropout {}\n", classes, a.model.label_dropout);

  const auto options = a.model.denoiser(channels, size, classes);
  if (writer)
    for (const auto& w : ModelFlags::unused_attention(options)) fmt::print(stderr, "warning: {}\n", w);
  train::check_memory<typename Model::Impl::topology_type>(options, a.micro_batch > 0 ? a.micro_batch : a.batch,
                                                          a.ema.size());
  if (writer) io::require_writable_folder(out);  // made if missing, or refused
  if (!resume) torch::manual_seed(static_cast<uint64_t>(a.seed));
  Model model(options, a.model.objective(a.preset));
  model->to(device);
  train::Meta meta{{"preset", a.preset}, {"program", a.program}};
  for (const auto& [k, v] : settings) meta["args." + k] = v;
  train::Session<Model> session(
      model, set,
      train::TrainerOptions()
          .optimizer(train::AdamWOptions().lr(a.lr).weight_decay(a.weight_decay))
          .ema_rates(a.ema).grad_clip(a.grad_clip).micro_batch(a.micro_batch).max_nonfinite_steps(a.max_nonfinite)
          .label_dropout(a.model.label_dropout)
          .precision(precision_type(a.precision, device)).sync(group),
      train::SessionOptions()
          .steps(a.steps).checkpoints(out / "checkpoints").checkpoint_every(a.checkpoint_every).keep(a.keep).meta(meta)
          .loader(data::LoaderOptions().batch_size(a.batch).hflip(a.hflip).seed(static_cast<uint64_t>(a.seed))
                      .prefetch(a.prefetch).device(device))
          .preview_every(a.sample_every)  // the same noise (and labels) every time, the run's generators untouched
          .preview(train::PreviewOptions().count(a.samples).steps(a.sample_steps).seed(static_cast<uint64_t>(a.seed) + 1)));
  auto& trainer = session.trainer();
  if (resume) {
    for (const auto& note : resume->notes)
      if (writer) fmt::print(stderr, "{}\n", note);
    session.resume(*resume);
    if (writer) {
      fmt::print(stderr, "resumed from {} at step {}\n", resume->path.string(), trainer.step_count());
      for (const auto& change : trainer.resume_changes())  // the objective's settings may change on resume
        fmt::print(stderr, "changed on resume (checkpoint vs this run): {}\n", change);
    }
  }
  const int64_t first = trainer.step_count();
  if (first >= a.steps)
    throw std::runtime_error(fmt::format("the run is at step {} already; --steps is the total to reach", first));
  if (!writer) return session.run();  // rank 0 prints and writes

  // The hooks: the loss log (on resume, the rows up to the checkpoint's step are kept and the rest
  // redone), progress lines, sample grids, and the run's page and run.json.
  train::LossLog log(out / "losses.csv", Model::Impl::losses_type::describe(),
                     resume ? std::optional<int64_t>(first) : std::nullopt);
  if (log.started_anew())
    fmt::print(stderr, "no loss log in {}: losses.csv starts anew after step {} (the rows before are the run's "
                       "that wrote {})\n", out.string(), first, resume->path.string());
  auto caption = [&](int64_t step) {
    return fmt::format("{}, step {}, EMA {} weights, {} DDIM steps", a.preset, step, a.ema.front(), a.sample_steps);
  };
  report::Progress progress(first, a.steps, report::ProgressOptions().every(a.log_every));
  const train::CheckpointDir ckpts(out / "checkpoints", a.keep);
  RunReport report(out, trainer, log, ckpts, first, a.steps,
                   RunReportOptions()
                       .title(fmt::format("{}: {} on {}", a.program, a.preset, fs::path(set.source).filename().string()))
                       .preset(a.preset).device(a.device).data_source(set.source).settings(settings).caption(caption)
                       .data_wait_seconds([&] { return session.data_wait_seconds(); })
                       .paused_seconds([&] { return session.preview_seconds(); }));
  report.training(first);
  session.on_step([&](const train::StepEvent& e) {
    log.append(e.step, e.losses);
    if (!e.skipped.empty())
      progress.print(fmt::format("step {} skipped: {} ({} so far)", e.step, e.skipped, trainer.skipped_steps()));
    progress.update(e.step, fmt::format("{} | data wait {:.3g}%", log.last(),
                                        100 * session.data_wait_seconds() / progress.seconds()));
    if (e.step == e.last) {
      progress.done();
      report.stop_clock();
    } else if (e.step % a.log_every == 0 && report.due()) {  // the page at most every 15 s (~40 ms a time)
      log.flush();
      report.training(e.step);
    }
  });
  session.before_checkpoint([&](int64_t) { log.flush(); });  // a resume reads the rows up to its step
  at::Tensor last_grid;  // the end's grid, written with the run's other pictures
  session.on_preview([&](const train::PreviewEvent& e) {
    if (e.last) {
      last_grid = e.images;
      return;
    }
    report::write_grid(out / fmt::format("samples-{:09d}.png", e.step), e.images, 8, caption(e.step));
    log.flush();
    report.training(e.step);
  });
  session.on_end([&](const train::SessionEnd& end) {
    if (end.signal) {
      progress.done();
      report.stopped(end.step, end.signal);
      return;
    }
    auto extra = end_pictures(out, last_grid, caption(a.steps), set, a.samples);
    extra["sample_seconds"] = session.previews()->last_seconds();
    extra["sample_steps"] = a.sample_steps;
    if (group)
      extra["data_parallel"] = {{"world_size", group->world_size()}, {"allreduce_wait_seconds", group->seconds_waiting()}};
    report.finish(end.checkpoint, extra);
  });
  return session.run();
}

}  // namespace casdm::app
