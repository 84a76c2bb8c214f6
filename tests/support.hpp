#pragma once
// Shared helpers of the test suite: Python references run at test time, tensor files written by
// Python's torch.save, and the list of devices to run on.
#include "casdm/core/compat.hpp"
#include "casdm/io/tensor_file.hpp"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::test {

inline std::string source_dir() { return CASDM_TEST_SOURCE_DIR; }

/// Devices the model tests run on: every available one, or those named in CASDM_TEST_DEVICES
/// ("cuda", "cpu", "cpu,cuda") — a GPU machine sets "cuda" to skip what CPU machines already cover.
/// A list that would be empty (a mistyped name, "cuda" on a machine without one) is an error, so a
/// test over "every device" never passes by running nothing.
inline std::vector<c10::Device> devices() {
  auto all = compat::available_devices();
  const char* env = std::getenv("CASDM_TEST_DEVICES");
  if (!env || !*env) return all;
  const std::string want = std::string(",") + env + ",";
  std::vector<c10::Device> out;
  std::vector<std::string> names;
  for (const auto& d : all) {
    names.push_back(d.str());
    if (want.find(std::string(",") + c10::DeviceTypeName(d.type(), true) + ",") != std::string::npos) out.push_back(d);
  }
  if (out.empty())
    throw std::runtime_error(fmt::format("CASDM_TEST_DEVICES={} names none of the available devices ({})", env,
                                         fmt::join(names, ", ")));
  return out;
}

/// A fresh scratch folder under the build tree.
inline std::filesystem::path scratch(const std::string& name) {
  auto p = std::filesystem::path(CASDM_TEST_BINARY_DIR) / "scratch" / name;
  std::filesystem::create_directories(p);
  return p;
}

/// Runs `/usr/bin/python3 tests/reference/<script> <args>`; fails the test on a non-zero exit.
inline void run_python(const std::string& script, const std::string& args) {
  const std::string cmd =
      std::string(CASDM_PYTHON) + " " + source_dir() + "/reference/" + script + " " + args;
  INFO("running " << cmd);
  REQUIRE(std::system(cmd.c_str()) == 0);
}

/// A folder of reference files made once by `tests/reference/<script> DIR`, shared by test
/// processes that CTest runs side by side: made under a temporary name and renamed into place
/// (readers see it complete or not at all), and named after the script's contents (an edited
/// script makes a new one).
inline std::filesystem::path generated(const std::string& script) {
  std::ifstream in(source_dir() + "/reference/" + script, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto dir = scratch("generated") / (script + "-" + std::to_string(std::hash<std::string>{}(text)));
  if (std::filesystem::exists(dir)) return dir;
  const auto tmp = dir.string() + ".tmp" + std::to_string(::getpid());
  std::filesystem::remove_all(tmp);
  std::filesystem::create_directories(tmp);
  run_python(script, tmp);
  std::error_code ec;
  std::filesystem::rename(tmp, dir, ec);  // fails when another process got there first: use theirs
  if (ec) std::filesystem::remove_all(tmp);
  return dir;
}

/// Reads a dict {str: tensor} written by Python's torch.save.
inline std::map<std::string, at::Tensor> load_tensors(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto dict = torch::jit::pickle_load(bytes).toGenericDict();
  std::map<std::string, at::Tensor> out;
  for (const auto& kv : dict) out.emplace(kv.key().toStringRef(), kv.value().toTensor());
  return out;
}

/// Writes a dict {str: tensor} that Python's torch.load reads (weights_only=True included).
inline void save_tensors(const std::map<std::string, at::Tensor>& tensors, const std::filesystem::path& path) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [k, v] : tensors) dict.insert(k, v.detach().cpu().contiguous());
  auto bytes = io::detail::torch_save_bytes(dict);
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

/// max |a − b|, both moved to the CPU in float64.
inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a.to(at::kCPU, at::kDouble) - b.to(at::kCPU, at::kDouble)).abs().max().item<double>();
}

/// max |a − b| / max(|b|, floor).
inline double max_rel_diff(const at::Tensor& a, const at::Tensor& b, double floor = 1e-6) {
  REQUIRE(a.sizes() == b.sizes());
  auto a64 = a.to(at::kCPU, at::kDouble), b64 = b.to(at::kCPU, at::kDouble);
  return ((a64 - b64).abs() / b64.abs().clamp_min(floor)).max().item<double>();
}

/// For each of `params`: does d(loss)/d(param) exist and differ from zero? (The graph is kept.)
inline std::vector<bool> reaches(const at::Tensor& loss, const std::vector<at::Tensor>& params) {
  auto grads = torch::autograd::grad({loss}, params, {}, /*retain_graph=*/true, false, /*allow_unused=*/true);
  std::vector<bool> out;
  for (const auto& g : grads) out.push_back(g.defined() && g.abs().sum().item<double>() > 0);
  return out;
}
inline size_t count(const std::vector<bool>& v) { return static_cast<size_t>(std::count(v.begin(), v.end(), true)); }

}  // namespace casdm::test
