// The cost of the LPIPS loss per image, forward and forward + backward (to the images), at the
// paper's side 224 and at CPU-scale sides; and a Cas-DM step with and without it at the main
// job's size. Random weights: the cost does not depend on them.
//   build/bench/casdm_bench_metrics --benchmark_counters_tabular=true
#include "casdm/metric/lpips.hpp"
#include "casdm/presets.hpp"
#include "casdm/train/trainer.hpp"

#include "main_job_options.hpp"

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <chrono>
#include <thread>

namespace metric = casdm::metric;

namespace {

void lpips_cost(benchmark::State& state) {
  const int64_t side = state.range(0), n = 4;
  const bool backward = state.range(1) == 1;
  metric::LPIPS lpips;
  auto a = at::rand({n, 3, side, side});
  auto b = at::rand({n, 3, side, side});
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto x = b.detach().requires_grad_(backward);
    auto d = lpips(a, x).sum();
    if (backward) d.backward();
    benchmark::DoNotOptimize(d);
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  state.counters["ms_per_image"] = ms / static_cast<double>(state.iterations() * n);
  state.SetLabel(backward ? "forward+backward" : "forward");
}


/// A CasDM training step (no data loader) with an LPIPS term whose module has random weights.
struct RandomLPIPS {
  static constexpr const char* name = "lpips";
  using Module = casdm::metric::LPIPS;
  static Module make(const casdm::ModelOptions&) { return casdm::metric::LPIPS(); }
  static at::Tensor distance(Module& m, const at::Tensor& a, const at::Tensor& b) { return m(a, b); }
};
using CasDM_RandomLPIPS =
    casdm::Model<casdm::presets::PaperSchedule, casdm::topology::Cascaded<>,
                 casdm::loss::Set<casdm::loss::EpsMSE<>, casdm::loss::X0MSE<>, casdm::loss::MuMix<>,
                                  casdm::loss::Feature<RandomLPIPS>>,
                 casdm::presets::PaperSampler>;

template <class P>
void cas_step(benchmark::State& state) {
  torch::manual_seed(0);
  P m(main_job_options(state.range(0)));
  casdm::train::Trainer<P> trainer(m, casdm::train::TrainerOptions().ema_rates({0.99}));
  auto x0 = at::rand({32, 1, 28, 28}) * 2 - 1;
  trainer.step(x0);
  for (auto _ : state) benchmark::DoNotOptimize(trainer.step(x0).total);
}

}  // namespace

BENCHMARK(lpips_cost)->ArgsProduct({{32, 64, 224}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(cas_step, casdm::presets::CasDM)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(cas_step, CasDM_RandomLPIPS)->Arg(32)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
