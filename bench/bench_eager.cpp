// casdm's side of the comparison with PyTorch eager (bench/vs_pytorch.py runs both and prints the
// ratios): the same workloads as bench/pytorch_eager.py — a trainer step (draw t and ε, losses,
// backward, gradient norm, one host sync, AdamW, EMA) of DDPM_Eps, CasDM and CasDM with LPIPS
// (random weights) at a feature side, and a whole DDIM run (η = 0, clipped, the r-mixed estimate on
// the cascade) — with the peak resident memory over the process's memory before the model was
// built, and FLOP per image (net::forward_flops) with the achieved TFLOP/s.
//   build/bench/casdm_bench_eager --config main --batch 32 --benchmark_filter='^train/CasDM$'
//   build/bench/casdm_bench_eager --config main --batch 1 --steps 20 --benchmark_filter='^ddim/'
// Own flags (before Google Benchmark's): --config main|paper, --batch B, --steps S (DDIM),
// --feature-size N (LPIPS side, 32), --threads N (default: every core), --device cpu|cuda;
// --profile N [--top K] WORKLOAD...: LibTorch's per-operator profile of N iterations of each named
// workload (train/CasDM, ddim/CasDM, ...) instead of timing, as Markdown tables.
//   build/bench/casdm_bench_eager --benchmark_filter=^attention/   # the attention paths alone
#include "casdm/core/compat.hpp"
#include "casdm/metric/lpips.hpp"
#include "casdm/net/attention.hpp"
#include "casdm/net/flops.hpp"
#include "casdm/presets.hpp"
#include "casdm/train/profile.hpp"
#include "casdm/train/trainer.hpp"

#include "main_job_options.hpp"

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Flags {
  std::string config = "main";
  int64_t batch = 32, steps = 20, feature_size = 32;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string device = "cpu";
  int64_t profile = 0, top = 25;
} flags;

/// LPIPS with random weights in the feature slot (the cost does not depend on the weights).
struct RandomLPIPS {
  static constexpr const char* name = "lpips";
  using Module = casdm::metric::LPIPS;
  static Module make(const casdm::ObjectiveOptions&) { return casdm::metric::LPIPS(); }
  static at::Tensor distance(Module& m, const at::Tensor& a, const at::Tensor& b) { return m(a, b); }
};
using CasDM_LPIPS = casdm::Model<casdm::presets::PaperSchedule, casdm::topology::Cascaded<>,
                                 casdm::loss::Set<casdm::loss::EpsMSE<>, casdm::loss::X0MSE<>, casdm::loss::MuMix<>,
                                                  casdm::loss::Feature<RandomLPIPS>>,
                                 casdm::presets::PaperSampler>;

casdm::DenoiserOptions options() {
  if (flags.config == "main") return main_job_options();
  // The paper's CIFAR-10 configuration: the defaults (128 ch, 3 blocks, (1,2,2,2), attention at 16
  // and 8, dropout 0.3, T = 4000) at 32×32×3.
  return casdm::DenoiserOptions().image_size(32).channels(3);
}
casdm::ObjectiveOptions objective() { return casdm::ObjectiveOptions().feature_size(flags.feature_size); }

int64_t rss_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(std::string(field) + ":", 0) == 0) return std::strtoll(line.c_str() + std::strlen(field) + 1, nullptr, 10);
  return 0;
}
void reset_peak() { std::ofstream("/proc/self/clear_refs") << "5"; }
/// The process's resident memory before any model was built.
int64_t start_rss_kib = 0;

void sync(const c10::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

/// FLOP per image of one forward pass of θ and φ.
template <class P>
std::pair<double, double> net_flops(const casdm::DenoiserOptions& o) {
  const int64_t C = o.channels();
  const double theta = static_cast<double>(casdm::net::forward_flops(o.theta_net(), C, C));
  using Topo = typename P::Impl::topology_type;
  double phi = 0.0;
  if constexpr (requires { typename Topo::phi_arch; }) {
    const auto [in, out] = Topo::phi_channels(C);
    const auto net = Topo::phi_arch::configure(o.phi_net_options(), in, out);
    phi = static_cast<double>(casdm::net::forward_flops(net, in, out, net.resample()));
  }
  return {theta, phi};
}

/// A trainer step of P on a fixed batch (t and ε drawn by the step).
template <class P>
struct TrainStep {
  using Preset = P;
  c10::Device device{flags.device};
  casdm::DenoiserOptions o = options();
  P m{o, objective()};
  std::optional<casdm::train::Trainer<P>> trainer;
  at::Tensor x0;
  TrainStep() {
    m->to(device);
    trainer.emplace(m, casdm::train::TrainerOptions().optimizer(casdm::train::AdamWOptions().lr(1e-3)).ema_rates({0.99}));
    x0 = at::rand({flags.batch, o.channels(), o.image_size(), o.image_size()}, at::TensorOptions().device(device)) * 2 - 1;
  }
  void operator()() { benchmark::DoNotOptimize(trainer->step(x0).total); }
};

/// A whole DDIM run of P (flags.steps steps) from fixed noise.
template <class P>
struct DdimRun {
  using Preset = P;
  c10::Device device{flags.device};
  casdm::DenoiserOptions o = options();
  P m{o, objective()};
  casdm::SampleOptions so;
  DdimRun() {
    m->to(device);
    m->eval();
    so.steps(flags.steps).noise(
        at::randn({flags.batch, o.channels(), o.image_size(), o.image_size()}, at::TensorOptions().device(device)));
  }
  void operator()() { benchmark::DoNotOptimize(casdm::sample<casdm::sampler::DDIM<>>(*m->denoiser(), flags.batch, so)); }
};

template <class W>
void bench(benchmark::State& state) {
  torch::manual_seed(0);
  reset_peak();
  W w;
  for (int warm = 0; warm < 3; ++warm) w();
  sync(w.device);
  for (auto _ : state) {
    w();
    sync(w.device);
  }
  const auto [theta, phi] = net_flops<typename W::Preset>(w.o);
  // The first call's peak: Google Benchmark calls a benchmark again after sizing its iterations,
  // and what the allocator kept of the first call's blocks would count twice in the second.
  static const double peak_mib = static_cast<double>(rss_kib("VmHWM") - start_rss_kib) / 1024.0;
  state.counters["peak_mib"] = peak_mib;
  state.counters["flop_theta"] = theta;
  state.counters["flop_phi"] = phi;
}

/// One attention call over [128, L, 8] (the main job's batch of 32 × 4 heads of 8 channels), its
/// backward too when `train`: LibTorch's plain formula against casdm's sliced 1.13 CPU path.
void attention(benchmark::State& state, bool sliced, int64_t L, bool train) {
  torch::manual_seed(0);
  auto h = at::randn({128, 24, L}, at::TensorOptions().device(flags.device)).requires_grad_(train);
  auto parts = h.split(8, 1);
  const auto q = parts[0].transpose(1, 2), k = parts[1].transpose(1, 2), v = parts[2].transpose(1, 2);
  auto run = [&] {
    at::AutoGradMode grad(train);
#if !CASDM_TORCH_AT_LEAST(2, 0)
    auto out = sliced ? (train ? casdm::net::detail::SlicedAttention::apply(q, k, v) : casdm::net::detail::SlicedAttention::run(q, k, v))
                      : casdm::compat::attention(q, k, v);
#else
    (void)sliced;
    auto out = casdm::compat::attention(q, k, v);
#endif
    if (train) out.sum().backward();
    benchmark::DoNotOptimize(out.data_ptr());
  };
  reset_peak();
  const int64_t before = rss_kib("VmRSS");
  run();
  state.counters["peak_mib"] = static_cast<double>(rss_kib("VmHWM") - before) / 1024.0;
  for (auto _ : state) run();
}

/// --profile N: the per-operator table of N iterations (LibTorch's profiler) instead of timing.
template <class W>
void profile(const std::string& name) {
  torch::manual_seed(0);
  W w;
  w();
  const auto p = casdm::train::profile_ops(std::ref(w), flags.profile, w.device);
  fmt::print("## {} ({} config, batch {}{}, {} thread(s), {})\n\n{}\n", name, flags.config, flags.batch,
             name.rfind("ddim", 0) == 0 ? fmt::format(", {} steps", flags.steps) : "", flags.threads, flags.device,
             p.table(flags.top));
}

template <class M>
std::vector<std::string> names(const M& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

/// Takes this program's own flags out of argv, leaving Google Benchmark's.
void parse(int& argc, char** argv) {
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--config") flags.config = value();
    else if (a == "--batch") flags.batch = std::stoll(value());
    else if (a == "--steps") flags.steps = std::stoll(value());
    else if (a == "--feature-size") flags.feature_size = std::stoll(value());
    else if (a == "--threads") flags.threads = std::stoi(value());
    else if (a == "--device") flags.device = value();
    else if (a == "--profile") flags.profile = std::stoll(value());
    else if (a == "--top") flags.top = std::stoll(value());
    else rest.push_back(argv[i]);
  }
  if (flags.config != "main" && flags.config != "paper")
    throw std::invalid_argument("--config must be main or paper, got " + flags.config);
  if (flags.profile < 0 || flags.top < 1) throw std::invalid_argument("--profile must be >= 0 and --top >= 1");
  if (flags.batch < 1 || flags.steps < 1 || flags.feature_size < 1 || flags.threads < 1)
    throw std::invalid_argument("--batch, --steps, --feature-size and --threads must be >= 1");
  argc = static_cast<int>(rest.size());
  for (int i = 0; i < argc; ++i) argv[i] = rest[static_cast<size_t>(i)];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    parse(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "casdm_bench_eager: {}\n", e.what());
    return 2;
  }
  at::set_num_threads(flags.threads);
  start_rss_kib = rss_kib("VmRSS");
  using casdm::presets::CasDM;
  using casdm::presets::CasDM_FixRes;
  using casdm::presets::DDPM_Eps;
  const std::vector<std::pair<std::string, std::function<void(benchmark::State&)>>> all{
      {"train/DDPM_Eps", bench<TrainStep<DDPM_Eps>>}, {"train/CasDM", bench<TrainStep<CasDM>>},
      {"train/CasDM_LPIPS", bench<TrainStep<CasDM_LPIPS>>}, {"ddim/DDPM_Eps", bench<DdimRun<DDPM_Eps>>},
      {"ddim/CasDM", bench<DdimRun<CasDM>>}, {"train/CasDM_FixRes", bench<TrainStep<CasDM_FixRes>>},
      {"ddim/CasDM_FixRes", bench<DdimRun<CasDM_FixRes>>}};
  const std::map<std::string, std::function<void(const std::string&)>> profiles{
      {"train/DDPM_Eps", profile<TrainStep<DDPM_Eps>>}, {"train/CasDM", profile<TrainStep<CasDM>>},
      {"train/CasDM_LPIPS", profile<TrainStep<CasDM_LPIPS>>}, {"ddim/DDPM_Eps", profile<DdimRun<DDPM_Eps>>},
      {"ddim/CasDM", profile<DdimRun<CasDM>>}, {"train/CasDM_FixRes", profile<TrainStep<CasDM_FixRes>>},
      {"ddim/CasDM_FixRes", profile<DdimRun<CasDM_FixRes>>}};
  try {
    if (flags.profile > 0) {  // the remaining arguments name workloads
      if (argc < 2) throw std::invalid_argument("--profile N needs workload names: " + fmt::format("{}", fmt::join(names(profiles), ", ")));
      for (int i = 1; i < argc; ++i) {
        auto it = profiles.find(argv[i]);
        if (it == profiles.end())
          throw std::invalid_argument(fmt::format("no workload '{}' (have {})", argv[i], fmt::join(names(profiles), ", ")));
        it->second(argv[i]);
      }
      return 0;
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "casdm_bench_eager: {}\n", e.what());
    return 2;
  }
  for (const auto& [name, fn] : all) benchmark::RegisterBenchmark(name.c_str(), fn)->Unit(benchmark::kMillisecond)->UseRealTime();
  for (int64_t L : {64, 256, 784})
    for (bool train : {false, true})
      for (bool sliced : {false, true}) {
        if (sliced && CASDM_TORCH_AT_LEAST(2, 0)) continue;  // 2.x: scaled_dot_product_attention only
        const auto name = fmt::format("attention/{}/L{}/{}", sliced ? "sliced" : "plain", L, train ? "train" : "forward");
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { attention(st, sliced, L, train); })
            ->Unit(benchmark::kMillisecond)->UseRealTime();
      }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
