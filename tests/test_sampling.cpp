// Sampling is right, not only finite: small models trained here on a known two-mode
// distribution must reproduce its mode shares, per-pixel mean and variance.
//
// Data: 4×4 single-channel images, every pixel +0.6 with probability 0.3, else every pixel −0.6.
// Per-pixel mean −0.24, variance 4·0.6²·0.3·0.7 = 0.3024.
#include <torch/optim/adamw.h>

#include "casdm/casdm.hpp"
#include "support.hpp"
#include "tiny.hpp"

using namespace casdm;

namespace {

constexpr double kLevel = 0.6, kShare = 0.3;

at::Tensor draw(int64_t n, at::Generator& gen, const c10::Device& device) {
  auto up = at::rand({n, 1, 1, 1}, gen).lt(kShare).to(at::kFloat);
  return ((up * 2 - 1) * kLevel).expand({n, 1, 4, 4}).contiguous().to(device);
}

struct Stats {
  double share, mean, var, off_mode;
};
Stats stats(const at::Tensor& samples) {
  const auto s = samples.cpu();
  auto per_image = s.mean({1, 2, 3});
  auto nearest = at::where(per_image.gt(0), at::full_like(per_image, kLevel), at::full_like(per_image, -kLevel));
  return {per_image.gt(0).to(at::kDouble).mean().item<double>(), s.mean().item<double>(),
          s.var(0).mean().item<double>(), (s - nearest.view({-1, 1, 1, 1})).abs().mean().item<double>()};
}

DenoiserOptions two_mode_options() {
  return test::tiny_options(4, 1, 100).net(test::tiny_options(4, 1, 100).net().attention_resolutions({2}));
}

/// Trains on the two-mode data; `labelled`: class 1 is the +0.6 mode (a class-conditional model),
/// each label dropped with probability 0.2.
template <class M>
M train_two_mode(uint64_t seed, const c10::Device& device, const DenoiserOptions& o = two_mode_options(), bool labelled = false) {
  torch::manual_seed(seed);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  M m(o);
  m->to(device);
  // Constant lr, then a linear decay: the mode share is set by the denoiser at high noise,
  // which a constant lr leaves jittering.
  constexpr int kSteps = 800;
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(2e-3).weight_decay(0));
  for (int step = 0; step < kSteps; ++step) {
    const double lr = step < kSteps / 2 ? 2e-3 : 2e-3 * (kSteps - step) / (kSteps / 2.0);
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    opt.zero_grad();
    const auto x0 = draw(256, gen, device);
    (labelled ? m->training_losses_labelled(x0, x0.mean({1, 2, 3}).gt(0).to(at::kLong), 0.2) : m->training_losses(x0))
        .total.backward();
    opt.step();
  }
  return m;
}

void check(const Stats& st) {
  WARN("share " << st.share << " mean " << st.mean << " var " << st.var << " off-mode " << st.off_mode);
  // 1024 samples give the share a binomial σ ≈ 0.014; the rest of each tolerance is what 800
  // steps of a tiny network leave. A sampler error (wrong respacing, mixing or variance) lands
  // far outside: all samples in one mode, or blurred between the modes (off-mode ≈ 0.3 and up).
  CHECK(std::abs(st.share - kShare) < 0.08);
  CHECK(std::abs(st.mean - (2 * kShare - 1) * kLevel) < 0.1);
  CHECK(std::abs(st.var - 4 * kLevel * kLevel * kShare * (1 - kShare)) < 0.06);
  CHECK(st.off_mode < 0.08);
}

template <class M>
void check_model(uint64_t seed) {
  for (const auto& device : test::devices()) {
    INFO(device);
    auto m = train_two_mode<M>(seed, device);
    torch::manual_seed(seed + 1);
    {
      INFO("DDIM, 25 steps, eta 0");
      check(stats(m->sample(1024, SampleOptions().steps(25))));
    }
    {
      INFO("DDPM ancestral, 100 steps (fixed-large variance)");
      using A = with_sampler_t<M, sampler::Ancestral<100>>;
      A a(m->denoiser()->options);
      a->to(device);
      {
        torch::NoGradGuard g;
        auto src = m->named_parameters();
        for (auto& kv : a->named_parameters()) kv.value().copy_(src[kv.key()]);
      }
      check(stats(a->sample(1024)));
    }
  }
}

}  // namespace

TEST_CASE("eps-only samples match a known two-mode distribution", "[sampling][slow]") {
  check_model<presets::DDPM_Eps>(11);
}
TEST_CASE("dual-head samples match a known two-mode distribution", "[sampling][slow]") {
  check_model<presets::Dual>(12);
}
TEST_CASE("cascaded samples match a known two-mode distribution", "[sampling][slow]") {
  check_model<presets::CasDM>(13);
}

// EDM: σ drawn log-normally in training, no T; Heun's 18 steps at Karras's σ exactly (35
// evaluations), the same with EDM's churn, the stochastic solvers at Karras's σ exactly (fresh
// noise each step), and DDIM on 25 of the 100 levels.
template <class M>
void check_edm(uint64_t seed) {
  for (const auto& device : test::devices()) {
    INFO(device);
    auto m = train_two_mode<M>(seed, device);
    torch::manual_seed(seed + 1);
    {
      INFO("Heun, 18 steps");
      check(stats(m->sample(1024)));
    }
    {
      INFO("Heun, 18 steps, churn 40 on [0.05, 50], noise 1.003");
      check(stats(m->sample(1024, SampleOptions().churn({40, 0.05, 50, 1.003}))));
    }
    {
      INFO("DDIM, 25 steps");
      check(stats(casdm::sample<sampler::DDIM<25>>(m->denoiser(), 1024)));
    }
    {
      INFO("Euler ancestral, 50 steps, eta 1");
      check(stats(casdm::sample<sampler::EulerAncestral<50>>(m->denoiser(), 1024)));
    }
    {
      INFO("DPM-Solver++(2M) SDE, 18 steps, eta 1");
      check(stats(casdm::sample<sampler::DPMSolverPP2MSDE<18>>(m->denoiser(), 1024)));
    }
    {
      INFO("DPM-Solver++(3M) SDE, 25 steps, eta 1");
      check(stats(casdm::sample<sampler::DPMSolverPP3MSDE<25>>(m->denoiser(), 1024)));
    }
  }
}
TEST_CASE("EDM samples match a known two-mode distribution", "[sampling][slow][edm]") { check_edm<presets::EDM>(15); }
TEST_CASE("Cas-DM on EDM samples match a known two-mode distribution", "[sampling][slow][edm]") { check_edm<presets::CasDM_EDM>(17); }

// Class conditioning: class 1 is the +0.6 mode, class 0 the −0.6 mode. A conditional CasDM trained
// with label dropout must put each class's samples in its own mode, and guidance must not hurt;
// with no label it samples the mixture (share 0.3) again.
TEST_CASE("class-conditional cascaded samples land in their class's mode, with and without guidance", "[sampling][slow][classes]") {
  auto m = train_two_mode<presets::CasDM>(14, c10::kCPU, two_mode_options().num_classes(2), true);
  torch::manual_seed(15);
  const auto labels = at::arange(512, at::kLong).remainder(2);
  for (const double w : {0.0, 3.0}) {
    INFO("guidance " << w);
    const auto s = m->sample(512, SampleOptions().steps(25).labels(labels).guidance(w));
    const auto up = s.mean({1, 2, 3}).gt(0).to(at::kLong);
    const double accuracy = up.eq(labels).to(at::kDouble).mean().item<double>();
    WARN("w " << w << " accuracy " << accuracy);
    CHECK(accuracy > 0.95);
    CHECK(stats(s).off_mode < 0.08);
  }
  check(stats(m->sample(1024, SampleOptions().steps(25))));  // no label: the mixture
}
