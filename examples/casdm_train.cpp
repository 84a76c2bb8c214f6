// casdm-train: trains a preset on Fashion-MNIST/MNIST and writes samples, loss curves and figures.
//
//   casdm-train --preset CasDM --steps 1200 --out out/casdm
//
// Writes OUT/samples.png (EMA weights), OUT/loss.png (one curve per loss term, log scale),
// OUT/losses.csv (every term, every step), OUT/run.json (options and figures) and the weights,
// OUT/model.pt and OUT/ema.pt (casdm::train::save_module; Python's torch.load reads them).
#include "casdm/casdm.hpp"
#include "casdm/data/idx.hpp"
#include "casdm/train/checkpoint.hpp"
#include "image_io.hpp"

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/optim/adamw.h>

#include <chrono>
#include <numeric>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

namespace fs = std::filesystem;

struct Args {
  std::string preset = "CasDM";
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string out = "out/casdm";
  int64_t steps = 1200, batch = 32, image_size = 28, model_channels = 16, res_blocks = 1, T = 1000;
  int64_t samples = 64, sample_steps = 50, seed = 0, threads = 0;
  double lr = 1e-3, ema = 0.99;
  std::vector<int64_t> channel_mult{1, 2, 2};
  std::vector<int64_t> attention{7};
  std::string device = "cpu";
};

template <class Model>
int run(const Args& a) {
  const auto device = c10::Device(a.device);
  torch::manual_seed(static_cast<uint64_t>(a.seed));
  std::error_code ec;
  fs::create_directories(a.out, ec);
  {
    std::ofstream probe(fs::path(a.out) / ".write-test");
    if (ec || !probe) throw std::runtime_error("output folder " + a.out + " is not writable");
  }
  fs::remove(fs::path(a.out) / ".write-test");
  auto data = casdm::data::load_mnist_like(a.data, true);
  auto images = data.images;
  if (a.image_size != images.size(2)) {
    const int64_t pad = a.image_size - images.size(2);
    if (pad < 0 || pad % 2) throw std::runtime_error("--image-size must be 28 + an even padding");
    images = at::constant_pad_nd(images, {pad / 2, pad / 2, pad / 2, pad / 2}, -1.0);
  }
  auto options = casdm::ModelOptions()
                     .image_size(a.image_size)
                     .channels(1)
                     .diffusion_steps(a.T)
                     .net(casdm::net::UNetOptions()
                              .model_channels(a.model_channels)
                              .channel_mult(a.channel_mult)
                              .num_res_blocks(a.res_blocks)
                              .attention_resolutions(a.attention)
                              .num_heads(4)
                              .norm_groups(8)
                              .dropout(0.0));
  Model model(options);
  model->to(device);
  auto ema = std::dynamic_pointer_cast<typename Model::Impl>(model->clone());
  ema->eval();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(a.lr).weight_decay(0));
  const auto names = Model::Impl::losses_type::describe();
  std::vector<std::vector<double>> curves(names.size() + 1);
  std::ofstream csv(fs::path(a.out) / "losses.csv");
  csv << "step,total";
  for (const auto& [n, w] : names) csv << "," << n;
  csv << "\n";
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(a.seed));
  const auto start = std::chrono::steady_clock::now();
  auto params = model->parameters(), ema_params = ema->parameters();
  for (int64_t step = 1; step <= a.steps; ++step) {
    auto idx = at::randint(0, images.size(0), {a.batch}, gen);
    auto x0 = images.index_select(0, idx).to(device);
    opt.zero_grad();
    auto report = model->training_losses(x0);
    report.total.backward();
    opt.step();
    {
      torch::NoGradGuard g;
      for (size_t i = 0; i < params.size(); ++i) ema_params[i].mul_(a.ema).add_(params[i], 1 - a.ema);
    }
    curves[0].push_back(report.total.template item<double>());
    csv << step << "," << curves[0].back();
    for (size_t i = 0; i < report.terms.size(); ++i) {
      curves[i + 1].push_back(report.terms[i].second.template item<double>());
      csv << "," << curves[i + 1].back();
    }
    csv << "\n";
    if (step % 50 == 0 || step == a.steps) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f  %.2f steps/s  ETA %.0fs   ", static_cast<long long>(step),
                   static_cast<long long>(a.steps), curves[0].back(), step / secs, (a.steps - step) * secs / step);
    }
  }
  std::fprintf(stderr, "\n");
  const double train_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto s0 = std::chrono::steady_clock::now();
  auto samples = ema->sample(a.samples, casdm::SampleOptions().steps(a.sample_steps));
  const double sample_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
  casdm::examples::write_grid(fs::path(a.out) / "samples.png", samples, 8);
  casdm::examples::write_grid(fs::path(a.out) / "data.png", images.slice(0, 0, a.samples), 8);
  casdm::examples::write_curves(fs::path(a.out) / "loss.png", curves);
  nlohmann::json j;
  j["preset"] = a.preset;
  j["steps"] = a.steps;
  j["batch"] = a.batch;
  j["lr"] = a.lr;
  j["ema"] = a.ema;
  j["T"] = a.T;
  j["image_size"] = a.image_size;
  j["model_channels"] = a.model_channels;
  j["parameters"] = [&] {
    int64_t n = 0;
    for (const auto& p : model->parameters()) n += p.numel();
    return n;
  }();
  j["train_seconds"] = train_secs;
  j["steps_per_second"] = a.steps / train_secs;
  j["sample_seconds"] = sample_secs;
  j["sample_steps"] = a.sample_steps;
  j["loss_curve_order"] = nlohmann::json::array({"total"});
  for (const auto& [n, w] : names) {
    j["loss_curve_order"].push_back(n);
    j["loss_weights"][n] = w;
  }
  const int64_t tail = std::max<int64_t>(1, a.steps / 10);
  j["final_loss_mean_last_10pct"]["total"] =
      std::accumulate(curves[0].end() - tail, curves[0].end(), 0.0) / static_cast<double>(tail);
  for (size_t i = 0; i < names.size(); ++i)
    j["final_loss_mean_last_10pct"][names[i].first] =
        std::accumulate(curves[i + 1].end() - tail, curves[i + 1].end(), 0.0) / static_cast<double>(tail);
  j["sample_mean"] = samples.mean().template item<double>();
  j["data_mean"] = images.mean().template item<double>();
  std::ofstream(fs::path(a.out) / "run.json") << j.dump(2) << "\n";
  casdm::train::save_module(*model, fs::path(a.out) / "model.pt");
  casdm::train::save_module(*ema, fs::path(a.out) / "ema.pt");
  std::cout << "wrote " << a.out << "/{samples.png,data.png,loss.png,losses.csv,run.json,model.pt,ema.pt}\n";
  return 0;
}

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"Train a casdm preset on Fashion-MNIST / MNIST and sample it"};
  std::string preset_list;
  casdm::presets::for_each([&](const char* name, auto) { preset_list += (preset_list.empty() ? "" : ", ") + std::string(name); });
  app.add_option("--preset", a.preset, "one of: " + preset_list)->capture_default_str();
  app.add_option("--data", a.data, "folder with {train,t10k}-{images,labels}-idx?-ubyte[.gz]")->capture_default_str();
  app.add_option("--out", a.out, "output folder")->capture_default_str();
  app.add_option("--steps", a.steps, "training steps")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch", a.batch, "batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", a.lr, "AdamW learning rate (paper: 1e-4)")->capture_default_str();
  app.add_option("--ema", a.ema, "EMA rate of the sampling weights")->capture_default_str();
  app.add_option("--image-size", a.image_size, "pad the 28x28 images to this side")->capture_default_str();
  app.add_option("--model-channels", a.model_channels, "U-Net width")->capture_default_str();
  app.add_option("--channel-mult", a.channel_mult, "U-Net width multipliers per level")->capture_default_str();
  app.add_option("--res-blocks", a.res_blocks, "residual blocks per level")->capture_default_str();
  app.add_option("--attention", a.attention, "resolutions with self-attention")->capture_default_str();
  app.add_option("-T,--diffusion-steps", a.T, "diffusion steps T (paper: 4000)")->capture_default_str();
  app.add_option("--samples", a.samples, "images to sample")->capture_default_str();
  app.add_option("--sample-steps", a.sample_steps, "DDIM steps")->capture_default_str();
  app.add_option("--seed", a.seed, "random seed")->capture_default_str();
  app.add_option("--threads", a.threads, "CPU threads (0: all cores)")->capture_default_str();
  app.add_option("--device", a.device, "cpu, cuda, cuda:1, ...")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(a.threads > 0 ? static_cast<int>(a.threads)
                                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  try {
    bool found = false;
    int rc = 0;
    casdm::presets::for_each([&](const char* name, auto type) {
      if (a.preset == name) {
        found = true;
        rc = run<typename decltype(type)::type>(a);
      }
    });
    if (!found) throw std::runtime_error("unknown preset '" + a.preset + "'; choose one of: " + preset_list);
    return rc;
  } catch (const std::exception& e) {
    std::cerr << "casdm-train: " << e.what() << "\n";
    return 1;
  }
}
