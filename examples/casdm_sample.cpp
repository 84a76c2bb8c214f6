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
  std::string checkpoint, out = "out/samples", weights = "ema", device = "cpu", precision = "fp32";
  casdm::app::SamplingRequest sampling;
  int64_t n = 64, batch = 64, seed = 0, threads = 0, columns = 8, trajectory = 0;
  double ema_rate = -1;
};

// The denoiser alone is rebuilt and loaded: no loss, so no feature network's weights are needed.
// Compiled once: only the loading and drawing depend on the preset (and the sampler, by name).
int sample(const Args& a, const casdm::train::CheckpointInfo& c, const std::string& preset, const at::Tensor& labels) {
  // SIGINT/SIGTERM: the batch of samples under way finishes, then the program stops, writing nothing.
  casdm::train::StopSignals signals("this batch of samples");
  const auto device = c10::Device(a.device);
  std::string weights;
  auto so = a.sampling.options(labels);
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
        c, a.sampling.sampler, casdm::examples::weights_choice(a.weights, a.ema_rate), device, a.n, options, &weights,
        casdm::examples::precision_type(a.precision, device));
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  casdm::report::write_grid(fs::path(a.out) / "samples.png", x, a.columns,
                              fmt::format("{}, step {}, {} weights, {}, seed {}{}", c.get("preset"), c.step, weights,
                                          a.sampling.caption(), a.seed, a.sampling.class_caption()));
  if (a.trajectory > 0)
    casdm::report::write_grid(fs::path(a.out) / "trajectory.png", trajectory.images(), trajectory.columns(),
                              fmt::format("x0 estimate of the first images every {} steps (rows: images)", a.trajectory));
  casdm::io::TensorFile f;
  f.tensors["samples"] = x;
  f.meta = a.sampling.record();
  f.meta.insert({{"checkpoint", c.path.string()},
                 {"step", fmt::format("{}", c.step)},
                 {"preset", c.get("preset")},
                 {"weights", weights},
                 {"seed", fmt::format("{}", a.seed)},
                 {"precision", a.precision}});
  if (labels.defined()) f.tensors["labels"] = labels;
  casdm::io::write_tensor_file(fs::path(a.out) / "samples.pt", f);
  fmt::print("wrote {}/{{samples.png,samples.pt}}: {} images, {} weights, {}{}, {} s\n", a.out, a.n, weights,
             a.sampling.caption(), a.sampling.class_caption(), secs);
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
  casdm::examples::add_sampling_options(app, a.sampling);
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
    casdm::examples::settle_sampling(app, a.sampling);
    if (a.weights == "raw" && app.count("--ema-rate"))
      throw std::runtime_error("--ema-rate: --weights raw uses the raw weights, not an EMA copy");
    const fs::path path = casdm::train::resolve_checkpoint(a.checkpoint);
    const auto c = casdm::train::read_checkpoint(path);
    const auto preset = casdm::app::preset_of(c);
    const auto labels = a.sampling.checked(a.n, c);  // --steps against T, --class against the model's classes
    const auto& d = c.denoiser_options;
    casdm::eval::check_draw_memory(a.n, d);  // before the folder is made or the model built
    casdm::examples::require_writable_folder(a.out);
    casdm::io::require_space(a.out, 5.0 * static_cast<double>(a.n * d.channels() * d.image_size() * d.image_size()),
                             "the samples (samples.pt and samples.png)");
    return sample(a, c, preset, labels);
  } catch (const casdm::app::Stopped& stop) {
    fmt::print(stderr, "casdm-sample: {} while sampling; nothing written\n", stop.what());
    return 128 + stop.signal;
  } catch (const std::exception& e) {
    fmt::print(stderr, "casdm-sample: {}\n", casdm::examples::message(e));
    return 1;
  }
}
