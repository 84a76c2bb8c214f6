// The trainer: AdamW and clipping against PyTorch, exact resume, strict checkpoint loading that
// changes nothing on refusal, atomic writes and keep-last-K.
#include "casdm/presets.hpp"
#include "casdm/schedule/linear.hpp"
#include "casdm/train/previews.hpp"
#include "casdm/train/trainer.hpp"

#include <set>

#include "../examples/format1.hpp"
#include "support.hpp"
#include "tiny.hpp"

using namespace casdm;
namespace fs = std::filesystem;

namespace {

std::map<std::string, at::Tensor> snapshot(const std::map<std::string, at::Tensor>& s) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [k, v] : s) out.emplace(k, v.detach().clone());
  return out;
}

/// Every tensor the trainer keeps: model, EMA copies, optimiser state.
template <class M>
std::map<std::string, at::Tensor> everything(train::Trainer<M>& t) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [k, v] : io::state_of(*t.model())) out.emplace("model." + k, v.detach().clone());
  for (size_t i = 0; i < t.options().ema_rates().size(); ++i)
    for (const auto& [k, v] : io::state_of(*t.ema(i))) out.emplace("ema" + std::to_string(i) + "." + k, v.detach().clone());
  for (const auto& [k, v] : t.optimizer().state()) out.emplace("optim." + k, v.detach().clone());
  return out;
}

size_t count_different(const std::map<std::string, at::Tensor>& a, const std::map<std::string, at::Tensor>& b) {
  REQUIRE(a.size() == b.size());
  size_t n = 0;
  for (const auto& [k, v] : a) n += !at::equal(v, b.at(k));
  return n;
}

/// The batch of step s: a fixed function of s (what the data loader guarantees).
at::Tensor batch_for(int64_t s, int64_t n = 4) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(1000 + static_cast<uint64_t>(s));
  return at::rand({n, 1, 8, 8}, g) * 2 - 1;
}

DenoiserOptions resume_options() {
  auto o = test::tiny_options();
  return o.net(o.net().dropout(0.1));  // dropout draws from the generator the checkpoint restores
}

train::TrainerOptions resume_trainer_options() {
  return train::TrainerOptions()
      .optimizer(train::AdamWOptions().lr(2e-3).weight_decay(0.01))
      .ema_rates({0.9, 0.99})
      .grad_clip(0.5)
      .micro_batch(3);
}

/// Rewrites checkpoint `from` into `to` after `edit` changed its casdm.config document.
void edit_config(const fs::path& from, const fs::path& to, const std::function<void(nlohmann::json&)>& edit) {
  auto f = io::read_tensor_file(from);
  auto j = nlohmann::json::parse(f.meta.at("config"));
  edit(j);
  f.meta["config"] = j.dump();
  train::detail::seal(f);  // a consistent file: what is refused is the edit, not the checksum
  io::write_tensor_file(to, f);
}

}  // namespace

TEST_CASE("AdamW and gradient clipping equal torch.optim.AdamW and clip_grad_norm_", "[trainer]") {
  const auto dir = test::scratch("adamw");
  for (double clip : {0.0, 0.3}) {
    DYNAMIC_SECTION("clip " << clip) {
      auto g = at::make_generator<at::CPUGeneratorImpl>(7);
      const std::vector<std::vector<int64_t>> shapes{{5, 3}, {7}, {2, 2, 3}};
      std::map<std::string, at::Tensor> in;
      train::NamedTensors params;
      for (size_t i = 0; i < shapes.size(); ++i) {
        auto p = at::randn(shapes[i], g, at::kDouble);
        in.emplace("p." + std::to_string(i), p.clone());
        params.emplace_back("w" + std::to_string(i), p.requires_grad_(true));
      }
      const int64_t steps = 6;
      for (int64_t k = 0; k < steps; ++k)
        for (size_t i = 0; i < shapes.size(); ++i)
          if (!(i == 1 && (k == 2 || k == 3)))  // parameter 1 has no gradient at steps 2 and 3
            in.emplace("g." + std::to_string(k) + "." + std::to_string(i), at::randn(shapes[i], g, at::kDouble));
      in.emplace("lr", at::scalar_tensor(0.05, at::kDouble));
      in.emplace("wd", at::scalar_tensor(0.1, at::kDouble));
      in.emplace("clip", at::scalar_tensor(clip, at::kDouble));
      in.emplace("steps", at::scalar_tensor(steps, at::kDouble));
      test::save_tensors(in, dir / "in.pt");
      test::run_python("adamw_ref.py", (dir / "in.pt").string() + " " + (dir / "out.pt").string());
      auto ref = test::load_tensors(dir / "out.pt");

      // The host path and the capturable one (step counts and bias corrections on the device),
      // each from the same start, against the same reference.
      for (bool capturable : {false, true}) {
        INFO("capturable " << capturable);
        for (size_t i = 0; i < shapes.size(); ++i) {
          torch::NoGradGuard no_grad;
          params[i].second.copy_(in.at("p." + std::to_string(i)));
        }
        train::AdamW opt(params, train::AdamWOptions().lr(0.05).weight_decay(0.1).capturable(capturable));
        for (int64_t k = 0; k < steps; ++k) {
          opt.zero_grad();
          for (size_t i = 0; i < shapes.size(); ++i) {
            auto it = in.find("g." + std::to_string(k) + "." + std::to_string(i));
            if (it != in.end()) params[i].second.mutable_grad() = it->second.clone();
          }
          if (clip > 0) {
            auto norm = train::clip_grad_norm(params, clip);
            CHECK(test::max_rel_diff(norm, ref.at("norm." + std::to_string(k))) < 1e-13);
          }
          opt.step();
        }
        auto state = opt.state();
        for (size_t i = 0; i < shapes.size(); ++i) {
          const auto n = std::to_string(i);
          CHECK(test::max_rel_diff(params[i].second, ref.at("p." + n)) < 1e-12);
          CHECK(test::max_rel_diff(state.at("exp_avg.w" + n), ref.at("exp_avg." + n)) < 1e-12);
          CHECK(test::max_rel_diff(state.at("exp_avg_sq.w" + n), ref.at("exp_avg_sq." + n), 1e-12) < 1e-12);
        }
        CHECK(state.at("step.w1").item<int64_t>() == steps - 2);
        CHECK(state.at("step.w0").item<int64_t>() == steps);
        CHECK(state.at("step.w1").scalar_type() == at::kLong);  // the checkpoint's form either way
        // The state moves between the two paths: the other one continues with the same step.
        train::NamedTensors a, b;
        for (const auto& [n, p] : params) {
          a.emplace_back(n, p.detach().clone().requires_grad_(true));
          b.emplace_back(n, p.detach().clone().requires_grad_(true));
        }
        train::AdamW same(a, train::AdamWOptions().lr(0.05).weight_decay(0.1).capturable(capturable));
        train::AdamW other(b, train::AdamWOptions().lr(0.05).weight_decay(0.1).capturable(!capturable));
        same.load_state(state, "test");
        other.load_state(state, "test");
        for (size_t i = 0; i < shapes.size(); ++i) {
          a[i].second.mutable_grad() = at::full_like(a[i].second, 0.5);
          b[i].second.mutable_grad() = at::full_like(b[i].second, 0.5);
        }
        same.step();
        other.step();
        for (size_t i = 0; i < shapes.size(); ++i) CHECK(test::max_rel_diff(a[i].second, b[i].second, 1.0) < 1e-14);
        CHECK(other.state().at("step.w1").item<int64_t>() == steps - 1);
      }
    }
  }
}

TEST_CASE("capturable AdamW in float32 equals the host path to float rounding over many steps", "[trainer]") {
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  train::NamedTensors host, dev;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{64, 32}, {32}, {8, 3, 3, 3}}) {
    auto p = at::randn(shape, g);
    host.emplace_back("w" + std::to_string(host.size()), p.clone().requires_grad_(true));
    dev.emplace_back("w" + std::to_string(dev.size()), p.clone().requires_grad_(true));
  }
  const auto o = train::AdamWOptions().lr(1e-3).weight_decay(0.01);
  train::AdamW a(host, o), b(dev, train::AdamWOptions(o).capturable(true));
  double worst = 0;
  for (int k = 0; k < 50; ++k) {
    for (size_t i = 0; i < host.size(); ++i) {
      auto grad = at::randn(host[i].second.sizes(), g);
      host[i].second.mutable_grad() = grad;
      dev[i].second.mutable_grad() = grad.clone();
    }
    a.step();
    b.step();
  }
  for (size_t i = 0; i < host.size(); ++i) {
    const auto d = (host[i].second - dev[i].second).abs().max().item<double>();
    worst = std::max(worst, d / host[i].second.abs().max().item<double>());
  }
  // Float rounding of 50 updates of size ~1e-3 on weights of size ~1: a few ulp of 1e-3 each.
  CHECK(worst < 1e-6);
  CHECK(a.state().at("step.w2").item<int64_t>() == 50);
  CHECK(b.state().at("step.w2").item<int64_t>() == 50);
}

TEST_CASE("EMA follows rate*ema + (1-rate)*p", "[trainer]") {
  auto live = torch::nn::Linear(3, 2), shadow = torch::nn::Linear(3, 2);
  auto before = shadow->weight.detach().clone();
  train::Ema ema(*live, *shadow, 0.75);
  ema.update();
  CHECK(test::max_abs_diff(shadow->weight, before * 0.75 + live->weight.detach() * 0.25) < 1e-7);
  CHECK_THROWS_WITH(train::Ema(*live, *shadow, 1.0), Catch::Contains("EMA rate must be in [0, 1)"));
}

namespace {
/// Largest relative difference over every tensor the trainers keep.
double max_difference(const std::map<std::string, at::Tensor>& a, const std::map<std::string, at::Tensor>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (const auto& [k, v] : a)
    if (v.is_floating_point()) worst = std::max(worst, test::max_rel_diff(v.cpu().to(at::kDouble), b.at(k).cpu().to(at::kDouble), 1e-3));
  return worst;
}

/// 2N steps straight vs N steps, save, load into a freshly initialised trainer, N steps, on
/// `device`. Returns the two trainers' tensors and those after one more step of the resumed one.
struct ResumeRun {
  std::map<std::string, at::Tensor> straight, resumed, one_more;
};
ResumeRun resume_run(const c10::Device& device, const std::filesystem::path& dir, int64_t N) {
  auto batch = [&](int64_t s) { return batch_for(s).to(device); };
  torch::manual_seed(11);
  presets::CasDM m1(resume_options());
  test::perturb(*m1);
  auto init = snapshot(io::state_of(*m1));
  m1->to(device);
  train::Trainer<presets::CasDM> straight(m1, resume_trainer_options());
  torch::manual_seed(5);
  for (int64_t s = 0; s < 2 * N; ++s) straight.step(batch(s));

  torch::manual_seed(11);
  presets::CasDM m2(resume_options());
  io::load_state_strict(*m2, init, "init");
  m2->to(device);
  train::Trainer<presets::CasDM> first(m2, resume_trainer_options());
  torch::manual_seed(5);
  for (int64_t s = 0; s < N; ++s) first.step(batch(s));
  first.save(dir / "half.pt", {{"preset", "CasDM"}});
  for (int i = 0; i < 5; ++i) at::randn({3}, at::TensorOptions().device(device));  // disturb the generators:
  for (int i = 0; i < 5; ++i) at::randn({3});                                     // load must restore them

  torch::manual_seed(999);
  presets::CasDM m3(resume_options());  // other initial weights: load must replace them all
  m3->to(device);
  train::Trainer<presets::CasDM> resumed(m3, resume_trainer_options());
  resumed.load(dir / "half.pt");
  CHECK(resumed.step_count() == N);
  for (int64_t s = N; s < 2 * N; ++s) resumed.step(batch(s));
  CHECK(resumed.step_count() == 2 * N);
  ResumeRun r{everything(straight), everything(resumed), {}};
  resumed.step(batch(2 * N));
  r.one_more = everything(resumed);
  return r;
}
}  // namespace

TEST_CASE("2N steps straight equal N steps, save, load into a fresh trainer, N steps", "[trainer][resume]") {
  const auto dir = test::scratch("resume");
  const int64_t N = 3;
  auto r = resume_run(c10::Device(c10::kCPU), dir, N);
  CHECK(count_different(r.straight, r.resumed) == 0);
  // The comparison can fail: one step more on either side shows up everywhere.
  CHECK(count_different(r.straight, r.one_more) > r.straight.size() / 2);

  auto info = train::read_checkpoint(dir / "half.pt");
  CHECK(info.step == N);
  CHECK(info.get("preset") == "CasDM");
  CHECK(options_differences(info.denoiser_options, resume_options()).empty());
  CHECK(info.objective_options.loss_weights() == std::map<std::string, double>{{"eps", 1.0}, {"x0", 1.0}, {"mu", 1.0}});
}

TEST_CASE("resuming on every device continues the run, its generators included", "[trainer][resume][device]") {
  // cuDNN may pick non-deterministic kernels, and GPU reductions round in other orders than the
  // CPU's: the two runs agree to rounding there, while a generator not restored (other noise,
  // other dropout masks) or a lost optimiser state moves everything by far more.
  const bool was_deterministic = at::globalContext().deterministicCuDNN();
  at::globalContext().setDeterministicCuDNN(true);
  for (const auto& device : test::devices()) {
    INFO(device.str());
    auto r = resume_run(device, test::scratch("resume-" + device.str()), 3);
    CHECK(max_difference(r.straight, r.resumed) < 1e-4);
    CHECK(max_difference(r.straight, r.one_more) > 1e-2);
    auto info = train::read_checkpoint(test::scratch("resume-" + device.str()) / "half.pt");
    CHECK(info.file.tensors.count("rng.cuda") == (device.is_cuda() ? 1u : 0u));
    for (const auto& [k, v] : info.file.tensors) CHECK(v.device().is_cpu());  // a GPU run's file loads anywhere
  }
  at::globalContext().setDeterministicCuDNN(was_deterministic);
}

TEST_CASE("a checkpoint of another model, size, T or EMA set is refused and changes nothing", "[trainer][checkpoint]") {
  const auto dir = test::scratch("trainer-refusals");
  train::TrainerOptions to;
  to.ema_rates({0.99});
  presets::CasDM cas(test::tiny_options());
  train::Trainer<presets::CasDM> t(cas, to);
  t.step(batch_for(0));
  const auto before = everything(t);
  auto unchanged = [&] {
    CHECK(count_different(before, everything(t)) == 0);
    CHECK(t.step_count() == 1);
  };

  presets::DDPM_Eps eps(test::tiny_options());
  train::Trainer<presets::DDPM_Eps> te(eps, to);
  te.save(dir / "eps.pt", {{"preset", "DDPM_Eps"}});
  CHECK_THROWS_WITH(t.load(dir / "eps.pt"), Catch::Contains("holds another model (preset DDPM_Eps)") &&
                                                Catch::Contains("cosine | eps-only(unet) | eps:1, not cosine | cascaded("));
  unchanged();

  presets::CasDM wide(test::tiny_options().net(test::tiny_options().net().model_channels(32)));
  train::Trainer<presets::CasDM>(wide, to).save(dir / "wide.pt");
  CHECK_THROWS_WITH(t.load(dir / "wide.pt"), Catch::Contains("other model options") &&
                                                 Catch::Contains("net.model_channels: '32' vs '16'"));
  unchanged();

  presets::CasDM longer(test::tiny_options(8, 1, 200));
  train::Trainer<presets::CasDM>(longer, to).save(dir / "T200.pt");
  CHECK_THROWS_WITH(t.load(dir / "T200.pt"), Catch::Contains("diffusion_steps: '200' vs '100'"));

  train::Trainer<presets::CasDM>(cas, train::TrainerOptions().ema_rates({0.9, 0.999})).save(dir / "two-ema.pt");
  CHECK_THROWS_WITH(t.load(dir / "two-ema.pt"), Catch::Contains("has EMA rates {0.9,0.999}, this run asks for {0.99}"));
  unchanged();

  // A file whose names were edited: the mismatch is found before anything is copied.
  auto f = io::read_tensor_file(dir / "two-ema.pt");
  t.save(dir / "good.pt");
  auto g = io::read_tensor_file(dir / "good.pt");
  g.tensors.erase("optim.exp_avg.theta.out_conv.weight");
  g.tensors.emplace("model.extra", at::zeros({1}));
  io::write_tensor_file(dir / "edited.pt", g);
  CHECK_THROWS_WITH(t.load(dir / "edited.pt"), Catch::Contains("(model) does not fit this model") &&
                                                   Catch::Contains("1 unexpected: extra"));
  g.tensors.erase("model.extra");
  io::write_tensor_file(dir / "edited.pt", g);
  const auto rng_before = at::detail::getDefaultCPUGenerator().get_state();
  CHECK_THROWS_WITH(t.load(dir / "edited.pt"), Catch::Contains("optimiser state does not fit") &&
                                                   Catch::Contains("missing exp_avg.theta.out_conv.weight"));
  unchanged();
  CHECK(at::equal(rng_before, at::detail::getDefaultCPUGenerator().get_state()));

  io::save_module(*cas, dir / "model-file.pt");
  CHECK_THROWS_WITH(t.load(dir / "model-file.pt"), Catch::Contains("is not a casdm checkpoint"));
  {
    std::ifstream in(dir / "good.pt", std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(dir / "cut.pt", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 100));
  }
  CHECK_THROWS_WITH(t.load(dir / "cut.pt"), Catch::Contains("cut.pt is not a readable tensor file"));
  unchanged();
  t.load(dir / "good.pt");  // and the trainer's own file loads
}

TEST_CASE("checkpoint folders keep the newest K, and an interrupted save keeps the previous one", "[trainer][checkpoint]") {
  const auto dir = test::scratch("ckpt-dir");
  fs::remove_all(dir);
  presets::DDPM_Eps m(test::tiny_options());
  train::Trainer<presets::DDPM_Eps> t(m, train::TrainerOptions().ema_rates({0.9}));
  train::CheckpointDir ckpts(dir, 2);
  CHECK(!ckpts.latest());
  for (int64_t s = 0; s < 5; ++s) {
    t.step(batch_for(s));
    ckpts.save(t);
  }
  auto files = ckpts.list();
  REQUIRE(files.size() == 2);
  CHECK(files[0].filename() == "ckpt-000000004.pt");
  CHECK(files[1].filename() == "ckpt-000000005.pt");
  CHECK(*ckpts.latest() == files[1]);

  const auto saved = everything(t);
  t.step(batch_for(5));
  CHECK_THROWS_WITH(t.save(ckpts.file_for(5), {}, [] { throw std::runtime_error("power cut"); }),
                    Catch::Contains("power cut"));
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}) == 2);  // no temporary left
  presets::DDPM_Eps back(test::tiny_options());
  train::Trainer<presets::DDPM_Eps> tb(back, train::TrainerOptions().ema_rates({0.9}));
  tb.load(files[1]);
  CHECK(count_different(saved, everything(tb)) == 0);
  CHECK_THROWS_WITH(train::CheckpointDir(dir, 1), Catch::Contains("checkpoints to keep must be >= 2"));
  CHECK_THROWS_WITH(train::CheckpointDir(dir, 0), Catch::Contains("got 0"));
}

TEST_CASE("denoiser options survive their string form, and bad strings are named", "[trainer][options]") {
  auto o = test::tiny_options(16, 3, 4000);
  o.net().dropout(0.3).channel_mult({1, 2, 3});
  o.phi_net(net::UNetOptions().model_channels(8).resample(false).attention_resolutions({}));
  auto back = options_from_map(options_to_map(o));
  CHECK(options_differences(o, back).empty());
  CHECK(back.net().dropout() == 0.3);
  CHECK(back.phi_net()->attention_resolutions().empty());
  CHECK(!back.phi_net()->resample());
  CHECK(options_differences(o, test::tiny_options(16, 3, 4000)).size() > 3);

  auto m = options_to_map(o);
  m["net.channel_mult"] = "1,x";
  CHECK_THROWS_WITH(options_from_map(m), Catch::Contains("'net.channel_mult' = '1,x' is not a comma-separated list"));
  m.erase("image_size");
  CHECK_THROWS_WITH(options_from_map(m), Catch::Contains("'image_size' is missing"));
}

TEST_CASE("a step with a non-finite loss changes nothing, and K in a row stop the run naming step and term", "[trainer][nonfinite]") {
  torch::manual_seed(11);
  presets::CasDM m(test::tiny_options());
  train::Trainer<presets::CasDM> t(m, train::TrainerOptions().ema_rates({0.9}).max_nonfinite_steps(2));
  t.step(batch_for(0));
  CHECK(t.last_skip().empty());
  const auto before = everything(t);
  auto bad = batch_for(1);
  bad[0][0][3][3] = std::numeric_limits<float>::quiet_NaN();
  auto r = t.step(bad);
  CHECK(t.step_count() == 2);
  CHECK(t.skipped_steps() == 1);
  CHECK_THAT(t.last_skip(), Catch::Contains("loss term 'eps' is nan"));
  CHECK(count_different(before, everything(t)) == 0);  // weights, EMA and optimiser as they were
  t.step(batch_for(2));  // a good step resets the count
  CHECK(t.last_skip().empty());
  CHECK(count_different(before, everything(t)) > 0);
  t.step(bad);
  CHECK_THROWS_MATCHES(t.step(bad), train::NonFiniteError,
                       Catch::Message("step 5: loss term 'eps' is nan; 2 step(s) in a row were not finite, so training "
                                      "stops (the weights are those of step 3, before them)"));
  CHECK(t.skipped_steps() == 3);
  CHECK_THROWS_WITH(train::Trainer<presets::CasDM>(m, train::TrainerOptions().max_nonfinite_steps(0)),
                    Catch::Contains("max_nonfinite_steps must be >= 1"));
}

TEST_CASE("the trainer refuses options that make no sense, in one line", "[trainer]") {
  presets::DDPM_Eps m(test::tiny_options());
  using T = train::Trainer<presets::DDPM_Eps>;
  CHECK_THROWS_WITH(T(m, train::TrainerOptions().micro_batch(-1)), Catch::Contains("micro_batch must be >= 0, got -1"));
  CHECK_THROWS_WITH(T(m, train::TrainerOptions().grad_clip(-0.5)), Catch::Contains("grad_clip must be >= 0 (0: off), got -0.5"));
  CHECK_THROWS_WITH(T(m, train::TrainerOptions().ema_rates({0.9, 0.99, 0.9})),
                    Catch::Contains("ema_rates: 0.9 is given twice (one EMA copy per rate)"));
  CHECK_THROWS_WITH(T(m, train::TrainerOptions().ema_rates({1.0})), Catch::Contains("EMA rate must be in [0, 1), got 1"));
  CHECK_NOTHROW(T(m, train::TrainerOptions().ema_rates({0.9, 0.99})));
}

TEST_CASE("non-finite weights are never written to a checkpoint, and a checkpoint holding them is refused", "[trainer][nonfinite]") {
  const auto dir = test::scratch("nonfinite-ckpt");
  fs::remove_all(dir);
  torch::manual_seed(12);
  presets::DDPM_Eps m(test::tiny_options());
  train::Trainer<presets::DDPM_Eps> t(m, train::TrainerOptions().ema_rates({0.9}));
  t.step(batch_for(0));
  train::CheckpointDir ckpts(dir, 2);
  const auto good = ckpts.save(t);
  {
    at::NoGradGuard g;
    m->denoiser()->named_parameters()["theta.out_conv.bias"].fill_(std::numeric_limits<float>::infinity());
  }
  CHECK_THROWS_WITH(ckpts.save(t), Catch::Contains("tensor 'model.theta.out_conv.bias' is not finite"));
  CHECK(ckpts.list() == std::vector<fs::path>{good});  // the good one stays, nothing half-written
  // A file with NaN weights but valid checksums (written by hand) is refused on resume.
  auto f = io::read_tensor_file(good);
  f.tensors.at("ema.0.theta.in_conv.weight").fill_(std::numeric_limits<float>::quiet_NaN());
  io::write_tensor_file(dir / "nan.pt", f);
  presets::DDPM_Eps fresh(test::tiny_options());
  train::Trainer<presets::DDPM_Eps> tf(fresh, train::TrainerOptions().ema_rates({0.9}));
  CHECK_THROWS_WITH(tf.load(dir / "nan.pt"),
                    Catch::Contains("holds non-finite values in 'ema.0.theta.in_conv.weight'; it cannot be resumed"));
  CHECK(tf.step_count() == 0);
  // A damaged skip count is refused before anything is loaded.
  edit_config(good, dir / "damaged.pt", [](auto& j) { j["trainer"]["skipped_steps"] = "x"; });
  CHECK_THROWS_WITH(tf.load(dir / "damaged.pt"), Catch::Contains("has a damaged casdm.trainer.skipped_steps: 'x'"));
  CHECK(tf.step_count() == 0);
}

TEST_CASE("absurd network sizes are refused by name before anything is built", "[options]") {
  auto o = test::tiny_options();
  auto with = [&](net::UNetOptions n) { return DenoiserOptions(o).net(n); };
  auto net = [&] { return net::UNetOptions(o.net()); };  // a copy: o.net() is a reference
  CHECK_THROWS_WITH(presets::CasDM(with(net().norm_groups(0))), Catch::Contains("norm_groups must be >= 1, got 0"));
  CHECK_THROWS_WITH(presets::CasDM(with(net().model_channels(0))), Catch::Contains("model_channels must be >= 1, got 0"));
  CHECK_THROWS_WITH(presets::CasDM(with(net().dropout(1.5))), Catch::Contains("dropout must be in [0, 1), got 1.5"));
  CHECK_THROWS_WITH(presets::CasDM(with(net().num_heads(0))), Catch::Contains("num_heads must be >= 1"));
  CHECK_THROWS_WITH(presets::CasDM(with(net().channel_mult({1, 0}))), Catch::Contains("channel_mult entries must be >= 1"));
  CHECK_THROWS_WITH(presets::CasDM(with(net().norm_groups(3))), Catch::Contains("not divisible into 3 groups"));
  // Refused before any allocation, saying what it would need: 1e12 images, or a width of 16384
  // (2.4e10 parameters: about 480 GB with gradients, AdamW and one EMA copy).
  using Topo = presets::CasDM::Impl::topology_type;
  CHECK_THROWS_WITH(train::check_memory<Topo>(o, 1'000'000'000'000, 1),
                    Catch::StartsWith("a training step needs about") && Catch::Contains("the activations of 1000000000000 images of 8x8"));
  const auto wide = with(net().model_channels(16384).norm_groups(8));
  const auto need = train::memory_need<Topo>(wide, 4, 1);
  CHECK(need.parameters > 20'000'000'000);
  CHECK(need.state_bytes == static_cast<double>(need.parameters) * 20);
  CHECK_THROWS_WITH(train::check_memory<Topo>(wide, 4, 1), Catch::Contains(fmt::format("{} parameters", need.parameters)));
  CHECK_NOTHROW(train::check_memory<Topo>(o, 64, 2));
  // The count is the built denoiser's, exactly: θ and φ of a cascaded model.
  presets::CasDM built(o);
  int64_t n = 0;
  for (const auto& p : built->denoiser()->parameters()) n += p.numel();
  CHECK(train::memory_need<Topo>(o, 1, 0).parameters == n);
  presets::DDPM_Eps eps(o);
  n = 0;
  for (const auto& p : eps->denoiser()->parameters()) n += p.numel();
  CHECK(train::memory_need<presets::DDPM_Eps::Impl::topology_type>(o, 1, 0).parameters == n);
  presets::Dual dual(o);  // θ with 2C+1 outputs
  n = 0;
  for (const auto& p : dual->denoiser()->parameters()) n += p.numel();
  CHECK(train::memory_need<presets::Dual::Impl::topology_type>(o, 1, 0).parameters == n);
}

TEST_CASE("a U-Net's parameter count from its options is the built network's", "[net][flops]") {
  const auto base = test::tiny_options(16, 3).theta_net();
  for (const auto& o : {net::UNetOptions(base), net::UNetOptions(base).num_classes(10), net::UNetOptions(base).use_scale_shift_norm(false),
                        net::UNetOptions(base).channel_mult({1, 2, 3}).num_res_blocks(2).attention_resolutions({8, 4}),
                        net::UNetOptions(base).middle_attention(false)}) {
    for (const bool fixres : {false, true}) {
      INFO("classes " << o.num_classes() << ", levels " << o.channel_mult().size() << ", fixres " << fixres);
      const auto configured = fixres ? net::arch::FixResCNN::configure(o, 6, 4) : net::arch::UNet::configure(o, 6, 4);
      net::UNet unet(configured);
      int64_t n = 0;
      for (const auto& p : unet->parameters()) n += p.numel();
      CHECK(net::cost(configured, 6, 4, configured.resample()).parameters == n);
    }
  }
}

TEST_CASE("bf16 autocast: the networks in bfloat16, the process and the losses in float32, close to float32", "[trainer][precision]") {
  using M = presets::CasDM;
  torch::manual_seed(0);
  M model(test::tiny_options());
  test::perturb(*model->denoiser());
  auto& d = *model->denoiser();
  const auto x_t = at::randn({4, 1, 8, 8});
  const auto t = at::tensor({3, 20, 50, 99}, at::kLong);
  const auto p32 = d.predict(x_t, t);
  d.precision(at::kBFloat16);
  const auto p16 = d.predict(x_t, t);
  CHECK_FALSE(at::autocast::is_cpu_enabled());  // the scope ended
  for (const auto* f : {&p16.eps, &p16.x0, &p16.r, &p16.x0_star}) CHECK(f->scalar_type() == at::kFloat);
  const double rel = (p16.eps - p32.eps).norm().item<double>() / p32.eps.norm().item<double>();
  INFO("relative difference of eps " << rel);
  CHECK(rel > 1e-4);  // bfloat16 did run (8 bits of mantissa) ...
  CHECK(rel < 6e-2);  // ... and stayed close (bfloat16 keeps 8 bits: ~0.4 % an op, over ~10 layers of a perturbed net)
  CHECK_THROWS_WITH(d.precision(at::kDouble), Catch::Contains("precision: float32, bfloat16 or float16"));
  d.precision(at::kFloat);

  // One training step each from the same weights and draws: losses and gradients agree closely.
  auto step = [&](at::ScalarType precision) {
    torch::manual_seed(0);
    M m(test::tiny_options());
    test::perturb(*m->denoiser());
    train::Trainer<M> trainer(m, train::TrainerOptions().precision(precision).ema_rates({0.9}));
    const auto report = trainer.step(at::rand({8, 1, 8, 8}, at::make_generator<at::CPUGeneratorImpl>(5)) * 2 - 1);
    std::vector<at::Tensor> grads;
    for (const auto& [n, p] : trainer.optimizer().parameters()) grads.push_back(p.grad().reshape({-1}));
    return std::make_pair(report.total.item<double>(), at::cat(grads));
  };
  const auto [l32, g32] = step(at::kFloat);
  const auto [l16, g16] = step(at::kBFloat16);
  CHECK(std::abs(l16 - l32) / l32 < 3e-2);
  CHECK(at::cosine_similarity(g16, g32, 0).item<double>() > 0.99);
}

TEST_CASE("bf16 training resumes exactly, and each step sees the weights of the last update", "[trainer][precision]") {
  using M = presets::CasDM;
  const auto dir = test::scratch("bf16-resume");
  auto make = [] {
    torch::manual_seed(1);
    M m(test::tiny_options());
    return train::Trainer<M>(m, train::TrainerOptions().precision(at::kBFloat16).ema_rates({0.9}).micro_batch(2));
  };
  auto data = [](int64_t s) { return at::rand({4, 1, 8, 8}, at::make_generator<at::CPUGeneratorImpl>(50 + s)) * 2 - 1; };
  auto straight = make();
  for (int64_t s = 0; s < 4; ++s) straight.step(data(s));
  auto first = make();
  for (int64_t s = 0; s < 2; ++s) first.step(data(s));
  first.save(dir / "half.pt");
  auto second = make();
  second.load(dir / "half.pt");
  for (int64_t s = 2; s < 4; ++s) second.step(data(s));
  const auto a = everything(straight), b = everything(second);
  for (const auto& [k, v] : a) {
    INFO(k);
    CHECK(at::equal(v, b.at(k)));
  }
  // The autocast cache of cast weights is cleared after each scope: a prediction after the
  // updates equals that of a fresh copy of the updated weights (never the weights of step 1).
  auto& d = *straight.model()->denoiser();
  auto copy = std::dynamic_pointer_cast<typename M::Denoiser::Impl>(d.clone());
  const auto x_t = at::randn({2, 1, 8, 8});
  const auto t = at::tensor({10, 60}, at::kLong);
  CHECK(at::equal(d.predict(x_t, t).eps, copy->predict(x_t, t).eps));
  CHECK(copy->precision() == at::kBFloat16);  // a clone (an EMA copy) keeps it
}

TEST_CASE("a class-conditional model trains on labelled batches and resumes exactly, label dropout included", "[trainer][resume][classes]") {
  const auto dir = test::scratch("resume-classes");
  const auto opts = resume_options().num_classes(3);
  const auto trainer_options = resume_trainer_options().label_dropout(0.5);
  auto labels = [](int64_t s) { return at::tensor(std::vector<int64_t>{s % 3, (s + 1) % 3, 2, 0}); };
  auto batch = [&](int64_t s) { return train::Batch{batch_for(s), labels(s)}; };
  torch::manual_seed(12);
  presets::CasDM m1(opts);
  test::perturb(*m1);
  const auto start = snapshot(io::state_of(*m1));
  train::Trainer<presets::CasDM> straight(m1, trainer_options);
  torch::manual_seed(6);
  for (int64_t s = 0; s < 4; ++s) straight.step(batch(s));

  presets::CasDM m2(opts);
  io::load_state_strict(*m2, start, "init");
  train::Trainer<presets::CasDM> first(m2, trainer_options);
  torch::manual_seed(6);
  for (int64_t s = 0; s < 2; ++s) first.step(batch(s));
  first.save(dir / "half.pt", {{"preset", "CasDM"}});
  at::randn({7});  // disturb the generator: load restores it
  presets::CasDM m3(opts);
  train::Trainer<presets::CasDM> resumed(m3, trainer_options);
  resumed.load(dir / "half.pt");
  for (int64_t s = 2; s < 4; ++s) resumed.step(batch(s));
  CHECK(count_different(everything(straight), everything(resumed)) == 0);
  const auto info = train::read_checkpoint(dir / "half.pt");
  CHECK(info.denoiser_options.num_classes() == 3);
  CHECK(info.config["trainer"]["label_dropout"] == 0.5);
  CHECK(resumed.resume_changes().empty());
  // Label dropout is the trainer's: another one resumes, and is reported.
  presets::CasDM m5(opts);
  train::Trainer<presets::CasDM> changed(m5, resume_trainer_options().label_dropout(0.2));
  changed.load(dir / "half.pt");
  CHECK(changed.resume_changes() == std::vector<std::string>{"label_dropout: '0.5' vs '0.2'"});
  CHECK_THROWS_WITH(train::Trainer<presets::CasDM>(m5, resume_trainer_options().label_dropout(1.5)),
                    Catch::Contains("label_dropout must be in [0, 1], got 1.5"));
  // The labels matter: other labels, other weights.
  presets::CasDM m4(opts);
  io::load_state_strict(*m4, start, "init");
  train::Trainer<presets::CasDM> other(m4, trainer_options);
  torch::manual_seed(6);
  for (int64_t s = 0; s < 4; ++s) other.step(train::Batch{batch_for(s), labels(s + 1)});
  CHECK(count_different(everything(straight), everything(other)) > 0);
  // An unconditional checkpoint is refused by a conditional model, naming the option.
  presets::CasDM plain_model(resume_options());
  train::Trainer<presets::CasDM> plain(plain_model, resume_trainer_options());
  CHECK_THROWS_WITH(plain.load(dir / "half.pt"), Catch::Contains("num_classes"));
  CHECK_THROWS_WITH(plain.step(batch(0)), Catch::Contains("labels given to an unconditional model"));
  CHECK_THROWS_WITH(resumed.step(batch_for(0)), Catch::Contains("trains on labelled batches"));
}

TEST_CASE("previews draw the same noise and labels at every grid and leave the run's draws as they were", "[trainer][previews]") {
  const auto opts = resume_options().num_classes(3);
  auto batch = [](int64_t s) { return train::Batch{batch_for(s), at::tensor(std::vector<int64_t>{s % 3, 1, 2, 0})}; };
  torch::manual_seed(12);
  presets::CasDM m1(opts);
  const auto start = snapshot(io::state_of(*m1));
  train::Trainer<presets::CasDM> plain(m1, resume_trainer_options());
  torch::manual_seed(6);
  for (int64_t s = 0; s < 3; ++s) plain.step(batch(s));

  presets::CasDM m2(opts);
  io::load_state_strict(*m2, start, "init");
  train::Trainer<presets::CasDM> watched(m2, resume_trainer_options());
  train::Previews previews(watched, train::PreviewOptions().count(5).steps(3).seed(9).ema(1));
  torch::manual_seed(6);
  std::vector<at::Tensor> grids;
  for (int64_t s = 0; s < 3; ++s) {
    watched.step(batch(s));
    grids.push_back(previews.sample());  // dropout and the sampler draw inside: restored after
  }
  CHECK(count_different(everything(plain), everything(watched)) == 0);
  // The noise is drawn once from its own generator; labels cycle through the classes.
  CHECK(at::equal(previews.noise(), at::randn({5, 1, 8, 8}, at::make_generator<at::CPUGeneratorImpl>(9))));
  CHECK(at::equal(previews.labels(), at::tensor(std::vector<int64_t>{0, 1, 2, 0, 1})));
  // A grid is EMA copy 1 sampled from that noise with those labels; the same weights, the same grid.
  {
    const auto got = previews.sample();  // from the generators' state S, restored after
    train::GeneratorStateGuard keep;
    const auto want = watched.sample_ema(5, SampleOptions().steps(3).noise(previews.noise()).labels(previews.labels()), 1);
    CHECK(at::equal(got, want));
  }
  CHECK(at::equal(previews.sample(), grids.back()));
  CHECK(!at::equal(grids.front(), grids.back()));  // the weights moved between the grids
  CHECK(previews.last_seconds() > 0);
  CHECK(previews.total_seconds() > previews.last_seconds());
  CHECK(at::equal(train::cycling_labels(7, 3), at::tensor(std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0})));
  CHECK_THROWS_WITH(train::cycling_labels(3, 0), Catch::Contains("3 labels over 0 classes"));
  CHECK_THROWS_WITH(train::Previews(watched, train::PreviewOptions().count(0)), Catch::Contains("count must be >= 1, got 0"));
  // Step counts the model's DDIM cannot take on T = 100 are refused at construction, not at the first grid.
  CHECK_THROWS_WITH(train::Previews(watched, train::PreviewOptions().steps(99)),
                    "PreviewOptions: steps 99: DDIM takes the steps of T = 100 at an integer stride, which makes 50 or 100 but not 99");
  CHECK_THROWS_WITH(train::Previews(watched, train::PreviewOptions().steps(101)),
                    "PreviewOptions: steps 101: more than the model's T = 100");
  CHECK_THROWS_WITH(train::Previews(watched, train::PreviewOptions().ema(2)),
                    Catch::Contains("EMA copy 2 asked, the trainer keeps 2"));
  // An unconditional model's previews carry no labels.
  presets::CasDM m3(resume_options());
  train::Trainer<presets::CasDM> unconditional(m3, resume_trainer_options());
  train::Previews plain_previews(unconditional, train::PreviewOptions().count(2).steps(2));
  CHECK(!plain_previews.labels().defined());
  CHECK(plain_previews.sample().sizes() == at::IntArrayRef({2, 1, 8, 8}));
}

// ---- float16's dynamic loss scaling (issue 12 item 1), tested in float32 on the CPU ----
TEST_CASE("LossScaler grows after its interval and backs off on overflow and stops below its minimum", "[trainer][precision][scaler]") {
  train::LossScaler s(train::LossScalerOptions().init_scale(1024).growth_interval(3).min_scale(256));
  CHECK(s.scale() == 1024);
  s.update(true), s.update(true);
  CHECK(s.scale() == 1024);
  CHECK(s.growth_tracker() == 2);
  s.update(true);  // the third good step in a row
  CHECK(s.scale() == 2048);
  CHECK(s.growth_tracker() == 0);
  s.update(true), s.update(false);  // an overflow resets the count
  CHECK(s.scale() == 1024);
  CHECK(s.growth_tracker() == 0);
  s.update(false), s.update(false);
  CHECK(s.scale() == 256);
  CHECK_THROWS_WITH(s.update(false), Catch::Contains("overflow even at loss scale 256"));
  CHECK(s.scale() == 256);
  CHECK_THROWS_WITH(train::LossScaler(train::LossScalerOptions().backoff_factor(1)), Catch::Contains("backoff_factor must be in (0, 1)"));
  CHECK_THROWS_WITH(train::LossScaler(train::LossScalerOptions().init_scale(0)), Catch::Contains("init_scale must be > 0"));
  CHECK_THROWS_WITH(train::LossScaler(train::LossScalerOptions().growth_interval(0)), Catch::Contains("growth_interval must be >= 1"));
  CHECK_THROWS(s.restore(-1, 0));
  CHECK_THROWS(s.restore(512, 3));
}

TEST_CASE("a loss-scaled step equals the unscaled one bit for bit and an overflow skips the step and halves the scale", "[trainer][precision][scaler]") {
  auto run = [](bool scaled, double init, int64_t steps, int64_t max_nonfinite = 3) {
    torch::manual_seed(21);
    presets::CasDM m(test::tiny_options());
    auto o = train::TrainerOptions().ema_rates({0.9}).grad_clip(0.5).micro_batch(3).max_nonfinite_steps(max_nonfinite);
    if (scaled) o.loss_scaling(true).loss_scaler(train::LossScalerOptions().init_scale(init).growth_interval(2));
    auto t = std::make_unique<train::Trainer<presets::CasDM>>(m, o);
    for (int64_t s = 0; s < steps; ++s) t->step(batch_for(s));
    return t;
  };
  auto plain = run(false, 1, 3), scaled = run(true, 65536, 3);
  CHECK(plain->loss_scaler() == nullptr);
  REQUIRE(scaled->loss_scaler() != nullptr);
  CHECK(scaled->loss_scaler()->scale() == 131072);  // grown once after 2 good steps
  CHECK(scaled->skipped_steps() == 0);
  CHECK(count_different(everything(*plain), everything(*scaled)) == 0);

  // 2^140, beyond float32: the scaled loss and the gradients overflow. The step is skipped without counting as a
  // non-finite step (max_nonfinite_steps 1 would stop the run), the scale halves each time, and the
  // run goes on once the scale fits.
  const double huge = std::ldexp(1.0, 140);
  torch::manual_seed(21);
  presets::CasDM m(test::tiny_options());
  train::Trainer<presets::CasDM> t(m, train::TrainerOptions().ema_rates({0.9}).max_nonfinite_steps(1).loss_scaling(true).loss_scaler(
                                          train::LossScalerOptions().init_scale(huge)));
  const auto before = everything(t);
  t.step(batch_for(0));
  CHECK(t.skipped_steps() == 1);
  CHECK_THAT(t.last_skip(), Catch::Contains(fmt::format("float16 gradients overflowed at loss scale {}; loss scale now {}", huge, huge / 2)));
  CHECK(count_different(before, everything(t)) == 0);
  CHECK(t.loss_scaler()->scale() == huge / 2);
  int64_t s = 1;
  while (t.skipped_steps() == s && s < 40) t.step(batch_for(s++));
  CHECK(t.loss_scaler()->scale() <= std::ldexp(1.0, 127));  // halved until the scaled loss fits float32
  CHECK(t.loss_scaler()->scale() >= 1.0);
  CHECK(t.skipped_steps() >= 13);
  CHECK(t.last_skip().empty());
  CHECK(count_different(before, everything(t)) > 0);

  // A non-finite loss skips the step and backs the scale off too, as GradScaler does (its gradients
  // are not finite either); it counts as a non-finite step. GradScaler's defaults: 2000 steps, 0.5.
  CHECK(train::LossScalerOptions().growth_interval() == 2000);
  CHECK(train::LossScalerOptions().backoff_factor() == 0.5);
  CHECK(train::LossScalerOptions().growth_factor() == 2.0);
  CHECK(train::LossScalerOptions().init_scale() == 65536.0);
  torch::manual_seed(22);
  presets::CasDM m2(test::tiny_options());
  train::Trainer<presets::CasDM> nan_loss(m2, train::TrainerOptions().ema_rates({0.9}).loss_scaling(true));
  const auto kept = everything(nan_loss);
  auto bad = batch_for(0);
  bad[0][0][0][0] = std::nan("");
  nan_loss.step(bad);
  CHECK(nan_loss.skipped_steps() == 1);
  CHECK_THAT(nan_loss.last_skip(), Catch::Contains("is nan"));
  CHECK(nan_loss.loss_scaler()->scale() == 32768);
  CHECK(nan_loss.loss_scaler()->growth_tracker() == 0);
  CHECK(count_different(kept, everything(nan_loss)) == 0);
}

TEST_CASE("the loss scale and its good-step count resume exactly", "[trainer][precision][scaler][resume]") {
  const auto dir = test::scratch("scaler-resume");
  auto make = [] {
    torch::manual_seed(23);
    presets::CasDM m(test::tiny_options());
    return std::make_unique<train::Trainer<presets::CasDM>>(
        m, train::TrainerOptions().ema_rates({0.9}).loss_scaling(true).loss_scaler(train::LossScalerOptions().init_scale(4096).growth_interval(3)));
  };
  auto straight = make();
  for (int64_t s = 0; s < 5; ++s) straight->step(batch_for(s));
  CHECK(straight->loss_scaler()->scale() == 8192);
  CHECK(straight->loss_scaler()->growth_tracker() == 2);
  auto first = make();
  for (int64_t s = 0; s < 4; ++s) first->step(batch_for(s));
  first->save(dir / "ckpt.pt");
  auto info = train::read_checkpoint(dir / "ckpt.pt");
  CHECK(info.get("trainer.loss_scale") == "8192");
  CHECK(info.get("trainer.loss_scale_good_steps") == "1");
  auto second = make();
  // A damaged scale is refused in one line before anything changes.
  for (const char* bad : {"abc", "-4", "inf"}) {
    edit_config(dir / "ckpt.pt", dir / "damaged.pt", [&](auto& j) {
      j["trainer"]["loss_scale"] = std::string(bad) == "-4" ? nlohmann::json(-4) : nlohmann::json(bad);
    });
    const auto before = everything(*second);
    CHECK_THROWS_WITH(second->load(dir / "damaged.pt"), Catch::Contains(fmt::format("has a damaged loss scale: casdm.trainer.loss_scale '{}'", bad)));
    CHECK(count_different(before, everything(*second)) == 0);
    CHECK(second->loss_scaler()->scale() == 4096);
  }
  second->load(dir / "ckpt.pt");
  CHECK(second->loss_scaler()->scale() == 8192);
  second->step(batch_for(4));
  CHECK(second->loss_scaler()->growth_tracker() == 2);
  CHECK(count_different(everything(*straight), everything(*second)) == 0);
}

TEST_CASE("float16 training turns loss scaling on and is refused on a CPU whose autocast has no float16", "[trainer][precision][scaler]") {
  presets::CasDM m(test::tiny_options());
#if !CASDM_TORCH_AT_LEAST(2, 4)
  CHECK_THROWS_WITH(train::Trainer<presets::CasDM>(m, train::TrainerOptions().precision(at::kHalf)),
                    Catch::Contains("precision float16: this LibTorch's CPU autocast runs bfloat16 only"));
#endif
  for (const auto& device : test::devices()) {
    if (!device.is_cuda()) continue;
    presets::CasDM g(test::tiny_options());
    g->to(device);
    train::Trainer<presets::CasDM> t(g, train::TrainerOptions().precision(at::kHalf).ema_rates({0.9}));
    REQUIRE(t.loss_scaler() != nullptr);
    CHECK(t.loss_scaler()->scale() == 65536);
    const auto before = everything(t);
    for (int64_t s = 0; s < 4; ++s) CHECK(std::isfinite(t.step(batch_for(s).to(device)).total.item<double>()));
    CHECK(t.skipped_steps() < 4);  // float16 really trained (an overflow or two may be skipped)
    CHECK(count_different(before, everything(t)) > 0);
  }
}

// ---- checkpoint format 2: stable identities, one settings document; format 1 converted by casdm-upgrade ----

namespace {
train::TrainerOptions fixture_trainer_options() {
  return train::TrainerOptions().optimizer(train::AdamWOptions().lr(1e-3)).ema_rates({0.9});
}

/// A format-1 fixture (tests/data/format1/, written by the code of 3606e7b: 2 steps of batch_for(0),
/// batch_for(1)) is refused as it is; converted (a copy, in place), it loads exactly, holds the settings
/// a format-2 save of the same state holds, resumes bit for bit, and samples.
template <class P>
void check_format1(const std::string& name) {
  INFO(name);
  const auto dir = test::scratch("format1-" + name);
  const auto original = fs::path(CASDM_TEST_SOURCE_DIR) / "data" / "format1" / (name + ".pt");
  CHECK_THROWS_AS(train::read_checkpoint(original), train::OlderFormat);
  const auto file = dir / "converted.pt";
  fs::copy_file(original, file, fs::copy_options::overwrite_existing);
  CHECK(format1::upgrade_file(file) == fmt::format("{}: converted to casdm-checkpoint-2 (step 2, {})", file.string(), P::Impl::identity()));
  CHECK(format1::upgrade_file(file) == file.string() + ": already format 2");
  const auto info = train::read_checkpoint(file);
  const auto old = io::read_tensor_file(original);  // every tensor as it was
  CHECK(info.file.tensors.size() == old.tensors.size());
  for (const auto& [k, v] : old.tensors) CHECK((info.file.tensors.count(k) && at::equal(info.file.tensors.at(k), v)));
  CHECK(info.step == 2);
  CHECK(info.get("preset") == name);
  CHECK(info.model_type == P::Impl::identity());  // read from the C++ type it names
  CHECK(info.denoiser_type == P::Denoiser::Impl::identity());
  CHECK(train::holds_model<typename P::Impl>(info));
  CHECK(train::holds_model<typename with_sampler_t<P, sampler::Heun<>>::Impl>(info));  // any sampler

  auto trainer = [&] {
    torch::manual_seed(99);  // other initial weights: loading must replace every one
    P m(info.denoiser_options);
    return std::make_unique<train::Trainer<P>>(m, fixture_trainer_options());
  };
  // Every tensor the file holds is loaded as it is.
  auto a = trainer();
  a->load(info);
  CHECK(a->step_count() == 2);
  a->save(dir / "as-loaded.pt", {{"preset", name}});  // format 2, nothing changed: the same settings
  const auto loaded = everything(*a);
  const auto saved = train::read_checkpoint(dir / "as-loaded.pt");
  CHECK(saved.config == info.config);
  CHECK(saved.file.meta == info.file.meta);
  for (const auto& [k, v] : io::state_of(*a->model()->denoiser())) CHECK(at::equal(v, info.file.tensors.at("model." + k)));
  for (const auto& [k, v] : io::state_of(*a->ema(0))) CHECK(at::equal(v, info.file.tensors.at("ema.0." + k)));
  // Two more steps straight, against one step, a format-2 checkpoint, a fresh trainer, one step.
  for (int64_t s = 2; s < 4; ++s) a->step(batch_for(s));
  auto b = trainer();
  b->load(file);
  b->step(batch_for(2));
  b->save(dir / "v2.pt", {{"preset", name}});
  for (int i = 0; i < 3; ++i) at::randn({3});  // the generators come from the file
  auto c = trainer();
  c->load(dir / "v2.pt");
  c->step(batch_for(3));
  CHECK(count_different(everything(*a), everything(*c)) == 0);
  CHECK(count_different(everything(*a), loaded) > 0);  // the comparison can fail
  const auto v2 = train::read_checkpoint(dir / "v2.pt");
  CHECK(v2.get("format") == train::checkpoint_format);
  CHECK(v2.model_type == P::Impl::identity());
  CHECK(options_differences(v2.denoiser_options, info.denoiser_options).empty());
  // Format 2 lists every term's weight where format 1 listed none: the type's.
  CHECK(info.config["objective"]["loss_weights"].size() == P::Impl::losses_type::size);
  for (const auto& [term, w] : P::Impl::losses_type::describe()) CHECK(info.objective_options.loss_weights().at(term) == w);
  // A sampler's run from the file's EMA copy: images of the model's size, the same from either format.
  auto d1 = train::load_denoiser<typename P::Denoiser>(info);
  torch::manual_seed(3);
  const auto x1 = sample<sampler::DDIM<4>>(d1, 2);
  CHECK(x1.sizes() == at::IntArrayRef({2, 1, 8, 8}));
  CHECK(at::isfinite(x1).all().template item<bool>());
  auto d2 = train::load_denoiser<typename P::Denoiser>(saved, train::Weights::raw());
  auto d3 = train::load_denoiser<typename P::Denoiser>(info, train::Weights::raw());
  torch::manual_seed(3);
  const auto x2 = sample<sampler::DDIM<4>>(d2, 2);
  torch::manual_seed(3);
  CHECK(at::equal(x2, sample<sampler::DDIM<4>>(d3, 2)));
}
}  // namespace

TEST_CASE("format-1 checkpoints of every topology family convert, resume bit for bit and sample", "[checkpoint][format1][resume]") {
  check_format1<presets::DDPM_Eps>("DDPM_Eps");
  check_format1<presets::DDPM_X0>("DDPM_X0");
  check_format1<presets::DDPM_V>("DDPM_V");
  check_format1<presets::Dual>("Dual");
  check_format1<presets::CasDM>("CasDM");
  check_format1<presets::CasDM_V>("CasDM_V");
  // The format-1 model file (CasDM's EMA copy), converted, loads equal to the checkpoint's EMA copy.
  const auto fixtures = fs::path(CASDM_TEST_SOURCE_DIR) / "data" / "format1";
  const auto dir = test::scratch("format1-model");
  for (const char* f : {"CasDM.model.pt", "CasDM.pt", "Dual.pt"})
    fs::copy_file(fixtures / f, dir / f, fs::copy_options::overwrite_existing);
  CHECK_THROWS_WITH(train::load_denoiser<presets::CasDM::Denoiser>(dir / "CasDM.model.pt"),
                    (dir / "CasDM.model.pt").string() + " is a model file of format 1 (written before 2026-12-07), which this "
                    "build no longer reads; convert it once, in place: casdm-upgrade " + (dir / "CasDM.model.pt").string());
  for (const char* f : {"CasDM.model.pt", "CasDM.pt", "Dual.pt"}) format1::upgrade_file(dir / f);
  CHECK(train::read_checkpoint(dir / "CasDM.model.pt").config ==
        nlohmann::json::parse(R"({"denoiser": )" + train::denoiser_config(train::read_checkpoint(dir / "CasDM.pt").denoiser_options).dump() +
                              R"(, "run": {"preset": "CasDM"}})"));
  auto m = train::load_denoiser<presets::CasDM::Denoiser>(dir / "CasDM.model.pt");
  auto e = train::load_denoiser<presets::CasDM::Denoiser>(dir / "CasDM.pt");
  for (const auto& [k, v] : io::state_of(*m)) CHECK(at::equal(v, io::state_of(*e).at(k)));
  CHECK_THROWS_WITH(train::load_denoiser<presets::Dual::Denoiser>(dir / "CasDM.model.pt"),
                    Catch::Contains("CasDM.model.pt holds another denoiser (preset CasDM)") &&
                        Catch::Contains("not cosine | dual-head(unet)"));
  // And a converted checkpoint of another model is refused by name.
  presets::Dual dual(train::read_checkpoint(dir / "Dual.pt").denoiser_options);
  train::Trainer<presets::Dual> t(dual, fixture_trainer_options());
  CHECK_THROWS_WITH(t.load(dir / "CasDM.pt"), Catch::Contains("holds another model (preset CasDM)") &&
                                                  Catch::Contains("not cosine | dual-head(unet) | x0:1 + eps:1 + mu:1"));
  CHECK(t.step_count() == 0);
  // The old spellings of parts no fixture holds: a feature loss, a weighted term, libc++'s "ll".
  using format1::identity;
  CHECK(identity("casdm::ModelImpl<casdm::schedule::Cosine, casdm::topology::Cascaded<casdm::net::arch::FixResCNN, "
                        "casdm::topology::phi_input::X0Star, casdm::net::arch::UNet>, casdm::loss::Set<casdm::loss::EpsMSE<std::ratio<1l, "
                        "1l> >, casdm::loss::X0MSE<std::ratio<1l, 1l> >, casdm::loss::MuMix<std::ratio<1l, 1l> >, "
                        "casdm::loss::Feature<casdm::loss::LPIPSBackbone, std::ratio<1l, 10l>, 224l> >, casdm::sampler::DDIM<100l, "
                        "std::ratio<0l, 1l> > >") == presets::CasDM_FixRes_LPIPS::Impl::identity());
  CHECK(identity("casdm::ModelImpl<casdm::schedule::Linear, casdm::topology::VOnly<casdm::net::arch::UNet>, "
                        "casdm::loss::Set<casdm::loss::Weighted<casdm::loss::VMSE<std::ratio<1ll, 3ll> >, "
                        "casdm::loss::weighting::MinSNR<std::ratio<5ll, 1ll> > > >, casdm::sampler::Heun<10ll> >") ==
        "linear | v-only(unet) | v@min-snr(5):1/3");
  CHECK(identity("casdm::DenoiserImpl<casdm::schedule::Cosine, casdm::topology::Cascaded<casdm::net::arch::UNet, "
                        "casdm::topology::phi_input::Concat, casdm::net::arch::UNet, casdm::topology::theta_head::V> >") ==
        "cosine | cascaded-v(unet <- concat, unet)");
  for (const char* unknown : {"mine::Model<int>", "casdm::ModelImpl<casdm::schedule::Mine, x, y, z>", "casdm::DenoiserImpl<",
                              "casdm::ModelImpl<casdm::schedule::Cosine>"})
    CHECK(!identity(unknown));  // not converted: the refusal names it
  // Format 1's table holds each policy's registered name (it keeps them as a record of that format).
  const std::map<std::string, std::string> registered{
      {"schedule::Cosine", schedule::Cosine::name}, {"schedule::Linear", schedule::Linear::name},
      {"net::arch::UNet", net::arch::UNet::name}, {"net::arch::FixResCNN", net::arch::FixResCNN::name},
      {"topology::phi_input::X0Star", topology::phi_input::X0Star::name},
      {"topology::phi_input::Concat", topology::phi_input::Concat::name},
      {"topology::EpsOnly", topology::EpsOnly<>::name}, {"topology::X0Only", topology::X0Only<>::name},
      {"topology::VOnly", topology::VOnly<>::name}, {"topology::DualHead", topology::DualHead<>::name},
      {"topology::Cascaded", topology::Cascaded<>::name}, {"loss::weighting::Uniform", loss::weighting::Uniform::name},
      {"loss::weighting::MinSNR", loss::weighting::MinSNR<>::name}, {"loss::EpsMSE", loss::EpsMSE<>::name},
      {"loss::X0MSE", loss::X0MSE<>::name}, {"loss::VMSE", loss::VMSE<>::name}, {"loss::MuMix", loss::MuMix<>::name},
      {"loss::LPIPSBackbone", loss::LPIPSBackbone::name}, {"loss::ResNetBackbone", loss::ResNetBackbone::name},
      {"loss::InceptionBackbone", loss::InceptionBackbone::name}, {"loss::SwinBackbone", loss::SwinBackbone::name},
      {"loss::SmallVGGBackbone", loss::SmallVGGBackbone::name}};
  CHECK(format1::policy_names() == registered);
  CHECK(identity("casdm::DenoiserImpl<casdm::schedule::Cosine, casdm::topology::Cascaded<casdm::net::arch::UNet, "
                 "casdm::topology::phi_input::X0Star, casdm::net::arch::UNet, casdm::topology::theta_head::V> >") ==
        presets::CasDM_V::Denoiser::Impl::identity());
  auto feature = [](const char* backbone, int64_t size) {  // as format 1 spelled a feature term
    return fmt::format("casdm::loss::Feature<casdm::loss::{}Backbone, std::ratio<1l, 10l>, {}l>", backbone, size);
  };
  CHECK(identity(feature("ResNet", loss::ResNetLoss<>::default_size)) == loss::term_spec<loss::ResNetLoss<>>());
  CHECK(identity(feature("Inception", loss::InceptionLoss<>::default_size)) == loss::term_spec<loss::InceptionLoss<>>());
  CHECK(identity(feature("Swin", loss::SwinLoss<>::default_size)) == loss::term_spec<loss::SwinLoss<>>());
  CHECK(identity(feature("SmallVGG", loss::SmallVGGLoss<>::default_size)) == loss::term_spec<loss::SmallVGGLoss<>>());
  CHECK(identity("casdm::loss::Weighted<casdm::loss::EpsMSE<std::ratio<1l, 1l> >, casdm::loss::weighting::Uniform>") ==
        loss::term_spec<loss::Weighted<loss::EpsMSE<>, loss::weighting::Uniform>>());
}

TEST_CASE("a checkpoint names its model by identity, and a with_sampler_t model resumes its preset's checkpoint", "[checkpoint][identity][resume]") {
  const auto dir = test::scratch("identity");
  using Fast = with_sampler_t<presets::CasDM, sampler::DDIM<10>>;
  torch::manual_seed(1);
  presets::CasDM m(resume_options());
  train::Trainer<presets::CasDM> t(m, resume_trainer_options());
  t.step(batch_for(0));
  t.save(dir / "cas.pt", {{"preset", "CasDM"}});
  const auto raw = io::read_tensor_file(dir / "cas.pt");
  CHECK(raw.meta.at("format") == "casdm-checkpoint-2");
  CHECK(raw.meta.at("identity") == "cosine | cascaded(unet <- x0star, unet) | eps:1 + x0:1 + mu:1");
  CHECK(raw.meta.at("denoiser") == "cosine | cascaded(unet <- x0star, unet)");
  std::set<std::string> keys;
  for (const auto& [k, v] : raw.meta) keys.insert(k);
  CHECK(keys == std::set<std::string>{"checksum", "config", "denoiser", "format", "identity", "step"});
  for (const auto& [k, v] : raw.meta)
    for (const char* cxx : {"std::", "casdm::", "ratio"}) CHECK(v.find(cxx) == std::string::npos);
  const auto config = nlohmann::json::parse(raw.meta.at("config"));
  CHECK(config["denoiser"]["net"]["model_channels"] == 16);
  CHECK(config["denoiser"]["net"]["channel_mult"] == nlohmann::json::array({1, 2}));
  CHECK(config["trainer"]["ema_rates"] == nlohmann::json::array({0.9, 0.99}));
  CHECK(config["trainer"]["micro_batch"] == 3);
  CHECK(config["objective"]["loss_weights"] == nlohmann::json({{"eps", 1.0}, {"x0", 1.0}, {"mu", 1.0}}));
  CHECK(config["run"] == nlohmann::json({{"preset", "CasDM"}}));

  // The same model with another sampler resumes it, continuing exactly as the preset does.
  torch::manual_seed(2);
  Fast fm(resume_options());
  train::Trainer<Fast> fast(fm, resume_trainer_options());
  fast.load(dir / "cas.pt");
  fast.step(batch_for(1));
  fast.save(dir / "fast.pt");
  presets::CasDM pm(resume_options());
  train::Trainer<presets::CasDM> preset(pm, resume_trainer_options());
  preset.load(dir / "cas.pt");  // the generators as the file has them, as for `fast`
  preset.step(batch_for(1));
  std::map<std::string, at::Tensor> a, b;
  for (const auto& [k, v] : io::state_of(*fast.model()->denoiser())) a.emplace(k, v);
  for (const auto& [k, v] : io::state_of(*preset.model()->denoiser())) b.emplace(k, v);
  CHECK(count_different(a, b) == 0);
  // ... and the preset resumes the variant's checkpoint; the denoiser loads from either.
  train::Trainer<presets::CasDM> back(pm, resume_trainer_options());
  back.load(dir / "fast.pt");
  CHECK(back.step_count() == 2);
  CHECK(train::read_checkpoint(dir / "fast.pt").model_type == presets::CasDM::Impl::identity());
  auto d = train::load_denoiser<Fast::Denoiser>(dir / "fast.pt");
  CHECK(d->identity() == "cosine | cascaded(unet <- x0star, unet)");
}

TEST_CASE("a format-2 file holding what this build does not know is refused naming the file and the entry", "[checkpoint][identity]") {
  const auto dir = test::scratch("format2-refusals");
  torch::manual_seed(1);
  presets::DDPM_Eps m(test::tiny_options());
  train::Trainer<presets::DDPM_Eps> t(m, train::TrainerOptions().ema_rates({0.9}));
  t.step(batch_for(0));
  t.save(dir / "good.pt");
  const auto before = everything(t);
  presets::DDPM_Eps fresh_model(test::tiny_options());
  train::Trainer<presets::DDPM_Eps> fresh(fresh_model, train::TrainerOptions().ema_rates({0.9}));
  auto refused = [&](const fs::path& file, const std::string& why) {
    const auto path = file.string();
    CHECK_THROWS_WITH(fresh.load(file), Catch::StartsWith(path) && Catch::Contains(why));
    CHECK(fresh.step_count() == 0);
  };
  auto f = io::read_tensor_file(dir / "good.pt");
  auto g = f;
  g.meta["note"] = "hi";
  io::write_tensor_file(dir / "meta.pt", g);
  refused(dir / "meta.pt", "has damaged metadata: it holds an entry this build does not know: 'casdm.note'");
  g = f;
  g.tensors.emplace("extra.w", at::zeros({1}));
  io::write_tensor_file(dir / "tensor.pt", g);
  refused(dir / "tensor.pt", "it holds a tensor this build does not know: 'extra.w'");
  g = f;
  g.meta.erase("config");
  io::write_tensor_file(dir / "no-config.pt", g);
  refused(dir / "no-config.pt", "it lacks 'casdm.config'");
  g = f;
  g.meta["config"] = "{\"denoiser\": ";
  io::write_tensor_file(dir / "unsealed.pt", g);  // an edit that leaves the checksum as it was
  refused(dir / "unsealed.pt", "has damaged metadata: its settings fail their checksum (casdm.checksum");
  train::detail::seal(g);
  io::write_tensor_file(dir / "bad-json.pt", g);
  refused(dir / "bad-json.pt", "its casdm.config is not valid JSON");
  g = f;
  g.meta.erase("checksum");
  io::write_tensor_file(dir / "no-checksum.pt", g);
  refused(dir / "no-checksum.pt", "it lacks 'casdm.checksum'");
  edit_config(dir / "good.pt", dir / "section.pt", [](auto& j) { j["schedule"] = nlohmann::json::object(); });
  refused(dir / "section.pt", "casdm.config has a section 'schedule' this build does not know");
  edit_config(dir / "good.pt", dir / "net-key.pt", [](auto& j) { j["denoiser"]["net"]["width"] = 3; });
  refused(dir / "net-key.pt", "casdm.config has 'denoiser.net.width', a setting this build does not know");
  edit_config(dir / "good.pt", dir / "objective-key.pt", [](auto& j) { j["objective"]["gamma"] = 5; });
  refused(dir / "objective-key.pt", "casdm.config has 'objective.gamma', a setting this build does not know");
  edit_config(dir / "good.pt", dir / "trainer-key.pt", [](auto& j) { j["trainer"]["momentum"] = 0.9; });
  refused(dir / "trainer-key.pt", "casdm.config has 'trainer.momentum', a setting this build does not know");
  edit_config(dir / "good.pt", dir / "type.pt", [](auto& j) { j["denoiser"]["image_size"] = "eight"; });
  refused(dir / "type.pt", "denoiser options: 'image_size' = 'eight' is not an integer");
  edit_config(dir / "good.pt", dir / "list.pt", [](auto& j) { j["denoiser"]["net"]["channel_mult"] = nlohmann::json::object(); });
  refused(dir / "list.pt", "config 'denoiser.net.channel_mult' is an object, not a value");
  g = f;
  g.meta["format"] = "casdm-checkpoint-3";
  io::write_tensor_file(dir / "v3.pt", g);
  CHECK_THROWS_WITH(fresh.load(dir / "v3.pt"), Catch::Contains("has format 'casdm-checkpoint-3'; this build reads 'casdm-checkpoint-2'"));
  fresh.load(dir / "good.pt");  // the untouched file loads
  CHECK(count_different(before, everything(fresh)) == 0);
}

TEST_CASE("a loss weight set at run time weights its term, is kept in the checkpoint, and may change on resume", "[checkpoint][loss][resume]") {
  const auto dir = test::scratch("loss-weights");
  torch::manual_seed(4);
  auto o = test::tiny_options();
  presets::CasDM m(o, ObjectiveOptions().loss_weights({{"x0", 0.5}}));
  CHECK(m->objective()->weights() == std::vector<std::pair<std::string, double>>{{"eps", 1.0}, {"x0", 0.5}, {"mu", 1.0}});
  const auto x0 = batch_for(0);
  const auto tt = at::randint(0, 100, {4}, at::kLong);
  const auto noise = at::randn_like(x0);
  auto r = m->training_losses(x0, tt, noise);
  CHECK(at::equal(r.total, r["eps"] + r["x0"] * 0.5 + r["mu"]));
  presets::CasDM plain(o);
  io::load_state_strict(*plain->denoiser(), io::state_of(*m->denoiser()), "same");
  auto rp = plain->training_losses(x0, tt, noise);
  CHECK(at::equal(rp.total, rp["eps"] + rp["x0"] + rp["mu"]));
  CHECK(at::equal(rp["x0"], r["x0"]));

  train::Trainer<presets::CasDM> t(m, train::TrainerOptions().ema_rates({0.9}));
  t.step(batch_for(0));
  t.save(dir / "half.pt");
  auto info = train::read_checkpoint(dir / "half.pt");
  CHECK(info.config["objective"]["loss_weights"]["x0"] == 0.5);
  CHECK(info.objective_options.loss_weights().at("x0") == 0.5);
  // The same weight resumes with nothing to report; another is allowed, and reported.
  presets::CasDM same(o, ObjectiveOptions().loss_weights({{"x0", 0.5}}));
  train::Trainer<presets::CasDM> ts(same, train::TrainerOptions().ema_rates({0.9}));
  ts.load(dir / "half.pt");
  CHECK(ts.resume_changes().empty());
  presets::CasDM other(o);
  train::Trainer<presets::CasDM> to(other, train::TrainerOptions().ema_rates({0.9}));
  to.load(dir / "half.pt");
  CHECK(to.resume_changes() == std::vector<std::string>{"loss_weight.x0: '0.5' vs '1'"});
  CHECK(to.step_count() == 1);
  // Moving the feature weights, or another feature side, is the objective's business too; the
  // denoiser's sizes are not.
  presets::CasDM moved(o, ObjectiveOptions().loss_weights({{"x0", 0.5}}).feature_weights("/new/place").feature_size(64));
  train::Trainer<presets::CasDM> tm(moved, train::TrainerOptions().ema_rates({0.9}));
  tm.load(dir / "half.pt");
  CHECK(tm.resume_changes() == std::vector<std::string>{"feature_size: '0' vs '64'", "feature_weights: '' vs '/new/place'"});
  // Refusals, in one line naming the term.
  CHECK_THROWS_WITH(presets::CasDM(o, ObjectiveOptions().loss_weights({{"lpips", 1.0}})),
                    Catch::Contains("loss weight 'lpips': this model has no such loss term (its terms: eps, x0, mu)"));
  CHECK_THROWS_WITH(presets::CasDM(o, ObjectiveOptions().loss_weights({{"mu", -1.0}})),
                    Catch::Contains("loss weight 'mu' = -1: a weight is a finite number >= 0"));
  CHECK_THROWS_WITH(presets::CasDM(o, ObjectiveOptions().loss_weights({{"mu", std::nan("")}})),
                    Catch::Contains("loss weight 'mu' = nan"));
}

TEST_CASE("each part of a trainer writes and reads its own state: optimiser, EMA copies, generators, loss scaler", "[trainer][checkpoint][state]") {
  const auto dir = test::scratch("state-dicts");
  torch::manual_seed(3);
  using M = presets::DDPM_Eps;
  train::Trainer<M> t(M(test::tiny_options()), train::TrainerOptions().ema_rates({0.9, 0.99}).loss_scaling(true));
  t.step(batch_for(0));
  t.save(dir / "ckpt.pt");
  // The checkpoint's tensors are the parts' state_dicts under their prefixes, and nothing else.
  std::set<std::string> want;
  for (const auto& [k, v] : t.optimizer().state_dict().tensors) want.insert("optim." + k);
  for (const auto& [k, v] : train::Generators(c10::Device(c10::kCPU)).state_dict().tensors) want.insert("rng." + k);
  for (size_t i = 0; i < 2; ++i)
    for (const auto& [k, v] : io::state_of(*t.ema(i))) want.insert(fmt::format("ema.{}.{}", i, k));
  for (const auto& [k, v] : io::state_of(*t.model()->denoiser())) want.insert("model." + k);
  std::set<std::string> have;
  for (const auto& [k, v] : io::read_tensor_file(dir / "ckpt.pt").tensors) have.insert(k);
  CHECK(have == want);
  // The settings of the parts are in the config's trainer section.
  const auto c = train::read_checkpoint(dir / "ckpt.pt");
  CHECK(c.config["trainer"]["ema_rates"] == nlohmann::json({0.9, 0.99}));
  CHECK(c.config["trainer"]["loss_scale"] == t.loss_scaler()->scale());
  CHECK(c.config["trainer"]["loss_scale_good_steps"] == 1);
  // A loss scaler reads back what it wrote; a damaged state is refused and changes nothing.
  train::LossScaler scaler;
  scaler.load_state_dict(t.loss_scaler()->state_dict(), "here");
  CHECK(scaler.scale() == t.loss_scaler()->scale());
  CHECK(scaler.growth_tracker() == 1);
  CHECK_THROWS_WITH(scaler.load_state_dict({{}, {{"loss_scale", 0.0}}}, "there"),
                    "there has a damaged loss scale: casdm.trainer.loss_scale '0', casdm.trainer.loss_scale_good_steps ''");
  CHECK(scaler.growth_tracker() == 1);
  scaler.load_state_dict({}, "a run without a scaler");
  CHECK(scaler.scale() == train::LossScalerOptions().init_scale());
  // The generators: a state loaded back replays the same draws.
  train::Generators g(c10::Device(c10::kCPU));
  const auto saved = g.state_dict();
  const auto first = at::randn({4});
  g.load_state_dict(saved, "here");
  CHECK(at::equal(at::randn({4}), first));
  CHECK_THROWS_WITH(g.load_state_dict({}, "file.pt"), "file.pt lacks the generator state rng.cpu");
  // The optimiser refuses a state of other parameters before changing anything.
  auto state = t.optimizer().state_dict();
  state.tensors.erase(state.tensors.begin());
  const auto before = t.optimizer().state();
  CHECK_THROWS_WITH(t.optimizer().load_state_dict(state, "file.pt"), Catch::StartsWith("file.pt: optimiser state does not fit this model:\n  missing "));
  for (const auto& [k, v] : t.optimizer().state()) CHECK(at::equal(v, before.at(k)));
}
