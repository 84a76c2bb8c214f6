#pragma once
// The loop every training program writes around a Trainer: steps first+1 … last, each logged; a
// checkpoint every `checkpoint_every` steps; on SIGINT/SIGTERM a checkpoint after the current step
// and an early return; a callback after every step (sample grids, progress lines).
//
//   auto end = casdm::train::run_steps(trainer, [&] { return loader.next(); }, log, ckpts,
//                                      casdm::train::LoopOptions().last(1200).checkpoint_every(400),
//                                      [&](int64_t step) { /* samples, progress */ });
//   if (end.signal) return 128 + end.signal;    // end.checkpoint: where --resume continues
//   ckpts.save(trainer);                         // the last step's checkpoint is the caller's
#include "casdm/train/checkpoint.hpp"
#include "casdm/train/loss_log.hpp"
#include "casdm/train/stop.hpp"

#include <torch/arg.h>

#include <filesystem>
#include <map>
#include <string>

namespace casdm::train {

using Meta = std::map<std::string, std::string>;

struct LoopOptions {
  /// The step to reach (inclusive).
  TORCH_ARG(int64_t, last) = 0;
  /// Steps between checkpoints before the last step (0: none).
  TORCH_ARG(int64_t, checkpoint_every) = 0;
  /// Metadata every checkpoint gets (the run's settings).
  TORCH_ARG(Meta, meta) = {};
};

/// Where run_steps stopped: the last step taken, the signal that stopped it (0: none) and the
/// checkpoint written for it (or the last periodic one).
struct LoopEnd {
  int64_t step = 0;
  int signal = 0;
  std::filesystem::path checkpoint;
};

/// Trains `trainer` on `next_batch()` up to `o.last()`; see the file's comment. A NonFiniteError
/// from the trainer propagates (the log's rows are written as it unwinds).
///
/// Data-parallel (the trainer's options().sync()): a signal on any rank stops every rank after the
/// same step (the ranks agree on it after each step); only rank 0 writes checkpoints, and every
/// rank waits at a barrier until the checkpoint is written.
template <class T, class Next, class After>
LoopEnd run_steps(T& trainer, Next&& next_batch, LossLog& log, const CheckpointDir& ckpts, const LoopOptions& o,
                  After&& after) {
  StopSignals stop;
  LoopEnd end;
  const auto& sync = trainer.options().sync();
  const bool writer = !sync || sync->rank() == 0;
  for (int64_t step = trainer.step_count() + 1; step <= o.last(); ++step) {
    log.append(step, trainer.step(next_batch()));
    end.step = step;
    const bool periodic = o.checkpoint_every() > 0 && step % o.checkpoint_every() == 0 && step != o.last();
    end.signal = sync ? static_cast<int>(sync->max_of(stop.requested())) : stop.requested();
    if (end.signal || periodic) {
      log.flush();
      if (writer) end.checkpoint = ckpts.save(trainer, o.meta());
      if (sync) sync->barrier();
      if (end.signal) return end;
    }
    after(step);
  }
  return end;
}

}  // namespace casdm::train
