#pragma once
// What casdm-eval and casdm-ablation share: their reference-statistics options and defaults. The
// statistics themselves (app::checkpoint_reference), drawing samples (eval::draw_samples) and
// choosing the scorer by its weights file (eval::with_scorer) are library calls.
#include "casdm/app/reference.hpp"
#include "casdm/eval/draw.hpp"
#include "casdm/eval/scorers.hpp"
#include "casdm/sampler/registry.hpp"
#include "program.hpp"

#include <cstdio>
#include <string>

namespace casdm::examples {

/// --data, --data-format, --fit, --stats and --ref-n of casdm-eval and casdm-ablation.
struct ReferenceSpec {
  std::string data, format = "auto", fit, stats;  // fit: "" = the run's; stats: "" = beside the scorer
  int64_t n = 0;                                   // 0: the whole training split
};

/// make(app spec, progress) with the programs' defaults: the cache beside the scorer's weights, a
/// progress line every 10 %, a warning where the statistics could not be cached.
template <class Make>
app::Reference reference_via(const std::string& scorer_path, const ReferenceSpec& spec, Make&& make) {
  const auto cache = spec.stats.empty() ? std::filesystem::path(scorer_path).parent_path() / "reference-stats.pt"
                                        : std::filesystem::path(spec.stats);
  auto r = make(app::ReferenceSpec().data(spec.data).format(spec.format).fit(spec.fit).cache(cache).n(spec.n),
                [](int64_t d, int64_t t) {
                  if (d == t || d % (10 * std::max<int64_t>(1, t / 100)) == 0) fmt::print(stderr, "reference features {}/{}\n", d, t);
                });
  if (!r.cache_error.empty())
    fmt::print(stderr, "warning: the reference statistics are used but not cached ({})\n", r.cache_error);
  return r;
}

/// app::checkpoint_reference with the programs' defaults (reference_via).
template <class Scorer>
app::Reference reference(Scorer& scorer, const std::string& scorer_path, const train::CheckpointInfo& c,
                         const ReferenceSpec& spec, const c10::Device& device, int64_t batch) {
  return reference_via(scorer_path, spec, [&](const app::ReferenceSpec& s, const auto& progress) {
    return app::checkpoint_reference(scorer, c, s, device, batch, progress);
  });
}

/// app::data_reference for images made elsewhere ([N, C, H, W]), with the programs' defaults; the
/// data brought to their side by --fit (resize if not given).
template <class Scorer>
app::Reference reference(Scorer& scorer, const std::string& scorer_path, const at::Tensor& images, const ReferenceSpec& spec,
                         const c10::Device& device, int64_t batch) {
  return reference_via(scorer_path, spec, [&](const app::ReferenceSpec& s, const auto& progress) {
    return app::data_reference(scorer, s, images.size(1), images.size(2), "resize", "the samples are", device, batch, progress);
  });
}

}  // namespace casdm::examples
