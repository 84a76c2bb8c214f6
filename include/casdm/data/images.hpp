#pragma once
// Data sets from disk, as uint8 [N, C, H, W] in memory: Fashion-MNIST/MNIST IDX folders,
// CIFAR-10 binary batches, folders of PNG/JPEG/BMP images; and fitting them to a model's size.
//
//   auto set = casdm::data::open_dataset("/usr/share/datasets/fashion-mnist");   // format detected
//   set = casdm::data::fit(set, 32, casdm::data::Fit::Pad);                     // 28 → 32
//
// Needs zlib (IDX .gz) and stb_image (libstb): link casdm::data instead of casdm::casdm.
// Every error names the file and what is wrong with it; nothing half-read is returned.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include "casdm/data/idx.hpp"
#include "casdm/io/files.hpp"

#include <stb/stb_image.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::data {

/// CIFAR-10's binary version (cifar-10-batches-bin): data_batch_{1..5}.bin (train) or
/// test_batch.bin, 10000 records of 1 label byte + 3×32×32 bytes (channel-major) each.
inline bool is_cifar10_folder(const std::filesystem::path& dir) {
  return std::filesystem::exists(dir / "data_batch_1.bin") || std::filesystem::exists(dir / "test_batch.bin");
}
inline ImageSet load_cifar10(const std::filesystem::path& dir, bool train) {
  if (!std::filesystem::is_directory(dir)) throw std::runtime_error("data folder not found: " + dir.string());
  std::vector<std::filesystem::path> files;
  if (train)
    for (int i = 1; i <= 5; ++i) files.push_back(dir / ("data_batch_" + std::to_string(i) + ".bin"));
  else
    files.push_back(dir / "test_batch.bin");
  constexpr int64_t record = 1 + 3 * 32 * 32;
  std::vector<at::Tensor> images, labels;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw std::runtime_error("CIFAR-10: " + f.string() + " not found or not readable");
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto n = static_cast<int64_t>(bytes.size());
    if (n == 0 || n % record != 0)
      throw std::runtime_error(fmt::format("CIFAR-10: {} holds {} bytes, not a whole number of 3073-byte records (truncated, or not a binary batch)", f.string(), n));
    auto t = at::from_blob(bytes.data(), {n / record, record}, at::kByte).clone();
    auto l = t.select(1, 0).to(at::kLong);
    if (l.max().item<int64_t>() > 9)
      throw std::runtime_error("CIFAR-10: " + f.string() + " has a label above 9 (not a CIFAR-10 batch?)");
    labels.push_back(l);
    images.push_back(t.slice(1, 1).reshape({n / record, 3, 32, 32}));
  }
  return {at::cat(images), at::cat(labels), "CIFAR-10 " + dir.string() + (train ? " (train)" : " (test)")};
}

/// How images are brought to the model's side.
enum class Fit {
  Pad,    ///< centre them on a black canvas (the size must not shrink; padding must be even)
  Resize  ///< centre-crop to a square, then resize (bilinear, antialiased when shrinking)
};

inline Fit parse_fit(const std::string& s) {
  if (s == "pad") return Fit::Pad;
  if (s == "resize") return Fit::Resize;
  throw std::invalid_argument("unknown fit '" + s + "' (pad or resize)");
}

namespace detail {
/// uint8 [N, C, H, W] → uint8 [N, C, size, size], centre-cropped then resized, in chunks.
inline at::Tensor resize_u8(const at::Tensor& x, int64_t size) {
  const int64_t h = x.size(2), w = x.size(3), s = std::min(h, w);
  auto sq = x.slice(2, (h - s) / 2, (h - s) / 2 + s).slice(3, (w - s) / 2, (w - s) / 2 + s);
  if (s == size) return sq.contiguous();
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < x.size(0); i += 1024) {
    auto f = sq.slice(0, i, std::min(x.size(0), i + 1024)).to(at::kFloat);
    auto r = size < s ? at::_upsample_bilinear2d_aa(f, {size, size}, false)
                      : at::upsample_bilinear2d(f, {size, size}, false);
    out.push_back(r.round_().clamp_(0, 255).to(at::kByte));
  }
  return at::cat(out);
}
}  // namespace detail

/// The set with every image brought to size×size.
inline ImageSet fit(ImageSet set, int64_t size, Fit how) {
  if (size < 1) throw std::invalid_argument("image size must be >= 1");
  const int64_t h = set.images.size(2), w = set.images.size(3);
  if (h == size && w == size) return set;
  // Refused from arithmetic before anything is allocated (doubles: no overflow).
  const double bytes = static_cast<double>(set.images.size(0)) * static_cast<double>(set.images.size(1)) *
                       static_cast<double>(size) * static_cast<double>(size);
  const double memory = io::physical_memory();
  if (bytes > memory)
    throw std::invalid_argument(fmt::format("bringing the {} images of {} to {}x{} needs {:.3g} GB; this machine has {:.3g} GB",
                                            set.images.size(0), set.source, size, size, bytes / 1e9, memory / 1e9));
  if (how == Fit::Pad) {
    if (h > size || w > size || (size - h) % 2 || (size - w) % 2)
      throw std::invalid_argument(fmt::format("cannot pad {}x{} images of {} to {} (padding must be even and not negative); use resize", h, w, set.source, size));
    const int64_t ph = (size - h) / 2, pw = (size - w) / 2;
    set.images = at::constant_pad_nd(set.images, {pw, pw, ph, ph}, 0);
  } else {
    set.images = detail::resize_u8(set.images, size);
  }
  return set;
}

namespace detail {

/// The width and height a PNG's header declares, or none: not a PNG (or shorter than its header).
inline std::optional<std::pair<uint32_t, uint32_t>> png_size(const std::filesystem::path& f) {
  unsigned char b[24] = {};
  std::ifstream in(f, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(b), sizeof b)) return std::nullopt;
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (!std::equal(sig, sig + 8, b) || !std::equal(b + 12, b + 16, "IHDR")) return std::nullopt;
  return std::pair{be32(b + 16), be32(b + 20)};
}

/// Why stb_image could not read or decode image `f`, in words: stb_image's own reasons are terse
/// ("outofdata", "too large") unless it was built with STBI_FAILURE_USERMSG, which Debian's is not.
inline std::string image_problem(const std::filesystem::path& f, const std::string& reason) {
  std::error_code ec;
  if (std::filesystem::file_size(f, ec) == 0 && !ec) return "the file is empty";
  const auto png = png_size(f);
  // stb_image decodes at most 2^30 bytes; stbi_info says "unknown image type" for a larger PNG.
  if (png && (reason == "too large" || reason == "unknown image type") &&
      static_cast<double>(png->first) * png->second >= static_cast<double>(1 << 30) / 4)
    return fmt::format("it is a {}x{} PNG, larger than stb_image decodes (2^30 bytes)", png->first, png->second);
  static const std::set<std::string> cut{"outofdata", "not enough pixels", "read past buffer", "bad file", "unexpected end",
                                         "no IDAT"};
  if (cut.count(reason)) return fmt::format("it is truncated or damaged (stb_image: '{}')", reason);
  if (reason == "unknown image type" && !png)
    return "it is not a PNG, JPEG or BMP image that stb_image reads (or its header is damaged)";
  if (reason == "outofmem") return "there is not enough memory to decode it";
  return fmt::format("it is damaged or of a kind stb_image does not read (stb_image: '{}')", reason);
}

}  // namespace detail

/// Every PNG/JPEG/BMP under `dir` (recursively, in path order) as one set. `channels` 1 or 3, or
/// 0 for that of the first image; an image of another channel count (or with alpha) is refused
/// with its name. `size` > 0 fits each image to size×size (Fit::Resize); 0 requires one size.
/// When every image lies in a sub-folder of `dir` (one sub-folder per class, as torchvision's
/// ImageFolder), the set has labels: the index of the image's sub-folder among the sub-folders'
/// names in sorted order (`classes`); otherwise none.
inline ImageSet load_image_folder(const std::filesystem::path& dir, int64_t channels = 0, int64_t size = 0) {
  if (!std::filesystem::is_directory(dir)) throw std::runtime_error("data folder not found: " + dir.string());
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    auto ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp"))
      files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw std::runtime_error("data folder " + dir.string() + " holds no PNG, JPEG or BMP images");
  std::vector<at::Tensor> images;
  std::filesystem::path first;
  int64_t first_h = 0, first_w = 0;
  for (const auto& f : files) {
    int w = 0, h = 0, c = 0;
    if (!stbi_info(f.c_str(), &w, &h, &c))
      throw std::runtime_error("cannot read image " + f.string() + ": " + detail::image_problem(f, stbi_failure_reason()));
    if (c == 2 || c == 4)
      throw std::runtime_error(fmt::format("image {} has an alpha channel ({} channels); casdm reads 1- or 3-channel images", f.string(), c));
    if (channels == 0) channels = c;
    if (channels != 1 && channels != 3) throw std::invalid_argument("image channels must be 1 or 3");
    if (c != channels)
      throw std::runtime_error(fmt::format("image {} has {} channel{}, the data set has {}{}", f.string(), c, (c == 1 ? "" : "s"), channels, (first.empty() ? "" : " (like " + first.string() + ")")));
    if (first.empty()) first = f, first_h = h, first_w = w;
    if (size == 0 && (h != first_h || w != first_w))
      throw std::runtime_error(fmt::format("image {} is {}x{}, {} is {}x{}; give an image size to resize them all", f.string(), w, h, first.string(), first_w, first_h));
    unsigned char* px = stbi_load(f.c_str(), &w, &h, &c, static_cast<int>(channels));
    if (!px) throw std::runtime_error("cannot decode image " + f.string() + ": " + detail::image_problem(f, stbi_failure_reason()));
    auto t = at::from_blob(px, {1, h, w, channels}, at::kByte).permute({0, 3, 1, 2}).clone(at::MemoryFormat::Contiguous);  // a copy: px is freed next
    stbi_image_free(px);
    images.push_back(size > 0 ? detail::resize_u8(t, size) : t);
  }
  // Labels from class sub-folders, if every image has one.
  std::vector<std::string> classes;
  bool foldered = true;
  for (const auto& f : files) {
    const auto rel = f.lexically_relative(dir);
    if (std::distance(rel.begin(), rel.end()) < 2) foldered = false;
    else classes.push_back(rel.begin()->string());
  }
  at::Tensor labels;
  if (foldered) {
    std::sort(classes.begin(), classes.end());
    classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
    std::vector<int64_t> y;
    for (const auto& f : files) {
      const auto name = f.lexically_relative(dir).begin()->string();
      y.push_back(std::lower_bound(classes.begin(), classes.end(), name) - classes.begin());
    }
    labels = at::tensor(y, at::kLong);
  } else {
    classes.clear();
  }
  return {at::cat(images), labels, "images " + dir.string(), classes};
}

/// A data format open_dataset reads: its name, what it is, whether it has a train and a test split.
struct Format {
  std::string name, description;
  bool split = false;
};

/// Every data format, the one list that programs' help and choices read ("auto" detects one).
inline const std::vector<Format>& formats() {
  static const std::vector<Format> all{{"idx", "IDX files (Fashion-MNIST, MNIST)", true},
                                       {"cifar10", "CIFAR-10 *.bin batches", true},
                                       {"images", "a folder of PNG/JPEG/BMP images (one sub-folder per class: labels)", false}};
  return all;
}

/// "auto" and the names of formats(), those with a train/test split alone if `split_only`.
inline std::vector<std::string> format_names(bool split_only = false) {
  std::vector<std::string> out{"auto"};
  for (const auto& f : formats())
    if (f.split || !split_only) out.push_back(f.name);
  return out;
}

/// "auto (detected), idx (IDX files …), …" for a program's --help.
inline std::string formats_help(bool split_only = false) {
  std::string out = "auto (detected)";
  for (const auto& f : formats())
    if (f.split || !split_only) out += fmt::format(", {} ({})", f.name, f.description);
  return out;
}

/// A data set by folder, its format detected (IDX, CIFAR-10 binary, image folder) or named (one of
/// formats()). `train` picks the split where the format has two; `image_size` resizes an image
/// folder's images as they are read (they may differ in size).
inline ImageSet open_dataset(const std::filesystem::path& dir, const std::string& format = "auto", bool train = true,
                             int64_t image_size = 0) {
  if (!std::filesystem::is_directory(dir)) throw std::runtime_error("data folder not found: " + dir.string());
  auto f = format;
  if (f == "auto") f = is_mnist_folder(dir) ? "idx" : is_cifar10_folder(dir) ? "cifar10" : "images";
  if (f == "idx") return load_mnist_like(dir, train);
  if (f == "cifar10") return load_cifar10(dir, train);
  if (f == "images") return load_image_folder(dir, 0, image_size);
  throw std::invalid_argument(fmt::format("unknown data format '{}' ({})", format, fmt::join(format_names(), ", ")));
}

}  // namespace casdm::data
