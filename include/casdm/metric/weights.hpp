#pragma once
// Pretrained weights of the metric networks: files written by Python's torch.save of a plain dict
// {name: tensor} (tools/export_weights.py makes them), loaded strictly by name and shape.
#include "casdm/core/errors.hpp"
#include "casdm/io/tensor_file.hpp"

#include <filesystem>
#include <stdexcept>
#include <string>

namespace casdm::metric {

/// How the files are made; every "missing file" message ends with it.
inline constexpr const char* how_to_make_weights =
    "make it with `python3 tools/export_weights.py --out DIR` (PyTorch, torchvision and the pretrained "
    "weights needed once; see docs/metrics.md)";

/// The folder of exported weights a feature loss reads (ObjectiveOptions::feature_weights); an empty
/// one is refused (SettingError "feature_weights") naming the loss (`what`) and the `files` it needs.
inline std::filesystem::path weights_folder(const std::string& folder, const std::string& what,
                                            const std::string& files, const std::string& how = how_to_make_weights) {
  if (folder.empty())
    throw SettingError("feature_weights", "the " + what + " needs the folder of " + files + "; " + how);
  return folder;
}

/// Loads `path` into `m` strictly; `what` names the network in messages ("VGG16 weights").
inline void load_weights(torch::nn::Module& m, const std::filesystem::path& path, const std::string& what) {
  if (path.empty()) throw std::invalid_argument(what + ": no file given; " + how_to_make_weights);
  if (!std::filesystem::exists(path))
    throw std::runtime_error(what + " file not found: " + path.string() + "; " + how_to_make_weights);
  auto f = io::read_tensor_file(path);
  io::load_state_strict(m, f.tensors, what + " file " + path.string());
}

}  // namespace casdm::metric
