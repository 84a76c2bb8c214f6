// casdm-train: trains any preset on an image data set and writes checkpoints, samples and figures.
//
//   casdm-train --preset CasDM --steps 1200 --out out/casdm            # Fashion-MNIST by default
//   casdm-train --out out/casdm --steps 2400 --resume                  # continue that run exactly
//
// OUT/ gets: checkpoints/ckpt-<step>.pt (model, EMA, optimiser, step, RNG; the newest --keep),
// losses.csv (every loss term at every step), loss.png and loss.svg (one labelled curve per term),
// samples.png (EMA weights; samples-<step>.png with --sample-every), data.png, run.json (the
// settings and the run's figures) and index.html (all of it on one page, rewritten as the run goes).
// The run's settings are in its checkpoints; a resume takes them and refuses a contradicting command.
#include <fmt/format.h>
#include "casdm/casdm.hpp"
#include "casdm/io/files.hpp"
#include "casdm/app/run_settings.hpp"
#include "casdm/app/training_run.hpp"
#include "casdm/train/distributed.hpp"
#include "casdm/train/launch.hpp"
#include "program.hpp"

#include <chrono>

namespace fs = std::filesystem;

struct Args : casdm::app::TrainingFlags {  // the run (casdm-train's defaults) and how to launch it
  int64_t threads = 0, nproc = 1, dist_timeout = 300;
  std::string resume_from;
  bool resume = false;
};

int main(int argc, char** argv) {
  using casdm::examples::at_least, casdm::examples::in_range;
  constexpr double float_max = std::numeric_limits<float>::max();  // optimiser settings meet float32 tensors
  Args a;
  const auto presets = casdm::examples::preset_names();
  CLI::App app{"Train a casdm preset on an image data set (Fashion-MNIST/MNIST IDX, CIFAR-10 binary, or a folder "
               "of PNG/JPEG images), writing checkpoints, sample grids and loss figures."};
  app.get_formatter()->column_width(34);
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a later --steps wins
  casdm::app::RunSettings settings;
  using OnResume = casdm::app::RunSettings::OnResume;
  auto setting = [&](const std::string& name, auto* field, const std::string& help, OnResume r = OnResume::kept) {
    settings.add(name, field, r);
    auto* o = app.add_option("--" + name, *field, help)->capture_default_str();
    if constexpr (!std::is_same_v<decltype(*field), std::string&> && requires { field->push_back(field->front()); })
      o->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);  // lists: --ema 0.9 0.99
    return o;
  };
  setting("preset", &a.preset, "one of: " + presets)->group("Run");
  setting("data", &a.data, "data folder: IDX files, CIFAR-10 *.bin batches, or images")->group("Data");
  setting("data-format", &a.data_format, "one of: " + casdm::data::formats_help())
      ->check(CLI::IsMember(casdm::data::format_names()))->group("Data");
  setting("image-size", &a.image_size, "side the images are brought to (0: the data's)")->check(in_range<int64_t>(0, 1 << 16))->group("Data");
  setting("fit", &a.fit, "pad (centre on black) or resize (centre-crop, bilinear)")->group("Data");
  settings.add("hflip", &a.hflip);
  app.add_flag("--hflip", a.hflip, "flip images horizontally at random")->group("Data");
  setting("batch", &a.batch, "images per step")->check(at_least<int64_t>(1))->group("Optimisation");
  setting("micro-batch", &a.micro_batch, "accumulate gradients over chunks of this size (0: off)")->check(at_least<int64_t>(0))->group("Optimisation");
  setting("lr", &a.lr, "AdamW learning rate (paper: 1e-4)")->check(in_range<double>(0, float_max, true))->group("Optimisation");
  setting("weight-decay", &a.weight_decay, "AdamW weight decay (paper: 0)")->check(in_range<double>(0, float_max))->group("Optimisation");
  setting("grad-clip", &a.grad_clip, "clip the gradients' global norm (0: off)")->check(in_range<double>(0, float_max))->group("Optimisation");
  setting("ema", &a.ema, "EMA rates; samples use the first (paper: 0.9999)")->check(in_range<double>(0, 1, false, true))->group("Optimisation");
  setting("precision", &a.precision, "fp32, bf16 (the networks under autocast; weights and losses fp32), or fp16 (CUDA; with dynamic loss scaling)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}))->group("Optimisation");
  setting("seed", &a.seed, "seed of weights, noise and data order")->check(at_least<int64_t>(0))->group("Optimisation");
  setting("diffusion-steps", &a.model.diffusion_steps, "T, diffusion steps of training (paper: 4000)")->check(in_range<int64_t>(2, 1 << 20))->group("Model");
  setting("model-channels", &a.model.model_channels, "U-Net width (paper: 128)")->check(in_range<int64_t>(1, 1 << 14))->group("Model");
  setting("channel-mult", &a.model.channel_mult, "width multipliers per level (paper: 1,2,2,2)")->check(in_range<int64_t>(1, 64))->group("Model");
  setting("res-blocks", &a.model.res_blocks, "residual blocks per level (paper: 3)")->check(in_range<int64_t>(1, 64))->group("Model");
  setting("attention", &a.model.attention, "resolutions with self-attention (paper: 16,8)")->check(at_least<int64_t>(1))->group("Model");
  setting("heads", &a.model.heads, "attention heads")->check(in_range<int64_t>(1, 1024))->group("Model");
  setting("norm-groups", &a.model.norm_groups, "GroupNorm groups (paper: 32)")->check(in_range<int64_t>(1, 1024))->group("Model");
  setting("dropout", &a.model.dropout, "U-Net dropout (paper: 0.3)")->check(in_range<double>(0, 1, false, true))->group("Model");
  setting("phi-model-channels", &a.model.phi_model_channels, "cascaded presets: phi's width (0: as theta)")->check(in_range<int64_t>(0, 1 << 14))->group("Model");
  setting("phi-channel-mult", &a.model.phi_channel_mult, "cascaded presets: phi's multipliers (empty: as theta)")->check(in_range<int64_t>(1, 64))->group("Model");
  setting("phi-res-blocks", &a.model.phi_res_blocks, "cascaded presets: phi's blocks per level (0: as theta)")->check(in_range<int64_t>(0, 64))->group("Model");
  setting("phi-attention", &a.model.phi_attention, "cascaded presets: phi's attention resolutions")->check(at_least<int64_t>(1))->group("Model");
  setting("feature-size", &a.model.feature_size, "feature-loss presets: resize side (0: the preset's, 224; CasDM_SmallVGG 32)",
          OnResume::may_change)->check(in_range<int64_t>(0, 4096))->group("Objective");
  setting("feature-weights", &a.model.feature_weights, "feature-loss presets: folder of the backbone's weight files "
          "(a resume may give a new place)", OnResume::may_change)->group("Objective");
  setting("loss-weight", &a.model.loss_weights, "NAME=VALUE: a loss term's weight instead of the preset's, e.g. x0=0.5 "
          "(repeatable; a resume may change it)", OnResume::may_change)->group("Objective");
  settings.add("class-cond", &a.model.class_cond);
  app.add_flag("--class-cond", a.model.class_cond, "class-conditional: the data set's labels embedded in theta and phi "
                                             "(classifier-free guidance at sampling)")->group("Model");
  setting("label-dropout", &a.model.label_dropout, "--class-cond: probability that a label is dropped in training")
      ->check(in_range<double>(0, 1))->group("Model");
  app.add_option("--steps", a.steps, "total steps to reach")->capture_default_str()->check(at_least<int64_t>(1));
  app.add_option("--out", a.out, "output folder")->capture_default_str();
  app.add_flag("--resume", a.resume, "continue the run in --out from its newest checkpoint");
  app.add_option("--resume-from", a.resume_from, "continue from this checkpoint file");
  app.add_option("--checkpoint-every", a.checkpoint_every, "steps between checkpoints (0: at the end only)")
      ->capture_default_str()->check(at_least<int64_t>(0));
  app.add_option("--keep", a.keep, "checkpoints to keep (>= 2)")->capture_default_str()->check(in_range<int64_t>(2, 1 << 20));
  app.add_option("--sample-every", a.sample_every, "steps between sample grids (0: at the end only)")->capture_default_str()->check(at_least<int64_t>(0));
  app.add_option("--samples", a.samples, "images in a sample grid")->capture_default_str()->check(in_range<int64_t>(1, 4096));
  app.add_option("--sample-steps", a.sample_steps, "DDIM steps of the sample grids (<= --diffusion-steps)")->capture_default_str()->check(at_least<int64_t>(1));
  app.add_option("--log-every", a.log_every, "steps between progress lines")->capture_default_str()->check(at_least<int64_t>(1));
  app.add_option("--max-nonfinite", a.max_nonfinite, "non-finite steps in a row (skipped) that stop the run")
      ->capture_default_str()->check(at_least<int64_t>(1));
  app.add_option("--prefetch", a.prefetch, "batches prepared ahead (0: none)")->capture_default_str()->check(in_range<int64_t>(0, 64));
  app.add_option("--nproc-per-node", a.nproc, "data-parallel: start this many ranks here (c10d, Gloo); --batch stays "
                 "the global batch")->capture_default_str()->check(in_range<int64_t>(1, 1024))->group("Data-parallel");
  app.add_option("--dist-timeout", a.dist_timeout, "data-parallel: seconds a rank waits for the others before it stops")
      ->capture_default_str()->check(in_range<int64_t>(1, 86400))->group("Data-parallel");
  casdm::examples::add_machine_options(app, a.threads, a.device);
  if (const int rc = casdm::examples::parse_command_line(app, argc, argv, "casdm-train"); rc >= 0) return rc;
  try {
    if (a.batch % a.nproc != 0)
      throw std::runtime_error(fmt::format("--batch {} does not divide among {} ranks", a.batch, a.nproc));
    if (auto rc = casdm::train::run_ranks_if_asked(a.nproc, argc, argv, "casdm-train")) return *rc;  // the launcher
    const auto env = casdm::train::DistributedEnv::from_environment();
    const bool writer = !env || env->rank == 0;
    casdm::examples::use_machine(a.threads, a.device);
    std::optional<casdm::io::OutputFolder> folder;
    if (writer) folder.emplace(a.out, std::vector<std::string>{"checkpoints"});  // writable, locked, cleared of orphans
    if (folder)
      for (const auto& f : folder->removed())
        fmt::print(stderr, "removed {}, left by a process that died while writing it\n", f.string());
    const auto resume = casdm::train::CheckpointDir(fs::path(a.out) / "checkpoints", a.keep)
                            .resume_point(a.resume, a.resume_from);
    if (resume) {
      settings.resume_from(casdm::app::stored_settings(*resume),
                           [&](const std::string& name) { return app.count("--" + name) > 0; }, resume->path.string());
    }
    const int64_t T = a.model.diffusion_steps;
    if (a.sample_steps > T && app.count("--sample-steps"))
      throw std::runtime_error(fmt::format("--sample-steps {} exceeds --diffusion-steps {}", a.sample_steps, T));
    a.sample_steps = std::min(a.sample_steps, T);  // the default, 50, on a shorter process
    if (app.count("--label-dropout") && !a.model.class_cond) throw std::runtime_error("--label-dropout: only with --class-cond");
    a.check();  // refused now, not at the first grid
    const auto group = casdm::train::process_group_from_environment(c10::Device(a.device),
                                                                     std::chrono::seconds(a.dist_timeout), a.batch);
    const auto end = casdm::presets::visit(a.preset, [&](auto type) {
      return casdm::app::run_training<typename decltype(type)::type>(a, settings.values(), resume, group);
    });
    if (!writer) return end.signal ? 128 + end.signal : 0;
    if (end.signal) {
      fmt::print(stderr, "casdm-train: stopped by {} after step {}; wrote {} (continue with --resume)\n",
                 casdm::train::StopSignals::name(end.signal), end.step, end.checkpoint.string());
      return 128 + end.signal;
    }
    fmt::print("wrote {} and {}/{{index.html,samples.png,data.png,loss.png,loss.svg,losses.csv,run.json}}\n",
               end.checkpoint.string(), a.out);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "casdm-train: {}\n", casdm::examples::message(e, {{"checkpoints", "--out"}}));
    return 1;
  }
}
