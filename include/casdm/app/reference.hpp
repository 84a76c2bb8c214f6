#pragma once
// The reference statistics a checkpoint's samples are scored against: the training split of a data
// set brought to the checkpoint's side the way its run brought it (the run's stored --fit, unless
// asked otherwise), its features under a scorer, cached in a keyed file (eval::reference_stats).
//
//   auto ref = casdm::app::checkpoint_reference(scorer, info,
//       casdm::app::ReferenceSpec().data("/usr/share/datasets/fashion-mnist").cache("weights/fmnist/reference-stats.pt"),
//       at::kCPU);
//   auto scores = casdm::eval::scores_of(casdm::eval::image_stats(scorer, samples, at::kCPU), ref.stats);
#include "casdm/data/images.hpp"
#include "casdm/eval/scorers.hpp"
#include "casdm/train/checkpoint.hpp"

#include <fmt/format.h>
#include <torch/arg.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>

namespace casdm::app {

struct ReferenceSpec {
  TORCH_ARG(std::string, data);             // the data set's folder
  TORCH_ARG(std::string, format) = "auto";  // auto, idx, cifar10 or images
  TORCH_ARG(std::string, fit);              // pad or resize; empty: the run's (its "args.fit"; resize if none)
  TORCH_ARG(std::filesystem::path, cache);  // the statistics file
  TORCH_ARG(int64_t, n) = 0;                // images of the training split (0: all of it)
};

struct Reference {
  eval::ImageStats stats;
  std::string source;         // the data set as data::open_dataset names it
  std::string fit = "none";   // how the images were brought to the checkpoint's side
  int64_t n = 0;              // images scored
  bool cached = false;        // read from the cache
  std::string cache_error;    // why they could not be cached ("": they were, or were read)
};

/// The statistics under `scorer` of the first spec.n() training images of spec.data(), brought to
/// `side` × `side` (by spec.fit(), else `default_fit`); a data set of a channel count other than
/// `channels` is refused, `whose` saying what has that many ("the samples are").
template <class Scorer>
Reference data_reference(Scorer& scorer, const ReferenceSpec& spec, int64_t channels, int64_t side, const std::string& default_fit,
                         const std::string& whose, const c10::Device& device, int64_t batch = 100,
                         const std::function<void(int64_t, int64_t)>& progress = {}) {
  if (spec.n() < 0) throw std::invalid_argument(fmt::format("ReferenceSpec: n must be >= 0 (0: all), got {}", spec.n()));
  auto set = data::open_dataset(spec.data(), spec.format(), true);
  if (set.images.size(1) != channels)
    throw std::runtime_error(fmt::format("{} has {}-channel images, {} {}-channel ones", set.source, set.images.size(1), whose, channels));
  Reference r;
  if (set.images.size(2) != side || set.images.size(3) != side) {
    r.fit = spec.fit().empty() ? default_fit : spec.fit();
    set = data::fit(std::move(set), side, data::parse_fit(r.fit));
  }
  r.source = set.source;
  r.n = spec.n() > 0 ? std::min(spec.n(), set.size()) : set.size();
  auto got = eval::reference_stats(scorer, set.images.slice(0, 0, r.n),
                                   fmt::format("{}|{}|{}|{}", set.source, r.n, side, r.fit), spec.cache(), device,
                                   batch, progress);
  r.stats = std::move(got.stats);
  r.cached = got.cached;
  r.cache_error = std::move(got.cache_error);
  return r;
}

/// The statistics under `scorer` of the first spec.n() training images of spec.data(), brought to
/// checkpoint `c`'s side the way its run brought them; a data set of another channel count is refused.
template <class Scorer>
Reference checkpoint_reference(Scorer& scorer, const train::CheckpointInfo& c, const ReferenceSpec& spec,
                               const c10::Device& device, int64_t batch = 100,
                               const std::function<void(int64_t, int64_t)>& progress = {}) {
  return data_reference(scorer, spec, c.denoiser_options.channels(), c.denoiser_options.image_size(), c.get("args.fit", "resize"),
                        "the checkpoint's model makes", device, batch, progress);
}

}  // namespace casdm::app
