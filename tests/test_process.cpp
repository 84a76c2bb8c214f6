// The process math of DESIGN §1 against an independent float64 numpy implementation of
// improved-diffusion's formulas (tests/reference/process_ref.py), run at test time.
#include "casdm/core/process.hpp"
#include "casdm/core/estimate.hpp"
#include "casdm/sampler/ancestral.hpp"
#include "casdm/sampler/ddim.hpp"
#include "casdm/sampler/dpm_solver.hpp"
#include "casdm/sampler/karras.hpp"
#include "casdm/sampler/registry.hpp"
#include "casdm/schedule/cosine.hpp"
#include "casdm/schedule/linear.hpp"
#include "support.hpp"

#include <unistd.h>

using casdm::Process;
using casdm::test::max_abs_diff;
using casdm::test::max_rel_diff;

namespace {

const std::map<std::string, at::Tensor>& reference() {
  static const auto ref = [] {
    // A file of this process's own: CTest runs the cases of this file side by side.
    const auto file = casdm::test::scratch("process") / ("ref-" + std::to_string(::getpid()) + ".pt");
    casdm::test::run_python("process_ref.py", file.string());
    auto out = casdm::test::load_tensors(file);
    std::filesystem::remove(file);
    return out;
  }();
  return ref;
}

const at::Tensor& want(const std::string& key) {
  const auto& r = reference();
  auto it = r.find(key);
  if (it == r.end()) FAIL("reference has no " << key);
  return it->second;
}

Process make(const std::string& schedule, int64_t T) {
  return Process(schedule == "linear" ? casdm::schedule::Linear::betas(T) : casdm::schedule::Cosine::betas(T));
}

void check_process(const Process& p, const std::string& prefix, const c10::Device& device) {
  INFO(prefix << " on " << device);
  constexpr double tol = 1e-12;
  CHECK(max_abs_diff(p.betas(), want(prefix + "/betas")) < tol);
  CHECK(max_abs_diff(p.alphas_cumprod(), want(prefix + "/alphas_cumprod")) < tol);
  CHECK(max_abs_diff(p.alphas_cumprod_prev(), want(prefix + "/alphas_cumprod_prev")) < tol);
  CHECK(max_abs_diff(p.posterior_variance(), want(prefix + "/posterior_variance")) < tol);
  CHECK(max_abs_diff(p.posterior_log_variance_clipped(), want(prefix + "/posterior_log_variance_clipped")) < tol);
  CHECK(max_abs_diff(p.posterior_mean_coef1(), want(prefix + "/posterior_mean_coef1")) < tol);
  CHECK(max_abs_diff(p.posterior_mean_coef2(), want(prefix + "/posterior_mean_coef2")) < tol);
  CHECK(at::equal(p.timestep_map(), want(prefix + "/timestep_map")));

  auto on = [&](const at::Tensor& x) { return x.to(device); };
  const auto t = on(want(prefix + "/t"));
  const auto x0 = on(want("in/x0")), noise = on(want("in/noise")), eps = on(want("in/eps")), z = on(want("in/z"));
  const auto x_t = p.q_sample(x0, t, noise);
  CHECK(x_t.device() == device);
  CHECK(x_t.scalar_type() == at::kDouble);
  CHECK(max_abs_diff(x_t, want(prefix + "/q_sample")) < tol);
  const auto post = p.q_posterior_mean_variance(x0, x_t, t);
  CHECK(max_abs_diff(post.mean, want(prefix + "/posterior_mean")) < tol);
  CHECK(max_abs_diff(post.variance.flatten(), want(prefix + "/posterior_variance").index_select(0, t.cpu())) < tol);
  // √(1/ᾱ − 1) reaches ~1e3 at t = T−1 of the cosine schedule: compare relative there.
  CHECK(casdm::test::max_rel_diff(p.predict_x0_from_eps(x_t, t, eps), want(prefix + "/x0_from_eps"), 1.0) < tol);
  CHECK(max_abs_diff(p.predict_eps_from_x0(x_t, t, x0), want(prefix + "/eps_from_x0")) < tol);
  CHECK(max_abs_diff(p.v_target(x0, t, noise), want(prefix + "/v")) < tol);
  CHECK(max_abs_diff(p.predict_x0_from_v(x_t, t, eps), want(prefix + "/x0_from_v")) < tol);
  CHECK(max_abs_diff(p.predict_eps_from_v(x_t, t, eps), want(prefix + "/eps_from_v")) < tol);
  CHECK(casdm::test::max_rel_diff(p.snr(t, x_t).flatten(), want(prefix + "/snr").index_select(0, t.cpu()), 1.0) < tol);
  CHECK(max_abs_diff(casdm::sampler::ddim_step(p, x_t, t, x0, eps, 0.0, z), want(prefix + "/ddim_eta0")) < tol);
  CHECK(max_abs_diff(casdm::sampler::ddim_step(p, x_t, t, x0, eps, 0.5, z), want(prefix + "/ddim_eta05")) < tol);
  // The samplers' runs, one image at a time (a run steps every image at one index), with the
  // estimate (x0, ε) handed to them: their noise is drawn by the run, so it is drawn again from
  // the same seed and swapped for the reference's z in the expected value.
  using casdm::sampler::Ancestral;
  using casdm::sampler::DDIM;
  using casdm::sampler::FixedLarge;
  using casdm::sampler::FixedSmall;
  auto pick = [&](const at::Tensor& tab) { return tab.index_select(0, t.cpu()).to(device).view({-1, 1, 1, 1}); };
  const auto abar = pick(want(prefix + "/alphas_cumprod")), abar_prev = pick(want(prefix + "/alphas_cumprod_prev"));
  const auto mask = t.ne(0).to(at::kDouble).view({-1, 1, 1, 1});
  auto run_each = [&](auto sampler, const casdm::SampleOptions& so, at::Tensor& z_run) {
    using S = decltype(sampler);
    std::vector<at::Tensor> out, zs;
    for (int64_t b = 0; b < t.size(0); ++b) {
      const auto xb = x_t.slice(0, b, b + 1), x0b = x0.slice(0, b, b + 1), eb = eps.slice(0, b, b + 1);
      const int64_t i = t[b].item<int64_t>();
      at::manual_seed(100 + b);
      typename S::Run run(p, so);
      out.push_back(run.step([&](const at::Tensor&, const at::Tensor& tb) {
        CHECK(tb.item<int64_t>() == i);
        return casdm::Estimate{x0b, eb};
      }, xb, i));
      at::manual_seed(100 + b);
      zs.push_back(at::randn_like(xb));
    }
    z_run = at::cat(zs);
    return at::cat(out);
  };
  at::Tensor zr;
  auto ddim0 = run_each(DDIM<>{}, casdm::SampleOptions().eta(0.0), zr);
  CHECK(max_abs_diff(ddim0, want(prefix + "/ddim_eta0")) < tol);
  auto ddim05 = run_each(DDIM<>{}, casdm::SampleOptions().eta(0.5), zr);
  const auto sigma = 0.5 * ((1 - abar_prev) / (1 - abar)).sqrt() * (1 - abar / abar_prev).sqrt();
  CHECK(max_abs_diff(ddim05, want(prefix + "/ddim_eta05") + mask * sigma * (zr - z)) < tol);
  auto small = run_each(Ancestral<1, FixedSmall>{}, {}, zr);
  const auto small_sd = pick(want(prefix + "/posterior_log_variance_clipped")).mul(0.5).exp();
  CHECK(max_abs_diff(small, want(prefix + "/ancestral_small") + mask * small_sd * (zr - z)) < tol);
  auto large = run_each(Ancestral<1, FixedLarge>{}, {}, zr);
  auto large_var = want(prefix + "/betas").clone();
  if (large_var.size(0) > 1) large_var[0] = want(prefix + "/posterior_variance")[1];
  CHECK(max_abs_diff(large, want(prefix + "/ancestral_large") + mask * pick(large_var).sqrt() * (zr - z)) < tol);
}

}  // namespace

TEST_CASE("process tables and steps equal the float64 reference", "[process]") {
  for (const auto& device : casdm::test::devices()) {
    for (const std::string schedule : {"linear", "cosine"}) {
      for (const int64_t T : {1000, 4000}) {
        const std::string prefix = schedule + "_" + std::to_string(T);
        const auto base = make(schedule, T);
        check_process(base, prefix, device);
        for (const std::string spec : {"ddim100", "ddim10", "250", "10,20,30"}) {
          const auto use = casdm::sampler::spacing::space_timesteps(T, spec);
          const auto ref_use = want(prefix + "@" + spec + "/use");
          REQUIRE(static_cast<int64_t>(use.size()) == ref_use.numel());
          CHECK(at::equal(at::tensor(use, at::kLong), ref_use));
          check_process(base.respaced(use), prefix + "@" + spec, device);
        }
      }
    }
  }
}

TEST_CASE("space_timesteps follows improved-diffusion exactly", "[process]") {
  using casdm::sampler::spacing::space_timesteps;
  CHECK(space_timesteps(4000, "ddim100").size() == 100);
  CHECK(space_timesteps(4000, "ddim100")[1] == 40);
  CHECK(space_timesteps(4000, "ddim10")[1] == 400);
  // Section rounding is Python's round, half to even: "3" over 6 steps strides by 2.5, so the
  // middle index 2.5 rounds to 2 (half-up would give 3).
  CHECK(space_timesteps(6, "3") == std::vector<int64_t>{0, 2, 5});
  CHECK(space_timesteps(10, "1") == std::vector<int64_t>{0});
  CHECK(space_timesteps(10, "10") == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(space_timesteps(7, "2,2") == std::vector<int64_t>{0, 3, 4, 6});
  CHECK_THROWS_WITH(space_timesteps(10, "ddim6"), "stride spacing: 6 steps: takes the steps of T = 10 at an integer stride, which makes 5 or 10 but not 6");
  CHECK_THROWS_WITH(space_timesteps(10, "20"), Catch::Contains("cannot divide a section of 10 steps into 20"));
  CHECK_THROWS_WITH(space_timesteps(10, "a,b"), Catch::Contains("cannot read 'a'"));
}

TEST_CASE("a respaced process maps to original timesteps rescaled to 0..1000", "[process]") {
  const auto p = casdm::sampler::respace<casdm::sampler::DDIM<>>(Process(casdm::schedule::Cosine::betas(4000)), 10);
  CHECK(p.size() == 10);
  CHECK(p.original_size() == 4000);
  const auto mt = p.model_timesteps(at::arange(10, at::kLong));
  CHECK(max_abs_diff(mt, at::arange(10, at::kDouble) * 100.0) == 0.0);
  // Respacing a respaced process still maps to the original steps.
  const auto q = p.respaced(std::vector<int64_t>{0, 9});
  CHECK(at::equal(q.timestep_map(), at::tensor({int64_t{0}, int64_t{3600}})));
}

TEST_CASE("bad process input is refused with a clear message", "[process]") {
  CHECK_THROWS_WITH(Process(at::zeros({3}, at::kDouble)), Catch::Contains("betas must lie in (0, 1]"));
  CHECK_THROWS_WITH(casdm::schedule::Cosine::betas(0), Catch::Contains("T must be >= 1"));
  const Process p(casdm::schedule::Linear::betas(100));
  CHECK_THROWS_WITH(p.respaced(std::vector<int64_t>{3, 2}), Catch::Contains("increasing"));
  CHECK_THROWS_WITH(p.q_sample(at::zeros({2, 1, 2, 2}), at::zeros({2}, at::kLong), at::zeros({2, 1, 3, 3})),
                    Catch::Contains("shapes differ, [2,1,2,2] vs [2,1,3,3]"));
}

// ---- ODE samplers (DPM-Solver++(2M), Karras Euler/Heun) on a Gaussian whose denoiser is exact ----
namespace {

const std::map<std::string, at::Tensor>& solver_reference() {
  static const auto ref = [] {
    // A file of this process's own: CTest runs the cases of this file side by side.
    const auto file = casdm::test::scratch("solvers") / ("ref-" + std::to_string(::getpid()) + ".pt");
    casdm::test::run_python("solvers_ref.py", file.string());
    auto out = casdm::test::load_tensors(file);
    std::filesystem::remove(file);
    return out;
  }();
  return ref;
}
const at::Tensor& want_solver(const std::string& key) {
  auto it = solver_reference().find(key);
  if (it == solver_reference().end()) FAIL("solver reference has no " << key);
  return it->second;
}

// E[x0 | x_t] for data N(m, S) in 4 dimensions (images [N, 1, 2, 2]) at index t of p, in float64:
// with x = x_t/√ᾱ and σ² = (1−ᾱ)/ᾱ, x̂0 = m + S(S + σ²I)⁻¹(x − m). Counts its calls.
struct Gaussian {
  const Process& p;
  at::Tensor m, S;
  int calls = 0;
  casdm::Estimate operator()(const at::Tensor& x_t, const at::Tensor& t) {
    ++calls;
    const int64_t i = t[0].item<int64_t>();
    REQUIRE(t.eq(i).all().item<bool>());
    const double abar = p.alphas_cumprod()[i].item<double>();
    const auto K = S.mm(at::inverse(S + (1 - abar) / abar * at::eye(4, at::kDouble)));
    const auto x = x_t.reshape({x_t.size(0), 4}) / std::sqrt(abar);
    auto x0 = (m + (x - m).mm(K.t())).reshape(x_t.sizes());
    return {x0, p.predict_eps_from_x0(x_t, t, x0)};
  }
};

template <class Smp>
at::Tensor run_exact(const Process& p, const at::Tensor& xT, int* calls = nullptr) {
  Gaussian g{p, want_solver("m"), want_solver("S")};
  auto out = casdm::sampler::run<Smp>(p, std::ref(g), xT.view({-1, 1, 2, 2}), {}).view({-1, 4});
  if (calls) *calls = g.calls;
  return out;
}

// The exact mean and covariance of a sampler's output when x_T ~ N(0, I): on a Gaussian the whole
// run is an affine map x_T ↦ A·x_T + b (every step is linear in x and in x̂0, which is affine).
std::pair<at::Tensor, at::Tensor> exact_moments(const std::function<at::Tensor(const at::Tensor&)>& f) {
  const auto b = f(at::zeros({1, 4}, at::kDouble));
  const auto A = (f(at::eye(4, at::kDouble)) - b).t();
  return {b.flatten(), A.mm(A.t())};
}
double cov_error(const at::Tensor& cov, const at::Tensor& S) { return ((cov - S).norm() / S.norm()).item<double>(); }

// Whole runs of every σ-spaced sampler in n steps at its spacing's σ of `base`, taken exactly
// (Process::at_sigmas), against the reference's "exact/…" runs: the ODE solvers' results and
// network evaluations, the SDE solvers' results with the reference's noise.
void check_exact_runs(const Process& base, int64_t n) {
  using namespace casdm::sampler;
  const auto xT = want_solver("xT");
  auto ode = [&](auto sampler, const std::string& name, int evaluations) {
    using S = decltype(sampler);
    INFO(name << n);
    const auto p = base.at_sigmas(S::Spacing::sigmas(base, n));
    int calls = 0;
    CHECK(max_abs_diff(run_exact<S>(p, xT, &calls), want_solver(fmt::format("exact/{}{}/x0", name, n))) < 1e-10);
    CHECK(calls == evaluations);
  };
  ode(Euler<>{}, "euler", static_cast<int>(n));
  ode(Heun<>{}, "heun", static_cast<int>(2 * n - 1));
  ode(DPMSolverPP<>{}, "dpmpp2m", static_cast<int>(n));
  auto sde = [&](auto sampler) {
    using S = decltype(sampler);
    const std::string key = fmt::format("exact/{}{}", S::name, n);
    INFO(key);
    const auto p = base.at_sigmas(S::Spacing::sigmas(base, n));
    const auto z = want_solver(key + "/z");
    int64_t k = 0;
    auto so = casdm::SampleOptions().eta(1.0).step_noise([&](const at::Tensor& x, double, double) {
      return z[k++].view(x.sizes()).to(x.scalar_type());
    });
    Gaussian g{p, want_solver("m"), want_solver("S")};
    const auto out = run<S>(p, std::ref(g), xT.view({-1, 1, 2, 2}), so).view({-1, 4});
    CHECK(k == n - 1);
    CHECK(max_abs_diff(out, want_solver(key + "/x0")) < 1e-10);
  };
  sde(EulerAncestral<>{});
  sde(DPMSolverPP2MSDE<>{});
  sde(DPMSolverPP2MSDE<20, Correction::heun>{});
  sde(DPMSolverPP3MSDE<>{});
}

}  // namespace

TEST_CASE("sigma-based spacings choose distinct steps of the process by sigma", "[process][solver]") {
  const Process p(casdm::schedule::Cosine::betas(1000));
  // The reference's own choice of steps is compared in the next test; here the edges.
  CHECK(p.sigmas()[990].item<double>() < 80);
  CHECK(p.sigmas()[991].item<double>() > 80);
  for (const int64_t n : {1, 2, 10, 20, 1000}) {
    for (const std::string kind : {"karras", "logsnr"}) {
      INFO(kind << n);
      const auto use = casdm::sampler::spacing::sigma_timesteps(p, n, kind == "karras" ? 7.0 : 0.0);
      REQUIRE(static_cast<int64_t>(use.size()) == n);
      for (size_t k = 1; k < use.size(); ++k) CHECK(use[k] > use[k - 1]);
      CHECK(use.front() == (n == 1 ? 991 : 0));  // σ 80 is nearest at index 991; one step starts there
      CHECK((kind == "karras" ? casdm::sampler::spacing::Karras::timesteps(p, n) : casdm::sampler::spacing::LogSNR::timesteps(p, n)) == use);
    }
  }
  CHECK(casdm::sampler::spacing::sigma_timesteps(p, 10, 7.0).back() == 991);
  CHECK_THROWS_WITH(casdm::sampler::spacing::LogSNR::timesteps(p, 0), "σ spacing: cannot choose 0 steps out of 1000");
  CHECK_THROWS_WITH(casdm::sampler::spacing::Karras::timesteps(p, 1001), "σ spacing: cannot choose 1001 steps out of 1000");
  CHECK_THROWS_WITH(casdm::sampler::spacing::Even::timesteps(p, 1001), "even spacing: 1001 steps out of T = 1000");
  CHECK_THROWS_WITH(casdm::sampler::spacing::Stride::timesteps(p, 0), "stride spacing: 0 steps out of T = 1000");
}

TEST_CASE("DPM-Solver++(2M), Euler and Heun runs equal an independent float64 implementation", "[sampler][solver]") {
  using namespace casdm::sampler;
  const Process base(casdm::schedule::Cosine::betas(1000));
  const auto xT = want_solver("xT");
  auto check = [&](auto sampler, const std::string& name, int64_t n, int evaluations) {
    using S = decltype(sampler);
    INFO(name << " " << n << " steps");
    const auto p = casdm::sampler::respace<S>(base, n);
    CHECK(at::equal(p.timestep_map(), want_solver(name + std::to_string(n) + "/use")));
    int calls = 0;
    const auto out = run_exact<S>(p, xT, &calls);
    CHECK(calls == evaluations);
    CHECK(max_abs_diff(out, want_solver(name + std::to_string(n) + "/x0")) < 1e-10);
  };
  for (const int64_t n : {1, 2, 10, 20}) {
    check(DPMSolverPP<>{}, "dpmpp2m", n, static_cast<int>(n));
    check(Euler<>{}, "euler", n, static_cast<int>(n));
    check(Heun<>{}, "heun", n, static_cast<int>(2 * n - 1));
  }
  // The samplers' names and defaults, and the registry over them.
  CHECK(casdm::sampler::names() == std::vector<std::string>{"ddim", "ancestral", "dpmpp2m", "euler", "heun", "euler-a", "dpmpp2m-sde",
                                                            "dpmpp2m-sde-heun", "dpmpp3m-sde"});
  CHECK(casdm::sampler::visit("heun", [](auto s) { return decltype(s)::type::default_steps; }) == 10);
  CHECK_THROWS_WITH(casdm::sampler::visit("plms", [](auto) { return 0; }), Catch::Contains("unknown sampler 'plms'; choose one of: ddim, ancestral"));
  CHECK_THROWS_WITH(DPMSolverPP<>::Run(base, casdm::SampleOptions().eta(0.5)), Catch::Contains("the dpmpp2m sampler has no eta"));
  CHECK_THROWS_WITH(Heun<>::Run(base, casdm::SampleOptions().eta(0.0)), Catch::Contains("the heun sampler has no eta"));
}

TEST_CASE("Euler ancestral and DPM-Solver++(2M)/(3M) SDE runs equal an independent float64 implementation, and sample the data's moments", "[sampler][solver]") {
  using namespace casdm::sampler;
  const Process base(casdm::schedule::Cosine::betas(1000));
  const auto xT = want_solver("xT");
  auto check = [&](auto sampler, int64_t n, double eta) {
    using S = decltype(sampler);
    const std::string key = fmt::format("{}@{}/{}", S::name, eta, n);
    INFO(key);
    const auto p = respace<S>(base, n);
    CHECK(at::equal(p.timestep_map(), want_solver(fmt::format("euler{}/use", n))));  // Karras σ, as Euler's
    // The reference's noise, step by step: the k-th draw is the step from the k-th σ (high to low).
    const auto z = want_solver(key + "/z");
    int64_t k = 0;
    auto so = casdm::SampleOptions().eta(eta).step_noise([&](const at::Tensor& x, double s, double s_next) {
      const int64_t i = p.size() - 1 - k;
      CHECK(std::abs(s / p.sigmas()[i].template item<double>() - 1) < 1e-12);
      CHECK(std::abs(s_next / p.sigmas()[i - 1].template item<double>() - 1) < 1e-12);
      return z[k++].view(x.sizes()).to(x.scalar_type());
    });
    Gaussian g{p, want_solver("m"), want_solver("S")};
    const auto out = run<S>(p, std::ref(g), xT.view({-1, 1, 2, 2}), so).view({-1, 4});
    CHECK(g.calls == n);
    CHECK(k == n - 1);  // a draw on every step but the last, to σ = 0
    CHECK(max_abs_diff(out, want_solver(key + "/x0")) < 1e-10);
  };
  for (const double eta : {1.0, 0.5})
    for (const int64_t n : {1, 2, 10, 20}) {
      check(EulerAncestral<>{}, n, eta);
      check(DPMSolverPP2MSDE<>{}, n, eta);
      check(DPMSolverPP2MSDE<20, Correction::heun>{}, n, eta);
      check(DPMSolverPP3MSDE<>{}, n, eta);
    }
  // η = 0 makes DPM-Solver++(2M) SDE an ODE solver: with Karras steps, deterministic, without noise drawn.
  {
    const auto p = respace<DPMSolverPP2MSDE<>>(base, 10);
    Gaussian g{p, want_solver("m"), want_solver("S")};
    auto so = casdm::SampleOptions().eta(0.0).step_noise([](const at::Tensor&, double, double) -> at::Tensor {
      FAIL("noise drawn at eta 0");
      return {};
    });
    (void)run<DPMSolverPP2MSDE<>>(p, std::ref(g), xT.view({-1, 1, 2, 2}), so);
  }
  // On the exact Gaussian denoiser, 50 steps from x_T ~ N(0, I) with fresh noise give the data's mean
  // and covariance: the run is affine in x_T and the noises, so its moments are exact (rows: x_T = 0
  // with no noise, x_T = e_j, and noise e_j at step k alone).
  auto moments = [&](auto sampler, int64_t n) {
    using S = decltype(sampler);
    const auto p = respace<S>(base, n);
    const int64_t rows = 1 + 4 + 4 * (n - 1);
    auto start = at::zeros({rows, 4}, at::kDouble);
    start.slice(0, 1, 5).copy_(at::eye(4, at::kDouble));
    int64_t k = 0;
    auto so = casdm::SampleOptions().step_noise([&](const at::Tensor& x, double, double) {
      auto z = at::zeros({rows, 4}, at::kDouble);
      z.slice(0, 5 + 4 * k, 9 + 4 * k).copy_(at::eye(4, at::kDouble));
      ++k;
      return z.view(x.sizes());
    });
    Gaussian g{p, want_solver("m"), want_solver("S")};
    const auto out = run<S>(p, std::ref(g), start.view({-1, 1, 2, 2}), so).view({-1, 4});
    const auto b = out[0], A = (out.slice(0, 1) - b).t();  // columns: x_T's, then each step's noise
    return std::pair{b, A.mm(A.t())};
  };
  const auto m = want_solver("m"), S = want_solver("S");
  auto check_moments = [&](auto sampler, double cov_tol) {
    INFO(decltype(sampler)::name);
    const auto [mean, cov] = moments(sampler, 50);
    const auto [mean4, cov4] = moments(sampler, 200);
    WARN(decltype(sampler)::name << ": covariance error " << cov_error(cov, S) << " in 50 steps, " << cov_error(cov4, S)
                                 << " in 200; mean error " << max_abs_diff(mean, m));
    CHECK(max_abs_diff(mean, m) < 1e-3);
    CHECK(cov_error(cov, S) < cov_tol);
    CHECK(cov_error(cov4, S) < cov_error(cov, S) / 3);  // converging: 4× the steps, at least a third of the error
  };
  // Measured: 18.6 %, 2.6 %, 4.6 % and 1.05 % in 50 steps; 5.1 %, 0.15 %, 0.25 % and 0.076 % in 200.
  check_moments(EulerAncestral<>{}, 0.2);
  check_moments(DPMSolverPP2MSDE<>{}, 0.03);
  check_moments(DPMSolverPP2MSDE<20, Correction::heun>{}, 0.05);
  check_moments(DPMSolverPP3MSDE<>{}, 0.012);
  // η is theirs to take, within [0, 1]; DDIM's too.
  CHECK_THROWS_WITH(EulerAncestral<>::Run(base, casdm::SampleOptions().eta(1.5)), "the euler-a sampler's eta must be in [0, 1], got 1.5");
  CHECK_THROWS_WITH(DPMSolverPP3MSDE<>::Run(base, casdm::SampleOptions().eta(std::nan(""))), Catch::Contains("eta must be in [0, 1], got nan"));
  CHECK_THROWS_WITH(DDIM<>::Run(base, casdm::SampleOptions().eta(INFINITY)), "DDIM: eta must be in [0, 1], got inf");
  CHECK(info("dpmpp3m-sde").default_eta == 1.0);
  CHECK(info("ddim").default_eta == 0.0);
  CHECK((has_eta("euler-a") && !has_eta("heun")));
}

TEST_CASE("between trained steps: Process::at_sigmas is k-diffusion's DiscreteSchedule without quantizing, and the sigma-spaced samplers run on it", "[process][solver][exact-sigmas]") {
  using namespace casdm::sampler;
  const Process base(casdm::schedule::Cosine::betas(1000));
  const auto sig = base.sigmas().contiguous();
  auto list = [](const at::Tensor& t) {
    const auto c = t.contiguous();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  };
  // At the trained σ themselves: the training process again, each step exactly itself.
  {
    const auto p = base.at_sigmas(list(sig));
    CHECK(at::equal(p.model_steps(), at::arange(1000, at::kDouble)));
    CHECK(at::equal(p.timestep_map(), base.timestep_map()));
    CHECK(max_rel_diff(p.alphas_cumprod(), base.alphas_cumprod(), 0) < 1e-12);
    const auto t = at::arange(1000, at::kLong);
    CHECK(at::equal(p.model_timesteps(t), base.model_timesteps(t)));
  }
  // The σ of a fractional step (k-diffusion's t_to_sigma) stands at that step (its sigma_to_t).
  {
    const auto t = want_solver("exact/t_frac");
    const auto p = base.at_sigmas(list(want_solver("exact/t_frac/sigmas")));
    CHECK(max_abs_diff(p.model_steps(), t) < 1e-9);
    CHECK(max_abs_diff(p.model_timesteps(at::arange(t.size(0), at::kLong)).to(at::kDouble), t) < 1e-4);  // float32, ×1000/T = 1
    CHECK(p.timestep_map()[3].item<int64_t>() == 18);  // 17.9: the nearest step, for reports
    // σ back from ᾱ = 1/(1 + σ²): at σ_0 ≈ 0.0025 1 − ᾱ keeps ~11 digits of float64's 16.
    CHECK(max_rel_diff(p.sigmas(), want_solver("exact/t_frac/sigmas"), 0) < 1e-9);
  }
  // Each spacing's targets, the step each stands at, and whole runs there against the reference.
  for (const int64_t n : {2, 10, 20}) {
    for (const std::string kind : {"karras", "logsnr"}) {
      INFO(kind << n);
      const auto targets = kind == "karras" ? spacing::Karras::sigmas(base, n) : spacing::LogSNR::sigmas(base, n);
      const auto want = want_solver(fmt::format("exact/{}{}/sigmas", kind, n));
      CHECK(max_rel_diff(at::tensor(targets, at::kDouble), want, 0) < 1e-13);
      const auto p = base.at_sigmas(targets);
      CHECK(max_rel_diff(p.sigmas(), want, 0) < 1e-12);
      CHECK(max_abs_diff(p.model_steps(), want_solver(fmt::format("exact/{}{}/t", kind, n))) < 1e-9);
    }
    check_exact_runs(base, n);
  }
  // Which samplers can (the registry says so for the programs).
  for (const auto& i : infos()) CHECK(i.exact_sigmas == (i.name != "ddim" && i.name != "ancestral"));
  CHECK(exact_sigma_names() == "dpmpp2m, euler, heun, euler-a, dpmpp2m-sde, dpmpp2m-sde-heun, dpmpp3m-sde");
  // What is not a list of noise levels of this process is refused in one line.
  CHECK_THROWS_WITH(base.at_sigmas({}), "Process::at_sigmas: no noise levels given");
  CHECK_THROWS_WITH(base.at_sigmas({1.0, 1.0}), "Process::at_sigmas: noise levels must be finite and increase from above 0, got 1 after 1");
  CHECK_THROWS_WITH(base.at_sigmas({0.0}), Catch::Contains("increase from above 0, got 0 after 0"));
  CHECK_THROWS_WITH(base.at_sigmas({1.0, NAN}), Catch::Contains("got nan after 1"));
  CHECK_THROWS_WITH(base.at_sigmas({1e6}), Catch::StartsWith("Process::at_sigmas: σ = 1000000 lies outside the process's [0.0"));
  CHECK_THROWS_WITH(base.at_sigmas({1e-4, 1.0}), Catch::Contains("σ = 0.0001 lies outside"));
  CHECK_NOTHROW(base.at_sigmas({sig[0].item<double>() * (1 - 1e-12), sig[999].item<double>() * (1 + 1e-12)}));
}

// A continuous process (EDM's kind) over the same noise levels: every σ-spaced sampler takes its
// spacing's σ exactly without being asked (no steps to snap to) and its runs are the exact-σ runs of
// the discrete process, against the same float64 reference; the network's time is ln(σ)/4 there.
TEST_CASE("on a continuous process the sigma-spaced samplers run at their sigmas exactly and equal the float64 reference", "[process][solver][edm]") {
  using namespace casdm::sampler;
  const Process base(casdm::schedule::Cosine::betas(1000));
  const auto sig = base.sigmas().contiguous();
  const auto c = Process::continuous(std::vector<double>(sig.data_ptr<double>(), sig.data_ptr<double>() + sig.numel()), 0.25);
  for (const int64_t n : {2, 10, 20}) {
    INFO(n << " steps");
    const auto targets = spacing::Karras::sigmas(c, n);
    CHECK(max_rel_diff(at::tensor(targets, at::kDouble), want_solver(fmt::format("exact/karras{}/sigmas", n)), 0) < 1e-13);
    const auto p = c.at_sigmas(targets);
    CHECK(p.is_continuous());
    CHECK(at::equal(p.sigmas(), at::tensor(targets, at::kDouble)));  // the levels themselves, not through ᾱ
    CHECK(max_abs_diff(p.model_steps(), at::tensor(targets, at::kDouble).log() * 0.25) < 1e-15);
    check_exact_runs(c, n);
  }
  // Outside its levels a continuous process still takes σ exactly (it has no end to refuse at).
  CHECK(max_rel_diff(c.at_sigmas({1e-4, 1e6}).sigmas(), at::tensor({1e-4, 1e6}, at::kDouble), 0) < 1e-15);
}

TEST_CASE("EDM's churn on Euler and Heun equals an independent float64 implementation (k-diffusion's s_churn)", "[sampler][solver][churn]") {
  using namespace casdm::sampler;
  const Process base(casdm::schedule::Cosine::betas(1000));
  const auto xT = want_solver("xT");
  const auto settings = want_solver("churn/settings");
  const casdm::Churn churn{settings[0].item<double>(), settings[1].item<double>(), settings[2].item<double>(), settings[3].item<double>()};
  const auto m = want_solver("m"), S = want_solver("S");
  // The exact denoiser at any σ (x_t in variance-preserving form there).
  int off_steps = 0;
  const casdm::DenoiseAt at_sigma = [&](const at::Tensor& x_t, double sigma) {
    ++off_steps;
    const auto K = S.mm(at::inverse(S + sigma * sigma * at::eye(4, at::kDouble)));
    const auto x = x_t.reshape({x_t.size(0), 4}) * std::sqrt(1 + sigma * sigma);
    const auto x0 = (m + (x - m).mm(K.t())).reshape(x_t.sizes());
    return casdm::Estimate{x0, at::Tensor()};
  };
  auto check = [&](auto sampler, int64_t n) {
    using S_ = decltype(sampler);
    const std::string key = fmt::format("churn/{}{}", S_::name, n);
    INFO(key);
    const auto p = respace<S_>(base, n);
    const auto z = want_solver(key + "/z");
    int draws = 0;
    auto so = casdm::SampleOptions().churn(churn).step_noise([&](const at::Tensor& x, double s, double s_hat) {
      // The reference's z[k] belongs to the k-th step from the top, the one from σ.
      int64_t k = -1;
      for (int64_t i = 0; i < p.size(); ++i)
        if (std::abs(p.sigmas()[i].template item<double>() / s - 1) < 1e-12) k = p.size() - 1 - i;
      REQUIRE(k >= 0);
      CHECK(s_hat / s - 1 == Approx(std::min(churn.amount / static_cast<double>(n), std::sqrt(2.0) - 1)).epsilon(1e-12));
      CHECK(s >= churn.t_min);
      CHECK(s <= churn.t_max);
      ++draws;
      return z[k].view(x.sizes());
    });
    Gaussian g{p, m, S};
    off_steps = 0;
    const auto out = run<S_>(p, std::ref(g), xT.view({-1, 1, 2, 2}), so, at_sigma).view({-1, 4});
    CHECK(max_abs_diff(out, want_solver(key + "/x0")) < 1e-10);
    CHECK(draws == off_steps);  // each raised step evaluates once at σ̂, on the trained steps otherwise
    return draws;
  };
  for (const int64_t n : {1, 2, 10, 20}) {
    const int euler = check(Euler<>{}, n), heun = check(Heun<>{}, n);
    CHECK(euler == heun);
    if (n >= 10) CHECK((euler > 0 && euler < n));  // σ = 80 and the last steps lie outside [0.05, 10]
  }
  // No churn asked: the run is the plain one, the denoiser never left its steps.
  {
    const auto p = respace<Heun<>>(base, 10);
    Gaussian g{p, m, S};
    off_steps = 0;
    const auto plain = run<Heun<>>(p, std::ref(g), xT.view({-1, 1, 2, 2}), {}, at_sigma).view({-1, 4});
    CHECK(off_steps == 0);
    CHECK(max_abs_diff(plain, want_solver("heun10/x0")) < 1e-10);
  }
  // Sampling the data's moments: from x_T ~ N(0, I) with fresh churn noise, EDM's settings
  // (S_churn 40 on [0.05, 50], S_noise 1), exact moments from the affine run (rows: x_T = 0 without
  // noise, x_T = e_j, then each churn draw's e_j alone; draws counted first).
  auto moments = [&](auto sampler, int64_t n) {
    using S_ = decltype(sampler);
    const auto p = respace<S_>(base, n);
    const casdm::Churn edm{40, 0.05, 50, 1};
    int64_t draws = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double sg = p.sigmas()[i].template item<double>();
      draws += sg >= edm.t_min && sg <= edm.t_max;
    }
    const int64_t rows = 1 + 4 + 4 * draws;
    auto start = at::zeros({rows, 4}, at::kDouble);
    start.slice(0, 1, 5).copy_(at::eye(4, at::kDouble));
    int64_t k = 0;
    auto so = casdm::SampleOptions().churn(edm).step_noise([&](const at::Tensor& x, double, double) {
      auto z = at::zeros({rows, 4}, at::kDouble);
      z.slice(0, 5 + 4 * k, 9 + 4 * k).copy_(at::eye(4, at::kDouble));
      ++k;
      return z.view(x.sizes());
    });
    Gaussian g{p, m, S};
    const auto out = run<S_>(p, std::ref(g), start.view({-1, 1, 2, 2}), so, at_sigma).view({-1, 4});
    REQUIRE(k == draws);
    const auto b = out[0], A = (out.slice(0, 1) - b).t();
    return std::pair{b, A.mm(A.t())};
  };
  {
    const auto [mean, cov] = moments(Heun<>{}, 50);
    const auto [mean4, cov4] = moments(Heun<>{}, 200);
    const auto [emean, ecov] = moments(Euler<>{}, 50);
    WARN("churn: Heun covariance error " << cov_error(cov, S) << " in 50 steps, " << cov_error(cov4, S) << " in 200; Euler "
                                         << cov_error(ecov, S) << " in 50; mean error " << max_abs_diff(mean, m));
    // Measured: Heun 4.7 % in 50 steps, 0.54 % in 200; Euler 23.6 % in 50; the mean to 1e-7.
    CHECK(max_abs_diff(mean, m) < 1e-3);
    CHECK(cov_error(cov, S) < 0.06);
    CHECK(cov_error(cov4, S) < cov_error(cov, S) / 3);
    CHECK(max_abs_diff(emean, m) < 1e-3);
  }
  // Refusals in one line: samplers without churn, and settings that are not a churn.
  const auto p = respace<Heun<>>(base, 10);
  Gaussian g{p, m, S};
  const auto x = xT.view({-1, 1, 2, 2});
  CHECK_THROWS_WITH(run<DPMSolverPP<>>(p, std::ref(g), x, casdm::SampleOptions().churn({1})),
                    "the dpmpp2m sampler has no churn (Euler's and Heun's, EDM's stochastic sampler)");
  CHECK_THROWS_WITH(run<DPMSolverPP3MSDE<>>(p, std::ref(g), x, casdm::SampleOptions().churn({1})), Catch::Contains("dpmpp3m-sde sampler has no churn"));
  CHECK_THROWS_WITH(Heun<>::Run(p, casdm::SampleOptions().churn({-1})), "the heun sampler's churn must be a finite amount >= 0, got -1");
  CHECK_THROWS_WITH(Euler<>::Run(p, casdm::SampleOptions().churn({1, 2, 1})),
                    "the euler sampler's churn range must satisfy 0 <= t_min <= t_max, got [2, 1]");
  CHECK_THROWS_WITH(Euler<>::Run(p, casdm::SampleOptions().churn({1, 0, 1, NAN})), Catch::Contains("churn noise must be finite and >= 0, got nan"));
  CHECK_THROWS_WITH(run<Euler<>>(p, std::ref(g), x, casdm::SampleOptions().churn({1})),
                    "the euler sampler's churn needs the denoiser at any sigma (casdm::sample gives it)");
  CHECK((info("heun").churn && info("euler").churn && !info("euler-a").churn && !info("ddim").churn));
}

TEST_CASE("check_steps refuses up front exactly the step counts that sampling would refuse", "[sampler]") {
  using namespace casdm::sampler;
  // For every count, check_steps agrees with the process's own respacing of each sampler.
  for (const int64_t T : {7, 20, 1000}) {
    const Process p(casdm::schedule::Cosine::betas(T));
    auto each = [&](auto s, int64_t n) {
      using S = typename decltype(s)::type;
      bool sampling_refuses = false, refused = false;
      try {
        (void)respace<S>(p, n);
      } catch (const std::invalid_argument&) {
        sampling_refuses = true;
      }
      try {
        check_steps(S::name, T, n);
      } catch (const std::invalid_argument&) {
        refused = true;
      }
      INFO(S::name << " T=" << T << " n=" << n);
      CHECK(refused == (sampling_refuses || n > T));
    };
    for (int64_t n = 1; n <= T + 1; ++n) {
      each(type_tag<DDIM<>>{}, n);  // the rule with gaps: every count
      if (T < 100 || n < 3 || n > T - 2 || n % 97 == 0)  // the σ spacings cost O(T) a count: a sample of them at T = 1000
        std::apply([&](auto... samplers) { (each(type_tag<decltype(samplers)>{}, n), ...); }, All{});
    }
  }
  CHECK_THROWS_WITH(check_steps("ddim", 1000, 999),
                    "steps 999: DDIM takes the steps of T = 1000 at an integer stride, which makes 500 or 1000 but not 999");
  CHECK_THROWS_WITH(check_steps("ddim", 1000, 700), Catch::Contains("which makes 500 or 1000 but not 700"));
  CHECK_THROWS_WITH(check_steps("ddim", 20, 1, "--sample-steps"), "--sample-steps 1: DDIM takes the steps of T = 20 at an integer stride, which makes 2 but not 1");
  CHECK_THROWS_WITH(check_steps("heun", 20, 21), "steps 21: more than the model's T = 20");
  CHECK_NOTHROW(check_steps("plms", 20, 15));  // a sampler of the user's: held to T only
  CHECK_THROWS_WITH(check_steps("plms", 20, 21), "steps 21: more than the model's T = 20");
  CHECK_NOTHROW(check_steps("ddim", 1000, 0));  // the default
  CHECK_NOTHROW(check_steps("ancestral", 1000, 999));
}

TEST_CASE("Euler is DDIM with eta 0, and DPM-Solver++'s first step is DDIM's", "[sampler][solver]") {
  using namespace casdm::sampler;
  const Process p = respace<Euler<>>(Process(casdm::schedule::Cosine::betas(1000)), 10);
  const auto xT = want_solver("xT");
  const auto euler = run_exact<Euler<>>(p, xT);
  Gaussian g{p, want_solver("m"), want_solver("S")};
  const auto ddim = casdm::sampler::run<DDIM<>>(p, std::ref(g), xT.view({-1, 1, 2, 2}), casdm::SampleOptions().eta(0.0));
  CHECK(max_abs_diff(euler, ddim.view({-1, 4})) < 1e-12);
  const auto x = xT.view({-1, 1, 2, 2});
  DPMSolverPP<>::Run dpm(p, {});
  DDIM<>::Run dd(p, casdm::SampleOptions().eta(0.0));
  CHECK(max_abs_diff(dpm.step(std::ref(g), x, 9), dd.step(std::ref(g), x, 9)) < 1e-12);
}

// On N(m, S) with eigenvalues 1, 0.25, 0.09, 0.01 (cosine, T = 1000), the runs' exact output moments
// (float64, from the affine map) against the data's: relative Frobenius error of the covariance —
//   DPM-Solver++(2M) 10 steps 0.081, 20 steps 0.028; Heun 10 steps 0.347 (19 evaluations), 20 steps
//   0.066; Euler 10 steps 0.42 (= DDIM η=0 on the same steps); DDIM on "ddim20" 0.113 (mean off by
//   0.016: it starts at t = 950, σ = 6.4). The mean is within 0.004 for the σ-spaced runs (they
//   start at σ = 80 from N(0, I) instead of N(√ᾱ·m, …)).
TEST_CASE("DPM-Solver++ in 10 steps reproduces a Gaussian's mean and covariance, better than DDIM in 20", "[sampler][solver]") {
  using namespace casdm::sampler;
  const Process base(casdm::schedule::Cosine::betas(1000));
  const auto m = want_solver("m"), S = want_solver("S");
  auto moments = [&](auto sampler, int64_t n) {
    using Smp = decltype(sampler);
    const auto p = respace<Smp>(base, n);
    return exact_moments([&](const at::Tensor& x) { return run_exact<Smp>(p, x); });
  };
  const auto [dpm10_mean, dpm10_cov] = moments(DPMSolverPP<>{}, 10);
  const auto [heun20_mean, heun20_cov] = moments(Heun<>{}, 20);
  const auto [ddim20_mean, ddim20_cov] = moments(DDIM<>{}, 20);
  WARN("covariance error: dpm++ 10 " << cov_error(dpm10_cov, S) << ", heun 20 " << cov_error(heun20_cov, S)
                                     << ", ddim 20 " << cov_error(ddim20_cov, S));
  CHECK(cov_error(dpm10_cov, S) < 0.09);
  CHECK(max_abs_diff(dpm10_mean, m) < 0.005);
  CHECK(cov_error(heun20_cov, S) < 0.07);
  CHECK(max_abs_diff(heun20_mean, m) < 0.005);
  CHECK(cov_error(dpm10_cov, S) < cov_error(ddim20_cov, S));
  CHECK(max_abs_diff(dpm10_mean, m) < max_abs_diff(ddim20_mean, m));
  // And on samples: 20000 draws of x_T; the sample moments' own spread (≈ 1/√20000 on the
  // largest entries) is added to the tolerances.
  at::manual_seed(21);
  const auto xT = at::randn({20000, 4}, at::kDouble);
  const auto p = respace<DPMSolverPP<>>(base, 10);
  const auto x = run_exact<DPMSolverPP<>>(p, xT);
  const auto mean = x.mean(0), c = x - mean;
  const auto cov = c.t().mm(c) / static_cast<double>(x.size(0) - 1);
  CHECK(max_abs_diff(mean, m) < 0.03);
  CHECK(cov_error(cov, S) < 0.12);
}
