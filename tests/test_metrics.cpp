// Metric networks: VGG16's features against torchvision's on the same random weights, LPIPS
// against piq's formula run by PyTorch, its properties, and the refusals of bad weight files.
#include "casdm/metric/lpips.hpp"
#include "support.hpp"

using namespace casdm;

namespace {
const std::filesystem::path& lpips_dir() {
  static const auto dir = test::generated("lpips_ref.py");
  return dir;
}
}  // namespace

TEST_CASE("VGG16 features equal torchvision's at relu1_2 ... relu5_3, with max and average pooling", "[metric]") {
  const auto dir = lpips_dir();
  const auto ref = test::load_tensors(dir / "expected.pt");
  for (const bool avg : {false, true}) {
    INFO((avg ? "AvgPool2d" : "MaxPool2d"));
    metric::VGG16 vgg(metric::VGG16Options().avg_pool(avg));
    metric::load_weights(*vgg, dir / "vgg16_features.pt", "VGG16 weights");
    vgg->eval();
    at::NoGradGuard g;
    const auto mean = at::tensor({0.485, 0.456, 0.406}, at::kFloat).view({1, 3, 1, 1});
    const auto std = at::tensor({0.229, 0.224, 0.225}, at::kFloat).view({1, 3, 1, 1});
    auto feats = vgg->features_at((ref.at("a") - mean) / std, metric::VGG16Impl::lpips_taps);
    REQUIRE(feats.size() == 5);
    for (size_t l = 0; l < 5; ++l) {
      const auto& r = ref.at("feat." + std::string(avg ? "avg." : "max.") + std::to_string(l));
      CHECK(feats[l].sizes() == r.sizes());
      CHECK(test::max_abs_diff(feats[l], r) <= 1e-5 * r.abs().max().item<double>());
    }
  }
}

TEST_CASE("LPIPS equals piq's formula on the same weights, is 0 on equal images and symmetric", "[metric]") {
  const auto dir = lpips_dir();
  const auto ref = test::load_tensors(dir / "expected.pt");
  for (const bool avg : {false, true}) {
    INFO((avg ? "replace_pooling" : "max pooling"));
    metric::LPIPS lpips(metric::LPIPSOptions()
                            .vgg_weights((dir / "vgg16_features.pt").string())
                            .linear_weights((dir / "lpips_linear.pt").string())
                            .replace_pooling(avg));
    at::NoGradGuard g;
    const auto& a = ref.at("a");
    const auto& b = ref.at("b");
    auto d = lpips(a, b);
    CHECK(d.sizes() == at::IntArrayRef({3}));
    CHECK(test::max_rel_diff(d, ref.at(avg ? "lpips.avg" : "lpips.max")) < 1e-5);
    CHECK(at::equal(lpips(a, a), at::zeros({3})));
    if (avg) {
      CHECK(test::max_rel_diff(lpips(b, a), ref.at("lpips_ba.avg")) < 1e-5);
      CHECK(test::max_rel_diff(lpips(b, a), d) < 1e-6);
    }
  }
}

TEST_CASE("LPIPS sends gradient to its inputs only, and its weights stay frozen", "[metric]") {
  const auto dir = lpips_dir();
  metric::LPIPS lpips(metric::LPIPSOptions().vgg_weights((dir / "vgg16_features.pt").string()));
  auto a = at::rand({2, 3, 32, 32});
  auto b = at::rand({2, 3, 32, 32}).requires_grad_(true);
  lpips(a, b).sum().backward();
  REQUIRE(b.grad().defined());
  CHECK(b.grad().abs().sum().item<double>() > 0);
  for (const auto& p : lpips->parameters()) {
    CHECK(!p.requires_grad());
    CHECK(!p.grad().defined());
  }
  auto copy = std::dynamic_pointer_cast<metric::LPIPSImpl>(lpips->clone());  // EMA copies clone models
  CHECK(at::equal(copy->vgg->features->parameters()[0], lpips->vgg->features->parameters()[0]));
}

TEST_CASE("missing, foreign and incomplete weight files are refused by name", "[metric]") {
  const auto dir = lpips_dir();
  CHECK_THROWS_WITH(metric::LPIPS(metric::LPIPSOptions().vgg_weights((dir / "absent.pt").string())),
                    Catch::Contains("VGG16 weights file not found:") && Catch::Contains("absent.pt") &&
                        Catch::Contains("tools/export_weights.py"));
  CHECK_THROWS_WITH(metric::LPIPS(metric::LPIPSOptions().vgg_weights((dir / "lpips_linear.pt").string())),
                    Catch::Contains("VGG16 weights file") && Catch::Contains("26 missing: features.0.bias") &&
                        Catch::Contains("5 unexpected: lin0"));
  auto lin = test::load_tensors(dir / "lpips_linear.pt");
  lin.at("lin2") = at::ones({1, 128, 1, 1});
  lin.erase("lin4");
  const auto bad = test::scratch("lpips-bad") / "bad_linear.pt";
  test::save_tensors(lin, bad);
  CHECK_THROWS_WITH(metric::LPIPS(metric::LPIPSOptions().linear_weights(bad.string())),
                    Catch::Contains("1 missing: lin4") && Catch::Contains("lin2 (file [1, 128, 1, 1], model [1, 256, 1, 1])"));
  metric::LPIPS ok;
  CHECK_THROWS_WITH(ok(at::rand({1, 1, 8, 8}), at::rand({1, 1, 8, 8})), Catch::Contains("expected two image batches"));
}

// The LPIPS presets at a tiny size, on the random weights above, feature side 32.
#include "casdm/presets.hpp"
#include "casdm/train/trainer.hpp"
#include "tiny.hpp"

namespace {
ModelOptions lpips_options() {
  return test::tiny_options(8, 1, 100).feature_size(32).feature_weights(lpips_dir().string());
}
}  // namespace

TEST_CASE("CasDM_LPIPS: LPIPS trains phi only and the backbone never changes", "[metric][routing]") {
  torch::manual_seed(3);
  presets::CasDM_LPIPS m(lpips_options());
  test::perturb(*m->nets().theta);
  test::perturb(*m->nets().phi);
  auto theta = m->nets().theta->parameters(), phi = m->nets().phi->parameters();
  auto x0 = at::rand({4, 1, 8, 8}) * 2 - 1;
  auto report = m->training_losses(x0, at::full({4}, 30, at::kLong), at::randn({4, 1, 8, 8}));
  CHECK(report["lpips"].item<double>() > 0);
  CHECK(test::count(test::reaches(report["lpips"], theta)) == 0);
  CHECK(test::count(test::reaches(report["lpips"], phi)) == phi.size());
  auto backbone = m->named_children()["feature_lpips"];
  std::map<std::string, at::Tensor> before;
  for (const auto& kv : backbone->named_parameters()) before.emplace(kv.key(), kv.value().clone());
  train::Trainer<presets::CasDM_LPIPS> trainer(m, train::TrainerOptions().ema_rates({0.9}));
  for (int s = 0; s < 2; ++s) trainer.step(x0);
  for (const auto& kv : backbone->named_parameters()) CHECK(at::equal(kv.value(), before.at(kv.key())));
  CHECK(presets::CasDM_LPIPS::Impl::losses_type::describe().back().first == "lpips");
  CHECK(presets::CasDM_LPIPS::Impl::losses_type::describe().back().second == 0.1);
}

TEST_CASE("Dual_LPIPS: LPIPS reaches the shared network, and a missing weights folder is refused", "[metric][routing]") {
  torch::manual_seed(4);
  presets::Dual_LPIPS m(lpips_options());
  test::perturb(*m->nets().theta);
  auto theta = m->nets().theta->parameters();
  auto report = m->training_losses(at::rand({4, 1, 8, 8}) * 2 - 1, at::full({4}, 30, at::kLong), at::randn({4, 1, 8, 8}));
  CHECK(test::count(test::reaches(report["lpips"], theta)) == theta.size());
  CHECK_THROWS_WITH(presets::CasDM_LPIPS(test::tiny_options()), Catch::Contains("needs ModelOptions::feature_weights"));
  CHECK_THROWS_WITH(presets::DDPM_X0_LPIPS(test::tiny_options().feature_weights("/nonexistent")),
                    Catch::Contains("VGG16 weights file not found: /nonexistent/vgg16_features.pt"));
}

// ResNet-50 (the Table 3 ResNet feature loss).
#include "casdm/loss/resnet.hpp"

TEST_CASE("ResNet-50 stages equal torchvision's, and the ResNet feature distance its formula", "[metric]") {
  const auto dir = test::generated("resnet_ref.py");
  const auto ref = test::load_tensors(dir / "expected.pt");
  auto net = loss::ResNetBackbone::make(ModelOptions().feature_weights(dir.string()));
  at::NoGradGuard g;
  const auto mean = at::tensor({0.485, 0.456, 0.406}, at::kFloat).view({1, 3, 1, 1});
  const auto std = at::tensor({0.229, 0.224, 0.225}, at::kFloat).view({1, 3, 1, 1});
  auto stages = net->stages((ref.at("x") - mean) / std);
  REQUIRE(stages.size() == 4);
  const int64_t channels[4] = {256, 512, 1024, 2048};
  for (size_t l = 0; l < 4; ++l) {
    const auto& r = ref.at("stage." + std::to_string(l));
    CHECK(stages[l].size(1) == channels[l]);
    CHECK(stages[l].sizes() == r.sizes());
    CHECK(test::max_abs_diff(stages[l], r) <= 1e-5 * r.abs().max().item<double>());
  }
  auto d = loss::ResNetBackbone::distance(net, ref.at("x"), ref.at("y"));
  CHECK(test::max_rel_diff(d, ref.at("distance")) < 1e-5);
  CHECK(at::equal(loss::ResNetBackbone::distance(net, ref.at("x"), ref.at("x")), at::zeros({2})));
  CHECK_THROWS_WITH(loss::ResNetBackbone::make(ModelOptions().feature_weights(lpips_dir().string())),
                    Catch::Contains("ResNet-50 weights file not found") && Catch::Contains("resnet50.pt"));
}

TEST_CASE("CasDM_ResNet: the ResNet loss trains phi only", "[metric][routing]") {
  torch::manual_seed(5);
  presets::CasDM_ResNet m(test::tiny_options(8, 1, 100).feature_size(32).feature_weights(
      test::generated("resnet_ref.py").string()));
  test::perturb(*m->nets().theta);
  test::perturb(*m->nets().phi);
  auto theta = m->nets().theta->parameters(), phi = m->nets().phi->parameters();
  auto report = m->training_losses(at::rand({2, 1, 8, 8}) * 2 - 1, at::full({2}, 30, at::kLong), at::randn({2, 1, 8, 8}));
  CHECK(report["resnet"].item<double>() > 0);
  CHECK(test::count(test::reaches(report["resnet"], theta)) == 0);
  CHECK(test::count(test::reaches(report["resnet"], phi)) == phi.size());
}
