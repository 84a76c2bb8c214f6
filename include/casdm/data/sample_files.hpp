#pragma once
// Images made by any program, read for scoring (casdm-eval --samples): an .npz or .npy as
// improved-diffusion's and ADM's samplers write them (arr_0: uint8 [N, H, W, C]), a casdm tensor
// file (casdm-sample's samples.pt: "samples", float [N, C, H, W] in [−1, 1], or uint8), or a folder
// of images. Each comes back as [N, C, H, W]: uint8, or float in [−1, 1].
//
//   auto s = casdm::data::read_sample_images("samples_10000x28x28x1.npz");
//   s.images;   // uint8 [10000, 1, 28, 28]
//   s.source;   // "samples_10000x28x28x1.npz (arr_0 of an .npz, uint8 NHWC)"
//
// A wrong shape, type, channel count or range is refused in one line naming the file.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "casdm/data/images.hpp"
#include "casdm/data/npz.hpp"
#include "casdm/io/tensor_file.hpp"

#include <ATen/ATen.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace casdm::data {

struct SampleImages {
  at::Tensor images;   // [N, C, H, W]: uint8, or float in [−1, 1]
  std::string source;  // the path and what was read there
};

namespace detail {
inline std::string shape_of(const at::Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ", ")); }

/// An array of an .npz/.npy as images: uint8 [N, H, W, C] (C = 1 or 3) or [N, H, W] (grayscale).
inline at::Tensor nhwc_images(const at::Tensor& a, const std::string& what) {
  if (a.scalar_type() != at::kByte)
    throw std::runtime_error(fmt::format("{} is {}; samples in an .npz are uint8 images [N, H, W, C] (as improved-diffusion's "
                                         "image_sample.py writes them)", what, c10::toString(a.scalar_type())));
  if (a.dim() == 3) return a.unsqueeze(1).contiguous();
  if (a.dim() != 4 || (a.size(3) != 1 && a.size(3) != 3))
    throw std::runtime_error(fmt::format("{} has shape {}; expected uint8 images [N, H, W, C] with C = 1 or 3", what, shape_of(a)));
  return a.permute({0, 3, 1, 2}).contiguous();
}
}  // namespace detail

inline SampleImages read_sample_images(const std::filesystem::path& path) {
  SampleImages s;
  const auto ext = path.extension().string();
  if (std::filesystem::is_directory(path)) {
    auto set = load_image_folder(path);
    s = {set.images, fmt::format("{} (a folder of images)", path.string())};
  } else if (ext == ".npz") {
    const auto arrays = read_npz(path);
    std::string key = arrays.count("arr_0") ? "arr_0" : arrays.size() == 1 ? arrays.begin()->first : "";
    if (key.empty()) {
      std::vector<std::string> names;
      for (const auto& [k, v] : arrays) names.push_back(k);
      throw std::runtime_error(fmt::format("{}: no arr_0 among its arrays ({}); which one holds the images?", path.string(),
                                           fmt::join(names, ", ")));
    }
    s = {detail::nhwc_images(arrays.at(key), fmt::format("{} ({})", path.string(), key)),
         fmt::format("{} ({} of an .npz, uint8 NHWC)", path.string(), key)};
  } else if (ext == ".npy") {
    s = {detail::nhwc_images(read_npy(path), path.string()), fmt::format("{} (an .npy, uint8 NHWC)", path.string())};
  } else {
    if (!std::filesystem::is_regular_file(path)) throw std::runtime_error(fmt::format("cannot open {} (no such file)", path.string()));
    const auto f = io::read_tensor_file(path);
    const auto it = f.tensors.find("samples");
    if (it == f.tensors.end())
      throw std::runtime_error(fmt::format("{} holds no \"samples\" tensor (casdm-sample's samples.pt has one); an .npz, .npy or "
                                           "a folder of images is read by its name", path.string()));
    const auto& x = it->second;
    if (x.dim() != 4 || (x.size(1) != 1 && x.size(1) != 3))
      throw std::runtime_error(fmt::format("{}: samples of shape {}; expected [N, C, H, W] with C = 1 or 3", path.string(), detail::shape_of(x)));
    if (x.scalar_type() != at::kByte) {
      if (!at::isFloatingType(x.scalar_type()))
        throw std::runtime_error(fmt::format("{}: samples of type {}; expected float in [-1, 1] or uint8", path.string(),
                                             c10::toString(x.scalar_type())));
      const double lo = x.min().item<double>(), hi = x.max().item<double>();
      if (!(lo >= -1 - 1e-3 && hi <= 1 + 1e-3))
        throw std::runtime_error(fmt::format("{}: sample values from {:.4g} to {:.4g}; float samples lie in [-1, 1]", path.string(), lo, hi));
    }
    s = {x.scalar_type() == at::kByte ? x : x.to(at::kFloat).clamp(-1, 1), fmt::format("{} (a casdm tensor file)", path.string())};
  }
  if (s.images.size(0) < 2)
    throw std::runtime_error(fmt::format("{}: {} image{}; scoring needs at least 2", path.string(), s.images.size(0),
                                         s.images.size(0) == 1 ? "" : "s"));
  return s;
}

}  // namespace casdm::data
