#pragma once
// The likelihood of a data split under a checkpoint's model (casdm-eval --nll): the split brought to
// the model's side the way its run brought the training images, eval::bits_per_dim batch by batch,
// and a JSON record with the mean bits/dim and its standard error over the images.
//
//   auto d = casdm::train::load_denoiser<casdm::presets::DDPM_Eps::Denoiser>(info);
//   auto j = casdm::app::checkpoint_nll(info, *d, "ema 0.9999", casdm::app::NllRequest().data(dir).n(1000), at::kCPU);
//   j["bits_per_dim"], j["bits_per_dim_stderr"]
#include "casdm/app/preset_of.hpp"
#include "casdm/data/images.hpp"
#include "casdm/denoiser.hpp"
#include "casdm/eval/likelihood.hpp"
#include "casdm/train/checkpoint.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/arg.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::app {

struct NllRequest {
  TORCH_ARG(std::string, data);                                        // the data set's folder
  TORCH_ARG(std::string, format) = "auto";                             // as data::open_dataset takes it
  TORCH_ARG(std::string, fit);                                         // pad or resize; empty: the run's
  TORCH_ARG(std::string, split) = "test";                              // test or train
  TORCH_ARG(int64_t, n) = 1000;                                        // the first n images of the split (0: all)
  TORCH_ARG(int64_t, batch) = 100;                                     // images per pass
  TORCH_ARG(int64_t, seed) = 0;                                        // the noise of every x_t
  TORCH_ARG(eval::FixedVariance, variance) = eval::FixedVariance::large;
};

/// The bits/dim of the first r.n() images of split r.split() of r.data() under denoiser `d` (loaded
/// from checkpoint `c`, with the weights `which` names), as a JSON record: checkpoint, preset, step,
/// weights, data, split, n, variance, bits_per_dim (the mean of the images' totals) and its standard
/// error, the mean prior and decoder terms, the mean term at every step (from t = 0 up) and the
/// seconds taken. A class-conditional model is given each image's label. `progress(images done,
/// n)` after each batch.
inline nlohmann::json checkpoint_nll(const train::CheckpointInfo& c, AnyDenoiser& d, const std::string& which, const NllRequest& r,
                                     const c10::Device& device, const std::function<void(int64_t, int64_t)>& progress = {}) {
  if (r.split() != "test" && r.split() != "train")
    throw std::invalid_argument(fmt::format("the likelihood's split: test or train, got '{}'", r.split()));
  if (r.n() < 0 || r.batch() < 1) throw std::invalid_argument("the likelihood: n >= 0 (0: all) and batch >= 1");
  const auto t0 = std::chrono::steady_clock::now();
  auto set = data::open_dataset(r.data(), r.format(), r.split() == "train");
  const auto& o = c.denoiser_options;
  if (set.images.size(1) != o.channels())
    throw std::runtime_error(fmt::format("{} has {}-channel images, the checkpoint's model makes {}-channel ones", set.source,
                                         set.images.size(1), o.channels()));
  std::string fit = "none";
  if (set.images.size(2) != o.image_size() || set.images.size(3) != o.image_size()) {
    fit = r.fit().empty() ? c.get("args.fit", "resize") : r.fit();
    set = data::fit(std::move(set), o.image_size(), data::parse_fit(fit));
  }
  const int64_t n = r.n() > 0 ? std::min(r.n(), set.size()) : set.size();
  const bool conditional = o.num_classes() > 0;
  if (conditional && !set.labels.defined())
    throw std::runtime_error(fmt::format("{} has no labels; the checkpoint's model is class-conditional", set.source));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(r.seed()));
  std::vector<at::Tensor> totals, priors, vbs;
  for (int64_t s = 0; s < n; s += r.batch()) {
    const int64_t e = std::min(n, s + r.batch());
    const auto y = conditional ? set.labels.slice(0, s, e).to(at::kLong).to(device) : at::Tensor();
    const auto b = eval::bits_per_dim(d, set.images.slice(0, s, e), r.variance(), gen, y);
    totals.push_back(b.total);
    priors.push_back(b.prior);
    vbs.push_back(b.vb);
    if (progress) progress(e, n);
  }
  const auto total = at::cat(totals), vb = at::cat(vbs);
  const double mean = total.mean().item<double>();
  const double stderr_ = n > 1 ? total.std().item<double>() / std::sqrt(static_cast<double>(n)) : std::nan("");
  const auto by_step = vb.mean(0).flip(0).contiguous();  // t = 0 first
  const int64_t T = by_step.size(0);
  nlohmann::json j{{"checkpoint", c.path.string()}, {"preset", preset_of(c)}, {"step", c.step}, {"weights", which},
                   {"data", set.source}, {"split", r.split()}, {"data_fit", fit}, {"n", n}, {"seed", r.seed()},
                   {"variance", eval::name(r.variance())}, {"bits_per_dim", mean}};
  if (n > 1) j["bits_per_dim_stderr"] = stderr_;
  j["prior_bpd"] = at::cat(priors).mean().item<double>();
  j["decoder_bpd"] = by_step[0].item<double>();
  j["vb_bpd_by_step"] = std::vector<double>(by_step.data_ptr<double>(), by_step.data_ptr<double>() + T);
  j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return j;
}

}  // namespace casdm::app
