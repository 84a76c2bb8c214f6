// Model files: exact round trips, Python's torch.load/torch.save on the same files, strict loading
// that names what does not fit, atomic writes, and clear errors for bad files.
#include "casdm/presets.hpp"
#include "casdm/train/checkpoint.hpp"
#include "casdm/train/loss_log.hpp"
#include "casdm/train/trainer.hpp"
#include "support.hpp"
#include "tiny.hpp"

#include <fstream>
#include <iterator>

using namespace casdm;
namespace fs = std::filesystem;

namespace {
bool same_state(torch::nn::Module& a, torch::nn::Module& b) {
  auto sa = io::state_of(a), sb = io::state_of(b);
  if (sa.size() != sb.size()) return false;
  for (const auto& [k, v] : sa)
    if (!sb.count(k) || !at::equal(v.cpu(), sb.at(k).cpu())) return false;
  return true;
}
}  // namespace

TEST_CASE("a saved model loads back exactly, and Python reads and writes the same format", "[checkpoint]") {
  const auto dir = test::scratch("checkpoint-roundtrip");
  torch::manual_seed(1);
  presets::CasDM a(test::tiny_options());
  test::perturb(*a);
  io::save_module(*a, dir / "a.pt");
  torch::manual_seed(2);
  presets::CasDM b(test::tiny_options());
  CHECK(!same_state(*a, *b));
  io::load_module(*b, dir / "a.pt");
  CHECK(same_state(*a, *b));

  test::run_python("double_tensors.py", (dir / "a.pt").string() + " " + (dir / "doubled.pt").string());
  auto doubled = io::read_tensor_file(dir / "doubled.pt");
  auto state = io::state_of(*a);
  REQUIRE(doubled.tensors.size() == state.size());
  for (const auto& [k, v] : state) CHECK(at::equal(doubled.tensors.at(k), v * 2));
}

TEST_CASE("strict loading refuses another preset or size, names the parameters, changes nothing", "[checkpoint]") {
  const auto dir = test::scratch("checkpoint-strict");
  presets::DDPM_Eps eps(test::tiny_options());
  io::save_module(*eps, dir / "eps.pt");
  presets::CasDM cas(test::tiny_options());
  const auto before = io::state_of(*cas);
  std::map<std::string, at::Tensor> copy;
  for (const auto& [k, v] : before) copy.emplace(k, v.clone());
  try {
    io::load_module(*cas, dir / "eps.pt");
    FAIL("loaded a DDPM_Eps file into CasDM");
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("does not fit this model"));
    CHECK_THAT(msg, Catch::Contains("written by casdm::ModelImpl<casdm::schedule::Cosine, casdm::topology::EpsOnly"));
    CHECK_THAT(msg, Catch::Contains("missing: phi."));
  }
  for (const auto& [k, v] : io::state_of(*cas)) CHECK(at::equal(v, copy.at(k)));

  presets::CasDM wide(test::tiny_options().net(test::tiny_options().net().model_channels(32)));
  io::save_module(*wide, dir / "wide.pt");
  CHECK_THROWS_WITH(io::load_module(*cas, dir / "wide.pt"),
                    Catch::Contains("254 mis-shaped: phi.decoder.0.attn.norm.norm.bias (file [64], model [32])"));
  CHECK_THROWS_WITH(io::load_module(*eps, dir / "wide.pt"), Catch::Contains("unexpected: phi."));
}

TEST_CASE("an interrupted write leaves the previous file intact and no temporary behind", "[checkpoint]") {
  const auto dir = test::scratch("checkpoint-atomic");
  fs::remove_all(dir);
  fs::create_directories(dir);
  presets::DDPM_Eps m(test::tiny_options());
  io::save_module(*m, dir / "m.pt");
  const auto size = fs::file_size(dir / "m.pt");
  io::TensorFile other{{{"x", at::ones({1000})}}, {}};
  CHECK_THROWS_WITH(io::write_tensor_file(dir / "m.pt", other, [] { throw std::runtime_error("killed"); }),
                    Catch::Contains("killed"));
  CHECK(fs::file_size(dir / "m.pt") == size);
  presets::DDPM_Eps back(test::tiny_options());
  io::load_module(*back, dir / "m.pt");
  CHECK(same_state(*m, *back));
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}) == 1);
  CHECK_THROWS_WITH(io::save_module(*m, dir / "no-such-folder" / "m.pt"), Catch::Contains("folder does not exist"));
}

TEST_CASE("missing, truncated and foreign files get one clear message", "[checkpoint]") {
  const auto dir = test::scratch("checkpoint-bad");
  presets::DDPM_Eps m(test::tiny_options());
  CHECK_THROWS_WITH(io::load_module(*m, dir / "absent.pt"), Catch::Contains("(no such file)"));
  io::save_module(*m, dir / "full.pt");
  {
    std::ifstream in(dir / "full.pt", std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(dir / "cut.pt", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  CHECK_THROWS_WITH(io::load_module(*m, dir / "cut.pt"), Catch::Contains("not a readable tensor file"));
  std::ofstream(dir / "text.pt") << "hello";
  CHECK_THROWS_WITH(io::load_module(*m, dir / "text.pt"), Catch::Contains("not a readable tensor file"));
}

TEST_CASE("a model file holds one denoiser with its options and loads back without a model", "[checkpoint]") {
  const auto dir = test::scratch("model-file");
  torch::manual_seed(4);
  presets::CasDM m(test::tiny_options());
  test::perturb(*m);
  train::save_denoiser(*m->denoiser(), dir / "casdm.pt", {{"note", "x"}});
  std::string which;
  auto back = train::load_denoiser<presets::CasDM::Denoiser>(dir / "casdm.pt", train::Weights::raw(), &which);
  CHECK(which == "model file");
  CHECK(same_state(*back, *m->denoiser()));
  CHECK(options_differences(back->options, m->options).empty());
  CHECK_THROWS_WITH(train::load_denoiser<presets::DDPM_Eps::Denoiser>(dir / "casdm.pt"),
                    Catch::Contains("holds another denoiser") && Catch::Contains("EpsOnly"));
  // A model file is not a checkpoint: nothing to resume from.
  train::Trainer<presets::CasDM> t(m);
  CHECK_THROWS_WITH(t.load(dir / "casdm.pt"), Catch::Contains("is a model file"));
}

TEST_CASE("the loss log keeps the rows up to the resumed step and refuses another run's log", "[train][log]") {
  const auto dir = test::scratch("loss-log");
  const std::vector<std::pair<std::string, double>> terms{{"eps", 1.0}, {"x0", 1.0}};
  auto report = [](double e, double x) {
    loss::LossReport r;
    r.terms = {{"eps", at::scalar_tensor(e, at::kDouble)}, {"x0", at::scalar_tensor(x, at::kDouble)}};
    r.total = r.terms[0].second + r.terms[1].second;
    return r;
  };
  {
    train::LossLog log(dir / "losses.csv", terms);
    for (int s = 1; s <= 5; ++s) log.append(s, report(0.5 * s, 0.25));
  }
  {
    train::LossLog log(dir / "losses.csv", terms, 3);  // resumed from the step-3 checkpoint
    REQUIRE(log.curves()[0].size() == 3);
    CHECK(log.curves()[1] == std::vector<double>{0.5, 1.0, 1.5});
    CHECK(log.last() == "total 1.75 eps 1.5 x0 0.25");
    log.append(4, report(9, 1));
  }
  std::ifstream in(dir / "losses.csv");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == "step,total,eps,x0\n1,0.75,0.5,0.25\n2,1.25,1,0.25\n3,1.75,1.5,0.25\n4,10,9,1\n");
  {
    train::LossLog log(dir / "losses.csv", terms, 4);
    const auto tail = log.tail_means(0.5);  // the last 2 of 4 rows
    CHECK(tail.at("eps") == 0.5 * (1.5 + 9));
    CHECK(tail.at("total") == 0.5 * (1.75 + 10));
    CHECK(log.tail_means(0.1).at("x0") == 1);  // at least one row
  }
  CHECK_THROWS_WITH(train::LossLog(dir / "losses.csv", {{"eps", 1.0}}, 2), Catch::Contains("is not this run's loss log"));
  CHECK_THROWS_WITH(train::LossLog(dir / "losses.csv", terms, 7), Catch::Contains("has 4 rows up to step 7"));
}

TEST_CASE("a run folder resumes from its newest checkpoint and refuses to be overwritten", "[train][checkpoint]") {
  const auto dir = test::scratch("resume-point") / "run";
  fs::remove_all(dir);
  const train::CheckpointDir ckpts(dir / "checkpoints", 2);
  CHECK(!ckpts.resume_point(false).has_value());  // a fresh run in an empty folder
  CHECK_THROWS_WITH(ckpts.resume_point(true), Catch::Contains("--resume: no checkpoint in"));
  torch::manual_seed(5);
  presets::DDPM_Eps m(test::tiny_options());
  train::Trainer<presets::DDPM_Eps> t(m, train::TrainerOptions().ema_rates({0.9}));
  t.step(at::rand({2, 1, 8, 8}) * 2 - 1);
  ckpts.save(t, {{"args.lr", "0.001"}});
  t.step(at::rand({2, 1, 8, 8}) * 2 - 1);
  ckpts.save(t, {{"args.lr", "0.002"}});
  const auto newest = ckpts.resume_point(true);
  REQUIRE(newest);
  CHECK(newest->step == 2);
  CHECK(newest->meta_under("args.") == std::map<std::string, std::string>{{"lr", "0.002"}});
  CHECK(ckpts.resume_point(false, ckpts.file_for(1))->step == 1);
  CHECK_THROWS_WITH(ckpts.resume_point(false), Catch::Contains("holds checkpoints of an earlier run"));
}
