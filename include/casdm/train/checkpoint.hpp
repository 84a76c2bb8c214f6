#pragma once
// Model files: every parameter and buffer by name, in the format of Python's torch.save (a dict
// {name: tensor} plus "casdm.*" metadata strings), so `torch.load(path)` reads them too — also
// with weights_only=True (PyTorch ≥ 2.6's default): the dict is written without TorchScript's
// type tag (torch.jit._pickle.restore_type_tag), which that safe unpickler refuses.
//
// Writing is atomic: a temporary file in the same folder, fsync, rename, fsync of the folder — a
// crash leaves either the old file or the new one, never a half-written one.
// Loading is strict: a file of another model or another size is refused with the names that are
// missing, unexpected or mis-shaped, and the module is left untouched.
#include <ATen/ATen.h>
#include <fcntl.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/nn/module.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::train {

namespace detail {

inline void fail_errno(const std::string& what, const std::filesystem::path& p) {
  throw std::runtime_error(what + " " + p.string() + ": " + std::strerror(errno));
}

/// Writes `bytes` to `path` atomically. `before_rename` (tests) runs after the data is synced
/// and before it replaces `path`; if it throws, the temporary file is removed and `path` is
/// unchanged.
/// What torch::jit::pickle_save writes (torch.save's zip format), with untagged aggregates.
inline std::vector<char> torch_save_bytes(const c10::IValue& value) {
  std::vector<char> pickled;
  torch::jit::Pickler pickler([&](const char* p, size_t n) { pickled.insert(pickled.end(), p, p + n); },
                              /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
                              /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();
  std::vector<char> out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* p, size_t n) {
    out.insert(out.end(), static_cast<const char*>(p), static_cast<const char*>(p) + n);
    return n;
  });
  torch::jit::writeArchiveAndTensors("data", pickled.data(), pickled.size(), pickler.tensorData(), writer);
  writer.writeEndOfFile();
  return out;
}

inline void write_atomic(const std::filesystem::path& path, const std::vector<char>& bytes,
                         const std::function<void()>& before_rename = {}) {
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  if (!std::filesystem::is_directory(dir)) throw std::runtime_error("folder does not exist: " + dir.string());
  auto tmp = dir / ("." + path.filename().string() + ".tmp." + std::to_string(::getpid()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_errno("cannot create", tmp);
  try {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_errno("cannot write", tmp);
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) fail_errno("cannot sync", tmp);
    if (::close(fd) != 0) fail_errno("cannot close", tmp);
  } catch (...) {
    ::close(fd);
    std::filesystem::remove(tmp);
    throw;
  }
  try {
    if (before_rename) before_rename();
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail_errno("cannot rename onto", path);
  } catch (...) {
    std::filesystem::remove(tmp);
    throw;
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace detail

/// A model file's contents: tensors by name and metadata strings.
struct TensorFile {
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> meta;
};

inline void write_tensor_file(const std::filesystem::path& path, const TensorFile& f,
                              const std::function<void()>& before_rename = {}) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  for (const auto& [k, v] : f.tensors) dict.insert(k, v.detach().cpu().contiguous());
  for (const auto& [k, v] : f.meta) dict.insert("casdm." + k, v);
  detail::write_atomic(path, detail::torch_save_bytes(c10::IValue(dict)), before_rename);
}

inline TensorFile read_tensor_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("cannot open " + path.string() + (std::filesystem::exists(path) ? "" : " (no such file)"));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue v;
  try {
    v = torch::jit::pickle_load(bytes);
  } catch (const c10::Error& e) {  // LibTorch's message without its C++ backtrace
    throw std::runtime_error(path.string() + " is not a readable tensor file (corrupt or truncated?): " +
                             e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw std::runtime_error(path.string() + " is not a readable tensor file (corrupt or truncated?): " + e.what());
  }
  if (!v.isGenericDict()) throw std::runtime_error(path.string() + " does not hold a dict of named tensors");
  TensorFile f;
  for (const auto& kv : v.toGenericDict()) {
    if (!kv.key().isString()) throw std::runtime_error(path.string() + " has a key that is not a string");
    const auto& k = kv.key().toStringRef();
    if (kv.value().isTensor())
      f.tensors.emplace(k, kv.value().toTensor());
    else if (kv.value().isString() && k.rfind("casdm.", 0) == 0)
      f.meta.emplace(k.substr(6), kv.value().toStringRef());
    else
      throw std::runtime_error(path.string() + ": entry '" + k + "' is neither a tensor nor casdm metadata");
  }
  return f;
}

/// Every parameter and buffer of `m` by its dotted name.
/// Submodules registered under a name starting with "feature_" hold frozen weights that come from
/// their own files (the feature losses' backbones, loss/feature.hpp). Model files and checkpoints
/// leave them out — building the model loads them again, and they can be 50–110 MB per copy — and
/// record external_checksum() instead, so a resume notices replaced weight files.
inline bool is_external(const std::string& name) { return name.rfind("feature_", 0) == 0; }

/// Every parameter and buffer of `m` by name, without the external (frozen, file-backed) ones.
inline std::map<std::string, at::Tensor> state_of(const torch::nn::Module& m) {
  std::map<std::string, at::Tensor> out;
  for (const auto& kv : m.named_parameters(true))
    if (!is_external(kv.key())) out.emplace(kv.key(), kv.value());
  for (const auto& kv : m.named_buffers(true))
    if (!is_external(kv.key())) out.emplace(kv.key(), kv.value());
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
  std::ostringstream s;
  s.precision(17);
  s << count << ":" << sum << ":" << abs;
  return s.str();
}

/// The checksum of the external (frozen, file-backed) tensors of `m`.
inline std::string external_checksum(const torch::nn::Module& m) { return checksum_of(m, is_external); }

/// Saves `m` (with its type name as metadata) atomically.
inline void save_module(const torch::nn::Module& m, const std::filesystem::path& path) {
  TensorFile f;
  f.tensors = state_of(m);
  f.meta["module"] = m.name();
  write_tensor_file(path, f);
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
    else if (it->second.sizes() != v.sizes()) {
      std::ostringstream s;
      s << k << " (file " << it->second.sizes() << ", model " << v.sizes() << ")";
      misshaped.push_back(s.str());
    }
  }
  for (const auto& [k, v] : tensors)
    if (!mine.count(k) && !is_external(k)) unexpected.push_back(k);  // (files of before 2026-11-27 held them)
  if (missing.empty() && unexpected.empty() && misshaped.empty()) return {};
  std::ostringstream s;
  s << source << " does not fit this model:";
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    s << "\n  " << v.size() << " " << what << ":";
    for (size_t i = 0; i < v.size() && i < 8; ++i) s << " " << v[i] << (i + 1 < v.size() ? "," : "");
    if (v.size() > 8) s << " ...";
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("mis-shaped", misshaped);
  return s.str();
}

/// Copies `tensors` into `m` only if names and shapes match exactly; otherwise throws
/// state_mismatch's message and leaves `m` as it was.
inline void load_state_strict(torch::nn::Module& m, const std::map<std::string, at::Tensor>& tensors,
                              const std::string& source) {
  if (auto why = state_mismatch(m, tensors, source); !why.empty()) throw std::runtime_error(why);
  at::NoGradGuard g;
  for (auto& [k, v] : state_of(m)) v.copy_(tensors.at(k));  // external tensors in the file are left alone
}

/// Loads a file written by save_module into `m`, strictly (see load_state_strict).
inline void load_module(torch::nn::Module& m, const std::filesystem::path& path) {
  auto f = read_tensor_file(path);
  std::string source = path.string();
  if (auto it = f.meta.find("module"); it != f.meta.end() && it->second != m.name())
    source += " (written by " + it->second + ", loading into " + m.name() + ")";
  load_state_strict(m, f.tensors, source);
}

}  // namespace casdm::train
