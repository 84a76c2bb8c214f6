// The process math of DESIGN §1 against an independent float64 numpy implementation of
// improved-diffusion's formulas (tests/reference/process_ref.py), run at test time.
#include "casdm/core/process.hpp"
#include "casdm/core/estimate.hpp"
#include "casdm/sampler/ancestral.hpp"
#include "casdm/sampler/ddim.hpp"
#include "casdm/schedule/cosine.hpp"
#include "casdm/schedule/linear.hpp"
#include "support.hpp"

using casdm::Process;
using casdm::test::max_abs_diff;

namespace {

const std::map<std::string, at::Tensor>& reference() {
  static const auto ref = [] {
    auto dir = casdm::test::scratch("process");
    casdm::test::run_python("process_ref.py", (dir / "ref.pt").string());
    return casdm::test::load_tensors(dir / "ref.pt");
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
  CHECK(max_abs_diff(p.ddim_step(x_t, t, x0, eps, 0.0, z), want(prefix + "/ddim_eta0")) < tol);
  CHECK(max_abs_diff(p.ddim_step(x_t, t, x0, eps, 0.5, z), want(prefix + "/ddim_eta05")) < tol);
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
          const auto use = casdm::space_timesteps(T, spec);
          const auto ref_use = want(prefix + "@" + spec + "/use");
          REQUIRE(static_cast<int64_t>(use.size()) == ref_use.numel());
          CHECK(at::equal(at::tensor(use, at::kLong), ref_use));
          check_process(base.respaced(spec), prefix + "@" + spec, device);
        }
      }
    }
  }
}

TEST_CASE("space_timesteps follows improved-diffusion exactly", "[process]") {
  using casdm::space_timesteps;
  CHECK(space_timesteps(4000, "ddim100").size() == 100);
  CHECK(space_timesteps(4000, "ddim100")[1] == 40);
  CHECK(space_timesteps(4000, "ddim10")[1] == 400);
  // Section rounding is Python's round, half to even: "3" over 6 steps strides by 2.5, so the
  // middle index 2.5 rounds to 2 (half-up would give 3).
  CHECK(space_timesteps(6, "3") == std::vector<int64_t>{0, 2, 5});
  CHECK(space_timesteps(10, "1") == std::vector<int64_t>{0});
  CHECK(space_timesteps(10, "10") == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(space_timesteps(7, "2,2") == std::vector<int64_t>{0, 3, 4, 6});
  CHECK_THROWS_WITH(space_timesteps(10, "ddim6"), Catch::Contains("cannot create exactly 6 steps"));
  CHECK_THROWS_WITH(space_timesteps(10, "20"), Catch::Contains("cannot divide a section of 10 steps into 20"));
  CHECK_THROWS_WITH(space_timesteps(10, "a,b"), Catch::Contains("cannot read 'a'"));
}

TEST_CASE("a respaced process maps to original timesteps rescaled to 0..1000", "[process]") {
  const auto p = Process(casdm::schedule::Cosine::betas(4000)).respaced("ddim10");
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
