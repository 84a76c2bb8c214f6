// The cost of each feature loss per image (LPIPS, ResNet-50, Inception v3, Swin-T), forward and
// forward + backward (to the images), at the paper's side 224 and at CPU-scale sides, on every
// device; and a Cas-DM step with and without LPIPS at the main job's size. Random weights: the
// cost does not depend on them.
//   build/bench/casdm_bench_metrics --benchmark_counters_tabular=true
#include "casdm/core/compat.hpp"
#include "casdm/loss/inception.hpp"
#include "casdm/loss/resnet.hpp"
#include "casdm/loss/swin.hpp"
#include "casdm/metric/lpips.hpp"
#include "casdm/presets.hpp"
#include "casdm/train/trainer.hpp"

#include "main_job_options.hpp"

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <thread>

namespace metric = casdm::metric;
namespace loss = casdm::loss;

namespace {

void sync(const c10::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

/// Each backbone with random weights, and its distance.
struct RandomResNet : loss::ResNetBackbone {
  static Module make(const casdm::ObjectiveOptions&) { return Module(); }
};
struct RandomInception : loss::InceptionBackbone {
  static Module make(const casdm::ObjectiveOptions&) { return Module(); }
};
struct RandomSwin : loss::SwinBackbone {
  static Module make(const casdm::ObjectiveOptions&) { return Module(); }
};
struct RandomLPIPS {
  static constexpr const char* name = "lpips";
  using Module = casdm::metric::LPIPS;
  static Module make(const casdm::ObjectiveOptions&) { return casdm::metric::LPIPS(); }
  static at::Tensor distance(Module& m, const at::Tensor& a, const at::Tensor& b) { return m(a, b); }
};

/// Per image: the distance of n image pairs at side×side, and its gradient with respect to one side.
template <class B>
void feature_cost(benchmark::State& state, c10::Device device, int64_t side, bool backward) {
  const int64_t n = device.is_cuda() ? 32 : 4;
  auto m = B::make(casdm::ObjectiveOptions());
  m->to(device);
  m->eval();
  for (auto& p : m->parameters()) p.requires_grad_(false);
  auto a = at::rand({n, 3, side, side}, at::TensorOptions().device(device));
  auto b = at::rand({n, 3, side, side}, at::TensorOptions().device(device));
  auto once = [&] {
    auto x = b.detach().requires_grad_(backward);
    auto d = B::distance(m, a, x).sum();
    if (backward) d.backward();
    return d;
  };
  once();  // allocator, cuDNN's algorithm choice
  sync(device);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    benchmark::DoNotOptimize(once());
    sync(device);
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  state.counters["ms_per_image"] = ms / static_cast<double>(state.iterations() * n);
}

template <class B>
void register_feature(const char* name, std::initializer_list<int64_t> sides) {
  for (const auto& device : casdm::compat::available_devices())
    for (int64_t side : sides)
      for (bool backward : {false, true})
        benchmark::RegisterBenchmark(
            ("feature/" + std::string(name) + "/" + std::to_string(side) + (backward ? "/fwd+bwd/" : "/fwd/") + device.str())
                .c_str(),
            feature_cost<B>, device, side, backward)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
}

/// A CasDM training step (no data loader) with an LPIPS term whose module has random weights.
using CasDM_RandomLPIPS =
    casdm::Model<casdm::presets::PaperSchedule, casdm::topology::Cascaded<>,
                 casdm::loss::Set<casdm::loss::EpsMSE<>, casdm::loss::X0MSE<>, casdm::loss::MuMix<>,
                                  casdm::loss::Feature<RandomLPIPS>>,
                 casdm::presets::PaperSampler>;

template <class P>
void cas_step(benchmark::State& state) {
  torch::manual_seed(0);
  P m(main_job_options(), casdm::ObjectiveOptions().feature_size(state.range(0)));
  casdm::train::Trainer<P> trainer(m, casdm::train::TrainerOptions().ema_rates({0.99}));
  auto x0 = at::rand({32, 1, 28, 28}) * 2 - 1;
  trainer.step(x0);
  for (auto _ : state) benchmark::DoNotOptimize(trainer.step(x0).total);
}

}  // namespace

BENCHMARK_TEMPLATE(cas_step, casdm::presets::CasDM)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(cas_step, CasDM_RandomLPIPS)->Arg(32)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  register_feature<RandomLPIPS>("lpips", {32, 64, 224});
  register_feature<RandomResNet>("resnet", {32, 224});
  register_feature<RandomInception>("inception", {75, 224});
  register_feature<RandomSwin>("swin", {32, 224});
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
