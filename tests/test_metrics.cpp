// Metric networks: VGG16's features against torchvision's on the same random weights, LPIPS
// against piq's formula run by PyTorch, its properties, and the refusals of bad weight files.
#include "casdm/eval/likelihood.hpp"
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
ObjectiveOptions lpips_options() { return ObjectiveOptions().feature_size(32).feature_weights(lpips_dir().string()); }
}  // namespace

TEST_CASE("CasDM_LPIPS: LPIPS trains phi only and the backbone never changes", "[metric][routing]") {
  torch::manual_seed(3);
  presets::CasDM_LPIPS m(test::tiny_options(8, 1, 100), lpips_options());
  test::perturb(*m->nets().theta);
  test::perturb(*m->nets().phi);
  auto theta = m->nets().theta->parameters(), phi = m->nets().phi->parameters();
  auto x0 = at::rand({4, 1, 8, 8}) * 2 - 1;
  auto report = m->training_losses(x0, at::full({4}, 30, at::kLong), at::randn({4, 1, 8, 8}));
  CHECK(report["lpips"].item<double>() > 0);
  CHECK(test::count(test::reaches(report["lpips"], theta)) == 0);
  CHECK(test::count(test::reaches(report["lpips"], phi)) == phi.size());
  auto backbone = m->objective()->named_children()["feature_lpips"];
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
  presets::Dual_LPIPS m(test::tiny_options(8, 1, 100), lpips_options());
  test::perturb(*m->nets().theta);
  auto theta = m->nets().theta->parameters();
  auto report = m->training_losses(at::rand({4, 1, 8, 8}) * 2 - 1, at::full({4}, 30, at::kLong), at::randn({4, 1, 8, 8}));
  CHECK(test::count(test::reaches(report["lpips"], theta)) == theta.size());
  CHECK_THROWS_WITH(presets::CasDM_LPIPS(test::tiny_options()), Catch::StartsWith("feature_weights: the LPIPS loss needs the folder of vgg16_features.pt"));
  CHECK_THROWS_WITH(presets::DDPM_X0_LPIPS(test::tiny_options(), ObjectiveOptions().feature_weights("/nonexistent")),
                    Catch::Contains("VGG16 weights file not found: /nonexistent/vgg16_features.pt"));
}

// ResNet-50 (the Table 3 ResNet feature loss).
#include "casdm/loss/resnet.hpp"

TEST_CASE("ResNet-50 stages equal torchvision's, and the ResNet feature distance its formula", "[metric]") {
  const auto dir = test::generated("resnet_ref.py");
  const auto ref = test::load_tensors(dir / "expected.pt");
  auto net = loss::ResNetBackbone::make(ObjectiveOptions().feature_weights(dir.string()));
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
  CHECK_THROWS_WITH(loss::ResNetBackbone::make(ObjectiveOptions().feature_weights(lpips_dir().string())),
                    Catch::Contains("ResNet-50 weights file not found") && Catch::Contains("resnet50.pt"));
}

TEST_CASE("CasDM_ResNet: the ResNet loss trains phi only", "[metric][routing]") {
  torch::manual_seed(5);
  presets::CasDM_ResNet m(test::tiny_options(8, 1, 100),
                          ObjectiveOptions().feature_size(32).feature_weights(test::generated("resnet_ref.py").string()));
  test::perturb(*m->nets().theta);
  test::perturb(*m->nets().phi);
  auto theta = m->nets().theta->parameters(), phi = m->nets().phi->parameters();
  auto report = m->training_losses(at::rand({2, 1, 8, 8}) * 2 - 1, at::full({2}, 30, at::kLong), at::randn({2, 1, 8, 8}));
  CHECK(report["resnet"].item<double>() > 0);
  CHECK(test::count(test::reaches(report["resnet"], theta)) == 0);
  CHECK(test::count(test::reaches(report["resnet"], phi)) == phi.size());
}

// Inception v3 and Swin-T (the Table 3 Inception and Swin feature losses).
#include "casdm/loss/inception.hpp"
#include "casdm/loss/swin.hpp"

namespace {
const std::filesystem::path& inception_dir() {
  static const auto dir = test::generated("inception_ref.py");
  return dir;
}
const std::filesystem::path& swin_dir() {
  static const auto dir = test::generated("swin_ref.py");
  return dir;
}
void check_close(const std::vector<at::Tensor>& got, const std::map<std::string, at::Tensor>& ref, const std::string& prefix,
                 const std::vector<int64_t>& channels, bool channels_last) {
  REQUIRE(got.size() == channels.size());
  for (size_t l = 0; l < got.size(); ++l) {
    INFO(prefix << l);
    const auto& r = ref.at(prefix + std::to_string(l));
    CHECK(got[l].size(channels_last ? 3 : 1) == channels[l]);
    CHECK(got[l].sizes() == r.sizes());
    CHECK(test::max_abs_diff(got[l], r) <= 1e-5 * r.abs().max().item<double>());
  }
}
}  // namespace

TEST_CASE("Inception v3 blocks equal torchvision's, the FID variant its pooling, and the distance its formula", "[metric]") {
  const auto& dir = inception_dir();
  const auto ref = test::load_tensors(dir / "expected.pt");
  auto net = loss::InceptionBackbone::make(ObjectiveOptions().feature_weights(dir.string()));
  at::NoGradGuard g;
  check_close(net->blocks(ref.at("x") * 2 - 1), ref, "block.", {64, 192, 768, 2048}, false);
  const auto& rz = ref.at("zblock.3");
  CHECK(test::max_abs_diff(net->blocks(ref.at("z") * 2 - 1)[3], rz) <= 1e-5 * rz.abs().max().item<double>());
  CHECK(test::max_rel_diff(loss::InceptionBackbone::distance(net, ref.at("x"), ref.at("y")), ref.at("distance")) < 1e-5);
  CHECK(at::equal(loss::InceptionBackbone::distance(net, ref.at("x"), ref.at("x")), at::zeros({2})));

  metric::InceptionV3 fid(metric::InceptionV3Options().num_classes(1008).fid_variant(true));
  metric::load_weights(*fid, dir / "inception_fid.pt", "FID Inception weights");
  fid->eval();
  const auto& pool = ref.at("fid.pool");
  CHECK(test::max_abs_diff(fid->pool_features(ref.at("x") * 2 - 1), pool) <= 1e-5 * pool.abs().max().item<double>());
  CHECK(test::max_rel_diff(fid->logits(ref.at("x") * 2 - 1), ref.at("fid.logits"), 1e-3) < 1e-4);
  const auto outs = fid->score_outputs(ref.at("x") * 2 - 1);
  CHECK(test::max_abs_diff(outs.pool, pool) <= 1e-5 * pool.abs().max().item<double>());
  CHECK(test::max_rel_diff(outs.logits, ref.at("fid.logits"), 1e-3) < 1e-4);
  const auto& spatial = ref.at("fid.spatial");
  CHECK(outs.spatial.sizes() == spatial.sizes());
  CHECK(test::max_abs_diff(outs.spatial, spatial) <= 1e-5 * spatial.abs().max().item<double>());
  // The variant matters: torchvision's pooling gives other features on the same weights.
  CHECK(test::max_abs_diff(net->blocks(ref.at("x") * 2 - 1)[3].mean({2, 3}), pool) > 1e-3 * pool.abs().max().item<double>());

  CHECK_THROWS_WITH(net->blocks(at::rand({1, 3, 74, 80})), Catch::Contains("at least 75×75") && Catch::Contains("74×80"));
  CHECK_THROWS_WITH(net->logits(at::rand({1, 3, 80, 80})), Catch::Contains("without a classifier"));
  CHECK_THROWS_WITH(loss::InceptionBackbone::make(ObjectiveOptions().feature_weights(dir.string()).feature_size(32)),
                    Catch::Contains("feature_size ≥ 75") && Catch::Contains("got 32"));
  CHECK_THROWS_WITH(metric::load_weights(*metric::InceptionV3(), dir / "inception_fid.pt", "Inception v3 weights"),
                    Catch::Contains("2 unexpected: fc.bias, fc.weight"));
  CHECK_THROWS_WITH(loss::InceptionBackbone::make(ObjectiveOptions().feature_weights(swin_dir().string())),
                    Catch::Contains("Inception v3 weights file not found") && Catch::Contains("inception_v3.pt"));
}

TEST_CASE("Swin-T stages equal torchvision's, on square and non-square input, and the distance its formula", "[metric]") {
  const auto& dir = swin_dir();
  const auto ref = test::load_tensors(dir / "expected.pt");
  auto net = loss::SwinBackbone::make(ObjectiveOptions().feature_weights(dir.string()));
  at::NoGradGuard g;
  const auto mean = at::tensor({0.485, 0.456, 0.406}, at::kFloat).view({1, 3, 1, 1});
  const auto std = at::tensor({0.229, 0.224, 0.225}, at::kFloat).view({1, 3, 1, 1});
  check_close(net->stages((ref.at("x") - mean) / std), ref, "stage.", {96, 192, 384, 768}, true);
  check_close(net->stages((ref.at("z") - mean) / std), ref, "zstage.", {96, 192, 384, 768}, true);
  CHECK(test::max_rel_diff(loss::SwinBackbone::distance(net, ref.at("x"), ref.at("y")), ref.at("distance")) < 1e-5);
  CHECK(at::equal(loss::SwinBackbone::distance(net, ref.at("x"), ref.at("x")), at::zeros({2})));
  // A clone (what EMA copies of a model do) computes the same.
  auto copy = std::dynamic_pointer_cast<metric::SwinTImpl>(net->clone());
  CHECK(at::equal(copy->stages(ref.at("x"))[3], net->stages(ref.at("x"))[3]));
  CHECK_THROWS_WITH(net->stages(at::rand({1, 1, 8, 8})), Catch::Contains("Swin-T: expected images [N, 3, H, W]"));
}

TEST_CASE("CasDM_Inception and CasDM_Swin: the feature loss trains phi only", "[metric][routing]") {
  auto check_phi_only = [](auto m, const char* term) {
    test::perturb(*m->nets().theta);
    test::perturb(*m->nets().phi);
    auto theta = m->nets().theta->parameters(), phi = m->nets().phi->parameters();
    auto report = m->training_losses(at::rand({2, 1, 8, 8}) * 2 - 1, at::full({2}, 30, at::kLong), at::randn({2, 1, 8, 8}));
    INFO(term);
    const at::Tensor loss = report[term];
    CHECK(loss.item<double>() > 0);
    CHECK(test::count(test::reaches(loss, theta)) == 0);
    CHECK(test::count(test::reaches(loss, phi)) == phi.size());
    CHECK(m->objective()->named_children()[std::string("feature_") + term]->parameters().front().requires_grad() == false);
  };
  torch::manual_seed(6);
  check_phi_only(presets::CasDM_Inception(test::tiny_options(8, 1, 100), ObjectiveOptions().feature_size(75).feature_weights(inception_dir().string())),
                 "inception");
  check_phi_only(presets::CasDM_Swin(test::tiny_options(8, 1, 100), ObjectiveOptions().feature_size(32).feature_weights(swin_dir().string())),
                 "swin");
  CHECK(presets::CasDM_Swin::Impl::losses_type::describe().back().second == 0.1);
  CHECK(presets::CasDM_Inception::Impl::losses_type::describe().back().second == 0.1);
}

// 𝒯 by value against PyTorch's F.interpolate (bilinear, align_corners=False), (x+1)/2 and the
// grey → three-channel repeat, at sides below, equal to and above the input's 12.
TEST_CASE("the feature transform equals PyTorch's resize, rescale and channel repeat", "[metric][loss]") {
  const auto dir = test::scratch("transform");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(21);
  const auto grey = at::rand({2, 1, 12, 12}, gen, at::kDouble) * 2.4 - 1.2;  // a little outside [−1, 1] too
  const auto rgb = at::rand({2, 3, 12, 12}, gen, at::kDouble) * 2 - 1;
  const std::vector<int64_t> sizes{5, 12, 32, 75};
  test::save_tensors({{"grey", grey}, {"rgb", rgb}, {"sizes", at::tensor(sizes)}}, dir / "in.pt");
  test::run_python("transform_ref.py", (dir / "in.pt").string() + " " + (dir / "out.pt").string());
  const auto want = test::load_tensors(dir / "out.pt");
  for (const auto s : sizes) {
    INFO("side " << s);
    CHECK(test::max_abs_diff(loss::feature_transform(grey, s), want.at(fmt::format("grey@{}", s))) < 1e-12);
    CHECK(test::max_abs_diff(loss::feature_transform(rgb, s), want.at(fmt::format("rgb@{}", s))) < 1e-12);
  }
}

// Hidden ([.cuda]): it compares each accelerator with the CPU, so it has nothing to check on a
// CPU-only machine; tools/gpu-check.sh runs it on the GPU machine, and run there it fails when no
// accelerator is in the device list.
TEST_CASE("metric networks compute the same on every accelerator as on the CPU", "[metric][device][.cuda]") {
  std::vector<c10::Device> accelerators;
  for (const auto& d : test::devices())
    if (!d.is_cpu()) accelerators.push_back(d);
  REQUIRE(!accelerators.empty());
  const auto lref = test::load_tensors(lpips_dir() / "expected.pt");
  metric::LPIPS lpips(metric::LPIPSOptions()
                          .vgg_weights((lpips_dir() / "vgg16_features.pt").string())
                          .linear_weights((lpips_dir() / "lpips_linear.pt").string()));
  auto resnet = loss::ResNetBackbone::make(ObjectiveOptions().feature_weights(test::generated("resnet_ref.py").string()));
  auto inception = loss::InceptionBackbone::make(ObjectiveOptions().feature_weights(inception_dir().string()));
  auto swin = loss::SwinBackbone::make(ObjectiveOptions().feature_weights(swin_dir().string()));
  const auto a = lref.at("a").slice(0, 0, 2), b = lref.at("b").slice(0, 0, 2);
  const auto a80 = at::upsample_bilinear2d(a, {80, 80}, false), b80 = at::upsample_bilinear2d(b, {80, 80}, false);
  at::NoGradGuard g;
  const auto want_lpips = lpips(a, b), want_resnet = loss::ResNetBackbone::distance(resnet, a, b);
  const auto want_inception = loss::InceptionBackbone::distance(inception, a80, b80);
  const auto want_swin = loss::SwinBackbone::distance(swin, a, b);
  for (const auto& device : accelerators) {
    INFO(device.str());
    lpips->to(device);
    resnet->to(device);
    inception->to(device);
    swin->to(device);
    const auto A = a.to(device), B = b.to(device), A80 = a80.to(device), B80 = b80.to(device);
    // cuDNN and TF32 matrix products round differently from the CPU: a loose relative bound.
    CHECK(test::max_rel_diff(lpips(A, B).cpu(), want_lpips) < 2e-3);
    CHECK(test::max_rel_diff(loss::ResNetBackbone::distance(resnet, A, B).cpu(), want_resnet) < 2e-3);
    CHECK(test::max_rel_diff(loss::InceptionBackbone::distance(inception, A80, B80).cpu(), want_inception) < 2e-3);
    CHECK(test::max_rel_diff(loss::SwinBackbone::distance(swin, A, B).cpu(), want_swin) < 2e-3);
  }
}

// SmallVGG: the metric network trained on the data itself (CPU scale, no ImageNet weights).
#include "casdm/loss/small_vgg.hpp"
#include "casdm/train/small_vgg.hpp"

TEST_CASE("SmallVGG's distance is LPIPS's formula with unit weights, as PyTorch computes it from the saved file", "[metric]") {
  const auto dir = test::scratch("small-vgg");
  torch::manual_seed(7);
  metric::SmallVGG net(metric::SmallVGGOptions().widths({8, 16, 24}).num_classes(5));
  metric::save_small_vgg(net, dir / "small_vgg.pt", {{"test_accuracy", "0.5"}});
  const auto a = at::rand({3, 3, 20, 20}), b = at::rand({3, 3, 20, 20});
  test::save_tensors({{"a", a}, {"b", b}}, dir / "inputs.pt");
  test::run_python("small_vgg_ref.py", (dir / "small_vgg.pt").string() + " " + (dir / "inputs.pt").string() + " " +
                                           (dir / "expected.pt").string());
  const auto ref = test::load_tensors(dir / "expected.pt");
  auto loaded = loss::SmallVGGBackbone::make(ObjectiveOptions().feature_weights(dir.string()));
  CHECK(loaded->options.widths() == std::vector<int64_t>{8, 16, 24});
  CHECK(loaded->options.num_classes() == 5);
  at::NoGradGuard g;
  CHECK(test::max_rel_diff(metric::small_vgg_distance(loaded, a, b), ref.at("distance")) < 1e-4);
  CHECK(test::max_rel_diff(loaded->logits(a), ref.at("logits"), 1e-3) < 1e-4);
  CHECK(at::equal(metric::small_vgg_distance(loaded, a, a), at::zeros({3})));
  CHECK(test::max_rel_diff(metric::small_vgg_distance(loaded, b, a), metric::small_vgg_distance(loaded, a, b)) < 1e-6);
  for (const auto& p : loaded->parameters()) CHECK(!p.requires_grad());

  CHECK_THROWS_WITH(loss::SmallVGGBackbone::make(ObjectiveOptions().feature_weights(lpips_dir().string())),
                    Catch::Contains("SmallVGG weights file not found") && Catch::Contains("casdm-metric --data DIR"));
  CHECK_THROWS_WITH(loss::SmallVGGBackbone::make(ObjectiveOptions()), Catch::Contains("casdm-metric --data DIR --out FOLDER"));
  CHECK_THROWS_WITH(metric::load_small_vgg(lpips_dir() / "lpips_linear.pt"), Catch::Contains("is not a SmallVGG file"));
  auto t = io::read_tensor_file(dir / "small_vgg.pt").tensors;
  t.erase("classifier.bias");
  io::TensorFile edited;
  edited.tensors = t;
  edited.meta = {{"small_vgg.widths", "8,16,24"}, {"small_vgg.num_classes", "5"}};
  io::write_tensor_file(dir / "edited.pt", edited);
  CHECK_THROWS_WITH(metric::load_small_vgg(dir / "edited.pt"), Catch::Contains("1 missing: classifier.bias"));
  CHECK_THROWS_WITH(train::train_small_vgg(at::zeros({4, 1, 8, 8}, at::kByte), at::Tensor(), train::SmallVGGTraining()),
                    Catch::Contains("has no labels"));
  CHECK_THROWS_WITH(train::train_small_vgg(at::zeros({4, 1, 8, 8}, at::kByte), at::full({4}, 12, at::kLong),
                                            train::SmallVGGTraining()),
                    Catch::Contains("labels must lie in [0, 10), found 12"));
}

TEST_CASE("CasDM_SmallVGG: the SmallVGG loss trains phi only", "[metric][routing]") {
  const auto dir = test::scratch("small-vgg-preset");
  torch::manual_seed(8);
  metric::SmallVGG net(metric::SmallVGGOptions().widths({8, 16}));
  test::perturb(*net);
  metric::save_small_vgg(net, dir / "small_vgg.pt");
  presets::CasDM_SmallVGG m(test::tiny_options(), ObjectiveOptions().feature_weights(dir.string()));
  CHECK(presets::CasDM_SmallVGG::Impl::losses_type::describe().back().first == "small_vgg");
  test::perturb(*m->nets().theta);
  test::perturb(*m->nets().phi);
  auto theta = m->nets().theta->parameters(), phi = m->nets().phi->parameters();
  auto report = m->training_losses(at::rand({2, 1, 8, 8}) * 2 - 1, at::full({2}, 30, at::kLong), at::randn({2, 1, 8, 8}));
  const at::Tensor loss = report["small_vgg"];
  CHECK(loss.item<double>() > 0);
  CHECK(test::count(test::reaches(loss, theta)) == 0);
  CHECK(test::count(test::reaches(loss, phi)) == phi.size());
}

TEST_CASE("tools/export_weights.py writes files that every metric network loads strictly", "[metric][tools]") {
  const auto dir = test::scratch("export-weights");
  const std::string cmd = std::string(CASDM_PYTHON) + " " + test::source_dir() + "/../tools/export_weights.py --random --out " +
                          dir.string() + " > " + (dir / "log.txt").string() + " 2>&1";
  INFO("running " << cmd);
  REQUIRE(std::system(cmd.c_str()) == 0);
  const auto o = ObjectiveOptions().feature_weights(dir.string());
  CHECK_NOTHROW(loss::LPIPSBackbone::make(o));
  CHECK_NOTHROW(loss::ResNetBackbone::make(o));
  CHECK_NOTHROW(loss::InceptionBackbone::make(o));
  CHECK_NOTHROW(loss::SwinBackbone::make(o));
  metric::InceptionV3 fid(metric::InceptionV3Options().num_classes(1008).fid_variant(true));
  CHECK_NOTHROW(metric::load_weights(*fid, dir / "inception_fid.pt", "FID Inception weights"));
  const std::string bad = std::string(CASDM_PYTHON) + " " + test::source_dir() +
                          "/../tools/export_weights.py --random --only vgg16,alexnet --out " + dir.string() + " 2>&1";
  CHECK(std::system((bad + " | grep -q 'unknown alexnet'").c_str()) == 0);
}

// Scores: feature statistics, the Fréchet distance, the Inception Score.
#include "casdm/eval/scorers.hpp"
#include "casdm/eval/scores.hpp"

TEST_CASE("feature statistics and the Fréchet distance equal numpy's and scipy's", "[eval]") {
  const auto ref = test::load_tensors(test::generated("scores_ref.py") / "expected.pt");
  const auto& x = ref.at("x");
  eval::StatsAccumulator acc;  // three uneven batches: the streaming sums equal the whole
  acc.add(x.slice(0, 0, 100));
  acc.add(x.slice(0, 100, 350));
  acc.add(x.slice(0, 350, 600));
  const auto sx = acc.finish();
  CHECK(sx.count == 600);
  CHECK(test::max_rel_diff(sx.mu, ref.at("mu_x")) < 1e-12);
  CHECK(test::max_abs_diff(sx.sigma, ref.at("sigma_x")) < 1e-10 * ref.at("sigma_x").abs().max().item<double>());
  const auto sy = eval::statistics(ref.at("y"));
  const double want = ref.at("fid_xy").item<double>();
  CHECK(std::abs(eval::frechet_distance(sx, sy) - want) < 1e-6 * want);
  CHECK(std::abs(eval::frechet_distance(sy, sx) - want) < 1e-6 * want);
  CHECK(std::abs(eval::frechet_distance(sx, sx)) < 1e-9 * sx.sigma.trace().item<double>());
  CHECK_THROWS_WITH(eval::frechet_distance(sx, eval::statistics(at::rand({5, 3}))), Catch::Contains("48 and 3 features"));
  CHECK_THROWS_WITH(eval::statistics(at::rand({1, 3})), Catch::Contains("at least 2 vectors, got 1"));
}

TEST_CASE("the bootstrap spread of the Fréchet distance equals scipy's on the same resamples", "[eval]") {
  const auto ref = test::load_tensors(test::generated("scores_ref.py") / "expected.pt");
  const auto sy = eval::statistics(ref.at("y"));
  const auto spread = eval::bootstrap_fd(ref.at("x"), sy, ref.at("boot_idx"));
  const auto want = ref.at("boot_fd");
  REQUIRE(spread.values.size() == 20);
  for (int64_t b = 0; b < 20; ++b) CHECK(std::abs(spread.values[b] - want[b].item<double>()) < 1e-6 * want[b].item<double>());
  CHECK(std::abs(spread.mean - ref.at("boot_mean").item<double>()) < 1e-6 * spread.mean);
  CHECK(std::abs(spread.std - ref.at("boot_std").item<double>()) < 1e-5 * spread.std);
  // Seeded: the same seed the same resamples; more samples a smaller spread (here 4× the vectors).
  const auto a = eval::bootstrap_fd(ref.at("x"), sy, 30, 1), b = eval::bootstrap_fd(ref.at("x"), sy, 30, 1);
  CHECK(a.values == b.values);
  CHECK(a.std > 0);
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto few = at::randn({300, 8}, g, at::kDouble), many = at::randn({4800, 8}, g, at::kDouble);
  const auto unit = eval::FeatureStats{at::zeros({8}, at::kDouble), at::eye(8, at::kDouble), 1 << 20};
  CHECK(eval::bootstrap_fd(many, unit, 40, 2).std < 0.5 * eval::bootstrap_fd(few, unit, 40, 2).std);
  CHECK_THROWS_WITH(eval::bootstrap_fd(ref.at("x"), sy, 1), Catch::Contains("at least 2 resamples"));
  CHECK_THROWS_WITH(eval::bootstrap_fd(ref.at("x"), sy, at::full({3, 600}, 600, at::kLong)),
                    Catch::Contains("outside the 600 feature vectors"));
}

TEST_CASE("KID: torch-fidelity's formula on the same subsets and the closed form of two Gaussians", "[eval][kid]") {
  const auto ref = test::load_tensors(test::generated("scores_ref.py") / "expected.pt");
  const auto k = eval::kernel_distance(ref.at("kx"), ref.at("ky"), ref.at("kid_ix"), ref.at("kid_iy"));
  REQUIRE(k.values.size() == 7);
  CHECK(k.subset_size == 150);
  for (int64_t s = 0; s < 7; ++s) CHECK(std::abs(k.values[s] - ref.at("kid")[s].item<double>()) < 1e-12);
  CHECK(std::abs(k.mean - ref.at("kid_mean").item<double>()) < 1e-12);
  CHECK(std::abs(k.std - ref.at("kid_std").item<double>()) < 1e-12);
  // In float32 features the same to float32's rounding.
  const auto k32 = eval::kernel_distance(ref.at("kx").to(at::kFloat), ref.at("ky").to(at::kFloat), ref.at("kid_ix"), ref.at("kid_iy"));
  CHECK(std::abs(k32.mean - k.mean) < 1e-5);

  // x ~ N(a, I), y ~ N(b, I) in d dimensions, s = xᵀy: E s = a·b, E s² = (a·b)² + |a|² + |b|² + d,
  // E s³ = (a·b)³ + 3(a·b)(|a|² + |b|²) + 3(d + 2)(a·b); E k = 1 + 3 E s/d + 3 E s²/d² + E s³/d³, and
  // MMD² = E k(x, x') + E k(y, y') − 2 E k(x, y).
  constexpr int64_t d = 8;
  auto expect_k = [](double ab, double aa, double bb) {
    const double s1 = ab, s2 = ab * ab + aa + bb + d, s3 = ab * ab * ab + 3 * ab * (aa + bb) + 3 * (d + 2) * ab;
    return 1 + 3 * s1 / d + 3 * s2 / (d * d) + s3 / (d * d * d);
  };
  auto g = at::make_generator<at::CPUGeneratorImpl>(21);
  const auto x = at::randn({3000, d}, g, at::kDouble), y = at::randn({4000, d}, g, at::kDouble);
  // One distribution: 0 within the spread (a V-statistic's bias, 2(E k(x, x) − E k(x, x'))/m ≈ 0.02, is not).
  const auto same = eval::kernel_distance(x, y, 100, 0, 3);
  WARN("KID of one Gaussian: " << same.mean << " ± " << same.std);
  CHECK(same.subset_size == 1000);
  CHECK(same.std > 0);
  CHECK(std::abs(same.mean) < 2 * same.std);
  CHECK(same.std < 0.005);
  // Means 0 and 0.3 in every dimension.
  const double shift = 0.3, bb = d * shift * shift;
  const double closed = expect_k(0, 0, 0) + expect_k(bb, bb, bb) - 2 * expect_k(0, 0, bb);
  const auto apart = eval::kernel_distance(x, y + shift, 100, 0, 3);
  WARN("KID of Gaussians 0.3 apart: " << apart.mean << " ± " << apart.std << ", closed form " << closed);
  CHECK(closed > 10 * apart.std);
  CHECK(std::abs(apart.mean - closed) < 2 * apart.std);
  // Seeded; fewer than 1000 vectors: subsets of all of the smaller side.
  CHECK(eval::kernel_distance(x, y, 5, 0, 9).values == eval::kernel_distance(x, y, 5, 0, 9).values);
  CHECK(eval::kernel_distance(x.slice(0, 0, 300), y, 3).subset_size == 300);
  CHECK(eval::kid_subset_size(50, 20) == 20);
  // Refusals, one line each.
  CHECK_THROWS_WITH(eval::kernel_distance(x.slice(0, 0, 600), y, 5, 700), "KID: a subset of 700 is more than the 600 samples");
  CHECK_THROWS_WITH(eval::kernel_distance(x, y.slice(0, 0, 500), 5, 700), "KID: a subset of 700 is more than the 500 reference vectors");
  CHECK_THROWS_WITH(eval::kernel_distance(x, y, 0), "KID: at least 1 subset, got 0");
  CHECK_THROWS_WITH(eval::kernel_distance(x, y, 5, 1), "KID: subsets of 1 vectors; at least 2 are needed");
  CHECK_THROWS_WITH(eval::kernel_distance(x, at::randn({50, 3}), 5), "KID: features of 8 and 3 dimensions (another feature network?)");
  CHECK_THROWS_WITH(eval::kernel_distance(x, y, at::full({2, 4}, 3000, at::kLong), at::zeros({2, 4}, at::kLong)),
                    "KID: a subset index outside the 3000 feature vectors");
  CHECK_THROWS_WITH(eval::kernel_distance(x, y, at::zeros({2, 4}, at::kLong), at::zeros({2, 5}, at::kLong)), Catch::StartsWith("KID: expected subset indices"));
  // In the scores: taken where both sides kept their features, named by the scorer's kind.
  eval::ImageStats a{eval::statistics(x), {}, at::full({3000, 2}, 0.5, at::kDouble), x};
  eval::ImageStats b{eval::statistics(y), {}, {}, y};
  const auto s = eval::scores_of(a, b, 10, 0, 3, {20, 500});
  CHECK(s.kid.values.size() == 20);
  CHECK(s.kid.values == eval::kernel_distance(x, y, 20, 500, 3).values);
  const auto j = eval::scores_json(s, false, 10, 0);
  CHECK(j.at("kid_domain").at("subsets") == 20);
  CHECK(j.at("kid_domain").at("subset_size") == 500);
  CHECK(j.at("kid_domain").at("mean").get<double>() == s.kid.mean);
  CHECK(eval::scores_json(s, true, 10, 0).contains("kid"));
  CHECK(eval::scores_of(a, b, 10, 0, 3, {0, 0}).kid.values.empty());
  b.features = at::Tensor();
  CHECK(!eval::scores_json(eval::scores_of(a, b), false, 10, 0).contains("kid_domain"));
}

TEST_CASE("the Fréchet distance has its closed forms where sqrtm struggles: singular and commuting covariances", "[eval]") {
  // Rank 5 in 40 dimensions (fewer vectors than features): tr S + tr S − 2 tr (S S)^½ = 0.
  auto g = at::make_generator<at::CPUGeneratorImpl>(9);
  const auto feats = at::randn({6, 40}, g, at::kDouble);
  auto s = eval::statistics(feats);
  auto shifted = s;
  shifted.mu = s.mu + 0.5;
  // The zero eigenvalues come out as ±1e-16·‖S‖² and their square roots as 1e-8·‖S‖ each: a
  // float64 square root near zero is accurate to √ε, so the bound is 1e-6 of tr S.
  CHECK(std::abs(eval::frechet_distance(s, shifted) - 40 * 0.25) < 1e-6 * s.sigma.trace().item<double>());
  CHECK(std::abs(eval::frechet_distance(s, s)) < 1e-6 * s.sigma.trace().item<double>());
  // Diagonal covariances: tr (AB)^½ = Σ √(aᵢbᵢ).
  const auto a = at::rand({30}, g, at::kDouble) + 0.1, b = at::rand({30}, g, at::kDouble) + 0.1;
  eval::FeatureStats da{at::zeros({30}, at::kDouble), at::diag(a), 100}, db{at::ones({30}, at::kDouble), at::diag(b), 100};
  const double closed = 30 + (a.sum() + b.sum() - 2 * (a * b).sqrt().sum()).item<double>();
  CHECK(std::abs(eval::frechet_distance(da, db) - closed) < 1e-10 * closed);
}

TEST_CASE("the Inception Score: 1 for uniform predictions, k for one-hot over k balanced classes, numpy's otherwise", "[eval]") {
  CHECK(std::abs(eval::inception_score(at::full({200, 10}, 0.1, at::kDouble)).mean - 1) < 1e-12);
  for (int64_t k : {2, 5, 10}) {
    // 10 splits of 10k rows, each split cycling through the k classes: balanced within every split.
    const auto labels = at::arange(100 * k, at::kLong).remainder(k);
    const auto s = eval::inception_score(at::one_hot(labels, k).to(at::kDouble), 10);
    CHECK(std::abs(s.mean - static_cast<double>(k)) < 1e-9);
    CHECK(s.std < 1e-9);
  }
  const auto ref = test::load_tensors(test::generated("scores_ref.py") / "expected.pt");
  const auto s = eval::inception_score(ref.at("probs"), 10);
  CHECK(std::abs(s.mean - ref.at("is_mean").item<double>()) < 1e-10);
  CHECK(std::abs(s.std - ref.at("is_std").item<double>()) < 1e-10);
  CHECK_THROWS_WITH(eval::inception_score(at::rand({5, 3}), 10), Catch::Contains("5 samples for 10 splits"));
}

TEST_CASE("cached statistics are used only for the key they were made for", "[eval]") {
  const auto dir = test::scratch("stats-cache");
  const auto s = eval::statistics(at::rand({20, 4}));
  eval::save_stats(s, dir / "stats.pt", "smallvgg:abc|fashion-mnist|32");
  auto back = eval::load_stats(dir / "stats.pt", "smallvgg:abc|fashion-mnist|32");
  REQUIRE(back.has_value());
  CHECK(at::equal(back->mu, s.mu));
  CHECK(at::equal(back->sigma, s.sigma));
  CHECK(back->count == 20);
  CHECK(!eval::load_stats(dir / "stats.pt", "inception|fashion-mnist|32").has_value());
  CHECK(!eval::load_stats(dir / "absent.pt", "x").has_value());
  CHECK_THROWS_WITH(eval::load_stats(lpips_dir() / "lpips_linear.pt", "x"), Catch::Contains("is not a casdm statistics file"));
}

namespace {
// A scorer whose features are known: pool = the image's mean and its top-left pixel, probs from
// them; it counts the images it saw.
struct PixelScorer {
  int64_t seen = 0;
  std::string key() const { return "pixels:1"; }
  eval::ScoreFeatures operator()(const at::Tensor& x) {
    seen += x.size(0);
    auto pool = at::stack({x.mean({1, 2, 3}), x.select(1, 0).select(1, 0).select(1, 0)}, 1);
    return {pool, at::Tensor(), at::softmax(pool, 1)};
  }
};
}  // namespace

TEST_CASE("image_stats gathers batch by batch what one pass over the features gives, and the reference is cached by key", "[eval]") {
  const auto dir = test::scratch("reference-stats");
  std::filesystem::remove(dir / "ref.pt");
  auto images = at::randint(0, 256, {23, 1, 4, 4}, at::kByte);
  const auto x = images.to(at::kDouble) / 127.5 - 1;  // the scorer's input, in float64
  const auto features = at::stack({x.mean({1, 2, 3}), x.select(1, 0).select(1, 0).select(1, 0)}, 1);
  const auto want = eval::statistics(features);
  PixelScorer scorer;
  std::vector<std::pair<int64_t, int64_t>> calls;
  const auto first = eval::reference_stats(scorer, images, "toy|23", dir / "ref.pt", at::kCPU, 5,
                                           [&](int64_t d, int64_t t) { calls.emplace_back(d, t); });
  CHECK(!first.cached);
  CHECK(scorer.seen == 23);
  CHECK(calls == std::vector<std::pair<int64_t, int64_t>>{{5, 23}, {10, 23}, {15, 23}, {20, 23}, {23, 23}});
  CHECK(first.stats.pool.count == 23);
  CHECK(at::allclose(first.stats.pool.mu.to(at::kDouble), want.mu, 1e-6, 1e-6));
  CHECK(at::allclose(first.stats.pool.sigma.to(at::kDouble), want.sigma, 1e-6, 1e-6));
  CHECK(first.stats.probs.sizes() == at::IntArrayRef({23, 2}));
  // The reference keeps its features for the KID (all 23 here, fewer than kReferenceFeatures).
  CHECK(test::max_abs_diff(first.stats.features.to(at::kDouble), features) < 1e-6);
  // The same key: read back, nothing scored; another key (other data): scored again and kept.
  const auto again = eval::reference_stats(scorer, images, "toy|23", dir / "ref.pt", at::kCPU, 5);
  CHECK(again.cached);
  CHECK(scorer.seen == 23);
  CHECK(at::equal(again.stats.pool.mu, first.stats.pool.mu));
  CHECK(at::equal(again.stats.pool.sigma, first.stats.pool.sigma));
  CHECK(at::equal(again.stats.features, first.stats.features.to(at::kFloat)));
  // At most k kept: a seeded choice of rows, in the images' order.
  const auto some = eval::image_stats(scorer, images, at::kCPU, 5, {}, true, 7);
  REQUIRE(some.features.size(0) == 7);
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < 7; ++i)
    for (int64_t r = 0; r < 23; ++r)
      if (test::max_abs_diff(some.features[i].to(at::kDouble), features[r]) < 1e-6) rows.push_back(r);
  REQUIRE(rows.size() == 7);
  CHECK(std::is_sorted(rows.begin(), rows.end()));
  CHECK(at::equal(eval::image_stats(scorer, images, at::kCPU, 4, {}, true, 7).features, some.features));
  scorer.seen = 23;
  // A cache written before the KID (no features) is made again.
  {
    auto old = first.stats;
    old.features = at::Tensor();
    eval::save_reference(old, dir / "old.pt", "pixels:1|toy|23");
    CHECK(!eval::load_reference(dir / "old.pt", "pixels:1|toy|23").has_value());
  }
  const auto other = eval::reference_stats(scorer, images.slice(0, 0, 10), "toy|10", dir / "ref.pt", at::kCPU, 5);
  CHECK(!other.cached);
  CHECK(scorer.seen == 33);
  CHECK(other.stats.pool.count == 10);
  CHECK(eval::reference_stats(scorer, images.slice(0, 0, 10), "toy|10", dir / "ref.pt", at::kCPU, 5).cached);
  CHECK(!eval::load_reference(dir / "ref.pt", "pixels:1|toy|23").has_value());  // the cache holds the latest key
  CHECK(other.cache_error.empty());
  // A cache that cannot be written: the statistics are returned all the same, with the reason.
  const auto uncached = eval::reference_stats(scorer, images.slice(0, 0, 10), "toy|10", "/proc/casdm/ref.pt", at::kCPU, 5);
  CHECK(!uncached.cached);
  CHECK(at::equal(uncached.stats.pool.mu, other.stats.pool.mu));
  CHECK_THAT(uncached.cache_error, Catch::Contains("/proc/casdm"));
  CHECK_THROWS_WITH(eval::reference_stats(scorer, images, "toy|23", lpips_dir() / "lpips_linear.pt", at::kCPU),
                    Catch::Contains("is not a casdm statistics file"));
  CHECK_THROWS_WITH(eval::with_scorer("weights/fid.pt", at::kCPU, [](auto&) {}),
                    Catch::Contains("scorer weights weights/fid.pt: expected a file named inception_fid.pt or small_vgg.pt"));
  CHECK(eval::is_fid_v<eval::FIDInception>);
  CHECK(!eval::is_fid_v<eval::DomainScorer>);
}

TEST_CASE("checkpoints leave the frozen feature network out, and a resume refuses replaced weight files", "[metric][checkpoint]") {
  const auto dir = test::scratch("external-weights");
  const auto weights = dir / "weights";
  std::filesystem::create_directories(weights);
  for (const char* f : {"vgg16_features.pt", "lpips_linear.pt"})
    std::filesystem::copy_file(lpips_dir() / f, weights / f, std::filesystem::copy_options::overwrite_existing);
  const auto sizes = test::tiny_options(8, 1, 100);
  const auto o = ObjectiveOptions().feature_size(32).feature_weights(weights.string());
  torch::manual_seed(12);
  presets::CasDM_LPIPS m(sizes, o);
  train::Trainer<presets::CasDM_LPIPS> t(m, train::TrainerOptions().ema_rates({0.9}));
  t.step(at::rand({2, 1, 8, 8}) * 2 - 1);
  t.save(dir / "ckpt.pt");
  const auto f = train::read_checkpoint(dir / "ckpt.pt");
  for (const auto& [k, v] : f.file.tensors) CHECK(k.find("feature_") == std::string::npos);
  // VGG16's 14,714,688 weights + LPIPS's 1,472 linear weights + its normalisation's 6.
  CHECK(f.get("external.checksum").rfind("14716166:", 0) == 0);
  CHECK(std::filesystem::file_size(dir / "ckpt.pt") < 10'000'000);

  presets::CasDM_LPIPS same(sizes, o);
  train::Trainer<presets::CasDM_LPIPS> resumed(same, train::TrainerOptions().ema_rates({0.9}));
  CHECK_NOTHROW(resumed.load(dir / "ckpt.pt"));
  CHECK(resumed.step_count() == 1);
  // Sampling needs the denoiser alone: it loads without the weights folder, and a denoiser of
  // another topology is refused naming both types.
  std::string which;
  std::filesystem::rename(weights, dir / "weights-away");  // no weights folder while sampling
  auto d = train::load_denoiser<presets::CasDM_LPIPS::Denoiser>(dir / "ckpt.pt", {}, &which);
  CHECK(casdm::sample<sampler::DDIM<2>>(d, 1).sizes() == at::IntArrayRef({1, 1, 8, 8}));
  std::filesystem::rename(dir / "weights-away", weights);
  CHECK(which == "ema 0.9");
  CHECK(at::equal(d->parameters()[0], t.ema(0)->parameters()[0]));
  CHECK(casdm::sample<sampler::DDIM<2>>(d, 1).sizes() == at::IntArrayRef({1, 1, 8, 8}));
  CHECK_THROWS_WITH(train::load_denoiser<presets::Dual::Denoiser>(dir / "ckpt.pt"),
                    Catch::Contains("holds another denoiser") && Catch::Contains("not cosine | dual-head(unet)"));

  auto lin = test::load_tensors(weights / "lpips_linear.pt");
  lin.at("lin0") = lin.at("lin0") * 2;
  test::save_tensors(lin, weights / "lpips_linear.pt");
  presets::CasDM_LPIPS other(sizes, o);
  train::Trainer<presets::CasDM_LPIPS> refused(other, train::TrainerOptions().ema_rates({0.9}));
  CHECK_THROWS_WITH(refused.load(dir / "ckpt.pt"), Catch::Contains("the feature network's weights differ") &&
                                                       Catch::Contains("were the files in " + weights.string() + " replaced?"));
  CHECK(refused.step_count() == 0);
}

TEST_CASE("bits per dimension: improved-diffusion's bound term by term (NumPy, float64) with fixed small and large variances", "[eval][nll]") {
  torch::manual_seed(5);
  presets::DDPM_Eps m(test::tiny_options(8, 1, 10));  // T = 10: every term of the bound is seen
  AnyDenoiser& d = *m->denoiser();
  const auto& p = d.process();
  const auto images = at::randint(0, 256, {3, 1, 8, 8}, at::kByte);
  const auto x0 = images.to(at::kDouble) / 127.5 - 1;
  // What bits_per_dim draws from its generator (the noise of t = T − 1 first) and what the model
  // answers there, for the reference to take as given.
  std::map<std::string, at::Tensor> in{{"betas", p.betas()}, {"x0", x0}};
  {
    auto g = at::make_generator<at::CPUGeneratorImpl>(7);
    at::NoGradGuard no_grad;
    for (int64_t k = 0; k < 10; ++k) {
      const auto t = at::full({3}, 9 - k, at::kLong);
      const auto noise = at::randn(x0.sizes(), g, at::TensorOptions().dtype(at::kDouble));
      in["noise" + std::to_string(k)] = noise;
      in["pred" + std::to_string(k)] = d.denoise(p, p.q_sample(x0, t, noise).to(at::kFloat), t, true).x0.to(at::kDouble);
    }
  }
  const auto dir = test::scratch("likelihood");
  const auto in_file = dir / ("in-" + std::to_string(::getpid()) + ".pt"), out_file = dir / ("out-" + std::to_string(::getpid()) + ".pt");
  test::save_tensors(in, in_file);
  test::run_python("likelihood_ref.py", in_file.string() + " " + out_file.string());
  const auto want = test::load_tensors(out_file);
  for (const auto v : {eval::FixedVariance::small, eval::FixedVariance::large}) {
    const std::string k = eval::name(v);
    INFO(k);
    const auto b = eval::bits_per_dim(d, images, v, at::make_generator<at::CPUGeneratorImpl>(7));
    REQUIRE(b.vb.sizes() == at::IntArrayRef({3, 10}));
    // The KL terms (t = 9 … 1) to 1e-10; the decoder's (t = 0) relative to 1e-6: its bin probability
    // is a difference of two tanh-approximated CDFs, which keeps only ulp(1)/Δ of its digits where
    // the bin lies in a tail, whichever library's tanh computes it (tools/improved_diffusion_check.py).
    CHECK(test::max_abs_diff(b.vb.slice(1, 0, 9), want.at(k + "/vb").slice(1, 0, 9)) < 1e-10);
    CHECK(test::max_rel_diff(b.vb.select(1, 9), want.at(k + "/vb").select(1, 9), 0) < 1e-6);
    CHECK(test::max_abs_diff(b.prior, want.at(k + "/prior")) < 1e-12);
    CHECK(test::max_rel_diff(b.total, want.at(k + "/total"), 0) < 1e-6);
    CHECK(test::max_abs_diff(b.x0_mse, want.at(k + "/x0_mse")) < 1e-12);
    CHECK(test::max_abs_diff(b.eps_mse, want.at(k + "/eps_mse")) < 1e-9);
    // The same images as float32 in [−1, 1]: the same bound to float32's rounding of the pixels.
    CHECK(test::max_rel_diff(eval::bits_per_dim(d, x0.to(at::kFloat), v, at::make_generator<at::CPUGeneratorImpl>(7)).total, b.total, 0) < 1e-5);
  }
  // The prior term's closed form at x0 = 0: ½(σ² − 1 − ln σ²)/ln 2 per dimension, σ² = 1 − ᾱ_T.
  const double s2 = 1 - p.alphas_cumprod()[9].item<double>();
  CHECK(std::abs(eval::prior_bpd(p, at::zeros({1, 1, 2, 2}, at::kDouble))[0].item<double>() - 0.5 * (s2 - 1 - std::log(s2)) / std::log(2.0)) < 1e-15);
  // The decoder of a bin's centre under a tiny variance: log 1 = 0; at the ends the open bins.
  const auto x = at::tensor({-1.0, 0.0, 1.0}, at::kDouble);
  CHECK(eval::discretized_gaussian_log_likelihood(x, x, at::full({3}, -20.0, at::kDouble)).abs().max().item<double>() < 1e-12);
  std::filesystem::remove(in_file);
  std::filesystem::remove(out_file);
  CHECK_THROWS_WITH(eval::bits_per_dim(d, at::zeros({2, 1, 4, 4}), eval::FixedVariance::large, at::make_generator<at::CPUGeneratorImpl>(0)),
                    "bits per dimension: images of 1x4x4, the model makes 1x8x8");
  CHECK_THROWS_WITH(eval::parse_fixed_variance("medium"), "fixed variance 'medium': small (the posterior's, beta-tilde) or large (beta)");
  presets::EDM edm(test::tiny_options(8, 1, 10));
  CHECK_THROWS_WITH(eval::bits_per_dim(*edm->denoiser(), images, eval::FixedVariance::large, at::make_generator<at::CPUGeneratorImpl>(0)),
                    Catch::StartsWith("bits per dimension: a continuous (EDM) process"));
}
