#pragma once
// The networks that score samples, behind one interface: for a batch of images in [−1, 1] they
// give pool features (for the Fréchet distance), spatial features (sFID; Inception only) and class
// probabilities (the Inception Score).
//
// - FIDInception: pytorch-fid's FID Inception (weights inception_fid.pt, tools/export_weights.py
//   --fid-inception): images resized to 299 (bilinear), grayscale repeated; FID, sFID and IS.
// - DomainScorer: a SmallVGG classifier trained on the data set (casdm-metric): a Fréchet distance
//   in its pool features and an Inception-style score of its classes — for CPU-scale comparisons on
//   that data set, not comparable with FID or IS.
//
// score(scorer, samples, reference) computes every score the scorer supports. A scorer is chosen by
// its weights file's name (with_scorer); the registry `All` is the one list of them that programs'
// help texts and the refusal of an unknown file read. A new scorer is its class (with `file` and
// `scores`) and one entry in All.
#include "casdm/eval/scores.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "casdm/metric/transform.hpp"
#include "casdm/metric/inception.hpp"
#include "casdm/metric/small_vgg.hpp"
#include "casdm/metric/weights.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

namespace casdm::eval {

struct ScoreFeatures {
  at::Tensor pool, spatial, probs;  // spatial undefined where the network has none
};

class FIDInception {
 public:
  /// The weights file that names this scorer, and what it gives (a program's --help).
  static constexpr const char* file = "inception_fid.pt";
  static constexpr const char* scores = "FID, sFID, IS";
  explicit FIDInception(const std::filesystem::path& weights)
      : net_(metric::InceptionV3Options().num_classes(1008).fid_variant(true)) {
    metric::load_weights(*net_, weights, "FID Inception weights");
    net_->eval();
    for (auto& p : net_->parameters()) p.requires_grad_(false);
  }
  std::string key() const { return "fid-inception-2015-12-05"; }
  std::string name() const { return "FID Inception (pytorch-fid)"; }
  void to(const c10::Device& d) { net_->to(d); }
  ScoreFeatures operator()(const at::Tensor& x) {
    at::NoGradGuard g;
    auto y = x.size(1) == 1 ? x.expand({x.size(0), 3, x.size(2), x.size(3)}) : x;
    if (y.size(2) != 299 || y.size(3) != 299) y = at::upsample_bilinear2d(y, {299, 299}, /*align_corners=*/false);
    auto o = net_->score_outputs(y);
    return {o.pool, o.spatial, at::softmax(o.logits, 1)};
  }

 private:
  metric::InceptionV3 net_;
};

class DomainScorer {
 public:
  static constexpr const char* file = "small_vgg.pt";
  static constexpr const char* scores = "domain scores";
  explicit DomainScorer(const std::filesystem::path& weights) : net_(metric::load_small_vgg(weights, &meta_)) {
    auto it = meta_.find("image_size");
    image_size_ = it == meta_.end() ? 32 : std::stoll(it->second);
    accuracy_ = meta_.count("test_accuracy") ? meta_.at("test_accuracy") : "unknown";
    // The key names these exact weights: architecture, side and a checksum of every tensor.
    key_ = fmt::format("small_vgg:{}:{}:{}", meta_.at("small_vgg.widths"), image_size_, io::checksum_of(*net_));
  }
  const std::string& key() const { return key_; }
  std::string name() const { return "SmallVGG domain classifier (test accuracy " + accuracy_ + ")"; }
  void to(const c10::Device& d) { net_->to(d); }
  ScoreFeatures operator()(const at::Tensor& x) {
    at::NoGradGuard g;
    auto stages = net_->stages(metric::feature_transform(x, image_size_));
    auto pool = stages.back().mean({2, 3});
    return {pool, at::Tensor(), at::softmax(net_->classifier(pool), 1)};
  }

 private:
  std::map<std::string, std::string> meta_;  // before net_: filled while net_ is built
  metric::SmallVGG net_;
  int64_t image_size_ = 32;
  std::string accuracy_, key_;
};

/// Statistics of the pool (and spatial) features of images, batch by batch. `images`: uint8
/// [N, C, H, W] (a data set) or float in [−1, 1] (samples). `progress(done, total)` after each batch.
/// `keep_features` keeps the pool features themselves (for bootstrap_fd and the KID): all of them,
/// or with `keep_at_most` > 0 at most that many, a seeded random choice in the images' order (what
/// a data set's reference keeps).
struct ImageStats {
  FeatureStats pool, spatial;  // spatial empty where the scorer has none
  at::Tensor probs;            // [N, K]
  at::Tensor features;         // [N, D] pool features (or the chosen rows), on the CPU; only with keep_features
};
template <class Scorer>
ImageStats image_stats(Scorer& scorer, const at::Tensor& images, const c10::Device& device, int64_t batch = 100,
                       const std::function<void(int64_t, int64_t)>& progress = {}, bool keep_features = false,
                       int64_t keep_at_most = 0) {
  StatsAccumulator pool, spatial;
  std::vector<at::Tensor> probs, kept;
  const int64_t n = images.size(0);
  at::Tensor keep_rows;  // sorted; undefined: every row
  if (keep_features && keep_at_most > 0 && keep_at_most < n) {
    auto g = at::make_generator<at::CPUGeneratorImpl>(0);
    keep_rows = std::get<0>(at::randperm(n, g, at::kLong).slice(0, 0, keep_at_most).sort());
  }
  for (int64_t s = 0; s < n; s += batch) {
    const int64_t e = std::min(n, s + batch);
    auto x = images.slice(0, s, e).to(device);
    x = x.scalar_type() == at::kByte ? x.to(at::kFloat) / 127.5 - 1 : x.to(at::kFloat);
    auto f = scorer(x);
    pool.add(f.pool);
    if (keep_features) {
      auto rows = f.pool.detach().to(at::kCPU);
      if (keep_rows.defined()) rows = rows.index_select(0, keep_rows.masked_select(keep_rows.ge(s) & keep_rows.lt(e)) - s);
      kept.push_back(rows);
    }
    if (f.spatial.defined()) spatial.add(f.spatial);
    probs.push_back(f.probs.cpu());
    if (progress) progress(std::min(n, s + batch), n);
  }
  ImageStats out{pool.finish(), spatial.count() ? spatial.finish() : FeatureStats{}, at::cat(probs),
                 keep_features ? at::cat(kept) : at::Tensor()};
  return out;
}

struct Scores {
  double fd = 0, spatial_fd = std::numeric_limits<double>::quiet_NaN();
  double fd_std = std::numeric_limits<double>::quiet_NaN();  // bootstrap spread, where asked for
  InceptionScore is;
  int64_t n = 0;
  KernelDistance kid;  // kid.values empty where none was taken
};

/// The KID a scoring takes: `subsets` subset pairs (0: no KID) of `subset_size` vectors (0: 1000, or
/// all if fewer), drawn with the scoring's seed.
struct KidOptions {
  int64_t subsets = 100, subset_size = 0;
};

/// `s` as a report gives it: "fid"/"fid_std"/"sfid"/"inception_score"/"kid" with the FID Inception
/// (`fid`), else "fd_domain"/"fd_domain_std"/"domain_score"/"kid_domain" — a domain classifier's scores
/// are not FID, IS or KID; the spread and the bootstrap count only where one was drawn, the KID
/// ({"mean", "std", "subsets", "subset_size"}) where one was taken.
inline nlohmann::json scores_json(const Scores& s, bool fid, int64_t splits, int64_t bootstrap) {
  nlohmann::json j;
  j[fid ? "fid" : "fd_domain"] = s.fd;
  if (!std::isnan(s.fd_std)) j[fid ? "fid_std" : "fd_domain_std"] = s.fd_std, j["bootstrap"] = bootstrap;
  if (!std::isnan(s.spatial_fd)) j["sfid"] = s.spatial_fd;
  j[fid ? "inception_score" : "domain_score"] = {{"mean", s.is.mean}, {"std", s.is.std}, {"splits", splits}};
  if (!s.kid.values.empty())
    j[fid ? "kid" : "kid_domain"] = {{"mean", s.kid.mean}, {"std", s.kid.std}, {"subsets", s.kid.values.size()},
                                     {"subset_size", s.kid.subset_size}};
  return j;
}

/// The scores of samples against reference statistics (pool, and spatial where present);
/// `bootstrap` > 0 resamples (of features kept by image_stats) also give the distance's spread; the
/// KID is taken where both sides kept their features (and kid.subsets > 0).
inline Scores scores_of(const ImageStats& samples, const ImageStats& reference, int64_t is_splits = 10,
                        int64_t bootstrap = 0, uint64_t seed = 0, const KidOptions& kid = {}) {
  Scores s;
  s.n = samples.pool.count;
  s.fd = frechet_distance(samples.pool, reference.pool);
  if (samples.spatial.count && reference.spatial.count) s.spatial_fd = frechet_distance(samples.spatial, reference.spatial);
  s.is = inception_score(samples.probs, std::min<int64_t>(is_splits, samples.probs.size(0)));
  if (bootstrap > 0) {
    if (!samples.features.defined()) throw std::invalid_argument("scores: a bootstrap needs image_stats(..., keep_features)");
    s.fd_std = bootstrap_fd(samples.features, reference.pool, bootstrap, seed).std;
  }
  if (kid.subsets > 0 && samples.features.defined() && reference.features.defined())
    s.kid = kernel_distance(samples.features, reference.features, kid.subsets, kid.subset_size, seed);
  return s;
}

}  // namespace casdm::eval

namespace casdm::eval {

/// The pool features a data set's reference keeps for the KID: a seeded random choice of at most
/// this many (KID's subsets are 1000 each; 10000 keep the file small at 2048 Inception features).
inline constexpr int64_t kReferenceFeatures = 10000;

/// Reference statistics of a data set, cached: written with a key naming the scorer (and its exact
/// weights), the data and the count, read back only for the same key. The kept features (for the
/// KID) are stored in float32; a cache without them (written before the KID) reads as absent.
inline void save_reference(const ImageStats& r, const std::filesystem::path& path, const std::string& key) {
  io::TensorFile f;
  f.tensors = {{"mu", r.pool.mu}, {"sigma", r.pool.sigma}};
  if (r.spatial.count) {
    f.tensors["mu_s"] = r.spatial.mu;
    f.tensors["sigma_s"] = r.spatial.sigma;
  }
  if (r.features.defined()) f.tensors["features"] = r.features.to(at::kFloat);
  f.meta = {{"stats.key", key}, {"stats.count", fmt::format("{}", r.pool.count)}};
  io::write_tensor_file(path, f);
}

inline std::optional<ImageStats> load_reference(const std::filesystem::path& path, const std::string& key) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  auto f = io::read_tensor_file(path);
  auto k = f.meta.find("stats.key");
  if (k == f.meta.end() || !f.tensors.count("mu") || !f.tensors.count("sigma") || !f.meta.count("stats.count"))
    throw std::runtime_error(path.string() + " is not a casdm statistics file");
  if (k->second != key || !f.tensors.count("features")) return std::nullopt;
  const int64_t n = std::stoll(f.meta.at("stats.count"));
  ImageStats r;
  r.pool = {f.tensors.at("mu"), f.tensors.at("sigma"), n};
  if (f.tensors.count("mu_s")) r.spatial = {f.tensors.at("mu_s"), f.tensors.at("sigma_s"), n};
  r.features = f.tensors.at("features");
  return r;
}

/// Reference statistics and whether they came from the cache.
struct Reference {
  ImageStats stats;
  bool cached = false;
  /// Why the statistics could not be written to the cache ("" when they were, or were read from it):
  /// a cache that cannot be written costs the next run the work again, not this run its result.
  std::string cache_error;
};

/// The statistics of `images` (a data set: uint8, or float in [−1, 1]) under `scorer`, read from
/// `cache` when it holds them for the key "<scorer.key()>|<data_key>" — `data_key` names the images
/// (their source, count, side, fitting) — and otherwise computed and written there. At most
/// kReferenceFeatures of the pool features are kept with them, for the KID.
template <class Scorer>
Reference reference_stats(Scorer& scorer, const at::Tensor& images, const std::string& data_key,
                          const std::filesystem::path& cache, const c10::Device& device, int64_t batch = 100,
                          const std::function<void(int64_t, int64_t)>& progress = {}) {
  const std::string key = fmt::format("{}|{}", scorer.key(), data_key);
  if (auto cached = load_reference(cache, key)) return {*cached, true};
  Reference r{image_stats(scorer, images, device, batch, progress, true, kReferenceFeatures), false, ""};
  try {
    save_reference(r.stats, cache, key);
  } catch (const std::exception& e) {
    r.cache_error = e.what();
  }
  return r;
}

template <class Scorer>
constexpr bool is_fid_v = std::is_same_v<Scorer, FIDInception>;

/// Every scorer, in order: the one list programs and messages read.
using All = std::tuple<FIDInception, DomainScorer>;

/// Calls f(static_cast<S*>(nullptr)) for every registered scorer S, in order (scorers are built
/// from a weights file, so the list is walked by type).
template <class F>
void for_each_scorer(F&& f) {
  [&]<class... S>(std::tuple<S...>*) { (f(static_cast<S*>(nullptr)), ...); }(static_cast<All*>(nullptr));
}

/// The weights file names of the registered scorers, in order ("inception_fid.pt", "small_vgg.pt").
inline std::vector<std::string> scorer_files() {
  std::vector<std::string> out;
  for_each_scorer([&](auto* s) { out.push_back(std::decay_t<decltype(*s)>::file); });
  return out;
}

/// "inception_fid.pt (FID, sFID, IS) or small_vgg.pt (domain scores)": every scorer for a program's --help.
inline std::string scorer_help() {
  std::vector<std::string> parts;
  for_each_scorer([&](auto* s) {
    using S = std::decay_t<decltype(*s)>;
    parts.push_back(fmt::format("{} ({})", S::file, S::scores));
  });
  return fmt::format("{}", fmt::join(parts, " or "));
}

/// Calls f(scorer) with the registered scorer whose weights file has the name of `weights`, on
/// `device`; any other file name is refused, listing the registered ones.
template <class F>
void with_scorer(const std::filesystem::path& weights, const c10::Device& device, F&& f) {
  const auto file = weights.filename().string();
  bool found = false;
  for_each_scorer([&](auto* tag) {
    using S = std::decay_t<decltype(*tag)>;
    if (found || file != S::file) return;
    found = true;
    S s(weights);
    s.to(device);
    f(s);
  });
  if (!found)
    throw std::invalid_argument(fmt::format("scorer weights {}: expected a file named {}", weights.string(),
                                            fmt::join(scorer_files(), " or ")));
}

}  // namespace casdm::eval
