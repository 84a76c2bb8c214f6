#pragma once
// What casdm-eval and casdm-ablation share: the data set's reference statistics (cached), drawing
// samples from a checkpoint's model, and choosing the scorer by its weights file.
#include "casdm/data/images.hpp"
#include "casdm/eval/scorers.hpp"
#include "casdm/sampler/registry.hpp"
#include "program.hpp"

#include <chrono>
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
  const std::string key = fmt::format("{}|{}|{}|{}|{}", scorer.key(), set.source, r.n, c.options.image_size(), r.fit);
  const auto path = spec.stats.empty() ? std::filesystem::path(scorer_path).parent_path() / "reference-stats.pt"
                                       : std::filesystem::path(spec.stats);
  if (auto cached = eval::load_reference(path, key)) {
    r.stats = *cached;
    r.cached = true;
    return r;
  }
  r.stats = eval::image_stats(scorer, set.images.slice(0, 0, r.n), device, batch, [](int64_t d, int64_t t) {
    if (d == t || d % (10 * std::max<int64_t>(1, t / 100)) == 0)
      fmt::print(stderr, "reference features {}/{}\n", d, t);
  });
  eval::save_reference(r.stats, path, key);
  return r;
}

/// n samples from `denoiser` (sampler Smp with `steps`; eta for DDIM), in batches, with a progress
/// line on stderr; a class-conditional denoiser may take one label per sample and a guidance scale.
template <class Smp = sampler::DDIM<>, class Denoiser>
at::Tensor draw(Denoiser& denoiser, int64_t n, int64_t steps, double eta, int64_t batch, uint64_t seed,
                const at::Tensor& labels = {}, double guidance = 0) {
  torch::manual_seed(seed);
  auto so = SampleOptions().steps(steps).guidance(guidance);
  if (sampler::has_eta(Smp::name)) so.eta(eta);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<at::Tensor> parts;
  for (int64_t done = 0; done < n; done += batch) {
    const int64_t m = std::min(batch, n - done);
    if (labels.defined()) so.labels(labels.slice(0, done, done + m));
    parts.push_back(casdm::sample<Smp>(denoiser, m, so).cpu());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t now = done + parts.back().size(0);
    fmt::print(stderr, "sampled {}/{}  {:.1f} images/s  ETA {}\n", now, n, static_cast<double>(now) / s,
               io::duration_str(s / static_cast<double>(now) * static_cast<double>(n - now)));
  }
  return at::cat(parts);
}

/// Calls f(scorer) with the scorer the weights file names: inception_fid.pt or small_vgg.pt.
template <class F>
void with_scorer(const std::string& path, const c10::Device& device, F&& f) {
  const auto file = std::filesystem::path(path).filename().string();
  if (file == "small_vgg.pt") {
    eval::DomainScorer s(path);
    s.to(device);
    f(s);
  } else if (file == "inception_fid.pt") {
    eval::FIDInception s(path);
    s.to(device);
    f(s);
  } else {
    throw std::runtime_error("--scorer " + path + ": expected a file named inception_fid.pt or small_vgg.pt");
  }
}

template <class Scorer>
constexpr bool is_fid = std::is_same_v<Scorer, eval::FIDInception>;

}  // namespace casdm::examples
