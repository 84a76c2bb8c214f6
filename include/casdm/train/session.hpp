#pragma once
// A training run the library runs: a Trainer on the batches of a data set (a data::Loader that
// resumes at the trainer's step), periodic and final checkpoints with their rotation, SIGINT and
// SIGTERM (a checkpoint after the current step, then an early end), data parallel through the
// trainer's GradientSync (the ranks agree on a stop; rank 0 writes and previews), and preview grids
// from fixed noise. What a program shows or records — progress lines, a loss log, a run page — is
// a hook it adds:
//
//   casdm::train::Session<casdm::presets::CasDM> session(model, images, casdm::train::TrainerOptions(),
//       casdm::train::SessionOptions().steps(1200).checkpoints("out/checkpoints").checkpoint_every(400));
//   if (auto point = casdm::train::CheckpointDir("out/checkpoints").resume_point(true)) session.resume(*point);
//   session.on_step([](const casdm::train::StepEvent& e) { fmt::print("{} {}\n", e.step, e.losses.total.item<double>()); });
//   auto end = session.run();   // end.signal: stopped early; end.checkpoint: where a resume goes on
//
// Hooks run in the order added, on the thread that trains:
//   on_step(StepEvent)            after every step, on every rank;
//   before_checkpoint(step)       on the rank that writes, before a checkpoint is written: whatever a
//                                 resume from it will read (a loss log) is flushed here;
//   on_checkpoint(CheckpointEvent) after it is written;
//   on_preview(PreviewEvent)      a grid every preview_every steps and at the end, on the writing rank
//                                 (none is drawn when no preview hook is added);
//   on_end(SessionEnd)            once, on every rank, when the last step is done or a signal stopped it.
// An exception from the trainer (NonFiniteError) or a hook ends run() with it.
#include "casdm/data/loader.hpp"
#include "casdm/train/checkpoint.hpp"
#include "casdm/train/previews.hpp"
#include "casdm/train/stop.hpp"
#include "casdm/train/trainer.hpp"

#include <fmt/format.h>
#include <torch/arg.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace casdm::train {

using Meta = std::map<std::string, std::string>;

struct SessionOptions {
  /// The step to reach (inclusive): the total, not the steps to take.
  TORCH_ARG(int64_t, steps) = 0;
  /// The checkpoint folder (ckpt-<step>.pt); empty: no checkpoints, and a signal just stops.
  TORCH_ARG(std::filesystem::path, checkpoints);
  /// Steps between checkpoints before the last step (0: at the end and at a signal only).
  TORCH_ARG(int64_t, checkpoint_every) = 0;
  /// Checkpoints kept (CheckpointDir::check_keep).
  TORCH_ARG(int64_t, keep) = 3;
  /// Entries every checkpoint's metadata gets (the run's settings).
  TORCH_ARG(Meta, meta);
  /// How the batches are drawn (batch size, flips, seed, prefetch, device).
  TORCH_ARG(data::LoaderOptions, loader);
  /// Steps between preview grids before the last step (0: at the end only).
  TORCH_ARG(int64_t, preview_every) = 0;
  TORCH_ARG(PreviewOptions, preview);
};

/// After a step: its number, the step the run goes to, its losses, and why it was skipped (empty:
/// it was not).
struct StepEvent {
  int64_t step, last;
  const loss::LossReport& losses;
  const std::string& skipped;
};

struct CheckpointEvent {
  enum class Why { periodic, signal, last };
  int64_t step;
  std::filesystem::path file;
  Why why;
};

/// A preview grid: `images` in [−1, 1] from the EMA weights, drawn in `seconds`; `last` at the end.
struct PreviewEvent {
  int64_t step;
  at::Tensor images;
  double seconds;
  bool last;
};

/// Where the run stopped: the last step taken, the signal that stopped it (0: none; 128 + signal is
/// a program's exit status) and the newest checkpoint written (empty: none).
struct SessionEnd {
  int64_t step = 0;
  int signal = 0;
  std::filesystem::path checkpoint;
};

template <class Model>
class Session {
 public:
  /// Refuses now, in one line, what the run could not do: a step total that is not positive, a
  /// negative interval, a keep below 2, a batch the loader cannot serve, and a preview grid the
  /// sampler cannot lay out (checked when the first preview hook is added).
  Session(Model model, data::ImageSet images, TrainerOptions trainer, SessionOptions o)
      : trainer_(std::move(model), std::move(trainer)), images_(std::move(images)), options_(std::move(o)) {
    if (options_.steps() < 1) throw std::invalid_argument(fmt::format("Session: steps must be >= 1, got {}", options_.steps()));
    if (options_.checkpoint_every() < 0 || options_.preview_every() < 0)
      throw std::invalid_argument("Session: checkpoint_every and preview_every must be >= 0");
    CheckpointDir::check_keep(options_.keep());
    if (!images_.images.defined() || images_.images.dim() != 4)
      throw std::invalid_argument("Session: the images must be a uint8 tensor [N, C, H, W]");
    const auto& mo = trainer_.model()->denoiser()->options;
    if (images_.images.size(1) != mo.channels() || images_.images.size(2) != mo.image_size() ||
        images_.images.size(3) != mo.image_size())
      throw std::invalid_argument(fmt::format("Session: the images of {} are {}x{}x{}, the model takes {}x{}x{}",
                                              images_.source, images_.images.size(1), images_.images.size(2),
                                              images_.images.size(3), mo.channels(), mo.image_size(), mo.image_size()));
    if (mo.num_classes() > 0) images_.conditioning_classes("Session: a class-conditional model");
  }

  Session(const Session&) = delete;  // the previews hold the trainer
  Session& operator=(const Session&) = delete;

  /// Continues checkpoint `c` exactly (model, EMA copies, optimiser, generators; the data order
  /// follows the step); before run().
  void resume(const CheckpointInfo& c) {
    if (ran_) throw std::logic_error("Session::resume: after run()");
    trainer_.load(c);
  }

  Session& on_step(std::function<void(const StepEvent&)> f) { return add(step_hooks_, std::move(f)); }
  Session& before_checkpoint(std::function<void(int64_t)> f) { return add(save_hooks_, std::move(f)); }
  Session& on_checkpoint(std::function<void(const CheckpointEvent&)> f) { return add(checkpoint_hooks_, std::move(f)); }
  Session& on_preview(std::function<void(const PreviewEvent&)> f) {
    if (writer() && !previews_) previews_.emplace(trainer_, options_.preview());
    return add(preview_hooks_, std::move(f));
  }
  Session& on_end(std::function<void(const SessionEnd&)> f) { return add(end_hooks_, std::move(f)); }

  /// Trains from the trainer's step to options().steps(); see the file's comment. Runs once.
  SessionEnd run() {
    if (ran_) throw std::logic_error("Session::run: a session runs once");
    ran_ = true;
    const int64_t first = trainer_.step_count(), last = options_.steps();
    if (first >= last)
      throw std::runtime_error(fmt::format("the run is at step {} already; steps ({}) is the total to reach", first, last));
    if (writer() && !options_.checkpoints().empty()) {  // a file or a dangling link there: refused now, not after the steps
      std::error_code ec;
      std::filesystem::create_directories(options_.checkpoints(), ec);
      if (ec || !std::filesystem::is_directory(options_.checkpoints()))
        throw std::runtime_error(fmt::format("the checkpoint folder {} cannot be used: {}", options_.checkpoints().string(),
                                             ec ? ec.message() : "it is not a folder"));
    }
    loader_.emplace(images_, options_.loader(), first);
    const bool labelled = trainer_.model()->denoiser()->options.num_classes() > 0;
    const auto& sync = trainer_.options().sync();
    StopSignals stop;
    SessionEnd end;
    for (int64_t step = first + 1; step <= last; ++step) {
      auto [x, y] = loader_->next_labelled(labelled);
      const auto losses = trainer_.step(Batch{x, y});
      end.step = step;
      for (auto& f : step_hooks_) f(StepEvent{step, last, losses, trainer_.last_skip()});
      end.signal = sync ? static_cast<int>(sync->max_of(stop.requested())) : stop.requested();
      if (end.signal) {
        checkpoint(end, CheckpointEvent::Why::signal);
        break;
      }
      if (step == last) break;
      if (options_.checkpoint_every() > 0 && step % options_.checkpoint_every() == 0)
        checkpoint(end, CheckpointEvent::Why::periodic);
      if (options_.preview_every() > 0 && step % options_.preview_every() == 0) preview(step, false);
    }
    if (!end.signal) {
      checkpoint(end, CheckpointEvent::Why::last);
      preview(last, true);
    }
    for (auto& f : end_hooks_) f(end);
    return end;
  }

  Trainer<Model>& trainer() { return trainer_; }
  const Trainer<Model>& trainer() const { return trainer_; }
  const SessionOptions& options() const { return options_; }
  const data::ImageSet& images() const { return images_; }
  /// Whether this rank writes checkpoints and draws previews (rank 0, or the only one).
  bool writer() const { return !trainer_.options().sync() || trainer_.options().sync()->rank() == 0; }
  /// Seconds the steps waited for batches so far (0 before run()).
  double data_wait_seconds() const { return loader_ ? loader_->wait_seconds() : 0.0; }
  /// Seconds spent drawing preview grids so far.
  double preview_seconds() const { return previews_ ? previews_->total_seconds() : 0.0; }
  /// The preview grids' fixed noise and sampler, where this rank draws them.
  const std::optional<Previews<Model>>& previews() const { return previews_; }

 private:
  template <class F>
  Session& add(std::vector<F>& hooks, F f) {
    if (ran_) throw std::logic_error("Session: hooks are added before run()");
    if (!f) throw std::invalid_argument("Session: an empty hook");
    hooks.push_back(std::move(f));
    return *this;
  }

  void checkpoint(SessionEnd& end, CheckpointEvent::Why why) {
    if (options_.checkpoints().empty()) return;
    const auto& sync = trainer_.options().sync();
    if (writer()) {
      for (auto& f : save_hooks_) f(end.step);
      end.checkpoint = CheckpointDir(options_.checkpoints(), options_.keep()).save(trainer_, options_.meta());
      for (auto& f : checkpoint_hooks_) f(CheckpointEvent{end.step, end.checkpoint, why});
    }
    if (sync) sync->barrier();  // no rank goes on (or exits) before the checkpoint is on disk
  }

  void preview(int64_t step, bool last) {
    if (!previews_) return;
    auto images = previews_->sample();
    for (auto& f : preview_hooks_) f(PreviewEvent{step, images, previews_->last_seconds(), last});
  }

  Trainer<Model> trainer_;
  data::ImageSet images_;
  SessionOptions options_;
  std::optional<data::Loader> loader_;
  std::optional<Previews<Model>> previews_;
  std::vector<std::function<void(const StepEvent&)>> step_hooks_;
  std::vector<std::function<void(int64_t)>> save_hooks_;
  std::vector<std::function<void(const CheckpointEvent&)>> checkpoint_hooks_;
  std::vector<std::function<void(const PreviewEvent&)>> preview_hooks_;
  std::vector<std::function<void(const SessionEnd&)>> end_hooks_;
  bool ran_ = false;
};

}  // namespace casdm::train
