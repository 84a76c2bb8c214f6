// Model files: exact round trips, Python's torch.load/torch.save on the same files, strict loading
// that names what does not fit, atomic writes, and clear errors for bad files.
#include "casdm/presets.hpp"
#include "casdm/train/checkpoint.hpp"
#include "support.hpp"
#include "tiny.hpp"

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
