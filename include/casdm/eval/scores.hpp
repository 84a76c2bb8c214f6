#pragma once
// Sample-quality scores: feature statistics (mean and covariance in float64, accumulated in
// batches), the Fréchet distance between two such statistics (FID when the features are the FID
// Inception's pool features, sFID with its spatial features), and the Inception Score of class
// probabilities. Statistics of a data set are computed once and cached in a file.
//
//   casdm::eval::StatsAccumulator acc;
//   for (auto& batch : batches) acc.add(features(batch));        // [N, D]
//   auto stats = acc.finish();
//   double fid = casdm::eval::frechet_distance(stats, reference);
//   auto is = casdm::eval::inception_score(probs, 10);          // probs [N, K], rows sum to 1
//   auto spread = casdm::eval::bootstrap_fd(features, reference, 50);  // spread.std: the FD's noise
//   auto kid = casdm::eval::kernel_distance(features, reference_features);  // KID: 100 subsets of 1000
#include <fmt/format.h>
#include "casdm/io/tensor_file.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace casdm::eval {

/// Mean [D] and covariance [D, D] (divided by N − 1, as numpy.cov) of N feature vectors, float64.
struct FeatureStats {
  at::Tensor mu, sigma;
  int64_t count = 0;
  int64_t dim() const { return mu.defined() ? mu.size(0) : 0; }
};

/// Accumulates Σx and Σxxᵀ in float64 on the features' device, batch by batch; finish() needs two
/// or more vectors. The covariance is formed from centred sums (shifted by the first batch's mean)
/// so that large means do not cancel it away.
class StatsAccumulator {
 public:
  void add(const at::Tensor& features) {
    if (features.dim() != 2) throw std::invalid_argument("feature statistics: expected features [N, D]");
    auto x = features.detach().to(at::kDouble);
    if (!sum_.defined()) {
      shift_ = x.mean(0);
      sum_ = at::zeros_like(shift_);
      outer_ = at::zeros({x.size(1), x.size(1)}, x.options());
    } else if (x.size(1) != sum_.size(0)) {
      throw std::invalid_argument(fmt::format("feature statistics: {} features per vector after {}", x.size(1), sum_.size(0)));
    }
    auto c = x - shift_;
    sum_ += c.sum(0);
    outer_ += c.t().mm(c);
    count_ += x.size(0);
  }
  int64_t count() const { return count_; }
  FeatureStats finish() const {
    if (count_ < 2) throw std::invalid_argument(fmt::format("feature statistics need at least 2 vectors, got {}", count_));
    const double n = static_cast<double>(count_);
    auto mean_c = sum_ / n;
    auto sigma = (outer_ - n * mean_c.outer(mean_c)) / (n - 1);
    return {(mean_c + shift_).cpu(), ((sigma + sigma.t()) * 0.5).cpu(), count_};
  }

 private:
  at::Tensor shift_, sum_, outer_;
  int64_t count_ = 0;
};

inline FeatureStats statistics(const at::Tensor& features) {
  StatsAccumulator a;
  a.add(features);
  return a.finish();
}

/// ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁Σ₂)^½, in float64. The trace of the square root is taken
/// as Σ √λᵢ of the symmetric matrix Σ₁^½ Σ₂ Σ₁^½ (same eigenvalues as Σ₁Σ₂), with Σ₁^½ from a
/// symmetric eigendecomposition and round-off negatives clamped to 0: no complex parts, also where
/// scipy's sqrtm of the unsymmetric product produces them.
namespace detail {
/// Σ^½ of a symmetric positive semi-definite matrix (float64), round-off negatives clamped.
inline at::Tensor symmetric_sqrt(const at::Tensor& sigma) {
  const auto s = sigma.to(at::kDouble);
  auto [l, v] = at::linalg_eigh((s + s.t()) * 0.5);
  return v.mm(at::diag(l.clamp_min(0).sqrt())).mm(v.t());
}
/// The distance with a's Σ^½ given (computed once where a is compared with many b).
inline double frechet_distance(const FeatureStats& a, const at::Tensor& root1, const FeatureStats& b) {
  if (a.dim() == 0 || b.dim() == 0) throw std::invalid_argument("Fréchet distance: empty statistics");
  if (a.dim() != b.dim())
    throw std::invalid_argument(fmt::format("Fréchet distance: statistics of {} and {} features (another feature network?)", a.dim(), b.dim()));
  const auto mu1 = a.mu.to(at::kDouble), mu2 = b.mu.to(at::kDouble);
  const auto s1 = a.sigma.to(at::kDouble), s2 = b.sigma.to(at::kDouble);
  auto m = root1.mm(s2).mm(root1);
  const auto l = at::linalg_eigvalsh((m + m.t()) * 0.5);
  const double tr_root = l.clamp_min(0).sqrt().sum().item<double>();
  const double d2 = (mu1 - mu2).pow(2).sum().item<double>();
  return d2 + s1.trace().item<double>() + s2.trace().item<double>() - 2 * tr_root;
}
}  // namespace detail

inline double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  if (a.dim() == 0) throw std::invalid_argument("Fréchet distance: empty statistics");
  return detail::frechet_distance(a, detail::symmetric_sqrt(a.sigma), b);
}

/// How far the Fréchet distance moves with the samples drawn: the distance of bootstrap resamples
/// of the sample features (the reference held fixed). Row b of `indices` [B, N] lists the vectors
/// of resample b; the seeded overload draws B such rows uniformly with replacement. Two rows of a
/// table whose distances differ by less than a few `std` are not told apart by these samples.
struct Spread {
  double mean = 0, std = 0;    // std with B − 1 in the denominator
  std::vector<double> values;  // one per resample
};
inline Spread bootstrap_fd(const at::Tensor& features, const FeatureStats& reference, const at::Tensor& indices) {
  if (features.dim() != 2) throw std::invalid_argument("bootstrap Fréchet distance: expected features [N, D]");
  if (reference.dim() == 0) throw std::invalid_argument("bootstrap Fréchet distance: empty reference statistics");
  if (indices.dim() != 2 || indices.size(0) < 2 || indices.size(1) < 2)
    throw std::invalid_argument("bootstrap Fréchet distance: expected indices [B, N] with B, N ≥ 2");
  const auto x = features.detach().to(at::kCPU, at::kDouble);
  const auto idx = indices.to(at::kCPU, at::kLong);
  if (idx.min().item<int64_t>() < 0 || idx.max().item<int64_t>() >= x.size(0))
    throw std::invalid_argument(fmt::format("bootstrap Fréchet distance: an index outside the {} feature vectors", x.size(0)));
  Spread s;
  // The distance is symmetric: the reference's Σ^½ is taken once, not once per resample.
  const auto root = detail::symmetric_sqrt(reference.sigma);
  for (int64_t b = 0; b < idx.size(0); ++b)
    s.values.push_back(detail::frechet_distance(reference, root, statistics(x.index_select(0, idx[b]))));
  const auto k = static_cast<double>(s.values.size());
  for (double v : s.values) s.mean += v / k;
  for (double v : s.values) s.std += (v - s.mean) * (v - s.mean) / (k - 1);
  s.std = std::sqrt(s.std);
  return s;
}
inline Spread bootstrap_fd(const at::Tensor& features, const FeatureStats& reference, int64_t resamples,
                           uint64_t seed = 0) {
  if (resamples < 2) throw std::invalid_argument("bootstrap Fréchet distance: at least 2 resamples");
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int64_t n = features.size(0);
  return bootstrap_fd(features, reference, at::randint(n, {resamples, n}, g, at::kLong));
}

/// The kernel distance (KID with the FID Inception's pool features; Bińkowski et al. 2018): the
/// unbiased estimate of MMD² between two sets of feature vectors [N, D] under the cubic polynomial
/// kernel k(x, y) = (xᵀy/D + 1)³, taken on `subsets` random subsets of m vectors from each side and
/// averaged (torch-fidelity's KID and clean-fid's kernel distance). On a subset pair X, Y of m:
/// (Σ_{i≠j} k(xᵢ, xⱼ) + Σ_{i≠j} k(yᵢ, yⱼ)) / (m(m − 1)) − 2 Σ_{i,j} k(xᵢ, yⱼ) / m². Unbiased: it can
/// come out below 0 where the two sets are of one distribution. float64 throughout.
struct KernelDistance {
  double mean = 0, std = 0;    // std: over the subsets, divided by their count (numpy.std, as torch-fidelity)
  int64_t subset_size = 0;
  std::vector<double> values;  // one per subset
};
namespace detail {
/// The unbiased MMD² of two sets of m feature vectors each (float64 [m, D]).
inline double cubic_mmd2(const at::Tensor& x, const at::Tensor& y) {
  const double d = static_cast<double>(x.size(1)), m = static_cast<double>(x.size(0));
  const auto k = [d](const at::Tensor& a, const at::Tensor& b) { return (a.mm(b.t()) / d + 1).pow(3); };
  const auto kxx = k(x, x), kyy = k(y, y);
  const double within = (kxx.sum() - kxx.trace() + kyy.sum() - kyy.trace()).item<double>() / (m * (m - 1));
  return within - 2 * k(x, y).sum().item<double>() / (m * m);
}
}  // namespace detail

/// The subset size a KID of `na` and `nb` vectors takes when asked for `asked` (0: 1000, or all the
/// vectors of the smaller side if fewer); a size neither side can give is refused.
inline int64_t kid_subset_size(int64_t na, int64_t nb, int64_t asked = 0) {
  if (asked < 0) throw std::invalid_argument(fmt::format("KID: a subset size must be at least 2 (0: the default), got {}", asked));
  const int64_t size = asked > 0 ? asked : std::min<int64_t>({1000, na, nb});
  if (size < 2) throw std::invalid_argument(fmt::format("KID: subsets of {} vectors; at least 2 are needed", size));
  if (size > na) throw std::invalid_argument(fmt::format("KID: a subset of {} is more than the {} samples", size, na));
  if (size > nb) throw std::invalid_argument(fmt::format("KID: a subset of {} is more than the {} reference vectors", size, nb));
  return size;
}

/// The kernel distance with the subsets given: row s of `idx_a` [S, m] (of a's vectors) and of
/// `idx_b` [S, m] (of b's) is subset pair s.
inline KernelDistance kernel_distance(const at::Tensor& a, const at::Tensor& b, const at::Tensor& idx_a, const at::Tensor& idx_b) {
  if (a.dim() != 2 || b.dim() != 2) throw std::invalid_argument("KID: expected features [N, D] on both sides");
  if (a.size(1) != b.size(1))
    throw std::invalid_argument(fmt::format("KID: features of {} and {} dimensions (another feature network?)", a.size(1), b.size(1)));
  if (idx_a.dim() != 2 || idx_a.sizes() != idx_b.sizes() || idx_a.size(0) < 1 || idx_a.size(1) < 2)
    throw std::invalid_argument("KID: expected subset indices [S, m] of one shape on both sides, S ≥ 1, m ≥ 2");
  const auto x = a.detach().to(at::kCPU, at::kDouble), y = b.detach().to(at::kCPU, at::kDouble);
  const auto ia = idx_a.to(at::kCPU, at::kLong), ib = idx_b.to(at::kCPU, at::kLong);
  for (const auto& [idx, n] : {std::pair{ia, x.size(0)}, std::pair{ib, y.size(0)}})
    if (idx.min().item<int64_t>() < 0 || idx.max().item<int64_t>() >= n)
      throw std::invalid_argument(fmt::format("KID: a subset index outside the {} feature vectors", n));
  KernelDistance k;
  k.subset_size = ia.size(1);
  for (int64_t s = 0; s < ia.size(0); ++s) k.values.push_back(detail::cubic_mmd2(x.index_select(0, ia[s]), y.index_select(0, ib[s])));
  const auto n = static_cast<double>(k.values.size());
  for (double v : k.values) k.mean += v / n;
  for (double v : k.values) k.std += (v - k.mean) * (v - k.mean) / n;
  k.std = std::sqrt(k.std);
  return k;
}

/// The kernel distance on `subsets` seeded subset pairs, each drawn without replacement from each
/// side; `subset_size` as kid_subset_size takes it (0: 1000, or all if fewer).
inline KernelDistance kernel_distance(const at::Tensor& a, const at::Tensor& b, int64_t subsets = 100, int64_t subset_size = 0,
                                      uint64_t seed = 0) {
  if (a.dim() != 2 || b.dim() != 2) throw std::invalid_argument("KID: expected features [N, D] on both sides");
  if (subsets < 1) throw std::invalid_argument(fmt::format("KID: at least 1 subset, got {}", subsets));
  const int64_t m = kid_subset_size(a.size(0), b.size(0), subset_size);
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<at::Tensor> ia, ib;
  for (int64_t s = 0; s < subsets; ++s) {
    ia.push_back(at::randperm(a.size(0), g, at::kLong).slice(0, 0, m));
    ib.push_back(at::randperm(b.size(0), g, at::kLong).slice(0, 0, m));
  }
  return kernel_distance(a, b, at::stack(ia), at::stack(ib));
}

/// The Inception Score of class probabilities [N, K]: exp(E_x KL(p(y|x) ‖ p(y))) per split
/// (p(y) the split's mean), averaged over `splits` equal parts (the last takes the remainder).
struct InceptionScore {
  double mean = 0, std = 0;
};
inline InceptionScore inception_score(const at::Tensor& probs, int64_t splits = 10) {
  if (probs.dim() != 2) throw std::invalid_argument("Inception Score: expected probabilities [N, K]");
  if (splits < 1 || probs.size(0) < splits)
    throw std::invalid_argument(fmt::format("Inception Score: {} samples for {} splits", probs.size(0), splits));
  const auto p = probs.detach().to(at::kCPU, at::kDouble);
  const int64_t n = p.size(0), part = n / splits;
  std::vector<double> scores;
  for (int64_t s = 0; s < splits; ++s) {
    const auto q = p.slice(0, s * part, s + 1 == splits ? n : (s + 1) * part);
    const auto py = q.mean(0, true);
    // p log(p / p_y), with 0 log 0 = 0.
    const auto kl = at::where(q > 0, q * (q.log() - py.log()), at::zeros_like(q)).sum(1).mean();
    scores.push_back(std::exp(kl.item<double>()));
  }
  InceptionScore r;
  for (double v : scores) r.mean += v / static_cast<double>(splits);
  for (double v : scores) r.std += (v - r.mean) * (v - r.mean) / static_cast<double>(splits);
  r.std = std::sqrt(r.std);
  return r;
}

/// Writes statistics with a key naming what they are of (network, data, side), so a cache made for
/// another network or data set is never used by mistake.
inline void save_stats(const FeatureStats& s, const std::filesystem::path& path, const std::string& key) {
  io::TensorFile f;
  f.tensors = {{"mu", s.mu}, {"sigma", s.sigma}};
  f.meta = {{"stats.key", key}, {"stats.count", std::to_string(s.count)}};
  io::write_tensor_file(path, f);
}

/// The cached statistics at `path` if present and made for `key`; otherwise nothing (a stale or
/// foreign cache is ignored, a corrupt one is refused by name).
inline std::optional<FeatureStats> load_stats(const std::filesystem::path& path, const std::string& key) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  auto f = io::read_tensor_file(path);
  auto k = f.meta.find("stats.key");
  if (k == f.meta.end() || !f.tensors.count("mu") || !f.tensors.count("sigma"))
    throw std::runtime_error(path.string() + " is not a casdm statistics file");
  if (k->second != key) return std::nullopt;
  return FeatureStats{f.tensors.at("mu"), f.tensors.at("sigma"), std::stoll(f.meta.at("stats.count"))};
}

}  // namespace casdm::eval
