#pragma once
// The samples an evaluation scores: n images from a trained denoiser, drawn in batches of a fixed
// size from a fixed seed, gathered on the CPU (a large n never sits on the device at once).
//
//   auto x = casdm::eval::draw_samples<casdm::sampler::DDIM<>>(denoiser, 1000,
//       casdm::eval::DrawOptions().sample(casdm::SampleOptions().steps(50)).batch(100).seed(0));
//
// Labels and starting noise, where given, hold one row per sample (all n); each batch takes its
// rows. With the noise given and a deterministic sampler, the samples do not depend on the batch.
#include "casdm/core/errors.hpp"
#include "casdm/denoiser.hpp"
#include "casdm/io/files.hpp"
#include "casdm/io/text.hpp"
#include "casdm/sampler/registry.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/arg.h>
#include <ATen/Context.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace casdm::eval {

struct DrawOptions {
  /// The sampler's options (steps, eta, clipping, guidance; labels and noise for all n samples).
  TORCH_ARG(SampleOptions, sample);
  /// Images per sampler call.
  TORCH_ARG(int64_t, batch) = 100;
  /// The default generators are seeded with this before the first batch.
  TORCH_ARG(uint64_t, seed) = 0;
  /// Called after each batch with (samples done, n, seconds since the start).
  TORCH_ARG(std::function<void(int64_t, int64_t, double)>, progress);
};

/// A progress callback for DrawOptions: "sampled 300/1000  41.2 images/s  ETA 17s" on stderr
/// (the count alone while no time or no image has passed: no rate can be told yet).
inline std::function<void(int64_t, int64_t, double)> print_draw_progress(std::FILE* out = stderr) {
  return [out](int64_t done, int64_t n, double s) {
    if (!(s > 0) || done <= 0) {
      fmt::print(out, "sampled {}/{}\n", done, n);
      return;
    }
    fmt::print(out, "sampled {}/{}  {:.1f} images/s  ETA {}\n", done, n, static_cast<double>(done) / s,
               io::duration_str(s / static_cast<double>(done) * static_cast<double>(n - done)));
  };
}

/// A SampleOptions::on_step callback: "step 20/50  t 399  sigma 0.8312" on `out` at the last step of
/// a run and at the steps in between when `every_seconds` have passed since the last line (0: every
/// step). casdm-sample prints its progress inside a batch with it.
inline std::function<void(const SampleStep&)> print_step_progress(std::FILE* out = stderr, double every_seconds = 1.0) {
  auto last = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  return [out, every_seconds, last](const SampleStep& s) {
    const auto now = std::chrono::steady_clock::now();
    if (s.step != s.steps && std::chrono::duration<double>(now - *last).count() < every_seconds) return;
    *last = now;
    fmt::print(out, "step {}/{}  t {}  sigma {:.4g}\n", s.step, s.steps, s.t, s.sigma);
  };
}

/// Refuses (SettingError "n"), before anything is drawn, n samples of a denoiser of options `o` that
/// this machine's memory cannot hold as float32 (draw_samples gathers them all on the CPU).
inline void check_draw_memory(int64_t n, const DenoiserOptions& o) {
  const double bytes = static_cast<double>(n) * static_cast<double>(o.channels() * o.image_size() * o.image_size()) * 4.0;
  if (bytes > io::physical_memory())
    throw SettingError("n", fmt::format("{} samples of {}x{}x{} need {:.3g} GB of memory as float32; this machine has "
                                        "{:.3g} GB (draw fewer at a time)",
                                        n, o.channels(), o.image_size(), o.image_size(), bytes / 1e9,
                                        io::physical_memory() / 1e9));
}

namespace detail {
inline AnyDenoiser& any(AnyDenoiser& d) { return d; }
template <class S, class Topo>
AnyDenoiser& any(Denoiser<S, Topo>& d) { return *d; }

/// draw_samples with the sampling call given (compiled once, whatever the preset and sampler).
inline at::Tensor draw_samples(AnyDenoiser& denoiser, int64_t n, const DrawOptions& o,
                               const std::function<at::Tensor(AnyDenoiser&, int64_t, const SampleOptions&)>& sample) {
  if (n < 1) throw std::invalid_argument(fmt::format("draw_samples: n must be >= 1, got {}", n));
  if (o.batch() < 1) throw std::invalid_argument(fmt::format("draw_samples: batch must be >= 1, got {}", o.batch()));
  check_draw_memory(n, denoiser.denoiser_options());
  const auto& all = o.sample();
  for (const auto& [what, t] : {std::pair{"labels", all.labels()}, std::pair{"noise", all.noise()}})
    if (t.defined() && (t.dim() < 1 || t.size(0) != n))
      throw std::invalid_argument(fmt::format("draw_samples: {} for {} samples must have {} rows, got shape {}", what, n,
                                              n, io::shape_str(t.sizes())));
  at::manual_seed(o.seed());  // the CPU generator and every CUDA device's
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<at::Tensor> parts;
  for (int64_t done = 0; done < n;) {
    const int64_t m = std::min(o.batch(), n - done);
    auto so = all;
    if (all.labels().defined()) so.labels(all.labels().slice(0, done, done + m));
    if (all.noise().defined()) so.noise(all.noise().slice(0, done, done + m));
    parts.push_back(sample(denoiser, m, so).cpu());
    if (!parts.back().isfinite().all().item<bool>())  // never handed on to be written or scored
      throw std::runtime_error(fmt::format("draw_samples: samples {} to {} are not finite (non-finite weights, or a "
                                           "sampler setting that diverges such as a huge eta)", done, done + m - 1));
    done += m;
    if (o.progress())
      o.progress()(done, n, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return parts.size() == 1 ? parts.front() : at::cat(parts);
}
}  // namespace detail

/// n samples in [−1, 1] from `denoiser` (a Denoiser or any DenoiserImpl) with sampler Smp, on the
/// CPU, in batches of o.batch(). A batch with a non-finite value stops the draw with an error:
/// nothing non-finite is returned. n samples that this machine cannot hold are refused before the
/// first (check_draw_memory).
template <class Smp, class D>
at::Tensor draw_samples(D& denoiser, int64_t n, const DrawOptions& o = {}) {
  return detail::draw_samples(detail::any(denoiser), n, o, [](AnyDenoiser& d, int64_t m, const SampleOptions& so) {
    return casdm::sample<Smp>(d, m, so);
  });
}

/// n images from `denoiser` with the registered sampler called `sampler` (sampler/registry.hpp); an
/// unknown name is refused, listing the known ones.
template <class D>
at::Tensor sample_named(std::string_view sampler, D& denoiser, int64_t n, const SampleOptions& so = {}) {
  return casdm::sampler::visit(sampler, [&](auto s) { return casdm::sample<typename decltype(s)::type>(detail::any(denoiser), n, so); });
}

/// draw_samples with the registered sampler called `sampler`.
template <class D>
at::Tensor draw_samples(std::string_view sampler, D& denoiser, int64_t n, const DrawOptions& o = {}) {
  (void)casdm::sampler::info(sampler);  // an unknown name refused before anything is drawn
  const std::string name(sampler);
  return detail::draw_samples(detail::any(denoiser), n, o, [name](AnyDenoiser& d, int64_t m, const SampleOptions& so) {
    return sample_named(name, d, m, so);
  });
}

}  // namespace casdm::eval
