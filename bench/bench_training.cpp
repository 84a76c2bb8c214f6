// Training throughput at the main job's size (Fashion-MNIST 28×28, U-Net 16 ch, channel_mult
// (1,2,2), attention at 7, T = 1000, batch 32): full trainer steps fed by the prefetching loader,
// with the share of time spent waiting for data; and the optimiser alone, casdm's multi-tensor
// AdamW against LibTorch's per-parameter one.
//   build/bench/casdm_bench_training --benchmark_counters_tabular=true
#include "casdm/data/images.hpp"
#include "casdm/data/loader.hpp"
#include "casdm/presets.hpp"
#include "casdm/train/trainer.hpp"

#include "main_job_options.hpp"

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <filesystem>
#include <thread>

namespace {


const casdm::data::ImageSet& fashion_mnist() {
  static const auto set = [] {
    const std::filesystem::path dir = "/usr/share/datasets/fashion-mnist";
    if (std::filesystem::exists(dir)) return casdm::data::load_mnist_like(dir, true);
    auto g = at::make_generator<at::CPUGeneratorImpl>(0);  // same shape, random pixels
    return casdm::data::ImageSet{at::randint(0, 256, {60000, 1, 28, 28}, g).to(at::kByte), {}, "random"};
  }();
  return set;
}

template <class P>
void trainer_step(benchmark::State& state) {
  torch::manual_seed(0);
  P m(main_job_options());
  casdm::train::Trainer<P> trainer(m, casdm::train::TrainerOptions()
                                          .optimizer(casdm::train::AdamWOptions().lr(1e-3))
                                          .ema_rates({0.99}));
  casdm::data::Loader loader(fashion_mnist(), casdm::data::LoaderOptions().batch_size(32).prefetch(state.range(0)));
  for (int warm = 0; warm < 3; ++warm) trainer.step(loader.next());
  const double wait0 = loader.wait_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto report = trainer.step(loader.next());
    benchmark::DoNotOptimize(report.total.template item<double>());  // the program logs every step
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["steps/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["data_wait_%"] = 100 * (loader.wait_seconds() - wait0) / secs;
}

/// One optimiser update of the main-job CasDM's parameters with fixed gradients.
void optimizer_step(benchmark::State& state) {
  torch::manual_seed(0);
  casdm::presets::CasDM m(main_job_options());
  auto params = casdm::train::trainable_parameters(*m);
  for (auto& [n, p] : params) p.mutable_grad() = at::randn_like(p) * 1e-3;
  const bool foreach = state.range(0) == 1;
  casdm::train::AdamW ours(params, casdm::train::AdamWOptions().lr(1e-4));
  torch::optim::AdamW theirs(m->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0));
  for (auto _ : state) {
    if (foreach)
      ours.step();
    else
      theirs.step();
  }
  state.counters["params"] = static_cast<double>(params.size());
  state.SetLabel(foreach ? "casdm::train::AdamW (multi-tensor)" : "torch::optim::AdamW (per parameter)");
}

}  // namespace

BENCHMARK_TEMPLATE(trainer_step, casdm::presets::DDPM_Eps)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(trainer_step, casdm::presets::CasDM)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
// Without prefetching: what the loader's thread saves.
BENCHMARK_TEMPLATE(trainer_step, casdm::presets::CasDM)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(optimizer_step)->Arg(1)->Arg(0)->Unit(benchmark::kMicrosecond)->UseRealTime();

int main(int argc, char** argv) {
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
