#pragma once
// Tensor files: a dict {name: tensor} plus "casdm.*" metadata strings in the format of Python's
// torch.save, so `torch.load(path)` reads them too — also with weights_only=True (PyTorch ≥ 2.6's
// default): the dict is written without TorchScript's type tag (torch.jit._pickle.restore_type_tag),
// which that safe unpickler refuses. Weights exported from Python (a plain dict of tensors) read back.
//
//   casdm::io::TensorFile f;  f.tensors["w"] = w;  f.meta["note"] = "hi";
//   casdm::io::write_tensor_file("w.pt", f);          // atomic: old file or new, never half
//   auto back = casdm::io::read_tensor_file("w.pt");  // corrupt or foreign files: one-line error
//   casdm::io::load_state_strict(module, back.tensors, "w.pt");  // names and shapes must fit
//
// This is the bottom layer: it knows tensors, modules and files, nothing of diffusion.
#include "casdm/io/state.hpp"
#include "casdm/io/text.hpp"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
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
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::io {

namespace detail {

[[noreturn]] inline void fail_errno(const std::string& what, const std::filesystem::path& p) {
  throw std::runtime_error(fmt::format("{} {}: {}", what, p.string(), std::strerror(errno)));
}

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

}  // namespace detail

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename, fsync
/// of the folder — a crash leaves either the old file or the new one. `before_rename` (tests) runs
/// after the data is synced and before it replaces `path`; if it throws, the temporary file is
/// removed and `path` is unchanged.
inline void write_atomic(const std::filesystem::path& path, const std::vector<char>& bytes,
                         const std::function<void()>& before_rename = {}) {
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  if (!std::filesystem::is_directory(dir)) throw std::runtime_error("folder does not exist: " + dir.string());
  auto tmp = dir / fmt::format(".{}.tmp.{}", path.filename().string(), ::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) detail::fail_errno("cannot create", tmp);
  try {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) detail::fail_errno("cannot write", tmp);
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) detail::fail_errno("cannot sync", tmp);
    if (::close(fd) != 0) detail::fail_errno("cannot close", tmp);
  } catch (...) {
    ::close(fd);
    std::filesystem::remove(tmp);
    throw;
  }
  try {
    if (before_rename) before_rename();
    if (::rename(tmp.c_str(), path.c_str()) != 0) detail::fail_errno("cannot rename onto", path);
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

/// A tensor file's contents: tensors by name and metadata strings (stored as "casdm.<key>").
struct TensorFile {
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> meta;
};

inline void write_tensor_file(const std::filesystem::path& path, const TensorFile& f,
                              const std::function<void()>& before_rename = {}) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  for (const auto& [k, v] : f.tensors) dict.insert(k, v.detach().cpu().contiguous());
  for (const auto& [k, v] : f.meta) dict.insert("casdm." + k, v);
  write_atomic(path, detail::torch_save_bytes(c10::IValue(dict)), before_rename);
}

inline TensorFile read_tensor_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error(
        fmt::format("cannot open {}{}", path.string(), std::filesystem::exists(path) ? "" : " (no such file)"));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue v;
  try {
    v = torch::jit::pickle_load(bytes);
  } catch (const c10::Error& e) {  // LibTorch's message without its C++ backtrace
    throw std::runtime_error(fmt::format("{} is not a readable tensor file (corrupt or truncated?): {}", path.string(),
                                         e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw std::runtime_error(
        fmt::format("{} is not a readable tensor file (corrupt or truncated?): {}", path.string(), e.what()));
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
      throw std::runtime_error(
          fmt::format("{}: entry '{}' is neither a tensor nor casdm metadata", path.string(), k));
  }
  return f;
}

/// Saves `m` (with its type name as metadata "module") atomically.
inline void save_module(const torch::nn::Module& m, const std::filesystem::path& path) {
  TensorFile f;
  f.tensors = state_of(m);
  f.meta["module"] = m.name();
  write_tensor_file(path, f);
}

/// Loads a file written by save_module into `m`, strictly (see load_state_strict).
inline void load_module(torch::nn::Module& m, const std::filesystem::path& path) {
  auto f = read_tensor_file(path);
  std::string source = path.string();
  if (auto it = f.meta.find("module"); it != f.meta.end() && it->second != m.name())
    source += fmt::format(" (written by {}, loading into {})", it->second, m.name());
  load_state_strict(m, f.tensors, source);
}

}  // namespace casdm::io
