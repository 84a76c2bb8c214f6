// casdm-eval: draws N samples from a casdm-train checkpoint and scores them against a data set.
//
//   casdm-eval --checkpoint out/casdm --scorer weights/fmnist/small_vgg.pt -n 1000 --steps 50
//   casdm-eval --checkpoint out/cifar --data cifar-10-batches-bin --scorer weights/inception_fid.pt -n 50000 --device cuda
//
// The scorer is a weights file: inception_fid.pt (tools/export_weights.py --fid-inception) gives
// FID, sFID and IS; small_vgg.pt (casdm-metric) gives a Fréchet distance and an Inception-style
// score in that domain classifier's features — on the data set it was trained for, not FID or IS.
// The data set's statistics are computed once and cached (--stats, default beside the scorer,
// keyed by scorer, data and count). Writes a JSON file (--out) and prints it.
#include "casdm/casdm.hpp"
#include "casdm/data/images.hpp"
#include "casdm/eval/scorers.hpp"
#include "program.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>

namespace fs = std::filesystem;

struct Args {
  std::string checkpoint, scorer, data = "/usr/share/datasets/fashion-mnist", data_format = "auto", fit, stats, out,
      weights = "ema", device = "cpu";
  int64_t n = 1000, steps = 50, batch = 100, ref_n = 0, seed = 0, threads = 0, splits = 10;
  double eta = 0, ema_rate = -1;
};

template <class Scorer, class Model>
nlohmann::json evaluate(const Args& a, const casdm::train::CheckpointInfo& c, Scorer& scorer, const c10::Device& device) {
  // Reference statistics: cached under a key naming the scorer, the data and the count.
  auto set = casdm::data::open_dataset(a.data, a.data_format, true);
  if (set.images.size(1) != c.options.channels())
    throw std::runtime_error(set.source + " has " + std::to_string(set.images.size(1)) + "-channel images, the checkpoint's model makes " +
                             std::to_string(c.options.channels()) + "-channel ones");
  // Brought to the model's side as the run brought them (its --fit), unless --fit says otherwise.
  std::string fit = "none";
  if (set.images.size(2) != c.options.image_size() || set.images.size(3) != c.options.image_size()) {
    fit = a.fit.empty() ? c.get("args.fit", "resize") : a.fit;
    set = casdm::data::fit(std::move(set), c.options.image_size(), casdm::data::parse_fit(fit));
  }
  const int64_t ref_n = a.ref_n > 0 ? std::min(a.ref_n, set.size()) : set.size();
  const std::string key = scorer.key() + "|" + set.source + "|" + std::to_string(ref_n) + "|" +
                          std::to_string(c.options.image_size()) + "|" + fit;
  const fs::path stats_path = a.stats.empty() ? fs::path(a.scorer).parent_path() / "reference-stats.pt" : fs::path(a.stats);
  const auto t0 = std::chrono::steady_clock::now();
  auto ref = casdm::eval::load_reference(stats_path, key);
  const bool cached = ref.has_value();
  if (!ref) {
    ref = casdm::eval::image_stats(scorer, set.images.slice(0, 0, ref_n), device, a.batch, [](int64_t d, int64_t t) {
      std::fprintf(stderr, "\rreference features %lld/%lld", static_cast<long long>(d), static_cast<long long>(t));
    });
    std::fprintf(stderr, "\n");
    casdm::eval::save_reference(*ref, stats_path, key);
  }
  const auto t1 = std::chrono::steady_clock::now();
  // Samples.
  std::string which;
  auto model = casdm::examples::model_from_checkpoint<Model>(c, a.weights, a.ema_rate, which);
  model->to(device);
  model->eval();
  torch::manual_seed(static_cast<uint64_t>(a.seed));
  const auto so = casdm::SampleOptions().steps(a.steps).eta(a.eta);
  std::vector<at::Tensor> parts;
  for (int64_t done = 0; done < a.n; done += a.batch) {
    parts.push_back(model->sample(std::min(a.batch, a.n - done), so).cpu());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    const int64_t now = done + parts.back().size(0);
    std::fprintf(stderr, "\rsampled %lld/%lld  %.1f images/s  ETA %s   ", static_cast<long long>(now),
                 static_cast<long long>(a.n), static_cast<double>(now) / s,
                 casdm::examples::duration(s / static_cast<double>(now) * static_cast<double>(a.n - now)).c_str());
  }
  std::fprintf(stderr, "\n");
  const auto samples = at::cat(parts);
  const auto t2 = std::chrono::steady_clock::now();
  const auto st = casdm::eval::image_stats(scorer, samples, device, a.batch);
  const auto scores = casdm::eval::scores_of(st, *ref, a.splits);
  const auto t3 = std::chrono::steady_clock::now();
  auto secs = [](auto x, auto y) { return std::chrono::duration<double>(y - x).count(); };
  nlohmann::json j;
  j["checkpoint"] = c.path.string();
  j["preset"] = c.get("preset");
  j["step"] = c.step;
  j["weights"] = which;
  j["sampler"] = {{"kind", "ddim"}, {"steps", a.steps}, {"eta", a.eta}};
  j["n"] = a.n;
  j["seed"] = a.seed;
  j["scorer"] = scorer.name();
  j["data"] = set.source;
  j["reference_images"] = ref_n;
  j["reference_cached"] = cached;
  j["data_fit"] = fit;
  const bool fid = std::is_same_v<Scorer, casdm::eval::FIDInception>;
  j[fid ? "fid" : "fd_domain"] = scores.fd;
  if (!std::isnan(scores.spatial_fd)) j["sfid"] = scores.spatial_fd;
  j[fid ? "inception_score" : "domain_score"] = {{"mean", scores.is.mean}, {"std", scores.is.std}, {"splits", a.splits}};
  j["seconds"] = {{"reference", secs(t0, t1)}, {"sampling", secs(t1, t2)}, {"scoring", secs(t2, t3)}};
  return j;
}

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"Sample from a casdm-train checkpoint and score the samples against a data set"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--checkpoint", a.checkpoint, "checkpoint file, or a casdm-train output folder (newest checkpoint)")
      ->required();
  app.add_option("--scorer", a.scorer, "inception_fid.pt (FID, sFID, IS) or small_vgg.pt (domain scores)")->required();
  app.add_option("-n,--n", a.n, "samples to draw")->capture_default_str()->check(CLI::Range(int64_t{2}, int64_t{1} << 40));
  app.add_option("--steps", a.steps, "DDIM steps (0: the preset's default)")->capture_default_str();
  app.add_option("--eta", a.eta, "DDIM eta")->capture_default_str();
  app.add_option("--weights", a.weights, "ema or raw")->capture_default_str()->check(CLI::IsMember({"ema", "raw"}));
  app.add_option("--ema-rate", a.ema_rate, "which EMA copy (default: the first)");
  app.add_option("--data", a.data, "the data set the reference statistics are of")->capture_default_str();
  app.add_option("--data-format", a.data_format, "auto, idx, cifar10 or images")->capture_default_str();
  app.add_option("--fit", a.fit, "pad or resize data of another side (default: the run's --fit)")
      ->check(CLI::IsMember({"pad", "resize"}));
  app.add_option("--ref-n", a.ref_n, "reference images (0: the whole training split)")->capture_default_str();
  app.add_option("--stats", a.stats, "reference statistics cache (default: reference-stats.pt beside the scorer)");
  app.add_option("--splits", a.splits, "Inception Score splits")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch", a.batch, "images per pass")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", a.seed, "seed of the sampling noise")->capture_default_str();
  app.add_option("--out", a.out, "JSON file to write (default: print only)");
  casdm::examples::add_machine_options(app, a.threads, a.device);
  CLI11_PARSE(app, argc, argv);
  try {
    const auto device = casdm::examples::use_machine(a.threads, a.device);
    if (a.weights == "raw" && app.count("--ema-rate"))
      throw std::runtime_error("--ema-rate: --weights raw uses the raw weights, not an EMA copy");
    if (a.splits > a.n) throw std::runtime_error("--splits " + std::to_string(a.splits) + " is more than -n " + std::to_string(a.n));
    const auto path = casdm::examples::resolve_checkpoint(a.checkpoint);
    const auto c = casdm::train::read_checkpoint(path);
    const auto preset = c.get("preset");
    if (preset.empty()) throw std::runtime_error(path.string() + " names no preset (not written by casdm-train?)");
    if (!a.out.empty()) casdm::examples::require_writable_folder(fs::absolute(a.out).parent_path());
    const auto file = fs::path(a.scorer).filename().string();
    nlohmann::json j;
    auto run = [&](auto& scorer) {
      scorer.to(device);
      casdm::examples::with_preset(preset, [&](auto type) {
        using P = typename decltype(type)::type;
        j = evaluate<std::decay_t<decltype(scorer)>, P>(a, c, scorer, device);
        return 0;
      });
    };
    if (file == "small_vgg.pt") {
      casdm::eval::DomainScorer s(a.scorer);
      run(s);
    } else if (file == "inception_fid.pt") {
      casdm::eval::FIDInception s(a.scorer);
      run(s);
    } else {
      throw std::runtime_error("--scorer " + a.scorer + ": expected a file named inception_fid.pt or small_vgg.pt");
    }
    if (!a.out.empty()) casdm::examples::write_text(a.out, j.dump(2) + "\n");
    std::cout << j.dump(2) << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "casdm-eval: " << e.what() << "\n";
    return 1;
  }
}
