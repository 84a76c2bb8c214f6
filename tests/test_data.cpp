// Data on disk: the IDX reader against Python's gzip on the real Fashion-MNIST files, CIFAR-10
// batches against numpy, image folders against PIL, fitting against torch's interpolate, the
// loader's per-step determinism, NumPy's .npy/.npz files against NumPy, samples made elsewhere
// (data::read_sample_images), and the refusals of bad input.
#include <fstream>
#include <iterator>

#include "casdm/app/reference.hpp"
#include "casdm/data/images.hpp"
#include "casdm/data/loader.hpp"
#include "casdm/data/sample_files.hpp"
#include "casdm/train/small_vgg.hpp"
#include "support.hpp"
#include "tiny.hpp"

using namespace casdm;

TEST_CASE("the Fashion-MNIST reader agrees with Python's gzip byte for byte", "[data]") {
  const std::string folder = "/usr/share/datasets/fashion-mnist";
  const auto dir = test::scratch("idx");
  for (const bool train : {true, false}) {
    const std::string split = train ? "train" : "t10k";
    INFO(split);
    // A file of this process's own: the sanitized suite runs this case beside the main one under CTest.
    const auto file = dir / (split + "-" + std::to_string(::getpid()) + ".pt");
    test::run_python("idx_ref.py", folder + " " + split + " " + file.string());
    const auto ref = test::load_tensors(file);
    std::filesystem::remove(file);
    const auto images = data::read_idx(folder + "/" + split + "-images-idx3-ubyte.gz");
    const auto labels = data::read_idx(folder + "/" + split + "-labels-idx1-ubyte.gz");
    CHECK(images.sizes() == at::IntArrayRef({train ? 60000 : 10000, 28, 28}));
    CHECK(at::equal(at::tensor(images.sizes().vec()), ref.at("shape")));
    CHECK(at::equal(images.slice(0, 0, 5), ref.at("first_images")));
    CHECK(at::equal(labels.slice(0, 0, 5).to(at::kLong), ref.at("first_labels")));
    const auto counts = at::bincount(labels.to(at::kLong), {}, 10);
    CHECK(at::equal(counts, at::full({10}, train ? 6000 : 1000, at::kLong)));
    CHECK(at::equal(counts, ref.at("label_counts")));
    const auto ds = data::load_mnist_like(folder, train);
    CHECK(ds.images.sizes() == at::IntArrayRef({train ? 60000 : 10000, 1, 28, 28}));
    CHECK(ds.images.scalar_type() == at::kByte);
    CHECK(at::equal(ds.images.slice(0, 0, 5).squeeze(1), ref.at("first_images")));
    CHECK(at::equal(ds.labels, labels.to(at::kLong)));
  }
}

TEST_CASE("bad IDX files are refused with the reason", "[data]") {
  const auto dir = test::scratch("idx-bad");
  auto write = [&](const std::string& name, const std::vector<unsigned char>& bytes) {
    std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return dir / name;
  };
  CHECK_THROWS_WITH(data::read_idx(dir / "absent"), Catch::Contains("file not found"));
  CHECK_THROWS_WITH(data::read_idx(write("magic", {1, 2, 8, 1, 0, 0, 0, 1, 7})), Catch::Contains("IDX magic number"));
  CHECK_THROWS_WITH(data::read_idx(write("type", {0, 0, 0x0D, 1, 0, 0, 0, 1, 7})),
                    Catch::Contains("holds element type 0x0D, only unsigned bytes"));
  CHECK_THROWS_WITH(data::read_idx(write("short", {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3})),
                    Catch::Contains("should hold 4 bytes of data, holds 3 (truncated)"));
  // 65536^4 = 2^64 wraps to 0, which matched the 0 bytes of data before sizes were checked.
  CHECK_THROWS_WITH(data::read_idx(write("wrap", {0, 0, 8, 4, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0})),
                    Catch::Contains("declares sizes 65536x65536x65536x65536 whose product overflows 64 bits"));
  // A zero size: an empty tensor (found by fuzzing: its memcpy got the empty tensor's null pointer).
  CHECK(data::read_idx(write("empty", {0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0, 5})).sizes() == at::IntArrayRef({0, 5}));
  CHECK(at::equal(data::read_idx(write("ok", {0, 0, 8, 1, 0, 0, 0, 2, 5, 6})), at::tensor({5, 6}, at::kByte)));
  // A gzip stream cut in half.
  std::ifstream in("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", std::ios::binary);
  std::vector<unsigned char> gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  gz.resize(gz.size() / 2);
  CHECK_THROWS_WITH(data::read_idx(write("cut.gz", gz)), Catch::Contains("IDX:"));
  CHECK_THROWS_WITH(data::load_mnist_like(dir / "nope", true), Catch::Contains("data folder not found"));
  CHECK_THROWS_WITH(data::load_mnist_like(dir, true), Catch::Contains("has no train-images-idx3-ubyte[.gz]"));
  // A pair whose shapes are not images [N, H, W] and labels [N] is refused saying which and what it holds.
  const auto pair = dir / "pair";
  std::filesystem::create_directories(pair);
  write("pair/train-labels-idx1-ubyte", {0, 0, 8, 1, 0, 0, 0, 2, 1, 2});
  write("pair/train-images-idx3-ubyte", {0, 0, 8, 4, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9, 9});
  CHECK_THROWS_WITH(data::load_mnist_like(pair, true),
                    Catch::Contains("its images file holds a 4-dimensional array [2,1,1,1], not images [N, H, W]"));
  write("pair/train-images-idx3-ubyte", {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 1, 9, 9, 9});
  CHECK_THROWS_WITH(data::load_mnist_like(pair, true), Catch::EndsWith(": 3 images but 2 labels"));
  // A label beyond the 10 documented classes is refused, not made an 11th (or 256th) class; unless asked for.
  write("pair/train-labels-idx1-ubyte", {0, 0, 8, 1, 0, 0, 0, 3, 1, 255, 2});
  CHECK_THROWS_WITH(data::load_mnist_like(pair, true),
                    Catch::EndsWith("image 1 of its train split has label 255, beyond the 10 classes (0 to 9) of MNIST and "
                                    "Fashion-MNIST (a damaged labels file?)"));
  CHECK(data::load_mnist_like(pair, true, 256).num_classes() == 256);
}

namespace {
const std::filesystem::path& made_data() {
  static const auto dir = test::generated("data_ref.py");
  return dir;
}
}  // namespace

TEST_CASE("CIFAR-10 binary batches read as numpy reads them, and bad batches are refused", "[data]") {
  const auto dir = made_data();
  const auto ref = test::load_tensors(dir / "expected.pt");
  const auto set = data::open_dataset(dir / "cifar");  // detected as CIFAR-10
  CHECK(set.source.find("CIFAR-10") == 0);
  CHECK(at::equal(set.images, ref.at("cifar_images")));
  CHECK(at::equal(set.labels, ref.at("cifar_labels")));
  CHECK(data::load_cifar10(dir / "cifar", false).size() == 3);
  const auto bad = test::scratch("cifar-bad");
  std::filesystem::copy(dir / "cifar", bad, std::filesystem::copy_options::overwrite_existing | std::filesystem::copy_options::recursive);
  std::filesystem::resize_file(bad / "data_batch_3.bin", 3073 * 2 + 100);
  CHECK_THROWS_WITH(data::load_cifar10(bad, true),
                    Catch::Contains("data_batch_3.bin holds 6246 bytes, not a whole number of 3073-byte records"));
  std::filesystem::remove(bad / "data_batch_3.bin");
  CHECK_THROWS_WITH(data::load_cifar10(bad, true), Catch::Contains("data_batch_3.bin not found"));
}

TEST_CASE("image folders decode as PIL decodes them and fit as torch interpolates", "[data]") {
  const auto dir = made_data();
  const auto ref = test::load_tensors(dir / "expected.pt");
  const auto gray = data::open_dataset(dir / "gray");
  CHECK(at::equal(gray.images, ref.at("gray")));  // [3, 1, 10, 12]
  const auto rgb = data::load_image_folder(dir / "rgb");
  REQUIRE(rgb.images.sizes() == at::IntArrayRef({3, 3, 16, 16}));
  CHECK(at::equal(rgb.images.slice(0, 0, 2), ref.at("rgb").slice(0, 0, 2)));  // PNG: exact
  // JPEG: stb_image and libjpeg may round the inverse DCT differently.
  CHECK(test::max_abs_diff(rgb.images[2], ref.at("rgb")[2]) <= 3);
  // Centre crop + antialiased bilinear shrink, and bilinear growth, to ±1 (float rounding).
  CHECK(test::max_abs_diff(data::fit(gray, 6, data::Fit::Resize).images, ref.at("gray_fit6")) <= 1);
  auto rgb_png = rgb;
  rgb_png.images = ref.at("rgb");
  CHECK(test::max_abs_diff(data::fit(rgb_png, 8, data::Fit::Resize).images, ref.at("rgb_fit8")) <= 1);
  CHECK(test::max_abs_diff(data::fit(rgb_png, 20, data::Fit::Resize).images, ref.at("rgb_fit20")) <= 1);
  CHECK(data::load_image_folder(dir / "rgb", 3, 8).images.sizes() == at::IntArrayRef({3, 3, 8, 8}));
  // Padding centres the images on black.
  auto padded = data::fit(rgb_png, 20, data::Fit::Pad).images;
  CHECK(at::equal(padded.slice(2, 2, 18).slice(3, 2, 18), ref.at("rgb")));
  CHECK(padded.sum().item<int64_t>() == ref.at("rgb").to(at::kLong).sum().item<int64_t>());
  CHECK_THROWS_WITH(data::fit(rgb_png, 19, data::Fit::Pad), Catch::Contains("cannot pad 16x16 images"));
  CHECK_THROWS_WITH(data::fit(rgb_png, 8, data::Fit::Pad), Catch::Contains("use resize"));

  CHECK_THROWS_WITH(data::load_image_folder(dir / "mixed"),
                    Catch::Contains("b.png has 3 channels, the data set has 1 (like") && Catch::Contains("a.png"));
  CHECK_THROWS_WITH(data::load_image_folder(dir / "rgb", 1), Catch::Contains("a.png has 3 channels, the data set has 1"));
  CHECK_THROWS_WITH(data::load_image_folder(dir / "alpha"), Catch::Contains("has an alpha channel (4 channels)"));
  std::ofstream(test::scratch("not-an-image") / "x.png") << "definitely not a PNG";
  CHECK_THROWS_WITH(data::load_image_folder(test::scratch("not-an-image")),
                    Catch::EndsWith("x.png: it is not a PNG, JPEG or BMP image that stb_image reads (or its header is damaged)"));
  // stb_image's terse reasons ("outofdata", "too large", "unknown image type") said in words.
  auto bad_image = [](const char* name, const std::string& bytes) {
    const auto dir = test::scratch(std::string("bad-image-") + name);
    std::ofstream(dir / "x.png", std::ios::binary) << bytes;
    try {
      data::load_image_folder(dir);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("read");
  };
  std::ifstream png_in(dir / "rgb" / "a.png", std::ios::binary);
  const std::string png((std::istreambuf_iterator<char>(png_in)), std::istreambuf_iterator<char>());
  CHECK_THAT(bad_image("cut", png.substr(0, png.size() - 30)),
             Catch::StartsWith("cannot decode image") && Catch::Contains("x.png: it is truncated or damaged (stb_image: '"));
  // A valid header of a 60000x60000 PNG: more than stb_image decodes, which its stbi_info calls "unknown image type".
  std::string huge = png.substr(0, 33);
  for (int i : {16, 20}) huge.replace(i, 4, std::string("\x00\x00\xea\x60", 4));
  CHECK_THAT(bad_image("huge", huge), Catch::EndsWith("x.png: it is a 60000x60000 PNG, larger than stb_image decodes (2^30 bytes)"));
  CHECK_THAT(bad_image("empty", ""), Catch::EndsWith("x.png: the file is empty"));
  CHECK_THROWS_WITH(data::open_dataset(test::scratch("empty-folder")), Catch::Contains("holds no PNG, JPEG or BMP"));
  CHECK_THROWS_WITH(data::open_dataset(dir / "absent"), Catch::Contains("data folder not found"));
  CHECK_THROWS_WITH(data::open_dataset(dir / "gray", "tiff"), Catch::Contains("unknown data format 'tiff'"));
}

TEST_CASE("an image folder of class sub-folders has labels and the loader serves each batch's labels", "[data][loader][labels]") {
  const auto dir = made_data();
  const auto root = test::scratch("class-folders"), mixed = test::scratch("class-folders-mixed");
  std::filesystem::remove_all(root);  // a scratch folder outlives its run
  std::filesystem::remove_all(mixed);
  std::filesystem::create_directories(mixed / "a");
  std::filesystem::create_directories(root / "b_bag");
  std::filesystem::create_directories(root / "a_shirt");
  std::filesystem::copy_file(dir / "gray" / "g0.png", root / "b_bag" / "g0.png");
  std::filesystem::copy_file(dir / "gray" / "g1.png", root / "b_bag" / "g1.png");
  std::filesystem::copy_file(dir / "gray" / "g2.png", root / "a_shirt" / "g2.png");
  const auto set = data::open_dataset(root);
  REQUIRE(set.labels.defined());
  CHECK(set.classes == std::vector<std::string>{"a_shirt", "b_bag"});
  CHECK(set.num_classes() == 2);
  // Images in path order (a_shirt/g2, b_bag/g0, b_bag/g1), each with its folder's index.
  CHECK(at::equal(set.labels, at::tensor(std::vector<int64_t>{0, 1, 1})));
  const auto ref = test::load_tensors(dir / "expected.pt").at("gray");
  CHECK(at::equal(set.images[0], ref[2]));
  CHECK(at::equal(set.images[1], ref[0]));
  // A flat folder has none; a folder with an image beside the class folders has none either.
  CHECK(!data::open_dataset(dir / "gray").labels.defined());
  std::filesystem::copy_file(dir / "gray" / "g0.png", mixed / "top.png");
  std::filesystem::copy_file(dir / "gray" / "g1.png", mixed / "a" / "g1.png");
  CHECK(!data::open_dataset(mixed).labels.defined());

  // The loader's labels of a step are the data set's labels of that step's images.
  const auto fm = data::load_mnist_like("/usr/share/datasets/fashion-mnist", false);
  CHECK(fm.num_classes() == 10);
  data::Loader loader(fm, data::LoaderOptions().batch_size(16).seed(3).prefetch(0));
  for (int64_t step : {0, 1, 700}) {
    const auto y = loader.labels_at(step);
    CHECK(y.scalar_type() == at::kLong);
    CHECK(at::equal(y, fm.labels.index_select(0, loader.indices_at(step))));
  }
  const auto [x1, y1] = loader.next_labelled(true);
  CHECK(at::equal(y1, loader.labels_at(0)));
  CHECK(at::equal(x1, loader.batch_at(0)));
  CHECK(!loader.next_labelled(false).second.defined());
  CHECK(fm.conditioning_classes() == 10);
  data::Loader unlabelled(data::open_dataset(dir / "gray"), data::LoaderOptions().batch_size(2).prefetch(0));
  CHECK_THROWS_WITH(unlabelled.labels_at(0), Catch::Contains("has no class labels"));
  CHECK_THROWS_WITH(data::open_dataset(dir / "gray").conditioning_classes(), Catch::Contains("has no class labels (an image folder needs one sub-folder"));
  auto one = set;
  one.labels = at::zeros({3}, at::kLong);
  one.classes.clear();
  CHECK_THROWS_WITH(one.conditioning_classes(), Catch::Contains("has 1 class; conditioning needs two or more"));
  auto sliced = fm;  // images cut, labels not: a loader of images still works, its labels are refused
  sliced.images = sliced.images.slice(0, 0, 100);
  data::Loader images_only(sliced, data::LoaderOptions().batch_size(4).prefetch(0));
  CHECK(images_only.next().size(0) == 4);
  CHECK_THROWS_WITH(images_only.labels_at(0), Catch::Contains("the 10000 labels of IDX") && Catch::Contains("do not pair up with its 100 images"));
}

TEST_CASE("the loader's batch of a step depends on the seed and the step only", "[data][loader]") {
  const int64_t n = 10;
  data::ImageSet set{at::arange(n, at::kByte).mul(20).view({n, 1, 1, 1}).expand({n, 1, 2, 3}).contiguous(),
                     at::arange(n), "ramp"};
  auto opts = data::LoaderOptions().batch_size(5).seed(4);
  data::Loader threaded(set, opts), inline_(set, data::LoaderOptions(opts).prefetch(0));
  std::vector<at::Tensor> seen;
  for (int s = 0; s < 8; ++s) {
    auto a = threaded.next(), b = inline_.next();
    CHECK(at::equal(a, b));
    seen.push_back(a);
  }
  CHECK(threaded.position() == 8);
  CHECK(threaded.wait_seconds() >= 0);
  // Values map 0..255 to [−1, 1] exactly: v / 127.5 − 1.
  auto idx = inline_.indices_at(0);
  CHECK(at::equal(seen[0], set.images.index_select(0, idx).to(at::kFloat) / 127.5 - 1));
  // Each epoch (two steps here) draws every image once, in a new order.
  for (int e = 0; e < 4; ++e) {
    auto ids = at::cat({inline_.indices_at(2 * e), inline_.indices_at(2 * e + 1)});
    CHECK(at::equal(std::get<0>(ids.sort()), at::arange(n)));
  }
  CHECK(!at::equal(inline_.indices_at(0), inline_.indices_at(2)));
  // A loader started at step 5 (a resumed run) continues the same sequence.
  data::Loader resumed(set, opts, 5);
  for (int s = 5; s < 8; ++s) CHECK(at::equal(resumed.next(), seen[static_cast<size_t>(s)]));
  // Another seed, another sequence.
  data::Loader other(set, data::LoaderOptions(opts).seed(5));
  CHECK(!at::equal(other.next(), seen[0]));

  CHECK_THROWS_WITH(data::Loader(data::ImageSet{at::zeros({0, 1, 2, 2}, at::kByte), {}, "none"}, opts),
                    Catch::Contains("the data set none is empty"));
  CHECK_THROWS_WITH(data::Loader(data::ImageSet{at::zeros({2, 1, 2, 2}), {}, "float"}, opts),
                    Catch::Contains("images must be uint8"));
}

TEST_CASE("horizontal flips: each image is itself or its mirror, about half mirrored", "[data][loader]") {
  auto g = at::make_generator<at::CPUGeneratorImpl>(1);
  data::ImageSet set{at::randint(0, 256, {64, 2, 3, 5}, g).to(at::kByte), {}, "random"};
  data::Loader flip(set, data::LoaderOptions().batch_size(64).hflip(true).prefetch(0));
  auto idx = flip.indices_at(0);
  auto x = flip.next();
  auto orig = set.images.index_select(0, idx).to(at::kFloat) / 127.5 - 1;
  int64_t mirrored = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const bool same = at::equal(x[i], orig[i]), mirror = at::equal(x[i], orig[i].flip({2}));
    CHECK((same || mirror));
    mirrored += mirror;
  }
  CHECK(mirrored > 16);
  CHECK(mirrored < 48);
}

// The training loop of docs/training.md, as written there but at a tiny size and for three steps.
#include "casdm/casdm.hpp"
#include "tiny.hpp"

TEST_CASE("the training loop of docs/training.md runs and resumes from its checkpoint folder", "[data][trainer]") {
  const auto dir = test::scratch("readme-loop");
  std::filesystem::remove_all(dir);
  auto run = [&](int64_t until) {
    auto set = casdm::data::fit(casdm::data::open_dataset("/usr/share/datasets/fashion-mnist"), 32,
                                casdm::data::Fit::Pad);
    set.images = set.images.slice(0, 0, 256);
    casdm::presets::CasDM model(test::tiny_options(32, 1, 50));
    casdm::train::Trainer<casdm::presets::CasDM> trainer(model, casdm::train::TrainerOptions()
        .optimizer(casdm::train::AdamWOptions().lr(1e-4)).ema_rates({0.9999}).grad_clip(1.0).micro_batch(2));
    casdm::train::CheckpointDir ckpts(dir / "checkpoints", /*keep=*/3);
    if (auto last = ckpts.latest()) trainer.load(*last);
    casdm::data::Loader loader(set, casdm::data::LoaderOptions().batch_size(4).hflip(true), trainer.step_count());
    while (trainer.step_count() < until) {
      auto report = trainer.step(loader.next());
      CHECK(std::isfinite(report["eps"].item<double>()));
      if (trainer.step_count() % 2 == 0) ckpts.save(trainer, {{"preset", "CasDM"}});
    }
    auto images = trainer.sample_ema(2, casdm::SampleOptions().steps(2));
    CHECK(images.sizes() == at::IntArrayRef({2, 1, 32, 32}));
    return trainer.step_count();
  };
  CHECK(run(2) == 2);
  CHECK(run(3) == 3);  // resumed at 2 from checkpoints/ckpt-000000002.pt
  CHECK(casdm::train::CheckpointDir(dir / "checkpoints").list().size() == 1);
}

// The SmallVGG metric network, trained on Fashion-MNIST (casdm-metric's routine).
#include "casdm/metric/small_vgg.hpp"

TEST_CASE("a SmallVGG trained on Fashion-MNIST classifies its test images, the same for the same seed", "[data][metric]") {
  const auto train = casdm::data::open_dataset("/usr/share/datasets/fashion-mnist", "auto", true);
  const auto test = casdm::data::open_dataset("/usr/share/datasets/fashion-mnist", "auto", false);
  auto o = casdm::train::SmallVGGTraining()
               .net(casdm::metric::SmallVGGOptions().widths({16, 32, 64}))
               .image_size(28)
               .steps(600)
               .batch_size(64)
               .seed(3);
  std::vector<double> losses;
  auto r = casdm::train::train_small_vgg(train.images, train.labels, o, [&](int64_t, double l) { losses.push_back(l); });
  REQUIRE(losses.size() == 12);
  const auto first = test.images.slice(0, 0, 2000), first_labels = test.labels.slice(0, 0, 2000);
  const double acc = casdm::metric::small_vgg_accuracy(r.net, first, first_labels, 28);
  INFO("test accuracy " << acc << ", losses " << losses.front() << " … " << losses.back());
  // 600 steps of 64 images (two thirds of an epoch): chance is 0.1; a working classifier passes 0.8.
  CHECK(acc > 0.8);
  CHECK(losses.back() < 0.5 * std::log(10.0));
  auto again = casdm::train::train_small_vgg(train.images, train.labels, o.steps(3));
  auto other = casdm::train::train_small_vgg(train.images, train.labels, o.steps(3).seed(4));
  auto third = casdm::train::train_small_vgg(train.images, train.labels, o.steps(3).seed(3));
  CHECK(at::equal(again.net->classifier->weight, third.net->classifier->weight));
  CHECK(!at::equal(again.net->classifier->weight, other.net->classifier->weight));
}

TEST_CASE("a checkpoint's reference: its data brought to its side as its run did, scored once and cached", "[data][eval]") {
  const auto dir = test::scratch("checkpoint-reference");
  std::filesystem::remove(dir / "stats.pt");
  struct MeanScorer {  // features known by hand: each image's mean and standard deviation
    int64_t seen = 0;
    std::string key() const { return "mean-std:1"; }
    eval::ScoreFeatures operator()(const at::Tensor& x) {
      seen += x.size(0);
      auto pool = at::stack({x.mean({1, 2, 3}), x.flatten(1).std(1)}, 1);
      return {pool, at::Tensor(), at::softmax(pool, 1)};
    }
  } scorer;
  const std::string fm = "/usr/share/datasets/fashion-mnist";
  train::CheckpointInfo c;
  c.denoiser_options = test::tiny_options(32, 1);
  c.meta["args.fit"] = "pad";  // the run padded 28 to 32
  const auto spec = app::ReferenceSpec().data(fm).cache(dir / "stats.pt").n(30);
  const auto r = app::checkpoint_reference(scorer, c, spec, at::kCPU, 7);
  CHECK(r.fit == "pad");
  CHECK(r.n == 30);
  CHECK(!r.cached);
  CHECK(scorer.seen == 30);
  CHECK(r.source == data::open_dataset(fm).source);
  MeanScorer by_hand;
  const auto padded = data::fit(data::open_dataset(fm), 32, data::Fit::Pad).images.slice(0, 0, 30);
  const auto want = eval::image_stats(by_hand, padded, at::kCPU);
  CHECK(at::allclose(r.stats.pool.mu, want.pool.mu, 1e-9, 1e-12));
  CHECK(at::allclose(r.stats.pool.sigma, want.pool.sigma, 1e-9, 1e-12));
  // The same request: from the cache. Another fit, another key: scored again.
  const auto again = app::checkpoint_reference(scorer, c, spec, at::kCPU, 7);
  CHECK(again.cached);
  CHECK(scorer.seen == 30);
  CHECK(at::equal(again.stats.pool.mu, r.stats.pool.mu));
  const auto resized = app::checkpoint_reference(scorer, c, app::ReferenceSpec(spec).fit("resize"), at::kCPU, 7);
  CHECK(resized.fit == "resize");
  CHECK(!resized.cached);
  CHECK(scorer.seen == 60);
  CHECK(!at::allclose(resized.stats.pool.mu, r.stats.pool.mu));
  // A run that stored no --fit resized; a checkpoint of the data's own side fits nothing.
  train::CheckpointInfo plain;
  plain.denoiser_options = test::tiny_options(32, 1);
  CHECK(app::checkpoint_reference(scorer, plain, spec, at::kCPU, 7).fit == "resize");
  train::CheckpointInfo native;
  native.denoiser_options = test::tiny_options(28, 1).net(test::tiny_options(28, 1).net().attention_resolutions({14}));
  CHECK(app::checkpoint_reference(scorer, native, spec, at::kCPU, 7).fit == "none");
  // Refusals, in one line.
  train::CheckpointInfo rgb;
  rgb.denoiser_options = test::tiny_options(32, 3);
  CHECK_THROWS_WITH(app::checkpoint_reference(scorer, rgb, spec, at::kCPU),
                    Catch::Contains("has 1-channel images, the checkpoint's model makes 3-channel ones"));
  CHECK_THROWS_WITH(app::checkpoint_reference(scorer, c, app::ReferenceSpec(spec).n(-1), at::kCPU),
                    Catch::Contains("ReferenceSpec: n must be >= 0 (0: all), got -1"));
}

// train::Session: the library's training run, its hooks, its stop at a signal and its resume.
#include <csignal>

#include "casdm/presets.hpp"
#include "casdm/train/session.hpp"

namespace fs = std::filesystem;

namespace {
/// 16 random uint8 images of tiny_options()' shape, the same every call.
data::ImageSet tiny_images() {
  auto g = at::make_generator<at::CPUGeneratorImpl>(7);
  return {at::randint(0, 256, {16, 1, 8, 8}, g, at::kByte), {}, "tiny"};
}
train::SessionOptions session_options(const fs::path& dir, int64_t steps) {
  return train::SessionOptions().steps(steps).checkpoints(dir / "checkpoints").keep(10).loader(
      data::LoaderOptions().batch_size(4).prefetch(0).seed(3));
}
}  // namespace

TEST_CASE("Session: hooks in order, periodic checkpoints, the last one, and at SIGTERM a checkpoint after the current step", "[trainer][session]") {
  const auto dir = test::scratch("session");
  fs::remove_all(dir);
  torch::manual_seed(13);
  using M = presets::DDPM_Eps;
  std::vector<std::string> seen;
  auto record = [&](train::Session<M>& s) {
    s.on_step([&](const train::StepEvent& e) {
       CHECK(e.losses.total.defined());
       seen.push_back(fmt::format("step {}/{}", e.step, e.last));
     })
        .before_checkpoint([&](int64_t step) { seen.push_back(fmt::format("save {}", step)); })
        .on_checkpoint([&](const train::CheckpointEvent& e) {
          seen.push_back(fmt::format("saved {} {} {}", e.step, e.file.filename().string(), static_cast<int>(e.why)));
        })
        .on_preview([&](const train::PreviewEvent& e) {
          CHECK(e.images.sizes() == at::IntArrayRef{2, 1, 8, 8});
          seen.push_back(fmt::format("preview {} {}", e.step, e.last));
        })
        .on_end([&](const train::SessionEnd& e) { seen.push_back(fmt::format("end {} {}", e.step, e.signal)); });
  };
  {
    train::Session<M> s(M(test::tiny_options()), tiny_images(), train::TrainerOptions().ema_rates({0.9}),
                        session_options(dir, 5).checkpoint_every(2).preview_every(3).meta({{"run", "a"}})
                            .preview(train::PreviewOptions().count(2).steps(5)));
    record(s);
    const auto end = s.run();
    CHECK(end.step == 5);
    CHECK(end.signal == 0);
    CHECK(end.checkpoint == dir / "checkpoints" / "ckpt-000000005.pt");
    CHECK(seen == std::vector<std::string>{"step 1/5", "step 2/5", "save 2", "saved 2 ckpt-000000002.pt 0", "step 3/5",
                                           "preview 3 false", "step 4/5", "save 4", "saved 4 ckpt-000000004.pt 0",
                                           "step 5/5", "save 5", "saved 5 ckpt-000000005.pt 2", "preview 5 true", "end 5 0"});
    CHECK(train::read_checkpoint(end.checkpoint).get("run") == "a");
    CHECK_THROWS_WITH(s.run(), "Session::run: a session runs once");
    CHECK_THROWS_WITH(s.on_step([](const train::StepEvent&) {}), "Session: hooks are added before run()");
  }
  // Resumed at 5; a signal during step 7: a checkpoint of step 7, no step 8, no preview, then the end.
  seen.clear();
  train::Session<M> s(M(test::tiny_options()), tiny_images(), train::TrainerOptions().ema_rates({0.9}),
                      session_options(dir, 100).preview(train::PreviewOptions().count(2).steps(5)));
  s.resume(*train::CheckpointDir(dir / "checkpoints", 10).resume_point(true));
  record(s);
  s.on_step([](const train::StepEvent& e) {
    if (e.step == 6) ::raise(SIGTERM);  // seen by the stop check that follows step 6's hooks
  });
  const auto end = s.run();
  CHECK(end.signal == SIGTERM);
  CHECK(end.step == 6);
  CHECK(seen == std::vector<std::string>{"step 6/100", "save 6", "saved 6 ckpt-000000006.pt 1",
                                         fmt::format("end 6 {}", SIGTERM)});
  CHECK(train::read_checkpoint(end.checkpoint).step == 6);
}

TEST_CASE("Session: stopped and resumed, a run ends bit for bit where one straight run ends", "[trainer][session][resume]") {
  const auto dir = test::scratch("session-resume");
  fs::remove_all(dir);
  using M = presets::CasDM;
  auto run = [&](const std::string& name, int64_t steps, bool resume) {
    torch::manual_seed(5);
    train::Session<M> s(M(test::tiny_options()), tiny_images(), train::TrainerOptions().ema_rates({0.9}),
                        session_options(dir / name, steps));
    if (resume) s.resume(*train::CheckpointDir(dir / name / "checkpoints", 10).resume_point(true));
    std::vector<double> totals;
    s.on_step([&](const train::StepEvent& e) { totals.push_back(e.losses.total.item<double>()); });
    s.run();
    return std::pair(s.trainer().model()->parameters(), totals);
  };
  const auto [straight, all] = run("straight", 4, false);
  const auto [half, first] = run("split", 2, false);
  const auto [resumed, rest] = run("split", 4, true);
  REQUIRE(straight.size() == resumed.size());
  for (size_t i = 0; i < straight.size(); ++i) CHECK(at::equal(straight[i], resumed[i]));
  CHECK(std::vector<double>{first[0], first[1], rest[0], rest[1]} == all);
}

TEST_CASE("Session refuses, in one line, what it could not run", "[trainer][session]") {
  using M = presets::DDPM_Eps;
  const auto dir = test::scratch("session-refusals");
  auto make = [&](train::SessionOptions o, data::ImageSet images = tiny_images()) {
    return std::make_unique<train::Session<M>>(M(test::tiny_options()), images, train::TrainerOptions(), o);
  };
  CHECK_THROWS_WITH(make(session_options(dir, 0)), "Session: steps must be >= 1, got 0");
  CHECK_THROWS_WITH(make(session_options(dir, 3).checkpoint_every(-1)),
                    "Session: checkpoint_every and preview_every must be >= 0");
  CHECK_THROWS_WITH(make(session_options(dir, 3).keep(1)), Catch::Contains("checkpoints to keep must be >= 2"));
  CHECK_THROWS_WITH(make(session_options(dir, 3), {at::zeros({4, 3, 8, 8}, at::kByte), {}, "rgb"}),
                    "Session: the images of rgb are 3x8x8, the model takes 1x8x8");
  CHECK_THROWS_WITH(make(session_options(dir, 3), {}), "Session: the images must be a uint8 tensor [N, C, H, W]");
  CHECK_THROWS_WITH(make(session_options(dir, 3).preview(train::PreviewOptions().steps(200)))
                        ->on_preview([](const train::PreviewEvent&) {}),
                    Catch::Contains("PreviewOptions: steps"));  // 200 sampler steps on T = 100
  CHECK_THROWS_WITH(make(session_options(dir, 3))->on_step(nullptr), "Session: an empty hook");
  auto s = make(session_options(dir, 3));
  for (int i = 0; i < 3; ++i) s->trainer().step(at::rand({4, 1, 8, 8}) * 2 - 1);
  CHECK_THROWS_WITH(s->run(), "the run is at step 3 already; steps (3) is the total to reach");
  // An unusable checkpoint folder (a file, a dangling link) is refused before the first step.
  fs::remove_all(dir / "blocked");
  fs::create_directories(dir / "blocked");
  std::ofstream(dir / "blocked" / "checkpoints") << "a file";
  fs::create_symlink(dir / "nowhere", dir / "blocked" / "dangling");
  for (const auto& bad : {dir / "blocked" / "checkpoints", dir / "blocked" / "dangling"}) {
    auto b = make(session_options(dir, 3).checkpoints(bad));
    CHECK_THROWS_WITH(b->run(), Catch::StartsWith("the checkpoint folder " + bad.string() + " cannot be used: "));
    CHECK(b->trainer().step_count() == 0);
  }
}


TEST_CASE("NumPy's .npy and .npz files read as NumPy wrote them, and damaged ones are refused by name", "[data][npz]") {
  const auto dir = test::generated("npz_ref.py");
  const auto want = test::load_tensors(dir / "expected.pt");
  for (const char* f : {"stored.npz", "deflated.npz"}) {  // numpy.savez and numpy.savez_compressed
    INFO(f);
    const auto a = data::read_npz(dir / f);
    CHECK(a.size() == 3);
    CHECK(at::equal(a.at("arr_0"), want.at("images")));
    CHECK(at::equal(a.at("arr_1"), want.at("floats")));
    CHECK(at::equal(a.at("named"), want.at("named")));
  }
  const auto fortran = data::read_npy(dir / "fortran.npy");
  CHECK(at::equal(fortran, want.at("fortran")));
  CHECK(fortran.is_contiguous());
  CHECK(at::equal(data::read_npy(dir / "v2.npy"), want.at("floats")));
  CHECK(at::equal(data::read_npy(dir / "bool.npy"), want.at("bools")));
  CHECK(at::equal(data::read_npy(dir / "half.npy"), want.at("halfs")));
  CHECK_THROWS_WITH(data::read_npy(dir / "big.npy"), Catch::EndsWith("big.npy: big-endian data ('>f4'); save it little-endian (array.astype('<f4'))"));
  CHECK_THROWS_WITH(data::read_npy(dir / "objects.npy"), Catch::EndsWith("objects.npy: an array of Python objects (pickled), not of numbers"));
  CHECK_THROWS_WITH(data::read_npy(dir / "struct.npy"), Catch::Contains("struct.npy: a structured type"));
  CHECK_THROWS_WITH(data::read_npy(dir / "cut.npy"), Catch::EndsWith("cut.npy: 184 bytes of data, but the shape (3, 4, 2) of '<f8' needs 192 (truncated)"));
  CHECK_THROWS_WITH(data::read_npy(dir / "absent.npy"), Catch::Contains("absent.npy (no such file, or not readable)"));
  CHECK_THROWS_WITH(data::parse_npy("hello", "x"), "x: not a .npy array (no \\x93NUMPY magic)");
  CHECK_THROWS_WITH(data::read_npz(dir / "cut.npz"), Catch::Contains("cut.npz: not a readable .npz (a zip archive of .npy files): "));
  CHECK_THROWS_WITH(data::read_npz(dir / "flipped.npz"), Catch::Contains("flipped.npz (arr_0.npy): damaged: "));
  CHECK_THROWS_WITH(data::read_npz(dir / "notzip.npz"), Catch::Contains("notzip.npz: not a readable .npz"));
  CHECK_THROWS_WITH(data::read_npz(dir / "text.npz"), Catch::EndsWith("text.npz (notes.txt): not a .npy array; an .npz holds only those"));
  CHECK_THROWS_WITH(data::read_npz(dir / "absent.npz"), Catch::EndsWith("absent.npz (no such file)"));
}

TEST_CASE("samples made elsewhere: an .npz of uint8 NHWC, a folder of images and casdm's samples.pt read as [N, C, H, W]", "[data][npz]") {
  const auto dir = test::generated("npz_ref.py");
  const auto want = test::load_tensors(dir / "expected.pt");
  const auto s = data::read_sample_images(dir / "stored.npz");
  CHECK(at::equal(s.images, want.at("images").permute({0, 3, 1, 2})));
  CHECK_THAT(s.source, Catch::EndsWith("stored.npz (arr_0 of an .npz, uint8 NHWC)"));
  CHECK(at::equal(data::read_sample_images(dir / "deflated.npz").images, s.images));
  CHECK(at::equal(data::read_sample_images(dir / "folder").images, s.images));  // the same images as PNGs
  CHECK(at::equal(data::read_sample_images(dir / "gray.npz").images, want.at("gray").unsqueeze(1)));
  CHECK_THROWS_WITH(data::read_sample_images(dir / "float.npz"),
                    Catch::EndsWith("float.npz (arr_0) is Float; samples in an .npz are uint8 images [N, H, W, C] (as improved-diffusion's image_sample.py writes them)"));
  const auto scratch = test::scratch("sample-files");
  io::TensorFile f;
  auto write = [&](const at::Tensor& x) {
    f.tensors = {{"samples", x}};
    io::write_tensor_file(scratch / "s.pt", f);
    return scratch / "s.pt";
  };
  const auto x = at::rand({3, 1, 4, 4}) * 2 - 1;
  CHECK(at::equal(data::read_sample_images(write(x)).images, x));
  const auto u8 = at::randint(0, 256, {3, 3, 4, 4}, at::kByte);
  CHECK(at::equal(data::read_sample_images(write(u8)).images, u8));
  CHECK_THROWS_WITH(data::read_sample_images(write(at::full({3, 1, 4, 4}, 1.5))), Catch::EndsWith("s.pt: sample values from 1.5 to 1.5; float samples lie in [-1, 1]"));
  CHECK_THROWS_WITH(data::read_sample_images(write(at::zeros({3, 2, 4, 4}))), Catch::EndsWith("s.pt: samples of shape [3, 2, 4, 4]; expected [N, C, H, W] with C = 1 or 3"));
  CHECK_THROWS_WITH(data::read_sample_images(write(at::zeros({3, 1, 4, 4}, at::kLong))), Catch::EndsWith("s.pt: samples of type Long; expected float in [-1, 1] or uint8"));
  CHECK_THROWS_WITH(data::read_sample_images(write(at::zeros({1, 1, 4, 4}))), Catch::EndsWith("s.pt: 1 image; scoring needs at least 2"));
  f.tensors = {{"weights", at::zeros({2})}};
  io::write_tensor_file(scratch / "w.pt", f);
  CHECK_THROWS_WITH(data::read_sample_images(scratch / "w.pt"), Catch::Contains("w.pt holds no \"samples\" tensor"));
  CHECK_THROWS_WITH(data::read_sample_images(scratch / "absent.pt"), Catch::EndsWith("absent.pt (no such file)"));
}
