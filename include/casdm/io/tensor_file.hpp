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
// Each tensor's CRC-32 is stored beside it ("casdm.crc32.<name>") and checked on reading: a flipped
// bit is refused naming the file and the tensor. Python's torch.load reads the checksums as strings.
//
// This is the bottom layer: it knows tensors, modules and files, nothing of diffusion.
#include "casdm/io/files.hpp"
#include "casdm/io/state.hpp"
#include "casdm/io/text.hpp"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/nn/module.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::io {

namespace detail {

/// CRC-32 (zlib's) of a tensor's bytes, as 8 hex digits.
inline std::string crc32_of(const at::Tensor& t) {
  const auto c = t.contiguous();
  uLong crc = crc32_z(0L, Z_NULL, 0);
  crc = crc32_z(crc, static_cast<const Bytef*>(c.data_ptr()), c.nbytes());
  return fmt::format("{:08x}", crc);
}

/// A read adapter over bytes in memory that never reads past them.
class BoundedReader final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit BoundedReader(const std::vector<char>& bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* = "") const override {
    if (pos >= bytes_.size()) return 0;
    n = std::min<uint64_t>(n, bytes_.size() - pos);
    if (n == 0) return 0;  // miniz asks for 0 bytes into a null buffer for a damaged empty record
    std::memcpy(buf, bytes_.data() + pos, n);
    return n;
  }

 private:
  const std::vector<char>& bytes_;
};

/// Walks a pickle's opcodes and refuses one whose declared lengths run past its end, whose memo
/// indices run past what was stored, or whose opcodes take more values than its stack holds (or a
/// MARK it never set): LibTorch's unpickler allocates whatever a length or an index says (a flipped
/// bit can ask for 4 GB) and pops its stacks unchecked (a TUPLE without a MARK read before its mark
/// stack; found by fuzzing). Returns "" or what is wrong.
inline std::string pickle_problem(const char* p, size_t n) {
  size_t i = 0, puts = 0;
  // The stack as the unpickler keeps it: its depth, and the depth at each open MARK.
  size_t depth = 0;
  std::vector<size_t> marks;
  auto above_mark = [&] { return depth - (marks.empty() ? 0 : marks.back()); };
  // Pops k values (above the last MARK), then pushes m; "" or what is wrong.
  auto take = [&](unsigned char op, size_t k, size_t m) -> std::string {
    if (above_mark() < k) return fmt::format("opcode 0x{:02x} takes {} values from a stack of {}", op, k, above_mark());
    depth = depth - k + m;
    return {};
  };
  // Pops everything down to the last MARK, which it drops, needing `below` values under it; pushes m.
  auto to_mark = [&](unsigned char op, size_t below, size_t m) -> std::string {
    if (marks.empty()) return fmt::format("opcode 0x{:02x} closes a MARK that was never set", op);
    depth = marks.back();
    marks.pop_back();
    if (above_mark() < below) return fmt::format("opcode 0x{:02x} needs {} values below its MARK, the stack has {}", op, below, above_mark());
    depth += m;
    return {};
  };
  auto le = [&](size_t at, int bytes) {
    uint64_t v = 0;
    for (int b = bytes - 1; b >= 0; --b) v = (v << 8) | static_cast<unsigned char>(p[at + static_cast<size_t>(b)]);
    return v;
  };
  auto need = [&](uint64_t k) { return k <= n - i; };
  while (i < n) {
    const auto op = static_cast<unsigned char>(p[i++]);
    uint64_t len = 0;
    std::string bad;
    switch (op) {
      case '(': marks.push_back(depth); break;                                      // MARK
      case 't': case 'l': case 'd': bad = to_mark(op, 0, 1); break;                 // TUPLE LIST DICT
      case 0x91: case 'i': bad = to_mark(op, 0, 1); break;                          // FROZENSET INST
      case 'u': case 'e': case 0x90: bad = to_mark(op, 1, 0); break;                // SETITEMS APPENDS ADDITEMS
      case '1': bad = to_mark(op, 0, 0); break;                                     // POP_MARK
      case 0x85: case 'Q': bad = take(op, 1, 1); break;                             // TUPLE1 BINPERSID
      case 0x86: case 'R': case 0x81: case 0x93: bad = take(op, 2, 1); break;       // TUPLE2 REDUCE NEWOBJ STACK_GLOBAL
      case 0x87: case 0x92: bad = take(op, 3, 1); break;                            // TUPLE3 NEWOBJ_EX
      case 's': bad = take(op, 3, 1); break;                                        // SETITEM: dict key value → dict
      case 'a': case 'b': bad = take(op, 2, 1); break;                              // APPEND BUILD
      case '0': bad = take(op, 1, 0); break;                                        // POP
      case '2': case 0x94: case 'q': case 'r': case 'p': bad = take(op, 1, 1 + (op == '2')); break;  // DUP MEMOIZE PUTs
      case '.': bad = take(op, 1, 1); break;                                        // STOP
      default: ++depth;  // every other opcode pushes one value (PROTO and FRAME: undone below)
    }
    if (op == 0x80 || op == 0x95) --depth;
    if (!bad.empty()) return bad;
    switch (op) {
      case '.':  // STOP
        return {};
      case '(': case '}': case ']': case ')': case 't': case 0x85: case 0x86: case 0x87: case 'u': case 's':
      case 'e': case 'a': case 'Q': case 'R': case 'b': case 0x88: case 0x89: case 'N': case 0x81: case 0x8f:
      case 0x90: case 0x91: case 0x92: case 0x93: case '0': case '1': case '2': case 'l': case 'd':
        break;
      case 0x94:  // MEMOIZE
        ++puts;
        break;
      case 0x80: case 'K': case 'h': case 0x82: len = 1; break;        // PROTO BININT1 BINGET EXT1
      case 'M': case 0x83: len = 2; break;                              // BININT2 EXT2
      case 'J': case 'j': case 0x84: len = 4; break;                    // BININT LONG_BINGET EXT4
      case 'G': case 0x95: len = 8; break;                              // BINFLOAT FRAME
      case 'q': case 'r': {                                             // BINPUT LONG_BINPUT
        const int w = op == 'q' ? 1 : 4;
        if (!need(static_cast<uint64_t>(w))) return "it ends inside an opcode";
        if (le(i, w) > puts) return fmt::format("a memo index {} follows {} stored values", le(i, w), puts);
        ++puts;
        len = static_cast<uint64_t>(w);
        break;
      }
      case 0x8c: case 'C': case 'U': case 0x8a:                         // 1-byte lengths
      case 'X': case 'B': case 'T': case 0x8b:                          // 4-byte lengths
      case 0x8d: case 0x8e: case 0x96: {                                // 8-byte lengths
        const int w = (op == 0x8c || op == 'C' || op == 'U' || op == 0x8a) ? 1
                      : (op == 0x8d || op == 0x8e || op == 0x96)          ? 8
                                                                          : 4;
        if (!need(static_cast<uint64_t>(w))) return "it ends inside an opcode";
        len = le(i, w);
        i += static_cast<size_t>(w);
        if (!need(len)) return fmt::format("a value declares {} bytes where {} remain", len, n - i);
        break;
      }
      case 'c': case 'i': case 'I': case 'L': case 'F': case 'S': case 'V': case 'P': case 'g': case 'p': {
        for (int lines = (op == 'c' || op == 'i') ? 2 : 1; lines > 0; --lines) {
          const void* nl = std::memchr(p + i, '\n', n - i);
          if (!nl) return "a text argument has no end";
          i = static_cast<size_t>(static_cast<const char*>(nl) - p) + 1;
        }
        break;
      }
      default:
        return fmt::format("unknown opcode 0x{:02x}", op);
    }
    if (!need(len)) return "it ends inside an opcode";
    i += static_cast<size_t>(len);
  }
  return "it has no STOP opcode (truncated)";
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

/// A tensor file's contents: tensors by name and metadata strings (stored as "casdm.<key>").
struct TensorFile {
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> meta;
};

inline void write_tensor_file(const std::filesystem::path& path, const TensorFile& f,
                              const std::function<void()>& before_rename = {}) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  for (const auto& [k, v] : f.meta)
    if (k.rfind("crc32.", 0) != 0) dict.insert("casdm." + k, v);
  for (const auto& [k, v] : f.tensors) {
    auto t = v.detach().cpu().contiguous();
    dict.insert("casdm.crc32." + k, detail::crc32_of(t));
    dict.insert(k, std::move(t));
  }
  write_atomic(path, detail::torch_save_bytes(c10::IValue(dict)), before_rename);
}

inline TensorFile read_tensor_file(const std::filesystem::path& path) {
  if (std::filesystem::is_directory(path))
    throw std::runtime_error(fmt::format("{} is a folder, not a tensor file", path.string()));
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error(
        fmt::format("cannot open {}{}", path.string(), std::filesystem::exists(path) ? "" : " (no such file)"));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue v;
  try {
    // Every record is read through BoundedReader: pickle_load's own reader copies whatever length a
    // damaged zip directory gives a record, past the end of the file (found by fuzzing).
    caffe2::serialize::PyTorchStreamReader zip(std::make_shared<detail::BoundedReader>(bytes));
    {  // the pickle is checked before LibTorch's unpickler trusts its lengths
      auto [data, size] = zip.getRecord("data.pkl");
      if (auto why = detail::pickle_problem(static_cast<const char*>(data.get()), size); !why.empty())
        throw std::runtime_error(fmt::format("its pickle is damaged: {}", why));
    }
    v = torch::jit::readArchiveAndTensors("data", /*pickle_prefix=*/"", /*tensor_prefix=*/"", /*type_resolver=*/c10::nullopt,
                                          /*obj_loader=*/c10::nullopt, /*device=*/c10::nullopt, zip);
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
  // Checksums (files written since 2026-12-02; older ones have none): LibTorch does not check the
  // zip's own CRCs, so a flipped bit in a tensor's data would otherwise load silently.
  std::set<std::string> checked;
  for (auto it = f.meta.begin(); it != f.meta.end();) {
    if (it->first.rfind("crc32.", 0) != 0) {
      ++it;
      continue;
    }
    const auto name = it->first.substr(6);
    auto t = f.tensors.find(name);
    if (t == f.tensors.end())
      throw std::runtime_error(fmt::format("{} is damaged: it records a checksum for tensor '{}' but holds no such tensor",
                                           path.string(), name));
    if (const auto have = detail::crc32_of(t->second); have != it->second)
      throw std::runtime_error(fmt::format("{} is corrupt: tensor '{}' fails its checksum (CRC-32 {} recorded, {} read)",
                                           path.string(), name, it->second, have));
    checked.insert(name);
    it = f.meta.erase(it);
  }
  if (!checked.empty())
    for (const auto& [k, v] : f.tensors)
      if (!checked.count(k))
        throw std::runtime_error(fmt::format("{} is damaged: tensor '{}' has no checksum", path.string(), k));
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
