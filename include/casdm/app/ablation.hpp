#pragma once
// The parts of an ablation table (casdm-ablation) a program of your own would redo: its rows from
// "LABEL=CHECKPOINT" arguments, each checkpoint read and checked against the step counts before any
// sampling; the cache key of a cell (what its numbers depend on) and the cell from its scores.
//
//   auto rows = casdm::app::ablation_rows({"eps=out/eps", "cas=out/cas"}, {10, 100}, "ddim");
//   for (auto& [row, info] : rows) ...   // row.preset, row.step; info: the checkpoint
#include "casdm/app/preset_of.hpp"
#include "casdm/app/score_cache.hpp"
#include "casdm/eval/scorers.hpp"
#include "casdm/report/table.hpp"
#include "casdm/sampler/registry.hpp"
#include "casdm/train/checkpoint.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace casdm::app {

/// Refuses a list of step counts with an entry < 1 or one given twice.
inline void check_step_list(const std::vector<int64_t>& steps) {
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i] < 1) throw std::invalid_argument("--steps: every entry must be at least 1");
    if (std::find(steps.begin(), steps.begin() + static_cast<std::ptrdiff_t>(i), steps[i]) !=
        steps.begin() + static_cast<std::ptrdiff_t>(i))
      throw std::invalid_argument(fmt::format("--steps: {} is given twice", steps[i]));
  }
}

/// The rows of a table from "LABEL=CHECKPOINT" (a file or a casdm-train folder), each with its
/// checkpoint read: a malformed argument, a label that is not a file name or names two rows, an
/// unreadable checkpoint, or a step count that sampler `sampler_name` cannot take on a row's T is refused in one
/// line, before anything is sampled.
inline std::vector<std::pair<report::TableRow, train::CheckpointInfo>> ablation_rows(
    const std::vector<std::string>& args, const std::vector<int64_t>& steps, const std::string& sampler_name) {
  check_step_list(steps);
  std::vector<std::pair<report::TableRow, train::CheckpointInfo>> rows;
  for (const auto& r : args) {
    const auto eq = r.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == r.size())
      throw std::invalid_argument("--row " + r + ": expected LABEL=CHECKPOINT");
    if (r.find_first_of("/\\:") < eq || r.front() == '.')  // the label names the row's grid file
      throw std::invalid_argument("--row " + r + ": a label is a file name (no '/', '\\' or ':', not starting with '.')");
    const auto label = r.substr(0, eq);
    for (const auto& [before, info] : rows)  // one grid file and one line of the table per label
      if (before.label == label) throw std::invalid_argument(fmt::format("--row {}: the label {} names two rows", r, label));
    report::TableRow row{label, train::resolve_checkpoint(r.substr(eq + 1)).string(), "", "", 0, {}};
    auto info = train::read_checkpoint(row.checkpoint);
    row.preset = preset_of(info);
    row.step = info.step;
    const int64_t T = info.denoiser_options.diffusion_steps();
    for (auto s : steps) {
      if (s > T) throw std::invalid_argument(fmt::format("--steps {}: more than {}'s T = {}", s, row.checkpoint, T));
      sampler::check_steps(sampler_name, T, s, "--steps");
    }
    rows.emplace_back(std::move(row), std::move(info));
  }
  return rows;
}

/// The cache key of one cell: what its numbers depend on (the keys of DDIM cells are those of before
/// samplers were a choice, so their caches are reused).
inline std::string cell_key(const report::TableRow& r, int64_t steps, int64_t n, int64_t seed, int64_t batch,
                            int64_t bootstrap, const std::string& scorer_key, const std::string& sampler) {
  return fmt::format("{}|{}|steps={}|n={}|seed={}|batch={}|bootstrap={}|{}{}", r.label, file_key(r.checkpoint), steps, n,
                     seed, batch, bootstrap, scorer_key, sampler == "ddim" ? std::string() : "|sampler=" + sampler);
}

/// A cell of the table from the scores of its samples, drawn in `seconds`.
inline report::TableCell cell_of(const eval::Scores& s, int64_t steps, double seconds) {
  report::TableCell c{steps, s.fd, s.fd_std, s.is.mean, s.is.std, s.n, seconds, s.spatial_fd};
  if (!s.kid.values.empty()) c.kid = s.kid.mean, c.kid_std = s.kid.std;
  return c;
}

}  // namespace casdm::app
