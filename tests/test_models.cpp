// Networks, topologies and presets: configuration checks, gradient routing with real autograd,
// cloning, overfitting a fixed batch, and sampling shapes — on every available device.
#include <torch/autograd.h>
#include <torch/optim/adamw.h>

#include "casdm/casdm.hpp"
#include "casdm/eval/draw.hpp"
#include "casdm/train/profile.hpp"
#include "../bench/main_job_options.hpp"
#include "support.hpp"
#include "tiny.hpp"

#include <unistd.h>

using namespace casdm;
using test::tiny_options;

// ---- positive configuration checks: every preset satisfies every family concept ----
template <class M>
constexpr bool well_formed() {
  using I = typename M::Impl;
  return schedule::Schedule<typename I::schedule_type> && topology::Topology<typename I::topology_type> &&
         loss::LossSet<typename I::losses_type> && sampler::Sampler<typename I::sampler_type> &&
         std::is_default_constructible_v<M> && std::is_constructible_v<M, DenoiserOptions>;
}
static_assert(well_formed<presets::DDPM_Eps>());
static_assert(well_formed<presets::DDPM_X0>());
static_assert(well_formed<presets::Dual>());
static_assert(well_formed<presets::CasDM>());
static_assert(well_formed<presets::CasDM_FixRes>());
static_assert(well_formed<presets::CasDM_FixRes_Concat>());
static_assert(well_formed<presets::DDPM_V>());
static_assert(well_formed<presets::CasDM_V>());
static_assert(well_formed<with_sampler_t<presets::CasDM, sampler::DDIM<10>>>());
static_assert(well_formed<with_sampler_t<presets::CasDM_V, sampler::DPMSolverPP<10>>>());
static_assert(well_formed<with_sampler_t<presets::Dual, sampler::Heun<>>>());
static_assert(topology::has_v_head<topology::VOnly<>> && topology::has_v_head<topology::CascadedV<>> &&
              !topology::has_v_head<topology::Cascaded<>> && !topology::has_v_head<topology::EpsOnly<>>);
static_assert(loss::needs_v_head<loss::VMSE<>> && !loss::needs_v_head<loss::EpsMSE<>> &&
              loss::Set<loss::VMSE<>, loss::X0MSE<>>::needs_v_head && !presets::CasDM::Impl::losses_type::needs_v_head);
// A weighting is not part of a term's kind: the same term twice under two weightings is refused.
static_assert(std::is_same_v<loss::Weighted<loss::EpsMSE<>, loss::weighting::MinSNR<>>::kind, loss::EpsMSE<>::kind>);
static_assert(loss::LossTerm<loss::Weighted<loss::VMSE<std::ratio<1, 2>>, loss::weighting::MinSNR<std::ratio<3>>>>);
static_assert(loss::ratio_value<loss::Weighted<loss::VMSE<std::ratio<1, 2>>, loss::weighting::MinSNR<>>::weight> == 0.5);
static_assert(std::is_same_v<with_sampler_t<presets::CasDM, sampler::DDIM<10>>::Impl::sampler_type, sampler::DDIM<10>>);
static_assert(!topology::Topology<int> && !sampler::Sampler<schedule::Cosine> && !schedule::Schedule<sampler::DDIM<>>);
static_assert(!loss::LossTerm<schedule::Cosine> && loss::LossTerm<loss::MuMix<std::ratio<1, 2>>>);

// A stand-in metric backbone for the feature-loss slot: one frozen conv, squared feature distance.
struct TinyBackbone {
  static constexpr const char* name = "tiny";
  using Module = torch::nn::Conv2d;
  static Module make(const ObjectiveOptions&) { return torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3)); }
  static at::Tensor distance(Module& m, const at::Tensor& a, const at::Tensor& b) {
    return (m(a) - m(b)).square().flatten(1).mean(1);
  }
};
static_assert(loss::FeatureBackbone<TinyBackbone>);
static_assert(loss::ratio_value<loss::Feature<TinyBackbone>::weight> == 0.1);  // the paper's λ_feat
static_assert(loss::Feature<TinyBackbone>::default_size == 224);
using CasDM_Tiny =
    Model<schedule::Cosine, topology::Cascaded<>,
          loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<>, loss::Feature<TinyBackbone>>, sampler::DDIM<>>;
using Dual_Tiny =
    Model<schedule::Cosine, topology::DualHead<>,
          loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<>, loss::Feature<TinyBackbone>>, sampler::DDIM<>>;

namespace {

struct Batch {
  at::Tensor x0, t, noise;
};
Batch fixed_batch(const DenoiserOptions& o, const c10::Device& device, int64_t n = 8, uint64_t seed = 7) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Batch b;
  b.x0 = at::rand({n, o.channels(), o.image_size(), o.image_size()}, gen).mul(2).sub(1).to(device);
  b.t = at::randint(0, o.diffusion_steps(), {n}, gen).to(device);
  b.noise = at::randn({n, o.channels(), o.image_size(), o.image_size()}, gen).to(device);
  return b;
}


}  // namespace
using test::count;
using test::reaches;

TEST_CASE("CasDM: L_eps trains theta only, L_x0/L_mu/feature train phi only", "[topology][routing]") {
  for (const auto& device : test::devices()) {
    INFO(device);
    torch::manual_seed(1);
    CasDM_Tiny m(tiny_options().channels(1));
    test::perturb(*m);
    m->to(device);
    auto theta = m->nets().theta->parameters(), phi = m->nets().phi->parameters();
    const auto b = fixed_batch(m->denoiser()->options, device);
    auto report = m->training_losses(b.x0, b.t, b.noise);
    auto eps_theta = reaches(report["eps"], theta), eps_phi = reaches(report["eps"], phi);
    CHECK(count(eps_theta) == theta.size());  // every θ parameter, after perturbation
    CHECK(count(eps_phi) == 0);
    for (const std::string term : {"x0", "mu", "tiny"}) {
      INFO(term);
      CHECK(count(reaches(report[term], theta)) == 0);
      CHECK(count(reaches(report[term], phi)) > 0);
    }
    // x0 and the feature loss reach every φ parameter.
    CHECK(count(reaches(report["x0"], phi)) == phi.size());
    // The backbone is frozen and an optimiser step over all parameters leaves it unchanged.
    auto backbone = m->objective()->named_children()["feature_tiny"]->parameters();
    CHECK(m->parameters().size() == m->denoiser()->parameters().size());  // the model's are the denoiser's
    REQUIRE(backbone.size() == 2);
    for (const auto& p : backbone) CHECK(!p.requires_grad());
    std::vector<at::Tensor> before;
    for (const auto& p : backbone) before.push_back(p.clone());
    torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-2));
    opt.zero_grad();
    report.total.backward();
    opt.step();
    for (size_t i = 0; i < backbone.size(); ++i) CHECK(at::equal(before[i], backbone[i]));
  }
}

TEST_CASE("Dual: every loss reaches the shared network", "[topology][routing]") {
  for (const auto& device : test::devices()) {
    INFO(device);
    torch::manual_seed(2);
    Dual_Tiny m(tiny_options());
    test::perturb(*m);
    m->to(device);
    auto theta = m->nets().theta->parameters();
    const auto b = fixed_batch(m->denoiser()->options, device);
    auto report = m->training_losses(b.x0, b.t, b.noise);
    for (const std::string term : {"eps", "x0", "tiny"}) {
      INFO(term);
      CHECK(count(reaches(report[term], theta)) == theta.size());
    }
    // L_μ reaches θ too — through r only (next test).
    CHECK(count(reaches(report["mu"], theta)) > 0);
  }
}

TEST_CASE("L_mu's gradient reaches the network only through r", "[loss][routing]") {
  for (const auto& device : test::devices()) {
    INFO(device);
    torch::manual_seed(3);
    auto check = [&](auto model) {
      test::perturb(*model);
      model->to(device);
      const auto b = fixed_batch(model->denoiser()->options, device);
      const auto& p = model->process();
      auto x_t = p.q_sample(b.x0, b.t, b.noise);
      auto pred = model->predict(x_t, b.t);
      auto mu = loss::MuMix<>(ObjectiveOptions{})(LossInputs{p, b.x0, x_t, b.t, b.noise, pred});
      auto g = torch::autograd::grad({mu}, {pred.x0, pred.eps, pred.r}, {}, true, false, true);
      CHECK(!g[0].defined());
      CHECK(!g[1].defined());
      REQUIRE(g[2].defined());
      CHECK(g[2].abs().sum().template item<double>() > 0);
      // And the closed form: dL/dr = mean over channels of 2(m − μ̃)(μ_x0′ − μ_ε′) / numel.
      auto target = p.q_posterior_mean(b.x0, x_t, b.t);
      auto mx = p.q_posterior_mean(pred.x0.detach(), x_t, b.t),
           me = p.q_posterior_mean(pred.x0_star.detach(), x_t, b.t);
      auto mix = pred.r.detach() * mx + (1 - pred.r.detach()) * me;
      auto expect = (2.0 * (mix - target) * (mx - me)).sum(1, true) / static_cast<double>(b.x0.numel());
      CHECK(test::max_abs_diff(g[2], expect) < 1e-6);
    };
    check(presets::Dual(tiny_options()));
    check(presets::CasDM(tiny_options()));
  }
}

TEST_CASE("CasDM_V: L_v trains theta only, L_x0/L_mu train phi only, and x0* comes from v'", "[topology][routing][v]") {
  for (const auto& device : test::devices()) {
    INFO(device);
    torch::manual_seed(5);
    presets::CasDM_V m(tiny_options());
    test::perturb(*m);
    m->to(device);
    auto theta = m->nets().theta->parameters(), phi = m->nets().phi->parameters();
    const auto b = fixed_batch(m->denoiser()->options, device);
    auto report = m->training_losses(b.x0, b.t, b.noise);
    CHECK(count(reaches(report["v"], theta)) == theta.size());
    CHECK(count(reaches(report["v"], phi)) == 0);
    for (const std::string term : {"x0", "mu"}) {
      INFO(term);
      CHECK(count(reaches(report[term], theta)) == 0);
      CHECK(count(reaches(report[term], phi)) > 0);
    }
    // What θ and φ see and give, against the closed forms in float64.
    const auto& p = m->process();
    auto x_t = p.q_sample(b.x0, b.t, b.noise);
    auto pred = m->predict(x_t, b.t);
    auto v = m->nets().theta(x_t, p.model_timesteps(b.t));
    CHECK(at::equal(pred.v, v));
    const auto abar = p.alphas_cumprod().index_select(0, b.t.cpu()).view({-1, 1, 1, 1}).to(device);
    auto vd = v.to(at::kDouble), xd = x_t.to(at::kDouble);
    CHECK(test::max_abs_diff(pred.eps, (1 - abar).sqrt() * xd + abar.sqrt() * vd) < 1e-5);
    CHECK(test::max_abs_diff(pred.x0_star, abar.sqrt() * xd - (1 - abar).sqrt() * vd) < 1e-5);
    auto phi_out = m->nets().phi(pred.x0_star, p.model_timesteps(b.t));
    CHECK(at::allclose(pred.x0, phi_out.slice(1, 0, 1)));
    // L_v against its definition: v = √ᾱ·ε − √(1−ᾱ)·x0.
    auto target = abar.sqrt() * b.noise.to(at::kDouble) - (1 - abar).sqrt() * b.x0.to(at::kDouble);
    CHECK(std::abs(report["v"].item<double>() - (target - vd).square().mean().item<double>()) < 1e-6);
  }
}

TEST_CASE("VOnly derives x0' and eps' from v' and its sampling estimate is consistent", "[topology][v]") {
  torch::manual_seed(6);
  presets::DDPM_V m(tiny_options(8, 3));
  test::perturb(*m);
  const auto b = fixed_batch(m->denoiser()->options, c10::kCPU, 4);
  const auto& p = m->process();
  auto x_t = p.q_sample(b.x0, b.t, b.noise);
  auto pred = m->predict(x_t, b.t);
  CHECK(m->process().size() == 100);
  CHECK(at::equal(pred.v, m->nets().theta(x_t, p.model_timesteps(b.t))));
  CHECK(!pred.has_mix());
  // x0′ and ε′ lie on x_t's line: x_t = √ᾱ·x0′ + √(1−ᾱ)·ε′, and v′ = √ᾱ·ε′ − √(1−ᾱ)·x0′.
  CHECK(test::max_abs_diff(p.q_sample(pred.x0, b.t, pred.eps), x_t) < 1e-5);
  CHECK(test::max_abs_diff(p.v_target(pred.x0, b.t, pred.eps), pred.v) < 1e-5);
}

TEST_CASE("Min-SNR-gamma weights each image's error by min(SNR, gamma) in its target's units", "[loss][minsnr]") {
  const Process p(schedule::Cosine::betas(1000));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const auto x0 = at::rand({6, 2, 3, 3}, gen).mul(2).sub(1).to(at::kDouble);
  const auto noise = at::randn({6, 2, 3, 3}, gen).to(at::kDouble);
  const auto t = at::tensor(std::vector<int64_t>{0, 10, 100, 400, 700, 999});
  const auto x_t = p.q_sample(x0, t, noise);
  Prediction pr;
  pr.eps = noise + 0.1 * at::randn({6, 2, 3, 3}, gen).to(at::kDouble);
  pr.x0 = x0 + 0.1 * at::randn({6, 2, 3, 3}, gen).to(at::kDouble);
  pr.v = p.v_target(x0, t, noise) + 0.1 * at::randn({6, 2, 3, 3}, gen).to(at::kDouble);
  const LossInputs in{p, x0, x_t, t, noise, pr};
  const ObjectiveOptions o;
  // Closed form, element by element, in float64 from the table: SNR_i = ᾱ_i/(1−ᾱ_i).
  auto per_image = [](const at::Tensor& a, const at::Tensor& b) { return (a - b).square().mean({1, 2, 3}); };
  const auto abar = p.alphas_cumprod().index_select(0, t);
  const auto snr = abar / (1 - abar);
  const double gamma = 5;
  auto expect = [&](const at::Tensor& w, const at::Tensor& err) { return (w * err).mean().item<double>(); };
  const auto clip = snr.clamp_max(gamma);
  const double e_eps = expect(clip / snr, per_image(noise, pr.eps));
  const double e_x0 = expect(clip, per_image(x0, pr.x0));
  const double e_v = expect(clip / (snr + 1), per_image(p.v_target(x0, t, noise), pr.v));
  using MS = loss::weighting::MinSNR<>;
  CHECK(std::abs(loss::Weighted<loss::EpsMSE<>, MS>(o)(in).item<double>() - e_eps) < 1e-12);
  CHECK(std::abs(loss::Weighted<loss::X0MSE<>, MS>(o)(in).item<double>() - e_x0) < 1e-12);
  CHECK(std::abs(loss::Weighted<loss::VMSE<>, MS>(o)(in).item<double>() - e_v) < 1e-12);
  // At t = 0 the SNR is ~2.5e4: the x0 weight is γ there.
  CHECK(snr[0].item<double>() > 1e4);
  CHECK(MS::weight(snr, loss::weighting::Target::x0)[0].item<double>() == gamma);
  // One image's error in x0, ε or v units carries the same Min-SNR weight on the x0 error:
  // w_ε·SNR = w_v·(SNR+1) = w_x0.
  const auto w_eps = MS::weight(snr, loss::weighting::Target::eps), w_v = MS::weight(snr, loss::weighting::Target::v),
             w_x0 = MS::weight(snr, loss::weighting::Target::x0);
  CHECK(test::max_abs_diff(w_eps * snr, w_x0) < 1e-12);
  CHECK(test::max_abs_diff(w_v * (snr + 1), w_x0) < 1e-12);
  // The plain terms keep the paper's mean over all elements, bit for bit; Uniform is that mean too.
  CHECK(at::equal(loss::EpsMSE<>(o)(in), (noise - pr.eps).square().mean()));
  CHECK(at::equal(loss::Weighted<loss::EpsMSE<>, loss::weighting::Uniform>(o)(in), (noise - pr.eps).square().mean()));
  // With a gamma above every SNR the ε weight is 1: the plain mean again.
  using Huge = loss::weighting::MinSNR<std::ratio<1000000000>>;
  CHECK(std::abs(loss::Weighted<loss::EpsMSE<>, Huge>(o)(in).item<double>() - (noise - pr.eps).square().mean().item<double>()) < 1e-12);
}

TEST_CASE("a Min-SNR cascaded model trains: total = weighted eps + x0 + mu", "[loss][minsnr][train]") {
  using MS = loss::weighting::MinSNR<>;
  using M = Model<schedule::Cosine, topology::Cascaded<>,
                  loss::Set<loss::Weighted<loss::EpsMSE<>, MS>, loss::Weighted<loss::X0MSE<>, MS>, loss::MuMix<>>, sampler::DDIM<>>;
  torch::manual_seed(10);
  M m(tiny_options());
  test::perturb(*m);
  auto b = fixed_batch(m->denoiser()->options, c10::kCPU);
  b.t = at::tensor(std::vector<int64_t>{0, 1, 2, 3, 50, 60, 70, 90});  // SNR above γ = 5 at the first four
  auto r = m->training_losses(b.x0, b.t, b.noise);
  CHECK(r.total.item<double>() == Approx((r["eps"] + r["x0"] + r["mu"]).item<double>()).epsilon(1e-6));
  presets::CasDM plain(tiny_options());
  {
    torch::NoGradGuard g;
    auto src = m->named_parameters();
    for (auto& kv : plain->named_parameters()) kv.value().copy_(src[kv.key()]);
  }
  auto rp = plain->training_losses(b.x0, b.t, b.noise);
  CHECK(rp["mu"].item<double>() == Approx(r["mu"].item<double>()).epsilon(1e-6));  // μ is not weighted
  CHECK(std::abs(rp["eps"].item<double>() - r["eps"].item<double>()) > 1e-6);       // ε is
}

TEST_CASE("topologies read their outputs as DESIGN §2 says", "[topology]") {
  torch::manual_seed(4);
  presets::Dual m(tiny_options(8, 3));
  test::perturb(*m);
  const auto b = fixed_batch(m->denoiser()->options, c10::kCPU, 2);
  const auto& p = m->process();
  auto x_t = p.q_sample(b.x0, b.t, b.noise);
  auto pred = m->predict(x_t, b.t);
  auto raw = m->nets().theta(x_t, p.model_timesteps(b.t));
  REQUIRE(raw.size(1) == 7);  // 2C + 1
  CHECK(at::equal(pred.x0, raw.slice(1, 0, 3)));
  CHECK(at::equal(pred.eps, raw.slice(1, 3, 6)));
  CHECK(at::allclose(pred.r, at::sigmoid(raw.slice(1, 6, 7))));
  CHECK(pred.r.size(1) == 1);

  presets::CasDM_FixRes_Concat c(tiny_options(8, 3));
  test::perturb(*c);
  auto cp = c->predict(x_t, b.t);
  auto eps = c->nets().theta(x_t, p.model_timesteps(b.t));
  auto x0_star = p.predict_x0_from_eps(x_t, b.t, eps);
  auto phi_out = c->nets().phi(at::cat({x0_star, eps}, 1), p.model_timesteps(b.t));
  CHECK(c->nets().phi->options.in_channels() == 6);
  CHECK(!c->nets().phi->options.resample());
  CHECK(at::allclose(cp.x0, phi_out.slice(1, 0, 3)));
  CHECK(at::allclose(cp.r, at::sigmoid(phi_out.slice(1, 3, 4))));
  CHECK(at::allclose(cp.x0_star, x0_star));
}

TEST_CASE("U-Net and Fix-Res CNN: shapes, cloning and clear errors", "[net]") {
  torch::manual_seed(5);
  auto o = tiny_options(8, 3).theta_net();
  auto unet = net::arch::UNet::make(o, 3, 7);
  auto fixres = net::arch::FixResCNN::make(o, 3, 4);
  auto x = at::randn({2, 3, 8, 8});
  auto t = at::tensor({10.0f, 990.0f});
  CHECK(unet(x, t).sizes() == at::IntArrayRef({2, 7, 8, 8}));
  CHECK(fixres(x, t).sizes() == at::IntArrayRef({2, 4, 8, 8}));
  // The Fix-Res CNN has no resampling convolutions and attention only at the coarsest listed level.
  auto names = [](auto& m) {
    std::vector<std::string> v;
    for (const auto& kv : m->named_parameters()) v.push_back(kv.key());
    return v;
  };
  auto has = [](const std::vector<std::string>& v, const std::string& s) {
    return std::any_of(v.begin(), v.end(), [&](const auto& n) { return n.find(s) != std::string::npos; });
  };
  CHECK(has(names(unet), ".down."));
  CHECK(has(names(unet), ".up."));
  CHECK(!has(names(fixres), ".down."));
  CHECK(!has(names(fixres), ".up."));
  // clone(): equal values, separate storage.
  test::perturb(*unet);
  auto copy = std::dynamic_pointer_cast<net::UNetImpl>(unet->clone());
  REQUIRE(copy);
  CHECK(at::equal(copy->forward(x, t), unet(x, t)));
  auto cp = copy->parameters(), up = unet->parameters();
  REQUIRE(cp.size() == up.size());
  for (size_t i = 0; i < cp.size(); ++i) CHECK(cp[i].data_ptr() != up[i].data_ptr());
  CHECK_THROWS_WITH(unet(at::randn({2, 1, 8, 8}), t), Catch::Contains("expected input [N, 3, H, W]"));
  CHECK_THROWS_WITH(unet(at::randn({2, 3, 7, 7}), t), Catch::Contains("divisible by 2"));
  CHECK_THROWS_WITH(net::UNet(net::UNetOptions(3, 3).model_channels(12).norm_groups(8)),
                    Catch::Contains("12 channels are not divisible into 8 groups"));
  CHECK_THROWS_WITH(net::UNet(net::UNetOptions(3, 3).image_size(30)),
                    Catch::Contains("image_size 30 is not divisible"));
}

TEST_CASE("a cloned denoiser (EMA copy) predicts the same, holds no metric network and trains separately", "[model]") {
  for (const auto& device : test::devices()) {
    INFO(device);
    torch::manual_seed(6);
    CasDM_Tiny m(tiny_options());
    test::perturb(*m);
    m->to(device);
    auto copy = presets::CasDM::Denoiser(
        std::dynamic_pointer_cast<presets::CasDM::Denoiser::Impl>(m->denoiser()->clone()));
    REQUIRE(copy);
    const auto b = fixed_batch(m->denoiser()->options, device, 2);
    auto a = m->training_losses(b.x0, b.t, b.noise).total.item<double>();
    auto c = m->objective()->forward(*copy, b.x0, b.t, b.noise).total.item<double>();
    CHECK(a == c);
    CHECK(copy->parameters().size() == m->parameters().size());
    CHECK(copy->parameters()[0].data_ptr() != m->parameters()[0].data_ptr());
    CHECK(copy->parameters()[0].device() == device);
    // The frozen feature network lives in the objective only: not in the denoiser or its copy.
    CHECK(m->objective()->parameters().size() == 2);
    for (const auto& kv : copy->named_parameters()) CHECK(kv.key().rfind("feature_", 0) == std::string::npos);
  }
}

// The mixed step of dual and cascaded topologies (An et al. 2024, eq. 16–17) on a hand-built
// prediction with r = 0.25 and x0′ ≠ x0⋆, against the paper's formula written out in float64
// scalars here: r·μ(x0′, ε(x0′)) + (1−r)·μ(x0⋆, ε′) + σz, each x0 clipped (if asked) and its ε
// re-derived. Swapping r and 1−r moves the result far beyond the tolerance (checked).
TEST_CASE("the mixed step is r-weighted between the x0 and eps branches", "[sampler][topology]") {
  const Process p(schedule::Cosine::betas(10));
  const int64_t i = 6;
  const double ab = p.alphas_cumprod()[i].item<double>(), abp = p.alphas_cumprod_prev()[i].item<double>();
  const std::vector<double> xt{0.3, -1.7, 2.5, 0.1}, x0p{1.4, -0.2, 0.9, -2.2}, epsp{0.5, -1.1, 1.9, -0.3};
  auto as_tensor = [](const std::vector<double>& v) { return at::tensor(v, at::kDouble).view({1, 1, 2, 2}); };
  auto clip = [](double v, bool on) { return on ? std::clamp(v, -1.0, 1.0) : v; };
  auto eps_from = [&](double x, double x0) { return (x / std::sqrt(ab) - x0) / std::sqrt(1 / ab - 1); };
  std::vector<double> x0s(4);
  for (int k = 0; k < 4; ++k) x0s[k] = (xt[k] - std::sqrt(1 - ab) * epsp[k]) / std::sqrt(ab);
  for (const bool clipping : {true, false}) {
    for (const char* kind : {"ddim", "ancestral"}) {
      INFO(kind << (clipping ? ", clipped" : ", raw"));
      const bool ddim = std::string(kind) == "ddim";
      const double eta = 0.5;
      const double sigma = eta * std::sqrt((1 - abp) / (1 - ab)) * std::sqrt(1 - ab / abp);
      auto mean = [&](double x, double x0, double e) {
        if (ddim) return std::sqrt(abp) * x0 + std::sqrt(1 - abp - sigma * sigma) * e;
        const double beta = p.betas()[i].item<double>();
        return beta * std::sqrt(abp) / (1 - ab) * x0 + (1 - abp) * std::sqrt(1 - beta) / (1 - ab) * x;
      };
      const double sd = ddim ? sigma : std::exp(0.5 * p.log_variance_fixed_large()[i].item<double>());
      Prediction pr;
      pr.x0 = as_tensor(x0p);
      pr.eps = as_tensor(epsp);
      pr.x0_star = as_tensor(x0s);
      pr.r = at::full({1, 1, 2, 2}, 0.25, at::kDouble);
      const Denoise f = [&](const at::Tensor& x, const at::Tensor& t) { return estimate(pr, p, x, t, clipping); };
      const auto x = as_tensor(xt);
      at::manual_seed(5);
      const auto got = ddim ? sampler::DDIM<>::Run(p, SampleOptions().eta(eta)).step(f, x, i)
                            : sampler::Ancestral<>::Run(p, SampleOptions()).step(f, x, i);
      at::manual_seed(5);
      const auto z = at::randn_like(x);
      auto expect = [&](double r) {
        std::vector<double> out(4);
        for (int k = 0; k < 4; ++k) {
          const double xa = clip(x0p[k], clipping), xb = clip(x0s[k], clipping);
          const double ea = eps_from(xt[k], xa), eb = clipping ? eps_from(xt[k], xb) : epsp[k];
          out[k] = r * mean(xt[k], xa, ea) + (1 - r) * mean(xt[k], xb, eb) +
                   sd * z.flatten()[k].item<double>();
        }
        return as_tensor(out);
      };
      CHECK(test::max_abs_diff(got, expect(0.25)) < 1e-12);
      CHECK(test::max_abs_diff(got, expect(0.75)) > 1e-2);
    }
  }
}

TEST_CASE("models refuse images of the wrong shape with the expected shape", "[model]") {
  presets::DDPM_Eps m(tiny_options());
  CHECK_THROWS_WITH(m->training_losses(at::zeros({2, 3, 8, 8})),
                    Catch::Contains("expected images [N, 1, 8, 8], got [2,3,8,8]"));
  CHECK_THROWS_WITH(m->sample(2, SampleOptions().steps(1000)), "sample: 1000 steps: more than the model's T = 100");
  // The spacing's own rule, the one check_steps reads: DDIM's integer stride.
  CHECK_THROWS_WITH(m->sample(2, SampleOptions().steps(99)),
                    "sample: 99 steps: DDIM takes the steps of T = 100 at an integer stride, which makes 50 or 100 but not 99");
  CHECK_THROWS_WITH(m->sample(2, SampleOptions().noise(at::zeros({3, 1, 8, 8}))), Catch::Contains("starting noise"));
  CHECK_THROWS_WITH(presets::DDPM_Eps(DenoiserOptions().diffusion_steps(1)),
                    Catch::Contains("diffusion_steps must be >= 2"));
  // A φ network asked of a topology that has none is refused, not ignored.
  const auto phi = tiny_options().net().model_channels(8);
  for (auto make : {+[](DenoiserOptions o) { presets::DDPM_Eps{o}; }, +[](DenoiserOptions o) { presets::Dual{o}; },
                    +[](DenoiserOptions o) { presets::DDPM_X0{o}; }})
    CHECK_THROWS_WITH(make(tiny_options().phi_net(phi)),
                      Catch::Contains("DenoiserOptions: phi_net is set, but this topology has no phi network (only Cascaded has)"));
  CHECK(presets::CasDM(tiny_options().phi_net(phi))->denoiser()->options.phi_net_options().model_channels() == 8);
}

// Overfitting a fixed batch (fixed x0, t, ε): the total loss must fall to a tenth of its start
// within 150 AdamW steps at lr 2e-3. All presets, tiny U-Nets, CPU.
TEMPLATE_TEST_CASE("every preset overfits a fixed batch and samples images in [-1, 1]", "[preset][train]",
                   presets::DDPM_Eps, presets::DDPM_X0, presets::Dual, presets::CasDM, presets::CasDM_FixRes,
                   presets::CasDM_FixRes_Concat, presets::DDPM_V, presets::CasDM_V) {
  for (const auto& device : test::devices()) {
    INFO(device);
    torch::manual_seed(8);
    TestType m(tiny_options());
    m->to(device);
    const auto b = fixed_batch(m->denoiser()->options, device);
    torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(2e-3).weight_decay(0));
    double first = 0, last = 0;
    for (int step = 0; step < 150; ++step) {
      opt.zero_grad();
      auto r = m->training_losses(b.x0, b.t, b.noise);
      r.total.backward();
      opt.step();
      (step == 0 ? first : last) = r.total.template item<double>();
    }
    INFO("loss " << first << " -> " << last);
    CHECK(std::isfinite(last));
    CHECK(last < first / 10);
    auto s = m->sample(3, SampleOptions().steps(5));
    CHECK(s.sizes() == at::IntArrayRef({3, 1, 8, 8}));
    CHECK(s.device() == device);
    CHECK(s.isfinite().all().template item<bool>());
    CHECK(m->is_training());  // sampling restores the training mode
  }
}

// The custom composition of docs/policies.md, compiled and run as written there.
struct Constant {
  static constexpr const char* name = "constant";
  static at::Tensor betas(int64_t T) { return at::full({T}, 0.02, at::kDouble); }
};
template <class W = std::ratio<1>>
struct X0L1 : casdm::loss::Stateless {
  using kind = X0L1<>;
  using weight = W;
  static constexpr const char* name = "x0_l1";
  static constexpr bool needs_eps_head = false, needs_x0_head = true, needs_mix = false;
  using Stateless::Stateless;
  at::Tensor operator()(const casdm::LossInputs& in) const { return (in.x0 - in.pred.x0).abs().mean(); }
};
using Mine = casdm::Model<
    Constant, casdm::topology::Cascaded<>,
    casdm::loss::Set<casdm::loss::EpsMSE<>, casdm::loss::X0MSE<>, casdm::loss::MuMix<>, X0L1<std::ratio<1, 2>>>,
    casdm::sampler::DDIM<50>>;

TEST_CASE("a user's own schedule and loss term compose with the library's", "[model][custom]") {
  for (const auto& device : test::devices()) {
    INFO(device);
    torch::manual_seed(9);
    Mine m(tiny_options());
    test::perturb(*m);
    m->to(device);
    CHECK(at::equal(m->process().betas(), at::full({100}, 0.02, at::kDouble)));
    const auto b = fixed_batch(m->denoiser()->options, device, 4);
    auto r = m->training_losses(b.x0, b.t, b.noise);
    REQUIRE(r.terms.size() == 4);
    CHECK(r.terms[3].first == "x0_l1");
    // The total is Σ λ·L with the L1 term at ½, recomputed here from the prediction.
    auto x_t = m->process().q_sample(b.x0, b.t, b.noise);
    auto pred = m->predict(x_t, b.t);
    auto l1 = (b.x0 - pred.x0).abs().mean().item<double>();
    CHECK(r["x0_l1"].item<double>() == Approx(l1).epsilon(1e-6));
    const double total = r["eps"].item<double>() + r["x0"].item<double>() + r["mu"].item<double>() + 0.5 * l1;
    CHECK(r.total.item<double>() == Approx(total).epsilon(1e-6));
    CHECK(m->sample(2).sizes() == at::IntArrayRef({2, 1, 8, 8}));
    using Described = std::vector<std::pair<std::string, double>>;
    CHECK(Mine::Impl::losses_type::describe() == Described{{"eps", 1.0}, {"x0", 1.0}, {"mu", 1.0}, {"x0_l1", 0.5}});
  }
}

// improved-diffusion's UNetModel in the paper's CIFAR-10 setting — create_model(32, 128, 3,
// learn_sigma=False, attention_resolutions="16,8", num_heads=4, use_scale_shift_norm=True,
// dropout=0.3), channel_mult (1,2,2,2) — has 52,542,979 parameters (counted by running that code
// with PyTorch); UNetOptions' defaults are that setting. Cas-DM's φ adds one output channel (r).
TEST_CASE("the default U-Net has improved-diffusion's parameter count in the paper's CIFAR-10 setting", "[net]") {
  auto count_of = [](const torch::nn::Module& m) {
    int64_t n = 0;
    for (const auto& p : m.parameters()) n += p.numel();
    return n;
  };
  CHECK(count_of(*net::UNet(net::UNetOptions(3, 3))) == 52'542'979);
  // The last convolution is 3×3 from 128 channels: one more output channel is 128·9 + 1 more.
  CHECK(count_of(*net::UNet(net::UNetOptions(3, 4))) == 52'542'979 + 128 * 9 + 1);
}

TEST_CASE("a device list that names no available device is an error, not an empty loop", "[device]") {
  const char* old = std::getenv("CASDM_TEST_DEVICES");
  const std::string saved = old ? old : "";
  ::setenv("CASDM_TEST_DEVICES", "cdua", 1);
  CHECK_THROWS_WITH(test::devices(), Catch::Contains("CASDM_TEST_DEVICES=cdua names none of the available devices"));
  ::setenv("CASDM_TEST_DEVICES", "cpu", 1);
  CHECK(test::devices() == std::vector<c10::Device>{c10::Device(c10::kCPU)});
  if (old)
    ::setenv("CASDM_TEST_DEVICES", saved.c_str(), 1);
  else
    ::unsetenv("CASDM_TEST_DEVICES");
}

// ---- class conditioning and classifier-free guidance ----
TEST_CASE("a class-conditional U-Net adds the label's embedding to the time embedding", "[net][classes]") {
  torch::manual_seed(30);
  auto o = tiny_options().theta_net().in_channels(1).out_channels(1).num_classes(3);
  net::UNet a(o), b(o);
  {
    torch::NoGradGuard g;
    auto src = a->named_parameters();
    for (auto& kv : b->named_parameters()) kv.value().copy_(src[kv.key()]);
  }
  test::perturb(*a);
  REQUIRE(a->label_emb->weight.sizes() == at::IntArrayRef({4, 64}));  // K + 1 rows ("no label"), 4·16 wide
  CHECK(a->named_parameters().contains("label_emb.weight"));           // improved-diffusion's name
  {
    torch::NoGradGuard g;
    auto src = a->named_parameters();
    for (auto& kv : b->named_parameters()) kv.value().copy_(src[kv.key()]);
    // b: class 2's embedding moved into the time embedding's last bias, its "no label" row zero.
    auto tb = b->time_embed->ptr(2)->as<torch::nn::Linear>()->bias;
    tb.add_(a->label_emb->weight[2]);
    b->label_emb->weight[3].zero_();
  }
  const auto x = at::randn({2, 1, 8, 8}), t = at::tensor({10.0f, 700.0f});
  const auto y2 = at::full({2}, 2, at::kLong), none = at::full({2}, 3, at::kLong);
  CHECK(test::max_abs_diff(a->forward(x, t, y2), b->forward(x, t, none)) < 1e-5);
  CHECK(test::max_abs_diff(a->forward(x, t, y2), a->forward(x, t, at::zeros({2}, at::kLong))) > 1e-3);
  CHECK(at::equal(a->forward(x, t), a->forward(x, t, none)));  // no labels: "no label"
  CHECK_THROWS_WITH(a->forward(x, t, at::zeros({3}, at::kLong)), Catch::Contains("one class label per image"));
  net::UNet plain(tiny_options().theta_net().in_channels(1).out_channels(1));
  CHECK(!plain->named_parameters().contains("label_emb.weight"));
  CHECK_THROWS_WITH(plain->forward(x, t, y2), Catch::Contains("class labels given to an unconditional network"));
  CHECK_THROWS_WITH(net::UNet(net::UNetOptions(o).num_classes(-1)), Catch::Contains("num_classes must be in [0, 1000000]"));
}

// Ho & Salimans (2022) and GLIDE guide the raw predictions: ε̂ = (1+w)·ε(y) − w·ε(∅), x̂0 from ε̂, clipped
// once. On an ε-only model with clipping on, in float64 from the process's ᾱ.
TEST_CASE("guidance on an eps-only model is clamp(x0((1+w)·eps_c − w·eps_u)), clipped once", "[sampler][classes]") {
  torch::manual_seed(32);
  presets::DDPM_Eps m(tiny_options().num_classes(3));
  test::perturb(*m, 0.3);
  auto& d = *m->denoiser();
  const auto& p = d.respaced<sampler::spacing::Stride>(10);
  const auto x = at::randn({4, 1, 8, 8}), t = at::full({4}, 8, at::kLong);
  const auto y = at::tensor(std::vector<int64_t>{0, 1, 2, 1}), none = at::full({4}, 3, at::kLong);
  torch::NoGradGuard g;
  const double w = 3;
  const auto eps_c = d.denoise(p, x, t, false, y).eps.to(at::kDouble), eps_u = d.denoise(p, x, t, false, none).eps.to(at::kDouble);
  const double a = p.alphas_cumprod()[8].item<double>();
  const auto xd = x.to(at::kDouble);
  auto x0_of = [&](const at::Tensor& eps) { return (xd - std::sqrt(1 - a) * eps) / std::sqrt(a); };
  const auto want = x0_of((1 + w) * eps_c - w * eps_u).clamp(-1, 1);
  const auto e = d.guided(p, x, t, true, y, w);
  CHECK(test::max_abs_diff(e.x0.to(at::kDouble), want) < 1e-4);
  CHECK(test::max_abs_diff(e.eps.to(at::kDouble), (xd - std::sqrt(a) * want) / std::sqrt(1 - a)) < 1e-3);
  // The case tells the orders apart: clipping each half first gives another x̂0 on many elements.
  const auto each_first = ((1 + w) * x0_of(eps_c).clamp(-1, 1) - w * x0_of(eps_u).clamp(-1, 1)).clamp(-1, 1);
  CHECK(each_first.sub(want).abs().gt(1e-3).to(at::kDouble).mean().item<double>() > 0.05);
}

TEST_CASE("guidance: (1+w)·E(y) − w·E(none) of the raw mixed estimates, clipped once after, and label dropout", "[sampler][classes]") {
  torch::manual_seed(31);
  presets::CasDM m(tiny_options().num_classes(4));
  test::perturb(*m, 0.2);
  auto& d = *m->denoiser();
  const auto& p = d.respaced<sampler::spacing::Stride>(10);
  const auto x = at::randn({3, 1, 8, 8}), t = at::full({3}, 7, at::kLong);
  const auto y = at::tensor(std::vector<int64_t>{0, 3, 1}), none = at::full({3}, 4, at::kLong);
  torch::NoGradGuard g;
  for (const bool clip : {false, true}) {
    INFO("clip " << clip);
    const auto c = d.denoise(p, x, t, false, y), u = d.denoise(p, x, t, false, none);  // the raw halves
    const double w = 3;
    auto e = d.guided(p, x, t, clip, y, w);
    auto want = (1 + w) * c.x0 - w * u.x0;
    if (clip) want = want.clamp(-1, 1);
    // Relative: unclipped x0 reaches ~10 at t = 700, and 4·c − 3·u amplifies the doubled batch's rounding.
    CHECK(test::max_rel_diff(e.x0, want, 1.0) < 1e-4);
    if (!clip) CHECK(test::max_rel_diff(e.eps, (1 + w) * c.eps - w * u.eps, 1.0) < 1e-4);
    CHECK(test::max_abs_diff(p.q_sample(e.x0, t, e.eps), x) < 1e-4);  // on x_t's line
    CHECK(at::equal(d.guided(p, x, t, clip, y, 0.0).x0, d.denoise(p, x, t, clip, y).x0));
  }
  // sample(): labels and guidance checked; a conditional model without labels draws "no label".
  CHECK(m->sample(3, SampleOptions().steps(3).labels(y).guidance(2)).sizes() == at::IntArrayRef({3, 1, 8, 8}));
  CHECK(m->sample(2, SampleOptions().steps(2)).isfinite().all().item<bool>());
  CHECK_THROWS_WITH(m->sample(3, SampleOptions().steps(2).labels(at::tensor(std::vector<int64_t>{0, 4, 1}))),
                    Catch::Contains("sample: class labels must lie in [0, 3], got 0 … 4"));
  CHECK_THROWS_WITH(m->sample(3, SampleOptions().steps(2).labels(y.slice(0, 0, 2))), Catch::Contains("expected 3 integer class labels"));
  CHECK_THROWS_WITH(m->sample(3, SampleOptions().steps(2).labels(y.to(at::kFloat))), Catch::Contains("integer class labels"));
  CHECK_THROWS_WITH(m->sample(3, SampleOptions().steps(2).guidance(1)), Catch::Contains("guidance needs class labels"));
  CHECK_THROWS_WITH(m->sample(3, SampleOptions().steps(2).labels(y).guidance(-1)), Catch::Contains("guidance must be in [0, 1e6]"));
  presets::CasDM plain(tiny_options());
  CHECK_THROWS_WITH(plain->sample(3, SampleOptions().steps(2).labels(y)), Catch::Contains("unconditional model"));
  CHECK_THROWS_WITH(plain->training_losses(at::zeros({3, 1, 8, 8}), at::zeros({3}, at::kLong), at::zeros({3, 1, 8, 8}), y),
                    Catch::Contains("class labels given to an unconditional model"));
  CHECK_THROWS_WITH(m->training_losses_labelled(at::zeros({3, 1, 8, 8}), y, 1.5),
                    Catch::Contains("label_dropout must be in [0, 1], got 1.5"));
  CHECK_THROWS_WITH(drop_labels(y, 4, -0.1), Catch::Contains("label_dropout must be in [0, 1], got -0.1"));
  // Label dropout: p = 0 keeps, p = 1 drops every label, p = 0.3 about 30 % (σ 0.5 % at 10,000).
  const auto many = at::randint(0, 4, {10000}, at::kLong);
  CHECK(at::equal(drop_labels(many, 4, 0.0), many));
  CHECK(drop_labels(many, 4, 1.0).eq(4).all().item<bool>());
  const auto dropped = drop_labels(many, 4, 0.3);
  const double share = dropped.eq(4).to(at::kDouble).mean().item<double>();
  CHECK(std::abs(share - 0.3) < 0.02);
  CHECK(at::equal(dropped.masked_select(dropped.ne(4)), many.masked_select(dropped.ne(4))));
  // Every topology takes labels; the labelled objective reaches θ and φ through their embeddings.
  presets::DDPM_V v(tiny_options().num_classes(2));
  CHECK(v->training_losses_labelled(at::zeros({2, 1, 8, 8}), at::tensor(std::vector<int64_t>{0, 1})).total.isfinite().item<bool>());
}

TEST_CASE("draw_samples refuses, before drawing, more samples than memory holds", "[sampler][eval]") {
  presets::CasDM m(tiny_options());
  auto d = m->denoiser();
  CHECK_THROWS_WITH(eval::draw_samples<sampler::DDIM<>>(d, 100'000'000'000'000),
                    Catch::StartsWith("n: 100000000000000 samples of 1x8x8 need 2.56e+07 GB of memory as float32"));
  CHECK_THROWS_AS(eval::check_draw_memory(100'000'000'000'000, d->options), SettingError);
  CHECK_NOTHROW(eval::check_draw_memory(1000, d->options));
}

TEST_CASE("draw_samples: batches after one seed, each taking its rows of the labels and the noise", "[sampler][eval]") {
  torch::manual_seed(5);
  presets::CasDM m(tiny_options().num_classes(3));
  test::perturb(*m, 0.2);
  auto d = m->denoiser();
  const auto labels = at::tensor(std::vector<int64_t>{0, 1, 2, 0, 1});
  std::vector<int64_t> done;
  // DDIM with eta 1 draws at every step: the seed and the order of the batches show in the result.
  const auto so = SampleOptions().steps(3).eta(1.0).labels(labels).guidance(1);
  const auto x = eval::draw_samples<sampler::DDIM<>>(d, 5, eval::DrawOptions().sample(so).batch(2).seed(7).progress(
      [&](int64_t k, int64_t n, double secs) {
        done.push_back(k);
        CHECK(n == 5);
        CHECK(secs >= 0);
      }));
  CHECK(done == std::vector<int64_t>{2, 4, 5});
  torch::manual_seed(7);
  std::vector<at::Tensor> parts;
  for (const auto& [a, b] : std::vector<std::pair<int64_t, int64_t>>{{0, 2}, {2, 4}, {4, 5}})
    parts.push_back(casdm::sample<sampler::DDIM<>>(d, b - a, SampleOptions(so).labels(labels.slice(0, a, b))));
  CHECK(at::equal(x, at::cat(parts)));
  CHECK(x.device().is_cpu());
  // With the noise given and a deterministic sampler, the batch size does not matter.
  const auto noisy = SampleOptions().steps(3).noise(at::randn({5, 1, 8, 8})).labels(labels);
  const auto by5 = eval::draw_samples<sampler::DDIM<>>(d, 5, eval::DrawOptions().sample(noisy).batch(5).seed(1));
  CHECK(at::equal(by5, casdm::sample<sampler::DDIM<>>(d, 5, noisy)));
  CHECK(test::max_abs_diff(eval::draw_samples<sampler::DDIM<>>(d, 5, eval::DrawOptions().sample(noisy).batch(2).seed(2)), by5) < 1e-5);
  // The progress line; at 0 s (a coarse clock, a tiny batch) no rate, rather than "inf images/s".
  std::FILE* f = std::tmpfile();
  eval::print_draw_progress(f)(2, 5, 4.0);
  eval::print_draw_progress(f)(2, 5, 0.0);
  eval::print_draw_progress(f)(0, 5, 1.0);
  std::rewind(f);
  std::vector<std::string> lines;
  for (char line[200] = {}; std::fgets(line, sizeof line, f) != nullptr;) lines.emplace_back(line);
  std::fclose(f);
  CHECK(lines == std::vector<std::string>{"sampled 2/5  0.5 images/s  ETA " + io::duration_str(6.0) + "\n",
                                          "sampled 2/5\n", "sampled 0/5\n"});
  // Refusals, in one line.
  CHECK_THROWS_WITH(eval::draw_samples<sampler::DDIM<>>(d, 0), Catch::Contains("draw_samples: n must be >= 1, got 0"));
  CHECK_THROWS_WITH(eval::draw_samples<sampler::DDIM<>>(d, 5, eval::DrawOptions().batch(0)),
                    Catch::Contains("draw_samples: batch must be >= 1, got 0"));
  CHECK_THROWS_WITH(eval::draw_samples<sampler::DDIM<>>(d, 5, eval::DrawOptions().sample(SampleOptions().labels(labels.slice(0, 0, 3)))),
                    Catch::Contains("draw_samples: labels for 5 samples must have 5 rows, got shape"));
  CHECK_THROWS_WITH(eval::draw_samples<sampler::DDIM<>>(d, 4, eval::DrawOptions().sample(noisy)),
                    Catch::Contains("draw_samples: labels for 4 samples must have 4 rows"));
  // Non-finite samples are an error, never a result (issue 29: --eta 1e25 wrote NaN samples, exit 0).
  presets::DDPM_Eps broken(tiny_options());
  {
    at::NoGradGuard g;
    broken->denoiser()->parameters().front().fill_(std::numeric_limits<float>::quiet_NaN());
  }
  auto bd = broken->denoiser();
  CHECK_THROWS_WITH(eval::draw_samples<sampler::DDIM<>>(bd, 3, eval::DrawOptions().batch(2).sample(SampleOptions().steps(2))),
                    "draw_samples: samples 0 to 1 are not finite (non-finite weights, or a sampler setting that "
                    "diverges such as a huge eta)");
  CHECK_THROWS_WITH(eval::draw_samples<sampler::DDIM<>>(d, 5, eval::DrawOptions().sample(SampleOptions().noise(at::randn({4, 1, 8, 8})))),
                    Catch::Contains("draw_samples: noise for 5 samples must have 5 rows"));
}

TEST_CASE("class-conditional options survive their string form and unconditional ones keep the keys of before", "[options][classes]") {
  const auto cond = tiny_options().num_classes(10);
  const auto m = options_to_map(cond);
  CHECK(m.at("num_classes") == "10");
  CHECK(options_differences(options_from_map(m), cond).empty());
  CHECK(options_from_map(m).theta_net().num_classes() == 10);
  CHECK(options_from_map(m).phi_net_options().num_classes() == 10);
  CHECK(!options_to_map(tiny_options()).count("num_classes"));
  CHECK(options_differences(cond, tiny_options()) ==
        std::vector<std::string>{"num_classes: '10' vs (unset)"});
  // Only a denoiser's options are one: an objective's or a trainer's setting is refused by name.
  auto extra = m;
  extra["feature_size"] = "64";
  CHECK_THROWS_WITH(options_from_map(extra), Catch::Contains("denoiser options: 'feature_size' is not one of them"));
}

// The Model's and Denoiser's C++ type names are in every checkpoint and model file, and a load
// refuses another name: the presets' names must stay what they were before the v-prediction and
// weighting arguments existed, or every earlier checkpoint would be refused as "another model".
TEST_CASE("every preset's identity is built from registered names, with no C++ spelling and no sampler", "[model][identity]") {
  const std::map<std::string, std::string> expected{
      {"DDPM_Eps", "cosine | eps-only(unet) | eps:1"},
      {"DDPM_X0", "cosine | x0-only(unet) | x0:1"},
      {"Dual", "cosine | dual-head(unet) | x0:1 + eps:1 + mu:1"},
      {"CasDM", "cosine | cascaded(unet <- x0star, unet) | eps:1 + x0:1 + mu:1"},
      {"CasDM_FixRes", "cosine | cascaded(fixres <- x0star, unet) | eps:1 + x0:1 + mu:1"},
      {"CasDM_FixRes_Concat", "cosine | cascaded(fixres <- concat, unet) | eps:1 + x0:1 + mu:1"},
      {"DDPM_X0_LPIPS", "cosine | x0-only(unet) | x0:1 + lpips(224):1/10"},
      {"Dual_LPIPS", "cosine | dual-head(unet) | x0:1 + eps:1 + mu:1 + lpips(224):1/10"},
      {"CasDM_LPIPS", "cosine | cascaded(unet <- x0star, unet) | eps:1 + x0:1 + mu:1 + lpips(224):1/10"},
      {"CasDM_FixRes_LPIPS", "cosine | cascaded(fixres <- x0star, unet) | eps:1 + x0:1 + mu:1 + lpips(224):1/10"},
      {"CasDM_ResNet", "cosine | cascaded(unet <- x0star, unet) | eps:1 + x0:1 + mu:1 + resnet(224):1/10"},
      {"CasDM_Inception", "cosine | cascaded(unet <- x0star, unet) | eps:1 + x0:1 + mu:1 + inception(224):1/10"},
      {"CasDM_Swin", "cosine | cascaded(unet <- x0star, unet) | eps:1 + x0:1 + mu:1 + swin(224):1/10"},
      {"CasDM_SmallVGG", "cosine | cascaded(unet <- x0star, unet) | eps:1 + x0:1 + mu:1 + small_vgg(32):1/10"},
      {"DDPM_V", "cosine | v-only(unet) | v:1"},
      {"CasDM_V", "cosine | cascaded-v(unet <- x0star, unet) | v:1 + x0:1 + mu:1"},
      {"EDM", "edm | edm(unet) | x0@edm:1"},
      {"CasDM_EDM", "edm | cascaded-edm(unet <- x0star, unet) | x0star@edm:1 + x0:1 + mu:1"}};
  std::set<std::string> seen;
  presets::for_each([&](const char* name, auto type) {
    using P = typename decltype(type)::type;
    INFO(name);
    const auto id = P::Impl::identity();
    CHECK(id == expected.at(name));
    for (const char* cxx : {"std::", "casdm::", "ratio", "::", ">", "1l"}) CHECK(id.find(cxx) == std::string::npos);
    CHECK(id.find('<') == id.find("<- "));  // a '<' only in the cascade's arrow (npos == npos elsewhere)
    // The denoiser's identity is the model's without the loss terms.
    CHECK(id.rfind(P::Denoiser::Impl::identity() + " | ", 0) == 0);
    // The sampler is not part of it.
    CHECK(with_sampler_t<P, sampler::DDIM<10>>::Impl::identity() == id);
    CHECK(with_sampler_t<P, sampler::Heun<>>::Impl::identity() == id);
    CHECK(P::Impl::sampler_spec() == (std::string(name).find("EDM") != std::string::npos ? "heun(18)" : "ddim(100)"));
    seen.insert(id);
  });
  // Presets that differ in their type differ in their identity, but for the feature losses, whose
  // backbones differ in name (checked above), every preset is a distinct string.
  CHECK(seen.size() == expected.size());
  // Compile-time parameters are spelled: weights as exact ratios, weightings, samplers' settings.
  using MinSNRCas = Model<schedule::Linear, topology::Cascaded<>,
                          loss::Set<loss::Weighted<loss::EpsMSE<std::ratio<1, 3>>, loss::weighting::MinSNR<std::ratio<5, 2>>>,
                                    loss::X0MSE<std::ratio<2>>, loss::MuMix<>>,
                          sampler::DDIM<>>;
  CHECK(MinSNRCas::Impl::identity() == "linear | cascaded(unet <- x0star, unet) | eps@min-snr(5/2):1/3 + x0:2 + mu:1");
  CHECK(sampler::spec<sampler::DDIM<50, std::ratio<1, 2>>>() == "ddim(50, eta=1/2)");
  CHECK(sampler::spec<sampler::Heun<>>() == "heun(10)");
  CHECK(sampler::spec<sampler::Ancestral<250, sampler::FixedSmall>>() == "ancestral(250, fixed-small)");
  CHECK(names::ratio<std::ratio<4, 8>>() == "1/2");
}

// ---- the PyTorch eager replica that bench/vs_pytorch.py times casdm against is the same model ----
// casdm's CasDM at the main job's size, weights perturbed off their zero initialisation, written
// with its inputs and outputs; bench/pytorch_eager.py loads the weights strictly by name into its
// replica and must give the same predictions, loss terms and DDIM samples, and count by forward
// hooks the FLOP that net::forward_flops counts from the options.
TEST_CASE("The PyTorch eager replica of bench/ is casdm's CasDM and forward_flops counts its FLOP", "[models][bench]") {
  const auto o = main_job_options();  // bench/main_job_options.hpp: what the benchmarks time
  torch::manual_seed(3);
  presets::CasDM m(o);
  {
    torch::NoGradGuard g;
    for (auto& p : m->parameters()) p.add_(at::randn_like(p) * 0.05);
  }
  m->eval();
  auto& d = *m->denoiser();
  const int64_t n = 4;
  auto x0 = at::rand({n, 1, 28, 28}) * 2 - 1;
  auto t = at::tensor({0, 250, 600, 999}, at::kLong);
  auto noise = at::randn_like(x0);
  std::map<std::string, at::Tensor> out;
  {
    torch::NoGradGuard g;
    auto pr = d.predict(d.process().q_sample(x0, t, noise), t);
    out["pred.eps"] = pr.eps, out["pred.x0"] = pr.x0, out["pred.r"] = pr.r;
    auto r = m->training_losses(x0, t, noise);
    for (const auto& [name, v] : r.terms) out["loss." + name] = v;
  }
  auto z = at::randn_like(x0);
  out["ddim.noise"] = z;
  out["ddim.steps"] = at::scalar_tensor(5, at::kLong);
  out["ddim.samples"] = sample<sampler::DDIM<>>(d, n, SampleOptions().steps(5).noise(z));
  out["x0"] = x0, out["t"] = t, out["noise"] = noise;
  for (const auto& kv : m->named_parameters(true)) out["model." + kv.key()] = kv.value();
  const auto theta = net::forward_flops(o.theta_net(), 1, 1), phi = net::forward_flops(o.phi_net_options(), 1, 2);
  out["flop.theta"] = at::scalar_tensor(theta, at::kLong);
  out["flop.phi"] = at::scalar_tensor(phi, at::kLong);
  const auto dir = test::scratch("eager-replica");
  test::save_tensors(out, dir / "replica.pt");
  const std::string cmd = std::string(CASDM_PYTHON) + " " + test::source_dir() + "/../bench/pytorch_eager.py check " + dir.string();
  INFO("running " << cmd);
  REQUIRE(std::system(cmd.c_str()) == 0);
  // The count itself, by hand for one res block without attention: two 3×3 convs and the
  // embedding projection at 28², 16 → 16 channels.
  auto one = net::UNetOptions().model_channels(16).channel_mult({1}).num_res_blocks(1).attention_resolutions({}).image_size(28);
  one.middle_attention(false);
  const int64_t conv = 2 * 16 * 16 * 9 * 28 * 28, block = 2 * conv + 2 * 64 * 32;
  // time embedding, in/out convs, encoder block, two middle blocks, two decoder blocks (32 → 16 with a 1×1 skip)
  const int64_t decoder = 2 * 32 * 16 * 9 * 28 * 28 + conv + 2 * 64 * 32 + 2 * 32 * 16 * 28 * 28;
  CHECK(net::forward_flops(one, 1, 1) == 2 * 16 * 64 + 2 * 64 * 64 + 2 * 2 * 1 * 16 * 9 * 28 * 28 + 3 * block + 2 * decoder);
  // The Fix-Res CNN of two equal levels: every block at 28², no resampling convolutions; two
  // encoder and two middle blocks, four decoder blocks (32 → 16 with a 1×1 skip each).
  auto two = net::arch::FixResCNN::configure(
      net::UNetOptions().model_channels(16).channel_mult({1, 1}).num_res_blocks(1).attention_resolutions({14, 7}).image_size(28), 1, 1);
  two.middle_attention(false);
  CHECK(!two.resample());
  CHECK(two.attention_resolutions() == std::vector<int64_t>{7});  // the level of 14 keeps none: no attention at all here
  const int64_t dec = 2 * 32 * 16 * 9 * 28 * 28 + conv + 2 * 64 * 32 + 2 * 32 * 16 * 28 * 28;
  CHECK(net::forward_flops(two, 1, 1, two.resample()) ==
        2 * 16 * 64 + 2 * 64 * 64 + 2 * 2 * 1 * 16 * 9 * 28 * 28 + 4 * block + 4 * dec);
  CHECK(net::forward_flops(two, 1, 1, two.resample()) > net::forward_flops(two, 1, 1, true));
}

// ---- one image on the CPU without autograd: oneDNN's convolution, not LibTorch's native one ----
// LibTorch picks its im2col kernel for a batch of 1 under 20480 input values (3-13x slower here);
// net::conv_forward calls oneDNN's for every 3x3 and 1x1 Conv2d there. Checked through LibTorch's profiler (which kernel ran)
// and against the module's own forward (float32 rounding apart); with autograd on nothing changes.
TEST_CASE("A sampler's batch of one runs the U-Net's convolutions on oneDNN with the same result", "[models][bench]") {
  if (!at::hasMKLDNN()) {
    WARN("this LibTorch has no oneDNN: nothing to check");
    return;
  }
  torch::manual_seed(5);
  auto o = net::UNetOptions(1, 1).image_size(28).model_channels(16).channel_mult({1, 2}).num_res_blocks(1)
               .attention_resolutions({14}).norm_groups(8).dropout(0.0);
  net::UNet u(o);
  {
    torch::NoGradGuard g;
    for (auto& p : u->parameters()) p.add_(at::randn_like(p) * 0.05);
  }
  auto x = at::randn({1, 1, 28, 28});
  auto t = at::tensor({300.0f});
  // calls of each kernel in one forward
  auto kernels = [&](bool grad) {
    at::AutoGradMode mode(grad);
    std::map<std::string, int64_t> calls;
    for (const auto& op : train::profile_ops([&] { u->forward(x, t); }, 1).ops) calls[op.name] = op.calls;
    return calls;
  };
  int64_t conv2d = 0, conv1d = 0;  // the attention's 1x1 Conv1d stay native: faster there (18 vs 99 us)
  for (const auto& m : u->modules(false)) {
    conv2d += m->as<torch::nn::Conv2dImpl>() != nullptr;
    conv1d += m->as<torch::nn::Conv1dImpl>() != nullptr;
  }
  REQUIRE(conv2d > 10);
  REQUIRE(conv1d == 8);  // qkv and proj of 4 attention blocks
  auto off = kernels(false), on = kernels(true);
  CHECK(off["aten::mkldnn_convolution"] == conv2d);
  CHECK(off["aten::_slow_conv2d_forward"] == conv1d);
  CHECK(on["aten::_slow_conv2d_forward"] > conv1d);  // LibTorch's own choice while training
  at::Tensor fast, slow;
  {
    torch::NoGradGuard g;
    fast = u->forward(x, t);
  }
  slow = u->forward(x, t).detach();
  CHECK(test::max_abs_diff(fast, slow) < 1e-5 * std::max(1.0, slow.abs().max().item<double>()));
  CHECK(slow.abs().max().item<double>() > 0.1);  // not a zero output compared with itself
}

TEST_CASE("Attention: every path equals softmax(q kT / sqrt d) v in float64 with its gradients", "[net][attention]") {
  torch::manual_seed(11);
  // L = 49 (the plain formula everywhere) and L = 256 (LibTorch 1.13's sliced CPU path), with the
  // strided q, k, v views the attention block passes.
  for (int64_t L : {49, 64, 256, 300}) {
    const int64_t N = 6, d = 8;
    auto h = at::randn({N, 3 * d, L}).requires_grad_(true);
    auto parts = h.split(d, 1);
    auto q = parts[0].transpose(1, 2), k = parts[1].transpose(1, 2), v = parts[2].transpose(1, 2);
    auto out = net::attention(q, k, v);
    auto gout = at::randn_like(out);
    auto gh = torch::autograd::grad({out}, {h}, {gout}, /*retain_graph=*/true)[0];
    // float64 reference
    auto h64 = h.detach().to(at::kDouble).requires_grad_(true);
    auto p64 = h64.split(d, 1);
    auto q64 = p64[0].transpose(1, 2), k64 = p64[1].transpose(1, 2), v64 = p64[2].transpose(1, 2);
    auto ref = at::bmm(at::softmax(at::bmm(q64, k64.transpose(1, 2)) / std::sqrt(double(d)), -1), v64);
    auto gref = torch::autograd::grad({ref}, {h64}, {gout.to(at::kDouble)})[0];
    INFO("L = " << L);
    CHECK(test::max_abs_diff(out.to(at::kDouble), ref) < 2e-6);
    CHECK(test::max_abs_diff(gh.to(at::kDouble), gref) < 1e-5);
    CHECK(gref.abs().max().item<double>() > 0.1);
    // no grad: the same values (the sliced path from L = 64, so against float64 again)
    {
      torch::NoGradGuard g;
      CHECK(test::max_abs_diff(net::attention(q, k, v).to(at::kDouble), ref.detach()) < 2e-6);
    }
    // a gradient for v only (q and k constants)
    auto vv = v.detach().clone().requires_grad_(true);
    auto out_v = net::attention(q.detach(), k.detach(), vv);
    auto gv = torch::autograd::grad({out_v}, {vv}, {gout})[0];
    CHECK(test::max_abs_diff(out_v.detach(), out.detach()) < 1e-6);
    CHECK(test::max_abs_diff(gv.to(at::kDouble), gref.split(d, 1)[2].transpose(1, 2)) < 1e-5);
#if !CASDM_TORCH_AT_LEAST(2, 0)
    // LibTorch 1.13: long sequences on the CPU take the sliced path, short ones the plain formula.
    const std::string fn = out.grad_fn()->name();
    CHECK((fn.find("SlicedAttention") != std::string::npos) == (L >= net::detail::kSlicedAttentionMinLength));
    {
      torch::NoGradGuard g;
      CHECK(net::detail::takes_sliced_path(q, k, v) == (L >= net::detail::kSlicedAttentionMinLengthNoGrad));
    }
#endif
  }
}

TEST_CASE("a sampler's run reports every step: its timestep, sigma, the images and the step's x0 estimate", "[sampler][callback]") {
  torch::manual_seed(8);
  presets::CasDM m(tiny_options());
  test::perturb(*m);
  auto& d = *m->denoiser();
  const auto noise = at::randn({3, 1, 8, 8});
  std::vector<int64_t> steps, ts;
  std::vector<double> sigmas;
  std::vector<at::Tensor> xs, x0s;
  auto record = [&](const SampleStep& s) {
    CHECK(s.steps == 5);
    steps.push_back(s.step), ts.push_back(s.t), sigmas.push_back(s.sigma);
    xs.push_back(s.x.clone()), x0s.push_back(s.x0.clone());
  };
  const auto so = SampleOptions().steps(5).noise(noise);
  const auto plain = sample<sampler::DDIM<>>(d, 3, so);
  const auto watched = sample<sampler::DDIM<>>(d, 3, SampleOptions(so).on_step(record));
  CHECK(at::equal(plain, watched));  // watching changes nothing
  CHECK(steps == std::vector<int64_t>{1, 2, 3, 4, 5});
  const auto& p = d.respaced<sampler::DDIM<>::Spacing>(5);
  for (int64_t i = 0; i < 5; ++i) {
    const int64_t idx = 4 - i;  // the respaced index of step i + 1
    CHECK(ts[i] == p.timestep_map()[idx].item<int64_t>());
    const double a = p.alphas_cumprod()[idx].item<double>();
    CHECK(sigmas[i] == Approx(std::sqrt((1 - a) / a)).epsilon(1e-12));
    // x̂0 is the denoiser's estimate at the step's input (x_T, then the last step's output).
    const auto x_in = i == 0 ? noise : xs[i - 1];
    const auto e = d.denoise(p, x_in, at::full({3}, idx, at::kLong), true);
    CHECK(at::allclose(x0s[i], e.x0, 1e-5, 1e-6));
  }
  CHECK(at::equal(xs.back().clamp(-1, 1), watched));
  CHECK(ts.front() > ts.back());
  CHECK(ts.back() == 0);
  // Heun evaluates twice a step but reports once, with the step's first estimate.
  steps.clear(), xs.clear(), x0s.clear(), ts.clear(), sigmas.clear();
  sample<sampler::Heun<>>(d, 3, SampleOptions().steps(5).noise(noise).on_step(record));
  CHECK(steps.size() == 5);

  // At the spacing's exact σ (SampleOptions::exact_sigmas) the steps report the targets themselves,
  // and the run is the sampler's on Process::at_sigmas (the network seeing interpolated steps).
  const auto snapped = sample<sampler::Euler<>>(d, 3, SampleOptions().steps(5).noise(noise));
  steps.clear(), xs.clear(), x0s.clear(), ts.clear(), sigmas.clear();
  const auto exact = sample<sampler::Euler<>>(d, 3, SampleOptions().steps(5).noise(noise).exact_sigmas(true).on_step(record));
  const auto targets = sampler::spacing::Karras::sigmas(d.process(), 5);
  REQUIRE(sigmas.size() == 5);
  for (size_t i = 0; i < 5; ++i) CHECK(sigmas[i] == Approx(targets[4 - i]).epsilon(1e-12));
  {
    const auto pe = d.process().at_sigmas(targets);
    CHECK(pe.model_steps()[2].item<double>() != std::round(pe.model_steps()[2].item<double>()));  // between two steps
    c10::NoGradGuard no_grad;
    casdm::detail::EvalModeGuard mode(d);
    const auto by_hand = sampler::run<sampler::Euler<>>(
        pe, [&](const at::Tensor& x, const at::Tensor& t) { return d.denoise(pe, x, t, true); }, noise, {});
    CHECK(at::equal(exact, by_hand.clamp(-1, 1)));
    CHECK(test::max_abs_diff(exact, snapped) > 1e-4);
  }
  CHECK_THROWS_WITH(sample<sampler::DDIM<>>(d, 3, SampleOptions().exact_sigmas(true)),
                    "sample: the DDIM sampler visits trained steps (stride spacing); exact σ between them are for the σ-spaced samplers");
  CHECK_THROWS_WITH(eval::draw_samples("ancestral", d, 3, eval::DrawOptions().sample(SampleOptions().exact_sigmas(true))),
                    Catch::Contains("the ancestral sampler visits trained steps (even spacing)"));
  CHECK_THROWS_WITH(eval::draw_samples("plms", d, 3), "unknown sampler 'plms'; choose one of: ddim, ancestral, dpmpp2m, euler, heun, "
                                                      "euler-a, dpmpp2m-sde, dpmpp2m-sde-heun, dpmpp3m-sde");
  // EDM's churn through casdm::sample: the denoiser evaluated off the run's steps; one seed, one result.
  {
    const auto churned = [&](bool exact_sigmas) {
      at::manual_seed(5);
      steps.clear(), xs.clear(), x0s.clear(), ts.clear(), sigmas.clear();
      return sample<sampler::Heun<>>(d, 3, SampleOptions().steps(5).noise(noise).churn({40}).exact_sigmas(exact_sigmas).on_step(record));
    };
    const auto a = churned(false);
    CHECK(steps.size() == 5);
    CHECK(at::equal(a, churned(false)));
    CHECK(a.isfinite().all().item<bool>());
    CHECK(test::max_abs_diff(a, sample<sampler::Heun<>>(d, 3, SampleOptions().steps(5).noise(noise))) > 1e-4);
    CHECK(test::max_abs_diff(a, churned(true)) > 1e-6);  // σ̂ between steps: the nearest step, or interpolated
    CHECK_THROWS_WITH(sample<sampler::DDIM<>>(d, 3, SampleOptions().churn({1})), Catch::Contains("the ddim sampler has no churn"));
  }
  // By name, a registered sampler draws what its type draws.
  CHECK(at::equal(eval::draw_samples("heun", d, 3, eval::DrawOptions().sample(SampleOptions().steps(4).noise(noise))),
                  eval::draw_samples<sampler::Heun<>>(d, 3, eval::DrawOptions().sample(SampleOptions().steps(4).noise(noise)))));

  // A trajectory every 2 of 5 steps keeps steps 2, 4 and 5 of the first 2 images, a row each.
  sampler::Trajectory tr(2, 2);
  sample<sampler::DDIM<>>(d, 3, SampleOptions(so).on_step(tr.recorder()));
  sample<sampler::DDIM<>>(d, 3, SampleOptions(so).on_step(tr.recorder()));  // a second run is not kept
  REQUIRE(tr.columns() == 3);
  const auto grid = tr.images();
  CHECK(grid.sizes() == at::IntArrayRef({6, 1, 8, 8}));
  steps.clear(), xs.clear(), x0s.clear(), ts.clear(), sigmas.clear();
  sample<sampler::DDIM<>>(d, 3, SampleOptions(so).on_step(record));
  for (int64_t k = 0; k < 3; ++k) {
    const size_t step = k < 2 ? static_cast<size_t>(2 * k + 1) : 4;  // steps 2, 4, 5
    CHECK(at::equal(grid[k], x0s[step][0].clamp(-1, 1)));      // image 0: row 0
    CHECK(at::equal(grid[3 + k], x0s[step][1].clamp(-1, 1)));  // image 1: row 1
  }
  CHECK_THROWS_WITH(sampler::Trajectory(0), Catch::Contains("every must be >= 1"));
  CHECK_THROWS_WITH(sampler::Trajectory(1).images(), Catch::Contains("no sampling step was recorded"));

  // The progress line (casdm-sample's): every step at 0 s apart, only the last at an hour apart.
  auto lines = [&](double every) {
    std::FILE* f = std::tmpfile();
    REQUIRE(f);
    sample<sampler::DDIM<>>(d, 3, SampleOptions(so).on_step(eval::print_step_progress(f, every)));
    std::string text(static_cast<size_t>(std::ftell(f)), '\0');
    std::rewind(f);
    CHECK(std::fread(text.data(), 1, text.size(), f) == text.size());
    std::fclose(f);
    return text;
  };
  std::string want;
  for (int64_t i = 0; i < 5; ++i) want += fmt::format("step {}/5  t {}  sigma {:.4g}\n", i + 1, ts[i], sigmas[i]);
  CHECK(lines(0) == want);
  CHECK(lines(3600) == want.substr(want.rfind("step 5/5")));
  CHECK(ts[4] == 0);
  CHECK(want.substr(want.rfind("step 5/5")) == fmt::format("step 5/5  t 0  sigma {:.4g}\n", sigmas[4]));
}

// ---- EDM (Karras et al. 2022): the continuous σ process, the preconditioned denoiser, its loss ----
namespace {
/// A stand-in raw network F(z, c) = sin(3z) + z/4 that keeps the time it was given (edm_ref.py's).
struct ProbeImpl : torch::nn::Module {
  ProbeImpl() { w = register_parameter("w", at::zeros({1}, at::kDouble)); }
  at::Tensor forward(const at::Tensor& z, const at::Tensor& c, const at::Tensor& /*y*/ = {}) {
    seen = c;
    return at::sin(3 * z) + z / 4;
  }
  at::Tensor w, seen;
};
TORCH_MODULE(Probe);
struct ProbeArch {
  static constexpr const char* name = "probe";
  static Probe make(const net::UNetOptions&, int64_t, int64_t) { return Probe(); }
};
}  // namespace

TEST_CASE("EDM: the continuous sigma process, the preconditioned denoiser and its loss weight equal EDM's own formulas (float64)", "[edm]") {
  const auto file = test::scratch("edm") / ("ref-" + std::to_string(::getpid()) + ".pt");
  test::run_python("edm_ref.py", file.string());
  const auto ref = test::load_tensors(file);
  std::filesystem::remove(file);
  auto want = [&](const std::string& k) { return ref.at(k); };

  // The levels: Karras's ρ = 7 spacing from 0.002 to 80, as k-diffusion's get_sigmas_karras (increasing).
  for (int64_t T : {1000, 5}) {
    const auto s = at::tensor(schedule::EDM::sigmas(T), at::kDouble);
    CHECK(test::max_rel_diff(s, want(fmt::format("karras_{}", T))) < 1e-13);
    CHECK(s[0].item<double>() == 0.002);
    CHECK(s[T - 1].item<double>() == 80.0);
  }
  // A batch of noise levels as a continuous process: σ exact, beyond the levels' ends too.
  const auto sig = want("sigma");
  std::vector<double> levels(sig.data_ptr<double>(), sig.data_ptr<double>() + sig.numel());
  Denoiser<schedule::EDM, topology::EDMPrecond<ProbeArch>> d(tiny_options(2, 1, 100));
  CHECK(d->identity() == "edm | edm(probe)");
  CHECK(d->process().is_continuous());
  const auto q = d->process().at_sigmas(levels);
  CHECK(test::max_abs_diff(q.sigmas(), sig) == 0);
  CHECK(test::max_rel_diff(q.alphas_cumprod(), 1.0 / (1.0 + sig.square())) < 1e-15);
  const auto t = at::arange(7, at::kLong);
  const auto x0 = want("x0"), noise = want("noise");
  const auto x_t = q.q_sample(x0, t, noise);
  CHECK(test::max_rel_diff(x_t * (1 + sig.square()).sqrt().view({-1, 1, 1, 1}), x0 + sig.view({-1, 1, 1, 1}) * noise) < 1e-13);
  // D(x; σ) against EDMPrecond (1e-12), the network's time against c_noise = ln(σ)/4 (in float32).
  const auto pred = d->predict(q, x_t, t);
  CHECK(test::max_rel_diff(pred.x0, want("D")) < 1e-12);
  CHECK(test::max_rel_diff(d->nets().theta->seen, want("c_noise"), 1e-3) < 1e-6);
  CHECK(test::max_rel_diff(q.predict_x0_from_eps(x_t, t, pred.eps), want("D")) < 1e-10);
  // EDMLoss: weight (σ² + σ_d²)/(σ·σ_d)², loss mean(weight·(D − x0)²).
  CHECK(test::max_rel_diff(loss::weighting::EDM<>::weight(q.snr(t, x0).flatten(), loss::weighting::Target::x0), want("weight")) < 1e-12);
  using L = loss::Weighted<loss::X0MSE<>, loss::weighting::EDM<>>;
  const L term(ObjectiveOptions{});
  const auto value = term(LossInputs{q, x0, x_t, t, noise, pred});
  CHECK(test::max_rel_diff(value.reshape({1}), want("loss")) < 1e-12);
  CHECK(L::spec() == "x0@edm");
  // The same weight on ε and v, by ‖ε − ε′‖² = SNR·‖x0 − x0′‖² and ‖v − v′‖² = (SNR + 1)·‖x0 − x0′‖².
  const auto snr = q.snr(t, x0).flatten();
  CHECK(test::max_rel_diff(loss::weighting::EDM<>::weight(snr, loss::weighting::Target::eps) * snr, want("weight")) < 1e-12);
  CHECK(test::max_rel_diff(loss::weighting::EDM<>::weight(snr, loss::weighting::Target::v) * (snr + 1), want("weight")) < 1e-12);

  // A respacing of the levels keeps them exactly; the network's time follows.
  const auto r = d->process().respaced({0, 50, 99});
  CHECK(r.is_continuous());
  CHECK(test::max_abs_diff(r.sigmas(), at::tensor(schedule::EDM::sigmas(100), at::kDouble).index_select(0, at::tensor({0, 50, 99}))) == 0);
  CHECK(test::max_rel_diff(r.model_timesteps(at::arange(3)), r.sigmas().log() / 4) < 1e-6);

  // Training draws ln σ ~ N(−1.2, 1.2²) anywhere, the batch its own process of distinct levels.
  torch::manual_seed(5);
  const auto draw = d->draw_training(4000, x0.options());
  REQUIRE(draw.process);
  const auto ls = draw.process->sigmas().index_select(0, draw.t).log();
  CHECK(std::abs(ls.mean().item<double>() + 1.2) < 0.06);   // 3.2 standard errors
  CHECK(std::abs(ls.std().item<double>() - 1.2) < 0.045);
  CHECK(draw.process->size() <= 4000);
  CHECK((draw.process->sigmas().slice(0, 1) > draw.process->sigmas().slice(0, 0, -1)).all().item<bool>());
  torch::manual_seed(5);
  CHECK(d->draw_training(4000, x0.options()).t.equal(draw.t));

  CHECK_THROWS_WITH(Process::continuous({1.0, 0.5}, 0.25),
                    "Process::continuous: noise levels must be finite and increase from above 0, got 0.5 after 1");
  CHECK_THROWS_WITH(Process::continuous({1.0}, 0), Catch::StartsWith("Process::continuous: the network's time is a finite non-zero multiple"));
}

TEST_CASE("CasDM_EDM: theta is EDM's denoiser (x0star = D_theta), L_x0star trains theta only, L_x0 and L_mu phi only", "[edm][topology][routing]") {
  const auto file = test::scratch("edm") / ("ref-c-" + std::to_string(::getpid()) + ".pt");
  test::run_python("edm_ref.py", file.string());
  const auto ref = test::load_tensors(file);
  std::filesystem::remove(file);
  const auto sig = ref.at("sigma");
  const std::vector<double> levels(sig.data_ptr<double>(), sig.data_ptr<double>() + sig.numel());
  // θ the probe network: x0⋆ is EDMPrecond's D; φ a U-Net on sg[x0⋆]; ε′ derived from x0⋆.
  Denoiser<schedule::EDM, topology::Cascaded<net::arch::UNet, topology::phi_input::X0Star, ProbeArch, topology::theta_head::EDM<>>> d(
      tiny_options(2, 1, 100).net(tiny_options(2, 1, 100).net().attention_resolutions({1})));
  CHECK(d->identity() == "edm | cascaded-edm(unet <- x0star, probe)");
  const auto q = d->process().at_sigmas(levels);
  const auto t = at::arange(7, at::kLong);
  // In float32 (φ's U-Net is): the scalings in float64, then cast.
  const auto x_t = q.q_sample(ref.at("x0"), t, ref.at("noise")).to(at::kFloat);
  const auto pr = d->predict(q, x_t, t);
  CHECK(test::max_rel_diff(pr.x0_star, ref.at("D"), 1e-2) < 2e-5);
  CHECK(pr.r.sizes() == at::IntArrayRef({7, 1, 2, 2}));

  // The preset: gradients routed as in Cas-DM, θ by its own x0 estimate.
  torch::manual_seed(3);
  presets::CasDM_EDM m(tiny_options(4, 1, 100));
  test::perturb(*m);
  auto theta = m->nets().theta->parameters(), phi = m->nets().phi->parameters();
  const auto x0 = at::rand({6, 1, 4, 4}) * 2 - 1;
  const auto draw = m->denoiser()->draw_training(6, x0.options());
  const auto noise = at::randn_like(x0);
  auto report = m->training_losses(x0, draw.t, noise, {}, draw.process.get());
  CHECK(count(reaches(report["x0star"], theta)) == theta.size());
  CHECK(count(reaches(report["x0star"], phi)) == 0);
  for (const std::string term : {"x0", "mu"}) {
    INFO(term);
    CHECK(count(reaches(report[term], theta)) == 0);
    CHECK(count(reaches(report[term], phi)) > 0);
  }
  // L_μ at a continuous σ: the mixed estimate's error, ‖x0 − (r·x0′ + (1−r)·x0⋆)‖² (no posterior).
  const auto& p = *draw.process;
  const auto p2 = m->denoiser()->predict(p, p.q_sample(x0, draw.t, noise), draw.t);
  const auto mixed = p2.r * p2.x0 + (1 - p2.r) * p2.x0_star;
  CHECK(std::abs(report["mu"].item<double>() - (x0 - mixed).square().mean().item<double>()) < 1e-6);
  // L_x0⋆ under EDM's weight: mean over images of (SNR + 1/σ_d²)·‖x0 − x0⋆‖² per image.
  const auto snr = p.snr(draw.t, x0).flatten();
  const auto want = ((snr + 4.0) * (x0 - p2.x0_star).square().flatten(1).mean(1)).mean();
  CHECK(std::abs(report["x0star"].item<double>() - want.item<double>()) < 1e-5 * want.item<double>());
}

TEST_CASE("EDM: on a continuous process the sigma-spaced samplers visit Karras's sigma exactly and DDIM the levels", "[edm][sampler]") {
  presets::EDM m(tiny_options(4, 1, 100));
  std::vector<double> seen;
  const auto so = SampleOptions().steps(5).on_step([&](const SampleStep& s) { seen.push_back(s.sigma); });
  torch::manual_seed(1);
  const auto x = m->sample(3, so);
  CHECK(x.sizes() == at::IntArrayRef({3, 1, 4, 4}));
  CHECK(torch::isfinite(x).all().item<bool>());
  // EDM's own ρ = 7 sigmas for 5 steps (k-diffusion's get_sigmas_karras(5, 0.002, 80)), largest first.
  const double a = std::pow(0.002, 1 / 7.0), b = std::pow(80.0, 1 / 7.0);
  REQUIRE(seen.size() == 5);
  for (int k = 0; k < 5; ++k) {
    const double want = std::pow(b + k / 4.0 * (a - b), 7.0);
    CHECK(std::abs(seen[static_cast<size_t>(k)] - want) <= 1e-9 * want);
  }
  // DDIM visits the levels themselves (25 of the 100).
  seen.clear();
  const auto y = casdm::sample<sampler::DDIM<25>>(m->denoiser(), 2, SampleOptions().on_step([&](const SampleStep& s) { seen.push_back(s.sigma); }));
  const auto grid = schedule::EDM::sigmas(100);
  REQUIRE(seen.size() == 25);
  for (size_t k = 0; k < seen.size(); ++k) {  // each one of the levels exactly, largest first
    CHECK(std::find(grid.begin(), grid.end(), seen[k]) != grid.end());
    if (k > 0) CHECK(seen[k] < seen[k - 1]);
  }
  // The model's checkpoint identity, and its training step runs.
  CHECK(presets::EDM::Impl::identity() == "edm | edm(unet) | x0@edm:1");
  torch::manual_seed(2);
  const auto rep = m->training_losses(at::rand({4, 1, 4, 4}) * 2 - 1);
  CHECK(std::isfinite(rep.total.item<double>()));
}
