// casdm-eval: draws N samples from a casdm-train checkpoint and scores them against a data set.
//
//   casdm-eval --checkpoint out/casdm --scorer weights/fmnist/small_vgg.pt -n 1000 --steps 50
//   casdm-eval ... --sampler dpmpp2m --steps 10                     # DPM-Solver++(2M); any of casdm-sample's samplers
//   casdm-eval --checkpoint out/cifar --data cifar-10-batches-bin --scorer weights/inception_fid.pt -n 50000 --device cuda
//   casdm-eval --checkpoint out/cond --class all --guidance 3 ...   # a --class-cond run: class i % K for sample i;
//                                                                   # the domain scorer also gives its accuracy on them
//   casdm-eval --samples samples_1000x28x28x1.npz --scorer weights/fmnist/small_vgg.pt   # images made by another program:
//                      # an .npz/.npy (uint8 [N, H, W, C], as improved-diffusion writes), samples.pt or a folder of images
//   casdm-eval --checkpoint out/run --nll --nll-n 1000              # bits/dim of the test split (improved-diffusion's
//                                                                   # calc_bpd_loop), no scorer, nothing sampled
//
// The scorer is a weights file: inception_fid.pt (tools/export_weights.py --fid-inception) gives
// FID, sFID and IS; small_vgg.pt (casdm-metric) gives a Fréchet distance and an Inception-style
// score in that domain classifier's features — on the data set it was trained for, not FID or IS.
// The data set's statistics are computed once and cached (--stats, default beside the scorer,
// keyed by scorer, data and count). Beside the Fréchet distance: the KID in the same features
// (--kid-subsets, --kid-subset-size; 0 subsets: none). Writes a JSON file (--out) and prints it.
#include "casdm/casdm.hpp"
#include "casdm/app/draw.hpp"
#include "casdm/app/evaluate.hpp"
#include "casdm/app/likelihood.hpp"
#include "casdm/app/preset_of.hpp"
#include "casdm/app/stop.hpp"
#include "casdm/data/sample_files.hpp"
#include "scoring.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <iostream>

namespace fs = std::filesystem;

struct Args {
  std::string checkpoint, samples, scorer, nll_split = "test", nll_variance = "large", data = "/usr/share/datasets/fashion-mnist", data_format = "auto", fit, stats, out,
      weights = "ema", device = "cpu";
  casdm::app::SamplingRequest sampling = {.steps = 50};
  int64_t n = 1000, batch = 100, ref_n = 0, seed = 0, threads = 0, splits = 10, bootstrap = 0, nll_n = 1000;
  bool nll = false;
  casdm::eval::KidOptions kid;
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

/// The JSON file (--out) is checked before any work: not a folder, in a writable one.
void check_out(const std::string& out) {
  if (out.empty()) return;
  if (fs::is_directory(out)) throw std::runtime_error(fmt::format("--out {}: a folder; give the name of the JSON file to write", out));
  casdm::examples::require_writable_folder(fs::absolute(out).parent_path());
}

/// --nll: the checkpoint's bits/dim on a data split; nothing sampled, no scorer.
int nll(const CLI::App& app, const Args& a, const std::vector<CLI::Option*>& drawing, const c10::Device& device) {
  if (!a.samples.empty()) throw std::runtime_error("--nll is of a checkpoint's model (--checkpoint), not of --samples");
  for (const auto* o : drawing)
    if (o->count() && o->get_name() != "--weights" && o->get_name() != "--ema-rate")
      throw std::runtime_error(fmt::format("{}: draws samples; --nll draws none (--nll-n: how many images)", o->get_name()));
  for (const char* o : {"--scorer", "--bootstrap", "--splits", "--kid-subsets", "--kid-subset-size", "--ref-n", "--stats"})
    if (app.count(o)) throw std::runtime_error(fmt::format("{}: scores samples; --nll scores none", o));
  if (a.weights == "raw" && app.count("--ema-rate"))
    throw std::runtime_error("--ema-rate: --weights raw uses the raw weights, not an EMA copy");
  const auto c = casdm::train::read_checkpoint(casdm::train::resolve_checkpoint(a.checkpoint));
  check_out(a.out);
  std::string which;
  const auto d = casdm::app::load_any_denoiser(c, casdm::examples::weights_choice(a.weights, a.ema_rate), device, &which);
  casdm::train::StopSignals signals("this batch of images");
  const auto j = casdm::app::checkpoint_nll(
      c, *d, which,
      casdm::app::NllRequest().data(a.data).format(a.data_format).fit(a.fit).split(a.nll_split).n(a.nll_n).batch(a.batch).seed(a.seed)
          .variance(casdm::eval::parse_fixed_variance(a.nll_variance)),
      device, [&](int64_t done, int64_t total) {
        fmt::print(stderr, "nll: {}/{} images\n", done, total);
        if (const int s = signals.requested()) throw casdm::app::Stopped(s);
      });
  if (!a.out.empty()) casdm::examples::write_text(a.out, j.dump(2) + "\n");
  fmt::print("{}\n", j.dump(2));
  return 0;
}

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"Sample from a casdm-train checkpoint, or read images made elsewhere, and score them against a data set"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--checkpoint", a.checkpoint, "checkpoint file, or a casdm-train output folder (newest checkpoint): draw samples from it");
  app.add_option("--samples", a.samples, "instead of --checkpoint, score these images: an .npz or .npy (uint8 [N, H, W, C], as "
                 "improved-diffusion's image_sample.py writes), a casdm tensor file (casdm-sample's samples.pt) or a folder of images");
  app.add_option("--scorer", a.scorer, casdm::eval::scorer_help() + " (required unless --nll)");
  app.add_flag("--nll", a.nll, "instead of sampling: the checkpoint's negative log-likelihood of a data split in bits/dim "
               "(the variational bound over all T steps, improved-diffusion's calc_bpd_loop)");
  app.add_option("--nll-split", a.nll_split, "--nll: the split")->capture_default_str()->check(CLI::IsMember({"test", "train"}));
  app.add_option("--nll-n", a.nll_n, "--nll: the first N images of the split (0: all)")->capture_default_str()
      ->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--nll-variance", a.nll_variance, "--nll: the model's fixed variance, large (beta) or small (the posterior's)")
      ->capture_default_str()->check(CLI::IsMember({"large", "small"}));
  // What only drawing from a checkpoint takes.
  auto drawing = casdm::examples::add_sampling_options(app, a.sampling);
  drawing.push_back(app.add_option("-n,--n", a.n, "samples to draw")->capture_default_str()
                        ->check(casdm::examples::in_range<int64_t>(2, int64_t{1} << 40)));
  drawing.push_back(app.add_option("--weights", a.weights, "ema or raw")->capture_default_str()->check(CLI::IsMember({"ema", "raw"})));
  drawing.push_back(app.add_option("--ema-rate", a.ema_rate, "which EMA copy (default: the first)"));
  app.add_option("--data", a.data, "the data set of the reference statistics (and of --nll)")->capture_default_str();
  app.add_option("--data-format", a.data_format, "one of: " + casdm::data::formats_help())->capture_default_str()
      ->check(CLI::IsMember(casdm::data::format_names()));
  app.add_option("--fit", a.fit, "pad or resize data of another side (default: the run's --fit; with --samples, resize)")
      ->check(CLI::IsMember({"pad", "resize"}));
  app.add_option("--ref-n", a.ref_n, "reference images (0: the whole training split)")->capture_default_str()
      ->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--stats", a.stats, "reference statistics cache (default: reference-stats.pt beside the scorer)");
  app.add_option("--splits", a.splits, "Inception Score splits")->capture_default_str()->check(casdm::examples::at_least<int64_t>(1));
  app.add_option("--batch", a.batch, "images per pass")->capture_default_str()->check(casdm::examples::at_least<int64_t>(1));
  app.add_option("--bootstrap", a.bootstrap, "resamples for the distance's spread (0: none)")->capture_default_str()
      ->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--kid-subsets", a.kid.subsets, "KID subset pairs (0: no KID)")->capture_default_str()
      ->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--kid-subset-size", a.kid.subset_size, "vectors in each KID subset (0: 1000, or -n if fewer)")
      ->capture_default_str()->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--seed", a.seed, "seed of the sampling noise (and of the bootstrap's and the KID's draws)")->capture_default_str()->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--out", a.out, "JSON file to write (default: print only)");
  casdm::examples::add_machine_options(app, a.threads, a.device);
  if (const int rc = casdm::examples::parse_command_line(app, argc, argv, "casdm-eval"); rc >= 0) return rc;
  try {
    const auto device = casdm::examples::use_machine(a.threads, a.device);
    if (a.checkpoint.empty() == a.samples.empty())
      throw std::runtime_error("one of --checkpoint (draw samples from it) and --samples (score images made elsewhere)");
    if (a.nll) return nll(app, a, drawing, device);
    if (a.scorer.empty()) throw std::runtime_error("--scorer is required (except with --nll)");
    for (const char* o : {"--nll-split", "--nll-n", "--nll-variance"})
      if (app.count(o)) throw std::runtime_error(fmt::format("{}: applies to --nll", o));
    if (a.bootstrap == 1) throw std::runtime_error("--bootstrap: 0 (none) or at least 2 resamples");
    if (a.kid.subset_size == 1) throw std::runtime_error("--kid-subset-size: 0 (the default) or at least 2 vectors");
    const casdm::examples::ReferenceSpec ref_spec{a.data, a.data_format, a.fit, a.stats, a.ref_n};
    if (!a.samples.empty()) {
      for (const auto* o : drawing)
        if (o->count()) throw std::runtime_error(fmt::format("{}: draws from --checkpoint; --samples scores images made elsewhere", o->get_name()));
      check_out(a.out);
      const auto s = casdm::data::read_sample_images(a.samples);
      nlohmann::json j;
      const casdm::app::EvalRequest request{{}, s.images.size(0), a.seed, a.splits, a.bootstrap, a.batch, a.kid};
      casdm::eval::with_scorer(a.scorer, device, [&](auto& scorer) {
        j = casdm::app::evaluate_images(s.images, s.source, scorer, [&] {
          return casdm::examples::reference(scorer, a.scorer, s.images, ref_spec, device, a.batch);
        }, request, device);
      });
      if (!a.out.empty()) casdm::examples::write_text(a.out, j.dump(2) + "\n");
      fmt::print("{}\n", j.dump(2));
      return 0;
    }
    if (a.weights == "raw" && app.count("--ema-rate"))
      throw std::runtime_error("--ema-rate: --weights raw uses the raw weights, not an EMA copy");
    casdm::examples::settle_sampling(app, a.sampling);
    if (a.splits > a.n) throw std::runtime_error(fmt::format("--splits {} is more than -n {}", a.splits, a.n));
    if (a.kid.subset_size > a.n)
      throw std::runtime_error(fmt::format("--kid-subset-size {} is more than -n {}", a.kid.subset_size, a.n));
    const auto path = casdm::train::resolve_checkpoint(a.checkpoint);
    const auto c = casdm::train::read_checkpoint(path);
    const auto preset = casdm::app::preset_of(c);
    // Refused before the scorer and the data set are read: --class and --steps against the checkpoint's model.
    const auto labels = a.sampling.checked(a.n, c);  // the JSON records the steps run
    check_out(a.out);
    casdm::eval::check_draw_memory(a.n, c.denoiser_options);
    // SIGINT/SIGTERM: the batch of samples under way finishes, then the program stops, writing nothing.
    casdm::train::StopSignals signals("this batch of samples");
    // Every preset, but once for both scorers.
    const std::function<at::Tensor(std::string&)> sample = [&](std::string& which) {
      return casdm::presets::visit(preset, [&](auto type) { return draw<typename decltype(type)::type>(a, c, labels, device, signals, which); });
    };
    nlohmann::json j;
    const casdm::app::EvalRequest request{a.sampling, a.n, a.seed, a.splits, a.bootstrap, a.batch, a.kid};
    casdm::eval::with_scorer(a.scorer, device, [&](auto& scorer) {
      j = casdm::app::evaluate(c, scorer, [&] {
        return casdm::examples::reference(scorer, a.scorer, c, ref_spec, device, a.batch);
      }, sample, request, labels, device);
    });
    if (!a.out.empty()) casdm::examples::write_text(a.out, j.dump(2) + "\n");
    fmt::print("{}\n", j.dump(2));
    return 0;
  } catch (const casdm::app::Stopped& stop) {
    fmt::print(stderr, "casdm-eval: {} {}; nothing written\n", stop.what(), a.nll ? "while measuring the likelihood" : "while sampling");
    return 128 + stop.signal;
  } catch (const std::exception& e) {
    fmt::print(stderr, "casdm-eval: {}\n", casdm::examples::message(e));
    return 1;
  }
}
