// One training step and one sampler step of every preset at a small size, on every device.
//   build/bench/casdm_bench --benchmark_filter=train
// Sizes: 16×16 RGB, U-Net 32 ch, channel_mult (1,2), 1 res block, attention at 8, batch 16.
#include "casdm/presets.hpp"

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <torch/optim/adamw.h>

#include <thread>


namespace {

casdm::DenoiserOptions bench_options() {
  return casdm::DenoiserOptions().image_size(16).channels(3).diffusion_steps(1000).net(casdm::net::UNetOptions()
                                                                                        .model_channels(32)
                                                                                        .channel_mult({1, 2})
                                                                                        .num_res_blocks(1)
                                                                                        .attention_resolutions({8})
                                                                                        .num_heads(4)
                                                                                        .norm_groups(8)
                                                                                        .dropout(0.0));
}

void sync(const c10::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

template <class P>
void train_step(benchmark::State& state, c10::Device device) {
  torch::manual_seed(0);
  P m(bench_options());
  m->to(device);
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0));
  auto x0 = at::rand({16, 3, 16, 16}, at::TensorOptions().device(device)) * 2 - 1;
  for (int warm = 0; warm < 3; ++warm) {  // allocator, cuDNN algorithm choice, optimiser state
    opt.zero_grad();
    m->training_losses(x0).total.backward();
    opt.step();
  }
  sync(device);
  for (auto _ : state) {
    opt.zero_grad();
    m->training_losses(x0).total.backward();
    opt.step();
    sync(device);
  }
  state.SetItemsProcessed(state.iterations() * x0.size(0));
}

template <class P>
void sampler_step(benchmark::State& state, c10::Device device) {
  torch::manual_seed(0);
  P m(bench_options());
  m->to(device);
  m->eval();
  auto& d = *m->denoiser();
  const auto& p = d.template respaced<casdm::sampler::spacing::Stride>(100);
  auto x = at::randn({16, 3, 16, 16}, at::TensorOptions().device(device));
  torch::NoGradGuard g;
  // One DDIM step (η = 0, clipped) as a sampling run takes it: the (mixed) estimate, then the step.
  typename casdm::sampler::DDIM<>::Run run(p, casdm::SampleOptions());
  const casdm::Denoise f = [&](const at::Tensor& x_t, const at::Tensor& t) { return d.denoise(p, x_t, t, true); };
  for (int warm = 0; warm < 3; ++warm) run.step(f, x, 50);
  sync(device);
  for (auto _ : state) {
    benchmark::DoNotOptimize(run.step(f, x, 50));
    sync(device);
  }
  state.SetItemsProcessed(state.iterations() * x.size(0));
}

}  // namespace

int main(int argc, char** argv) {
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  for (const auto& device : casdm::compat::available_devices()) {
    casdm::presets::for_each([&](const char* name, auto type) {
      using P = typename decltype(type)::type;
      if constexpr (P::Impl::losses_type::uses_features) return;  // need pretrained weights: not here
      const std::string suffix = std::string(name) + "/" + device.str();
      benchmark::RegisterBenchmark(("train/" + suffix).c_str(), train_step<P>, device)->Unit(benchmark::kMillisecond)->UseRealTime();
      benchmark::RegisterBenchmark(("sample_step/" + suffix).c_str(), sampler_step<P>, device)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    });
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
