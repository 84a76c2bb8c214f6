// casdm-train: trains any preset on an image data set and writes checkpoints, samples and figures.
//
//   casdm-train --preset CasDM --steps 1200 --out out/casdm            # Fashion-MNIST by default
//   casdm-train --out out/casdm --steps 2400 --resume                  # continue that run exactly
//
// OUT/ gets: checkpoints/ckpt-<step>.pt (model, EMA, optimiser, step, RNG; the newest --keep),
// losses.csv (every loss term at every step), loss.png and loss.svg (one labelled curve per term),
// samples.png (EMA weights; samples-<step>.png with --sample-every), data.png, run.json (the
// settings and the run's figures) and index.html (all of it on one page, rewritten at every
// sample grid and at progress lines every 15 s or more, so that a browser follows the run). Settings that define the run are stored in
// the checkpoint; a resume takes them from there and refuses a command line that contradicts them.
#include <fmt/format.h>
#include "casdm/casdm.hpp"
#include "casdm/data/images.hpp"
#include "casdm/data/loader.hpp"
#include "casdm/io/files.hpp"
#include "casdm/report/progress.hpp"
#include "casdm/app/model_flags.hpp"
#include "casdm/app/run_report.hpp"
#include "casdm/app/run_settings.hpp"
#include "casdm/train/distributed.hpp"
#include "casdm/train/launch.hpp"
#include "casdm/train/loop.hpp"
#include "casdm/train/loss_log.hpp"
#include "casdm/train/previews.hpp"
#include "casdm/train/trainer.hpp"
#include "casdm/report/image_grid.hpp"
#include "casdm/sampler/registry.hpp"
#include "program.hpp"

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <chrono>

namespace fs = std::filesystem;

struct Args {
  // The run's settings (kept across --resume).
  std::string preset = "CasDM";
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string data_format = "auto";
  std::string fit = "pad";
  bool hflip = false;
  int64_t image_size = 0, batch = 32, micro_batch = 0, seed = 0;
  double lr = 1e-3, weight_decay = 0, grad_clip = 0;
  std::vector<double> ema{0.99};
  std::string precision = "fp32";
  casdm::app::ModelFlags model;  // T, the U-Nets, feature-loss and class-conditioning settings
  // This invocation's choices.
  int64_t steps = 1200, checkpoint_every = 0, keep = 3, sample_every = 0, samples = 64, sample_steps = 50;
  int64_t log_every = 100, threads = 0, prefetch = 2, max_nonfinite = 3, nproc = 1, dist_timeout = 300;
  std::string out = "out/casdm", resume_from, device = "cpu";
  bool resume = false;
};

template <class Model>
int train(const Args& a, const std::map<std::string, std::string>& settings,
          const std::optional<casdm::train::CheckpointInfo>& resume, std::shared_ptr<casdm::train::ProcessGroup> group) {
  const auto device = c10::Device(a.device);
  const bool writer = !group || group->rank() == 0;  // data-parallel: rank 0 writes, prints and samples
  const fs::path out = a.out;
  casdm::train::CheckpointDir ckpts(out / "checkpoints", a.keep);

  // Data first: a bad data set is refused before anything is written.
  auto set = casdm::data::open_dataset(a.data, a.data_format, true, a.fit == "resize" ? a.image_size : 0);
  const int64_t size = a.image_size > 0 ? a.image_size : set.images.size(2);
  set = casdm::data::fit(std::move(set), size, casdm::data::parse_fit(a.fit));
  const int64_t channels = set.images.size(1);
  if (writer) fmt::print(stderr, "data: {}, {} images {}x{}x{}\n", set.source, set.size(), channels, size, size);
  const int64_t classes = a.model.class_cond ? set.conditioning_classes("--class-cond") : 0;
  if (writer && classes > 0) fmt::print(stderr, "class-conditional: {} classes, label dropout {}\n", classes, a.model.label_dropout);

  const auto options = a.model.options(channels, size, classes);
  casdm::train::check_memory(options, a.micro_batch > 0 ? a.micro_batch : a.batch);
  if (!resume) torch::manual_seed(static_cast<uint64_t>(a.seed));
  Model model(options);
  model->to(device);
  auto topts = casdm::train::TrainerOptions()
                   .optimizer(casdm::train::AdamWOptions().lr(a.lr).weight_decay(a.weight_decay))
                   .ema_rates(a.ema)
                   .grad_clip(a.grad_clip)
                   .micro_batch(a.micro_batch)
                   .max_nonfinite_steps(a.max_nonfinite)
                   .precision(casdm::examples::precision_type(a.precision, device))
                   .sync(group);
  casdm::train::Trainer<Model> trainer(model, topts);
  if (resume) {
    for (const auto& note : resume->notes)
      if (writer) fmt::print(stderr, "{}\n", note);
    trainer.load(*resume);
    if (writer) fmt::print(stderr, "resumed from {} at step {}\n", resume->path.string(), trainer.step_count());
  }
  const int64_t first = trainer.step_count();
  if (first >= a.steps)
    throw std::runtime_error(fmt::format("the run is at step {} already; --steps is the total to reach", first));
  casdm::data::Loader loader(set, casdm::data::LoaderOptions().batch_size(a.batch).hflip(a.hflip)
                                       .seed(static_cast<uint64_t>(a.seed)).prefetch(a.prefetch).device(device), first);

  // Loss log: on resume, the rows up to the checkpoint's step are kept and the rest redone.
  const auto names = Model::Impl::losses_type::describe();
  casdm::train::LossLog log(writer ? out / "losses.csv" : fs::path(), names,
                            resume && writer ? std::optional<int64_t>(first) : std::nullopt);

  std::map<std::string, std::string> meta{{"preset", a.preset}, {"program", "casdm-train"}};
  for (const auto& [k, v] : settings) meta["args." + k] = v;
  // Sample grids: the same noise (and labels) every time, drawn without touching the run's generators.
  casdm::train::Previews previews(trainer, casdm::train::PreviewOptions().count(a.samples).steps(a.sample_steps)
                                               .seed(static_cast<uint64_t>(a.seed) + 1));
  auto caption = [&](int64_t step) {
    return fmt::format("{}, step {}, EMA {} weights, {} DDIM steps", a.preset, step, a.ema.front(), a.sample_steps);
  };

  casdm::report::Progress progress(first, a.steps, casdm::report::ProgressOptions().every(a.log_every));
  // The run's page and loss charts: written at the start, as the run goes and at the end.
  casdm::app::RunReport report(out, trainer, log, ckpts, first, a.steps,
      casdm::app::RunReportOptions()
          .title(fmt::format("casdm-train: {} on {}", a.preset, fs::path(set.source).filename().string()))
          .preset(a.preset).device(a.device).data_source(set.source).settings(settings).caption(caption)
          .data_wait_seconds([&] { return loader.wait_seconds(); })
          .paused_seconds([&] { return previews.total_seconds(); }));
  if (writer) report.training(first);

  const auto end = casdm::train::run_steps(  // SIGINT/SIGTERM: checkpoint after the step, exit 128+signal
      trainer,
      [&] { auto [x, y] = loader.next_labelled(classes > 0); return casdm::train::Batch{x, y}; },
      log, ckpts,
      casdm::train::LoopOptions().last(a.steps).checkpoint_every(a.checkpoint_every).meta(meta), [&](int64_t step) {
        if (!writer) return;
        if (!trainer.last_skip().empty())
          progress.print(fmt::format("step {} skipped: {} ({} so far)", step, trainer.last_skip(), trainer.skipped_steps()));
        const bool sampled = a.sample_every > 0 && step % a.sample_every == 0 && step != a.steps;
        if (sampled) casdm::report::write_grid(out / fmt::format("samples-{:09d}.png", step), previews.sample(), 8, caption(step));
        progress.update(step, fmt::format("{} | data wait {:.3g}%", log.last(), 100 * loader.wait_seconds() / progress.seconds()));
        // The page: at every sample grid, and at progress lines at most every 15 s (~40 ms a time).
        if (step != a.steps && (sampled || (step % a.log_every == 0 && report.due()))) {
          log.flush();
          report.training(step);
        }
      });
  progress.done();
  if (!writer) return end.signal ? 128 + end.signal : 0;  // rank 0 writes the rest
  if (end.signal) {
    report.stopped(end.step, end.signal);
    fmt::print(stderr, "casdm-train: stopped by {} after step {}; wrote {} (continue with --resume)\n",
               casdm::train::StopSignals::name(end.signal), end.step, end.checkpoint.string());
    return 128 + end.signal;
  }
  log.flush();
  report.stop_clock();
  const auto ckpt = ckpts.save(trainer, meta);

  auto extra = casdm::app::end_pictures(out, previews.sample(), caption(a.steps), set, a.samples);
  extra["sample_seconds"] = previews.last_seconds();
  extra["sample_steps"] = a.sample_steps;
  if (group) extra["data_parallel"] = {{"world_size", group->world_size()}, {"allreduce_wait_seconds", group->seconds_waiting()}};
  report.finish(ckpt, extra);
  fmt::print("wrote {} and {}/{{index.html,samples.png,data.png,loss.png,loss.svg,losses.csv,run.json}}\n", ckpt.string(), a.out);
  return 0;
}

int main(int argc, char** argv) {
  using casdm::examples::at_least, casdm::examples::in_range;
  Args a;
  const auto presets = casdm::examples::preset_names();
  CLI::App app{"Train a casdm preset on an image data set (Fashion-MNIST/MNIST IDX, CIFAR-10 binary, or a folder "
               "of PNG/JPEG images), writing checkpoints, sample grids and loss figures."};
  app.get_formatter()->column_width(34);
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a later --steps wins
  casdm::app::RunSettings settings;
  auto setting = [&](const std::string& name, auto* field, const std::string& help) {
    settings.add(name, field);
    auto* o = app.add_option("--" + name, *field, help)->capture_default_str();
    if constexpr (!std::is_same_v<decltype(*field), std::string&> && requires { field->push_back(field->front()); })
      o->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);  // lists: --ema 0.9 0.99
    return o;
  };
  setting("preset", &a.preset, "one of: " + presets)->group("Run");
  setting("data", &a.data, "data folder: IDX files, CIFAR-10 *.bin batches, or images")->group("Data");
  setting("data-format", &a.data_format, "auto, idx, cifar10 or images")->group("Data");
  setting("image-size", &a.image_size, "side the images are brought to (0: the data's)")->check(in_range<int64_t>(0, 1 << 16))->group("Data");
  setting("fit", &a.fit, "pad (centre on black) or resize (centre-crop, bilinear)")->group("Data");
  settings.add("hflip", &a.hflip);
  app.add_flag("--hflip", a.hflip, "flip images horizontally at random")->group("Data");
  setting("batch", &a.batch, "images per step")->check(at_least<int64_t>(1))->group("Optimisation");
  setting("micro-batch", &a.micro_batch, "accumulate gradients over chunks of this size (0: off)")->check(at_least<int64_t>(0))->group("Optimisation");
  setting("lr", &a.lr, "AdamW learning rate (paper: 1e-4)")->check(in_range<double>(0, std::numeric_limits<double>::max(), true))->group("Optimisation");
  setting("weight-decay", &a.weight_decay, "AdamW weight decay (paper: 0)")->check(at_least<double>(0))->group("Optimisation");
  setting("grad-clip", &a.grad_clip, "clip the gradients' global norm (0: off)")->check(at_least<double>(0))->group("Optimisation");
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
  setting("feature-size", &a.model.feature_size, "feature-loss presets: resize side (0: the preset's, 224; CasDM_SmallVGG 32)")->check(in_range<int64_t>(0, 4096))->group("Model");
  setting("feature-weights", &a.model.feature_weights, "feature-loss presets: folder of the backbone's weight files")->group("Model");
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
    casdm::sampler::check_steps("ddim", T, a.sample_steps, "--sample-steps");  // refused now, not at the first grid
    a.model.check(a.preset);
    if (app.count("--label-dropout") && !a.model.class_cond) throw std::runtime_error("--label-dropout: only with --class-cond");
    if (a.micro_batch > a.batch) throw std::runtime_error("--micro-batch must not exceed --batch");
    casdm::examples::precision_type(a.precision, c10::Device(a.device));
    casdm::data::parse_fit(a.fit);
    const auto group = casdm::train::process_group_from_environment(c10::Device(a.device),
                                                                     std::chrono::seconds(a.dist_timeout), a.batch);
    return casdm::presets::visit(a.preset, [&](auto type) {
      return train<typename decltype(type)::type>(a, settings.values(), resume, group);
    });
  } catch (const std::exception& e) {
    fmt::print(stderr, "casdm-train: {}\n", casdm::examples::message(e));
    return 1;
  }
}
