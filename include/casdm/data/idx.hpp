#pragma once
// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
//   magic: 0x0000 08 0D (unsigned byte data, D dimensions), then D big-endian uint32 sizes, then data.
// Errors name the file and what is wrong with it; nothing is returned from a bad file.
#include "casdm/io/text.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <ATen/ATen.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>
#include <vector>

namespace casdm::data {

namespace detail {
inline std::vector<unsigned char> read_maybe_gzip(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) throw std::runtime_error("IDX: file not found: " + path.string());
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files as they are
  if (!f) throw std::runtime_error("IDX: cannot open " + path.string());
  std::vector<unsigned char> out;
  unsigned char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  const std::string what = msg ? msg : "";
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END))
    throw std::runtime_error("IDX: " + path.string() + " is corrupt or truncated (" + what + ")");
  return out;
}
inline uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
}  // namespace detail

/// Reads an IDX file of unsigned bytes into a uint8 tensor of its stored shape.
inline at::Tensor read_idx(const std::filesystem::path& path) {
  const auto bytes = detail::read_maybe_gzip(path);
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0)
    throw std::runtime_error("IDX: " + path.string() + " does not start with an IDX magic number");
  if (bytes[2] != 0x08) {
    throw std::runtime_error(fmt::format("IDX: {} holds element type 0x{:02X}, only unsigned bytes (0x08) are supported",
                                         path.string(), static_cast<unsigned>(bytes[2])));
  }
  const size_t dims = bytes[3];
  if (dims < 1 || dims > 4)
    throw std::runtime_error(fmt::format("IDX: {} declares {} dimensions", path.string(), dims));
  if (bytes.size() < 4 + 4 * dims) throw std::runtime_error("IDX: " + path.string() + " is truncated in its header");
  std::vector<int64_t> shape;
  size_t count = 1;
  for (size_t i = 0; i < dims; ++i) {
    shape.push_back(detail::be32(&bytes[4 + 4 * i]));
    if (__builtin_mul_overflow(count, static_cast<size_t>(shape.back()), &count))
      throw std::runtime_error(fmt::format("IDX: {} declares sizes {} whose product overflows 64 bits (a damaged header)",
                                           path.string(), fmt::join(shape, "x")));
  }
  const size_t offset = 4 + 4 * dims;
  if (bytes.size() != offset + count)
    throw std::runtime_error(fmt::format("IDX: {} should hold {} bytes of data, holds {}{}", path.string(), count, bytes.size() - offset, (bytes.size() < offset + count ? " (truncated)" : "")));
  auto t = at::empty(shape, at::kByte);
  if (count > 0) std::memcpy(t.data_ptr<uint8_t>(), bytes.data() + offset, count);  // an empty tensor has no data pointer
  return t;
}

/// A data set in memory: images as uint8 [N, C, H, W] (0..255), labels as int64 [N] (undefined
/// when the source has none), and where it came from.
struct ImageSet {
  at::Tensor images, labels;
  std::string source;
  /// Class names by label, where the source names them (an image folder's sub-folders); empty
  /// otherwise (IDX and CIFAR-10 labels are 0..9).
  std::vector<std::string> classes;
  /// The number of classes: classes.size(), else the largest label + 1 (0 without labels).
  int64_t num_classes() const {
    if (!classes.empty()) return static_cast<int64_t>(classes.size());
    return labels.defined() && labels.numel() > 0 ? labels.max().item<int64_t>() + 1 : 0;
  }
  /// The classes a class-conditional model of this set has (≥ 2), or one line, starting "what: ",
  /// naming what is missing.
  int64_t conditioning_classes(const std::string& what = "class conditioning") const {
    if (!labels.defined())
      throw std::runtime_error(fmt::format("{}: the data set {} has no class labels (an image folder needs one "
                                           "sub-folder per class)", what, source));
    const int64_t k = num_classes();
    if (k < 2)
      throw std::runtime_error(fmt::format("{}: the data set {} has {} class; conditioning needs two or more", what, source, k));
    return k;
  }
  int64_t size() const { return images.size(0); }
};

/// Fashion-MNIST / MNIST from a folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]:
/// images [N, 1, 28, 28] uint8, labels int64 [N]. A label beyond `classes` (both sets document 10)
/// is refused naming it, rather than making a model of that many classes; ask for more to read an
/// IDX set of more classes.
inline bool is_mnist_folder(const std::filesystem::path& dir) {
  for (const char* n : {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"})
    if (std::filesystem::exists(dir / n)) return true;
  return false;
}
inline ImageSet load_mnist_like(const std::filesystem::path& dir, bool train, int64_t classes = 10) {
  if (!std::filesystem::is_directory(dir)) throw std::runtime_error("data folder not found: " + dir.string());
  const std::string split = train ? "train" : "t10k";
  auto find = [&](const std::string& stem) {
    for (const auto& name : {stem + ".gz", stem})
      if (std::filesystem::exists(dir / name)) return dir / name;
    throw std::runtime_error("data folder " + dir.string() + " has no " + stem + "[.gz]");
  };
  auto images = read_idx(find(split + "-images-idx3-ubyte"));
  auto labels = read_idx(find(split + "-labels-idx1-ubyte"));
  if (images.dim() != 3)
    throw std::runtime_error(fmt::format("data folder {}: its images file holds a {}-dimensional array {}, not images [N, H, W]",
                                         dir.string(), images.dim(), io::shape_str(images.sizes())));
  if (labels.dim() != 1)
    throw std::runtime_error(fmt::format("data folder {}: its labels file holds a {}-dimensional array {}, not labels [N]",
                                         dir.string(), labels.dim(), io::shape_str(labels.sizes())));
  if (images.size(0) != labels.size(0))
    throw std::runtime_error(fmt::format("data folder {}: {} images but {} labels", dir.string(), images.size(0), labels.size(0)));
  const auto y = labels.to(at::kLong);
  if (y.numel() > 0)
    if (const auto top = y.max().item<int64_t>(); top >= classes)
      throw std::runtime_error(fmt::format("data folder {}: image {} of its {} split has label {}, beyond the {} classes "
                                           "(0 to {}) of MNIST and Fashion-MNIST (a damaged labels file?)",
                                           dir.string(), y.argmax().item<int64_t>(), split, top, classes, classes - 1));
  return {images.unsqueeze(1), y, "IDX " + dir.string() + " (" + split + ")"};
}

}  // namespace casdm::data
