#pragma once
// One evaluation of a checkpoint, as casdm-eval records it: the reference statistics, the samples,
// their scores under a scorer, and a JSON record of what was asked, what was used and how long each
// part took.
//
//   auto j = casdm::app::evaluate(info, scorer, [&] { return casdm::app::checkpoint_reference(scorer, info, spec, device); },
//                                 [&](std::string& which) { return samples; }, casdm::app::EvalRequest{...}, {}, device);
//   // Images made by another program (data::read_sample_images):
//   auto k = casdm::app::evaluate_images(s.images, s.source, scorer, [&] { return casdm::app::data_reference(...); }, request, device);
#include "casdm/app/preset_of.hpp"
#include "casdm/app/reference.hpp"
#include "casdm/app/sampling.hpp"
#include "casdm/eval/scorers.hpp"
#include "casdm/sampler/registry.hpp"
#include "casdm/train/checkpoint.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace casdm::app {

/// What an evaluation asked for (recorded as given; the sampling's `steps` as run).
struct EvalRequest {
  SamplingRequest sampling;
  int64_t n = 0, seed = 0, splits = 10, bootstrap = 0, batch = 100;
  eval::KidOptions kid;  // kid.subsets 0: no KID
};

/// The reference statistics (`reference`), the samples (`sample`, which names the weights it used)
/// and their scores under `scorer`, as a JSON record: checkpoint, preset, step, weights, sampler, the
/// class asked for (and, with a domain classifier of the model's classes, its accuracy on the
/// samples' labels `labels`), the scorer, the data, the scores (eval::scores_json) and the seconds of
/// each part. A KID subset size the samples or the reference cannot give is refused before sampling.
template <class Scorer>
nlohmann::json evaluate(const train::CheckpointInfo& c, Scorer& scorer, const std::function<Reference()>& reference,
                        const std::function<at::Tensor(std::string&)>& sample, const EvalRequest& r,
                        const at::Tensor& labels, const c10::Device& device) {
  constexpr bool fid = eval::is_fid_v<Scorer>;
  const auto t0 = std::chrono::steady_clock::now();
  const auto ref = reference();
  if (r.kid.subsets > 0 && ref.stats.features.defined()) (void)eval::kid_subset_size(r.n, ref.stats.features.size(0), r.kid.subset_size);
  const auto t1 = std::chrono::steady_clock::now();
  std::string which;
  const auto samples = sample(which);
  const auto t2 = std::chrono::steady_clock::now();
  const auto stats = eval::image_stats(scorer, samples, device, r.batch, {}, r.bootstrap > 0 || r.kid.subsets > 0);
  const auto scores = eval::scores_of(stats, ref.stats, r.splits, r.bootstrap, static_cast<uint64_t>(r.seed), r.kid);
  const auto t3 = std::chrono::steady_clock::now();
  auto secs = [](auto x, auto y) { return std::chrono::duration<double>(y - x).count(); };
  nlohmann::json j{{"checkpoint", c.path.string()}, {"preset", preset_of(c)}, {"step", c.step}, {"weights", which},
                   {"sampler", r.sampling.json()}};
  if (labels.defined()) {
    j["class"] = r.sampling.cls;
    j["guidance"] = r.sampling.guidance;
    // The scorer's classes against the labels asked for (meaningful for a classifier of the same
    // classes: the domain scorer of the data set the model was trained on).
    if (!fid && stats.probs.size(1) == c.denoiser_options.num_classes())
      j["class_accuracy"] = stats.probs.argmax(1).eq(labels.to(stats.probs.device())).to(at::kDouble).mean().template item<double>();
  }
  j.update({{"n", r.n}, {"seed", r.seed}, {"scorer", scorer.name()}, {"data", ref.source}, {"reference_images", ref.n},
            {"reference_cached", ref.cached}, {"data_fit", ref.fit}});
  j.update(eval::scores_json(scores, fid, r.splits, r.bootstrap));
  j["seconds"] = {{"reference", secs(t0, t1)}, {"sampling", secs(t1, t2)}, {"scoring", secs(t2, t3)}};
  return j;
}

/// The scores of images made elsewhere (`images` [N, C, H, W], uint8 or float in [−1, 1]; `source`
/// says where they came from) against `reference`, as a JSON record: the samples, their count and
/// side, the scorer, the data, the scores (eval::scores_json; r.sampling and r.n are not used) and
/// the seconds of each part. Non-square images, and a KID subset larger than the images or the
/// reference, are refused before scoring.
template <class Scorer>
nlohmann::json evaluate_images(const at::Tensor& images, const std::string& source, Scorer& scorer,
                               const std::function<Reference()>& reference, const EvalRequest& r, const c10::Device& device) {
  constexpr bool fid = eval::is_fid_v<Scorer>;
  if (images.dim() != 4 || images.size(2) != images.size(3))
    throw std::invalid_argument(fmt::format("{}: images of {}x{}; the reference is brought to square images only", source,
                                            images.dim() == 4 ? images.size(2) : 0, images.dim() == 4 ? images.size(3) : 0));
  const int64_t n = images.size(0);
  if (r.splits > n) throw std::invalid_argument(fmt::format("{}: {} images for {} Inception Score splits", source, n, r.splits));
  const auto t0 = std::chrono::steady_clock::now();
  const auto ref = reference();
  if (r.kid.subsets > 0 && ref.stats.features.defined()) (void)eval::kid_subset_size(n, ref.stats.features.size(0), r.kid.subset_size);
  const auto t1 = std::chrono::steady_clock::now();
  const auto stats = eval::image_stats(scorer, images, device, r.batch, {}, r.bootstrap > 0 || r.kid.subsets > 0);
  const auto scores = eval::scores_of(stats, ref.stats, r.splits, r.bootstrap, static_cast<uint64_t>(r.seed), r.kid);
  const auto t2 = std::chrono::steady_clock::now();
  auto secs = [](auto x, auto y) { return std::chrono::duration<double>(y - x).count(); };
  nlohmann::json j{{"samples", source}, {"n", n}, {"side", images.size(2)}, {"channels", images.size(1)}, {"seed", r.seed},
                   {"scorer", scorer.name()}, {"data", ref.source}, {"reference_images", ref.n}, {"reference_cached", ref.cached},
                   {"data_fit", ref.fit}};
  j.update(eval::scores_json(scores, fid, r.splits, r.bootstrap));
  j["seconds"] = {{"reference", secs(t0, t1)}, {"scoring", secs(t1, t2)}};
  return j;
}

}  // namespace casdm::app
