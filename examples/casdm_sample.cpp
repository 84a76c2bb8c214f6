// casdm-sample: draws images from a casdm-train checkpoint.
//
//   casdm-sample --checkpoint out/casdm --n 64 --steps 50                # DDIM-50, EMA weights
//   casdm-sample --checkpoint out/casdm/checkpoints/ckpt-000001200.pt --sampler ancestral --steps 1000 --weights raw
//   casdm-sample --checkpoint out/casdm --sampler dpmpp2m --steps 10       # DPM-Solver++(2M), 10 evaluations
//   casdm-sample --checkpoint out/cond --class 3 --guidance 3              # a --class-cond run: class 3, w = 3
//   casdm-sample --checkpoint out/cond --class all -n 100 --columns 10     # classes 0..K-1 in turn
//
// Writes OUT/samples.png (a grid) and OUT/samples.pt (torch.save format: "samples", float
// [N, C, H, W] in [−1, 1], plus "casdm.*" strings naming the checkpoint, weights and sampler).
// The checkpoint names its preset and sizes; the model is rebuilt from them and loaded strictly.
#include "casdm/casdm.hpp"
#include "casdm/app/draw.hpp"
#include "casdm/app/preset_of.hpp"
#include "casdm/app/stop.hpp"
#include "casdm/sampler/registry.hpp"
#include "casdm/sampler/trajectory.hpp"
#include "casdm/eval/draw.hpp"
#include "casdm/train/trainer.hpp"
#include "casdm/report/image_grid.hpp"
#include "program.hpp"

#include <ATen/Parallel.h>

#include <chrono>
#include <iostream>
#include <thread>

namespace fs = std::filesystem;

struct Args {
  std::string checkpoint, out = "out/samples", sampler = "ddim", weights = "ema", device = "cpu", precision = "fp32";
  std::string cls;  // "", a class index, or "all"
  double guidance = 0;
  int64_t n = 64, steps = 0, batch = 64, seed = 0, threads = 0, columns = 8, trajectory = 0;
  double eta = 0, ema_rate = -1;
  bool exact_sigmas = false;
  casdm::Churn churn;
};

// The denoiser alone is rebuilt and loaded: no loss, so no feature network's weights are needed.
// Compiled once: only the loading and drawing depend on the preset (and the sampler, by name).
int sample(const Args& a, const casdm::train::CheckpointInfo& c, const std::string& preset) {
  // SIGINT/SIGTERM: the batch of samples under way finishes, then the program stops, writing nothing.
  casdm::train::StopSignals signals("this batch of samples");
  const auto device = c10::Device(a.device);
  std::string weights;
  auto so = casdm::SampleOptions().steps(a.steps).guidance(a.guidance).exact_sigmas(a.exact_sigmas).churn(a.churn);
  if (casdm::sampler::has_eta(a.sampler)) so.eta(a.eta);
  // Class labels of a class-conditional checkpoint: one class, or every class in turn.
  const auto labels = casdm::examples::class_labels(a.cls, a.n, c.denoiser_options.num_classes(), c.path);
  if (!labels.defined() && a.guidance != 0) throw std::runtime_error("--guidance: needs --class (guidance steers towards a class)");
  so.labels(labels);
  casdm::sampler::Trajectory trajectory(std::max<int64_t>(a.trajectory, 1), a.columns);
  so.on_step([record = trajectory.recorder(), progress = casdm::eval::print_step_progress(), &a](const casdm::SampleStep& s) {
    if (a.trajectory > 0) record(s);
    progress(s);
  });
  const auto t0 = std::chrono::steady_clock::now();
  const auto options = casdm::eval::DrawOptions().sample(so).batch(a.batch).seed(static_cast<uint64_t>(a.seed))
          .progress(casdm::app::stop_between_batches(signals, casdm::eval::print_draw_progress()));
  const auto x = casdm::presets::visit(preset, [&](auto type) {
    return casdm::app::draw_from_checkpoint<typename decltype(type)::type>(
        c, a.sampler, casdm::examples::weights_choice(a.weights, a.ema_rate), device, a.n, options, &weights,
        casdm::examples::precision_type(a.precision, device));
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  casdm::report::write_grid(fs::path(a.out) / "samples.png", x, a.columns,
                              fmt::format("{}, step {}, {} weights, {} {} steps, seed {}{}", c.get("preset"), c.step, weights,
                                          a.sampler, a.steps ? fmt::format("{}", a.steps) : std::string("default"), a.seed,
                                          a.cls.empty() ? std::string()
                                                        : fmt::format(", class {}, guidance {}", a.cls, casdm::io::number_str(a.guidance))));
  if (a.trajectory > 0)
    casdm::report::write_grid(fs::path(a.out) / "trajectory.png", trajectory.images(), trajectory.columns(),
                              fmt::format("x0 estimate of the first images every {} steps (rows: images)", a.trajectory));
  casdm::io::TensorFile f;
  f.tensors["samples"] = x;
  f.meta = {{"checkpoint", c.path.string()},
            {"step", fmt::format("{}", c.step)},
            {"preset", c.get("preset")},
            {"weights", weights},
            {"sampler", a.sampler},
            {"steps", fmt::format("{}", a.steps)},
            {"eta", casdm::io::number_str(a.eta)},
            {"sigmas", a.exact_sigmas ? "exact" : "snapped"},
            {"churn", fmt::format("{} in [{}, {}], noise {}", casdm::io::number_str(a.churn.amount), casdm::io::number_str(a.churn.t_min),
                                  casdm::io::number_str(a.churn.t_max), casdm::io::number_str(a.churn.noise))},
            {"seed", fmt::format("{}", a.seed)},
            {"precision", a.precision},
            {"class", a.cls},
            {"guidance", casdm::io::number_str(a.guidance)}};
  if (labels.defined()) f.tensors["labels"] = labels;
  casdm::io::write_tensor_file(fs::path(a.out) / "samples.pt", f);
  fmt::print("wrote {}/{{samples.png,samples.pt}}: {} images, {} weights, {} {} steps, {} s\n", a.out, a.n, weights,
             a.sampler, a.steps ? fmt::format("{}", a.steps) : std::string("default"), secs);
  return 0;
}

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"Draw images from a casdm-train checkpoint (presets: " + casdm::examples::preset_names() + ")"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a later -n wins
  app.add_option("--checkpoint", a.checkpoint, "checkpoint file, or a casdm-train output folder (newest checkpoint)")
      ->required();
  app.add_option("--out", a.out, "output folder")->capture_default_str();
  app.add_option("-n,--n", a.n, "images to draw")->capture_default_str()->check(casdm::examples::at_least<int64_t>(1));
  app.add_option("--sampler", a.sampler, "one of: " + casdm::sampler::help())
      ->capture_default_str()->check(CLI::IsMember(casdm::sampler::names()));
  app.add_option("--steps", a.steps, "sampling steps (0: the sampler's default, as listed under --sampler; at most T)")
      ->capture_default_str()->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--eta", a.eta, "eta in [0, 1] of ddim and the stochastic samplers (0: deterministic; default ddim's 0, the others' 1)")->capture_default_str()->check(casdm::examples::in_range<double>(0, 1));
  casdm::examples::add_exact_sigmas_flag(app, a.exact_sigmas);
  casdm::examples::add_churn_options(app, a.churn);
  app.add_option("--class", a.cls, "class-conditional checkpoints: the class of every image, or 'all' (class i % K at i)");
  app.add_option("--guidance", a.guidance, "classifier-free guidance scale w (0: the conditional model alone)")
      ->capture_default_str()->check(casdm::examples::in_range<double>(0, 1e6));
  app.add_option("--weights", a.weights, "ema or raw")->capture_default_str()->check(CLI::IsMember({"ema", "raw"}));
  app.add_option("--ema-rate", a.ema_rate, "which EMA copy (default: the first)");
  app.add_option("--batch", a.batch, "images per sampling pass")->capture_default_str()->check(casdm::examples::at_least<int64_t>(1));
  app.add_option("--columns", a.columns, "grid columns")->capture_default_str()->check(casdm::examples::at_least<int64_t>(1));
  app.add_option("--trajectory", a.trajectory, "every this many steps, the x0 estimate of the first --columns images "
                 "into trajectory.png (0: none)")->capture_default_str()->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--seed", a.seed, "seed of the noise")->capture_default_str()->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--precision", a.precision, "fp32, or bf16 (the networks under autocast)")
      ->capture_default_str()->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  casdm::examples::add_machine_options(app, a.threads, a.device);
  if (const int rc = casdm::examples::parse_command_line(app, argc, argv, "casdm-sample"); rc >= 0) return rc;
  try {
    casdm::examples::use_machine(a.threads, a.device);
    if (!casdm::sampler::has_eta(a.sampler) && app.count("--eta"))
      throw std::runtime_error(fmt::format("--eta: the {} sampler has no eta (ddim and the stochastic samplers have)", a.sampler));
    if (!app.count("--eta")) a.eta = casdm::sampler::info(a.sampler).default_eta;
    casdm::examples::check_exact_sigmas(a.sampler, a.exact_sigmas);
    casdm::examples::check_churn(app, a.sampler, a.churn);
    if (a.weights == "raw" && app.count("--ema-rate"))
      throw std::runtime_error("--ema-rate: --weights raw uses the raw weights, not an EMA copy");
    const fs::path path = casdm::train::resolve_checkpoint(a.checkpoint);
    const auto c = casdm::train::read_checkpoint(path);
    const auto preset = casdm::app::preset_of(c);
    casdm::sampler::check_steps(a.sampler, c.denoiser_options.diffusion_steps(), a.steps, "--steps");
    const auto& d = c.denoiser_options;
    casdm::eval::check_draw_memory(a.n, d);  // before the folder is made or the model built
    casdm::examples::require_writable_folder(a.out);
    casdm::io::require_space(a.out, 5.0 * static_cast<double>(a.n * d.channels() * d.image_size() * d.image_size()),
                             "the samples (samples.pt and samples.png)");
    return sample(a, c, preset);
  } catch (const casdm::app::Stopped& stop) {
    fmt::print(stderr, "casdm-sample: {} while sampling; nothing written\n", stop.what());
    return 128 + stop.signal;
  } catch (const std::exception& e) {
    fmt::print(stderr, "casdm-sample: {}\n", casdm::examples::message(e));
    return 1;
  }
}
