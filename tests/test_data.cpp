// The IDX reader against Python's gzip on the real Fashion-MNIST files, and its refusals.
#include <fstream>
#include <iterator>

#include "casdm/data/idx.hpp"
#include "support.hpp"

using namespace casdm;

TEST_CASE("the Fashion-MNIST reader agrees with Python's gzip byte for byte", "[data]") {
  const std::string folder = "/usr/share/datasets/fashion-mnist";
  const auto dir = test::scratch("idx");
  for (const bool train : {true, false}) {
    const std::string split = train ? "train" : "t10k";
    INFO(split);
    test::run_python("idx_ref.py", folder + " " + split + " " + (dir / (split + ".pt")).string());
    const auto ref = test::load_tensors(dir / (split + ".pt"));
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
    CHECK(ds.images.min().item<float>() == -1.0f);
    CHECK(ds.images.max().item<float>() == 1.0f);
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
  CHECK(at::equal(data::read_idx(write("ok", {0, 0, 8, 1, 0, 0, 0, 2, 5, 6})), at::tensor({5, 6}, at::kByte)));
  // A gzip stream cut in half.
  std::ifstream in("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", std::ios::binary);
  std::vector<unsigned char> gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  gz.resize(gz.size() / 2);
  CHECK_THROWS_WITH(data::read_idx(write("cut.gz", gz)), Catch::Contains("IDX:"));
  CHECK_THROWS_WITH(data::load_mnist_like(dir / "nope", true), Catch::Contains("data folder not found"));
  CHECK_THROWS_WITH(data::load_mnist_like(dir, true), Catch::Contains("has no train-images-idx3-ubyte[.gz]"));
}
