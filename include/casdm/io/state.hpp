#pragma once
// A module's tensors by name: listing them, naming their exact values by a checksum, and loading
// a named set strictly (every missing, unexpected or mis-shaped name refused, nothing changed).
// Light: no serialization headers (io/tensor_file.hpp reads and writes files).
#include "casdm/io/text.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/nn/module.h>

#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::io {

/// Every parameter and buffer of `m` by its dotted name.
inline std::map<std::string, at::Tensor> state_of(const torch::nn::Module& m) {
  std::map<std::string, at::Tensor> out;
  for (const auto& kv : m.named_parameters(true)) out.emplace(kv.key(), kv.value());
  for (const auto& kv : m.named_buffers(true)) out.emplace(kv.key(), kv.value());
  return out;
}

/// "<count>:<Σx>:<Σ|x|>" in float64 over the parameters and buffers of `m` whose names `which`
/// accepts (all when empty); empty when there are none. Names the exact weights of a network.
inline std::string checksum_of(const torch::nn::Module& m, const std::function<bool(const std::string&)>& which = {}) {
  int64_t count = 0;
  double sum = 0, abs = 0;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    if (which && !which(name)) return;
    const auto x = t.detach().to(at::kDouble);
    count += x.numel();
    sum += x.sum().item<double>();
    abs += x.abs().sum().item<double>();
  };
  for (const auto& kv : m.named_parameters(true)) add(kv.key(), kv.value());
  for (const auto& kv : m.named_buffers(true)) add(kv.key(), kv.value());
  if (count == 0) return {};
  return fmt::format("{}:{:.17g}:{:.17g}", count, sum, abs);
}

/// The name of the first floating tensor of `tensors` holding a NaN or an infinity, or "" if none.
/// One host sync when all are finite (the common case); the name is looked up only otherwise.
inline std::string first_nonfinite(const std::map<std::string, at::Tensor>& tensors) {
  std::vector<std::pair<const std::string*, at::Tensor>> finite;
  for (const auto& [k, v] : tensors)
    if (v.defined() && v.is_floating_point()) finite.emplace_back(&k, at::isfinite(v).all().cpu());
  if (finite.empty()) return {};
  std::vector<at::Tensor> flags;
  for (const auto& [k, f] : finite) flags.push_back(f);
  if (at::stack(flags).all().item<bool>()) return {};
  for (const auto& [k, f] : finite)
    if (!f.item<bool>()) return *k;
  return {};
}

/// What keeps `tensors` from loading into `m`: the names missing, unexpected or mis-shaped (at
/// most 8 of each), as lines under a header naming `source`; empty when they fit exactly.
inline std::string state_mismatch(const torch::nn::Module& m, const std::map<std::string, at::Tensor>& tensors,
                                  const std::string& source) {
  auto mine = state_of(m);
  std::vector<std::string> missing, unexpected, misshaped;
  for (const auto& [k, v] : mine) {
    auto it = tensors.find(k);
    if (it == tensors.end())
      missing.push_back(k);
    else if (it->second.sizes() != v.sizes())
      misshaped.push_back(fmt::format("{} (file [{}], model [{}])", k, fmt::join(it->second.sizes(), ", "),
                                      fmt::join(v.sizes(), ", ")));
  }
  for (const auto& [k, v] : tensors)
    if (!mine.count(k)) unexpected.push_back(k);
  if (missing.empty() && unexpected.empty() && misshaped.empty()) return {};
  std::string s = fmt::format("{} does not fit this model:", source);
  auto list = [&](const char* what, std::vector<std::string> v) {
    if (v.empty()) return;
    const size_t n = v.size();
    if (n > 8) v.resize(8);
    s += fmt::format("\n  {} {}: {}{}", n, what, fmt::join(v, ", "), n > 8 ? " ..." : "");
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("mis-shaped", misshaped);
  return s;
}

/// Copies `tensors` into `m` only if names and shapes match exactly; otherwise throws
/// state_mismatch's message and leaves `m` as it was.
inline void load_state_strict(torch::nn::Module& m, const std::map<std::string, at::Tensor>& tensors,
                              const std::string& source) {
  if (auto why = state_mismatch(m, tensors, source); !why.empty()) throw std::runtime_error(why);
  at::NoGradGuard g;
  for (auto& [k, v] : state_of(m)) v.copy_(tensors.at(k));
}

}  // namespace casdm::io
