// casdm-eval: draws N samples from a casdm-train checkpoint and scores them against a data set.
//
//   casdm-eval --checkpoint out/casdm --scorer weights/fmnist/small_vgg.pt -n 1000 --steps 50
//   casdm-eval ... --sampler dpmpp2m --steps 10                     # DPM-Solver++(2M); any of casdm-sample's samplers
//   casdm-eval --checkpoint out/cifar --data cifar-10-batches-bin --scorer weights/inception_fid.pt -n 50000 --device cuda
//   casdm-eval --checkpoint out/cond --class all --guidance 3 ...   # a --class-cond run: class i % K for sample i;
//                                                                   # the domain scorer also gives its accuracy on them
//
// The scorer is a weights file: inception_fid.pt (tools/export_weights.py --fid-inception) gives
// FID, sFID and IS; small_vgg.pt (casdm-metric) gives a Fréchet distance and an Inception-style
// score in that domain classifier's features — on the data set it was trained for, not FID or IS.
// The data set's statistics are computed once and cached (--stats, default beside the scorer,
// keyed by scorer, data and count). Writes a JSON file (--out) and prints it.
#include "casdm/casdm.hpp"
#include "casdm/app/draw.hpp"
#include "casdm/app/evaluate.hpp"
#include "casdm/app/preset_of.hpp"
#include "casdm/app/stop.hpp"
#include "scoring.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <iostream>

namespace fs = std::filesystem;

struct Args {
  std::string checkpoint, scorer, data = "/usr/share/datasets/fashion-mnist", data_format = "auto", fit, stats, out,
      weights = "ema", device = "cpu";
  casdm::app::SamplingRequest sampling = {.steps = 50};
  int64_t n = 1000, batch = 100, ref_n = 0, seed = 0, threads = 0, splits = 10, bootstrap = 0;
  double ema_rate = -1;
};

/// The samples of the checkpoint's model with the sampler named by --sampler (instantiated per preset,
/// not per scorer); `which` names the weights used.
template <class Model>
at::Tensor draw(const Args& a, const casdm::train::CheckpointInfo& c, const at::Tensor& labels, const c10::Device& device,
                const casdm::train::StopSignals& signals, std::string& which) {
  return casdm::app::draw_from_checkpoint<Model>(c, a.sampling.sampler, casdm::examples::weights_choice(a.weights, a.ema_rate), device, a.n,
      casdm::eval::DrawOptions().sample(a.sampling.options(labels)).batch(a.batch).seed(static_cast<uint64_t>(a.seed))
          .progress(casdm::app::stop_between_batches(signals, casdm::eval::print_draw_progress())), &which);
}

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"Sample from a casdm-train checkpoint and score the samples against a data set"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--checkpoint", a.checkpoint, "checkpoint file, or a casdm-train output folder (newest checkpoint)")
      ->required();
  app.add_option("--scorer", a.scorer, casdm::eval::scorer_help())->required();
  app.add_option("-n,--n", a.n, "samples to draw")->capture_default_str()->check(casdm::examples::in_range<int64_t>(2, int64_t{1} << 40));
  casdm::examples::add_sampling_options(app, a.sampling);
  app.add_option("--weights", a.weights, "ema or raw")->capture_default_str()->check(CLI::IsMember({"ema", "raw"}));
  app.add_option("--ema-rate", a.ema_rate, "which EMA copy (default: the first)");
  app.add_option("--data", a.data, "the data set the reference statistics are of")->capture_default_str();
  app.add_option("--data-format", a.data_format, "one of: " + casdm::data::formats_help())->capture_default_str()
      ->check(CLI::IsMember(casdm::data::format_names()));
  app.add_option("--fit", a.fit, "pad or resize data of another side (default: the run's --fit)")
      ->check(CLI::IsMember({"pad", "resize"}));
  app.add_option("--ref-n", a.ref_n, "reference images (0: the whole training split)")->capture_default_str()
      ->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--stats", a.stats, "reference statistics cache (default: reference-stats.pt beside the scorer)");
  app.add_option("--splits", a.splits, "Inception Score splits")->capture_default_str()->check(casdm::examples::at_least<int64_t>(1));
  app.add_option("--batch", a.batch, "images per pass")->capture_default_str()->check(casdm::examples::at_least<int64_t>(1));
  app.add_option("--bootstrap", a.bootstrap, "resamples for the distance's spread (0: none)")->capture_default_str()
      ->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--seed", a.seed, "seed of the sampling noise")->capture_default_str()->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--out", a.out, "JSON file to write (default: print only)");
  casdm::examples::add_machine_options(app, a.threads, a.device);
  if (const int rc = casdm::examples::parse_command_line(app, argc, argv, "casdm-eval"); rc >= 0) return rc;
  try {
    const auto device = casdm::examples::use_machine(a.threads, a.device);
    if (a.weights == "raw" && app.count("--ema-rate"))
      throw std::runtime_error("--ema-rate: --weights raw uses the raw weights, not an EMA copy");
    casdm::examples::settle_sampling(app, a.sampling);
    if (a.splits > a.n) throw std::runtime_error(fmt::format("--splits {} is more than -n {}", a.splits, a.n));
    if (a.bootstrap == 1) throw std::runtime_error("--bootstrap: 0 (none) or at least 2 resamples");
    const auto path = casdm::train::resolve_checkpoint(a.checkpoint);
    const auto c = casdm::train::read_checkpoint(path);
    const auto preset = casdm::app::preset_of(c);
    // Refused before the scorer and the data set are read: --class and --steps against the checkpoint's model.
    const auto labels = a.sampling.checked(a.n, c);  // the JSON records the steps run
    if (!a.out.empty()) {  // the JSON file is checked before any work
      if (fs::is_directory(a.out))
        throw std::runtime_error(fmt::format("--out {}: a folder; give the name of the JSON file to write", a.out));
      casdm::examples::require_writable_folder(fs::absolute(a.out).parent_path());
    }
    casdm::eval::check_draw_memory(a.n, c.denoiser_options);
    // SIGINT/SIGTERM: the batch of samples under way finishes, then the program stops, writing nothing.
    casdm::train::StopSignals signals("this batch of samples");
    // Every preset, but once for both scorers.
    const std::function<at::Tensor(std::string&)> sample = [&](std::string& which) {
      return casdm::presets::visit(preset, [&](auto type) { return draw<typename decltype(type)::type>(a, c, labels, device, signals, which); });
    };
    nlohmann::json j;
    const casdm::app::EvalRequest request{a.sampling, a.n, a.seed, a.splits, a.bootstrap, a.batch};
    casdm::eval::with_scorer(a.scorer, device, [&](auto& scorer) {
      j = casdm::app::evaluate(c, scorer, [&] {
        return casdm::examples::reference(scorer, a.scorer, c, {a.data, a.data_format, a.fit, a.stats, a.ref_n}, device, a.batch);
      }, sample, request, labels, device);
    });
    if (!a.out.empty()) casdm::examples::write_text(a.out, j.dump(2) + "\n");
    fmt::print("{}\n", j.dump(2));
    return 0;
  } catch (const casdm::app::Stopped& stop) {
    fmt::print(stderr, "casdm-eval: {} while sampling; nothing written\n", stop.what());
    return 128 + stop.signal;
  } catch (const std::exception& e) {
    fmt::print(stderr, "casdm-eval: {}\n", casdm::examples::message(e));
    return 1;
  }
}
