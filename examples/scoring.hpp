#pragma once
// What casdm-eval and casdm-ablation share: the data set of a checkpoint's run brought to its
// model's side, and its reference statistics (eval::reference_stats, cached). Drawing samples
// (eval::draw_samples) and choosing the scorer by its weights file (eval::with_scorer) are library
// calls.
#include "casdm/data/images.hpp"
#include "casdm/eval/draw.hpp"
#include "casdm/eval/scorers.hpp"
#include "casdm/sampler/registry.hpp"
#include "program.hpp"

#include <cstdio>
#include <string>

namespace casdm::examples {

struct ReferenceSpec {
  std::string data, format = "auto", fit, stats;  // fit: "" = the run's; stats: "" = beside the scorer
  int64_t n = 0;                                   // 0: the whole training split
};

struct Reference {
  eval::ImageStats stats;
  std::string source, fit = "none";
  int64_t n = 0;
  bool cached = false;
};

/// The training split of `spec.data`, brought to the checkpoint's side (as its run did, unless
/// spec.fit says otherwise), and its statistics under `scorer`, cached in a keyed file.
template <class Scorer>
Reference reference(Scorer& scorer, const std::string& scorer_path, const train::CheckpointInfo& c, const ReferenceSpec& spec,
                    const c10::Device& device, int64_t batch) {
  auto set = data::open_dataset(spec.data, spec.format, true);
  if (set.images.size(1) != c.options.channels())
    throw std::runtime_error(fmt::format("{} has {}-channel images, the checkpoint's model makes {}-channel ones",
                                         set.source, set.images.size(1), c.options.channels()));
  Reference r;
  if (set.images.size(2) != c.options.image_size() || set.images.size(3) != c.options.image_size()) {
    r.fit = spec.fit.empty() ? c.get("args.fit", "resize") : spec.fit;
    set = data::fit(std::move(set), c.options.image_size(), data::parse_fit(r.fit));
  }
  r.source = set.source;
  r.n = spec.n > 0 ? std::min(spec.n, set.size()) : set.size();
  const auto path = spec.stats.empty() ? std::filesystem::path(scorer_path).parent_path() / "reference-stats.pt"
                                       : std::filesystem::path(spec.stats);
  auto got = eval::reference_stats(scorer, set.images.slice(0, 0, r.n),
                                   fmt::format("{}|{}|{}|{}", set.source, r.n, c.options.image_size(), r.fit), path,
                                   device, batch, [](int64_t d, int64_t t) {
                                     if (d == t || d % (10 * std::max<int64_t>(1, t / 100)) == 0)
                                       fmt::print(stderr, "reference features {}/{}\n", d, t);
                                   });
  r.stats = std::move(got.stats);
  r.cached = got.cached;
  return r;
}

}  // namespace casdm::examples
