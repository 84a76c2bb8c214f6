#pragma once
// NumPy's array files read into tensors: .npy (numpy.save) and .npz (numpy.savez, stored, and
// numpy.savez_compressed, deflated; ZIP64 too), through libzip. What improved-diffusion's and ADM's
// samplers write is an .npz whose arr_0 holds uint8 images [N, H, W, C].
//
//   auto arrays = casdm::data::read_npz("samples_1000x28x28x1.npz");  // {"arr_0": uint8 tensor}
//   auto x = casdm::data::parse_npy(bytes, "x.npy");                   // one .npy's bytes
//
// Little-endian numbers, booleans, C or Fortran order (Fortran order comes back as the same array,
// contiguous); big-endian data, Python objects (pickles) and structured types are refused by name,
// as are truncated, damaged (a failed CRC) and non-zip files. Needs libzip (Debian: libzip-dev),
// linked by casdm::data where it was found; without its header read_npz says so.
#include <fmt/format.h>

#include <ATen/ATen.h>

#if __has_include(<zip.h>)
#include <zip.h>
#define CASDM_HAVE_LIBZIP 1
#else
#define CASDM_HAVE_LIBZIP 0
#endif

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::data {

namespace detail {
/// The value of `key` in a .npy header's Python dict literal ("{'descr': '<f4', 'fortran_order':
/// False, 'shape': (3, 4), }"), as written there; "" if absent.
inline std::string npy_header_value(const std::string& header, const std::string& key) {
  const auto at = header.find("'" + key + "'");
  if (at == std::string::npos) return "";
  auto p = header.find(':', at);
  if (p == std::string::npos) return "";
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  if (p >= header.size()) return "";
  if (header[p] == '\'') {
    const auto end = header.find('\'', p + 1);
    return end == std::string::npos ? "" : header.substr(p, end - p + 1);
  }
  if (header[p] == '(') {
    const auto end = header.find(')', p);
    return end == std::string::npos ? "" : header.substr(p, end - p + 1);
  }
  const auto end = header.find_first_of(",}", p);
  return header.substr(p, end == std::string::npos ? std::string::npos : end - p);
}

/// The tensor type of a .npy type string ("<f4", "|u1", "|b1", …); others are refused.
inline at::ScalarType npy_type(const std::string& descr, const std::string& what) {
  if (descr.size() < 3 || descr.front() != '\'' || descr.back() != '\'')
    throw std::runtime_error(fmt::format("{}: a structured type ({}) is not an array of numbers", what, descr));
  const auto d = descr.substr(1, descr.size() - 2);
  if (d[0] == '>' && d != ">u1" && d != ">i1" && d != ">b1")
    throw std::runtime_error(fmt::format("{}: big-endian data ('{}'); save it little-endian (array.astype('<{}'))", what, d, d.substr(1)));
  if (d.find('O') != std::string::npos)
    throw std::runtime_error(fmt::format("{}: an array of Python objects (pickled), not of numbers", what));
  static const std::map<std::string, at::ScalarType> types{
      {"u1", at::kByte}, {"i1", at::kChar}, {"b1", at::kBool}, {"i2", at::kShort}, {"i4", at::kInt},
      {"i8", at::kLong}, {"f2", at::kHalf}, {"f4", at::kFloat}, {"f8", at::kDouble}};
  const auto it = types.find(d.substr(1));
  if (it == types.end())
    throw std::runtime_error(fmt::format("{}: the type '{}' is not read (bool, int8 to int64, uint8, float16 to float64)", what, d));
  return it->second;
}
}  // namespace detail

/// The array held by the bytes of a .npy file (format versions 1, 2 and 3); `what` names it in errors.
inline at::Tensor parse_npy(const std::string& bytes, const std::string& what) {
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
    throw std::runtime_error(fmt::format("{}: not a .npy array (no \\x93NUMPY magic)", what));
  const int major = static_cast<unsigned char>(bytes[6]);
  if (major < 1 || major > 3) throw std::runtime_error(fmt::format("{}: .npy format version {} is not read (1 to 3)", what, major));
  const size_t len_bytes = major == 1 ? 2 : 4;
  if (bytes.size() < 8 + len_bytes) throw std::runtime_error(fmt::format("{}: truncated in its header", what));
  size_t header_len = 0;
  for (size_t i = 0; i < len_bytes; ++i) header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
  const size_t start = 8 + len_bytes + header_len;
  if (start > bytes.size()) throw std::runtime_error(fmt::format("{}: truncated in its header", what));
  const auto header = bytes.substr(8 + len_bytes, header_len);
  const auto descr = detail::npy_header_value(header, "descr"), order = detail::npy_header_value(header, "fortran_order"),
             shape_text = detail::npy_header_value(header, "shape");
  if (descr.empty() || order.empty() || shape_text.empty())
    throw std::runtime_error(fmt::format("{}: a .npy header without descr, fortran_order or shape: {}", what, header));
  const auto type = detail::npy_type(descr, what);
  if (order != "True" && order != "False") throw std::runtime_error(fmt::format("{}: fortran_order is {}", what, order));
  std::vector<int64_t> shape;
  uint64_t count = 1;
  for (size_t p = 1; p + 1 < shape_text.size();) {
    while (p < shape_text.size() && (shape_text[p] == ' ' || shape_text[p] == ',')) ++p;
    if (p + 1 >= shape_text.size()) break;
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(shape_text.substr(p), &used);
    } catch (const std::exception&) {
    }
    if (v < 0 || used == 0) throw std::runtime_error(fmt::format("{}: cannot read the shape {}", what, shape_text));
    if (v > 0 && count > (uint64_t{1} << 50) / static_cast<uint64_t>(v))
      throw std::runtime_error(fmt::format("{}: the shape {} is too large", what, shape_text));
    count *= static_cast<uint64_t>(v);
    shape.push_back(v);
    p += used;
  }
  const uint64_t need = count * at::elementSize(type), have = bytes.size() - start;
  if (have != need)
    throw std::runtime_error(fmt::format("{}: {} bytes of data, but the shape {} of '{}' needs {} ({})", what, have, shape_text,
                                         descr.substr(1, descr.size() - 2), need, have < need ? "truncated" : "trailing bytes"));
  const bool fortran = order == "True";
  std::vector<int64_t> stored(shape.rbegin(), shape.rend());
  auto t = at::empty(fortran ? stored : shape, at::TensorOptions().dtype(type));
  if (need) std::memcpy(t.data_ptr(), bytes.data() + start, need);
  if (fortran && t.dim() > 1) {
    std::vector<int64_t> back;
    for (int64_t i = t.dim() - 1; i >= 0; --i) back.push_back(i);
    t = t.permute(back).contiguous();
  }
  return t;
}

/// The array of a .npy file.
inline at::Tensor read_npy(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(fmt::format("cannot open {} (no such file, or not readable)", path.string()));
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return parse_npy(bytes, path.string());
}

/// Every array of an .npz file, by name ("arr_0" for numpy.savez's first unnamed array).
inline std::map<std::string, at::Tensor> read_npz(const std::filesystem::path& path) {
#if CASDM_HAVE_LIBZIP
  if (!std::filesystem::is_regular_file(path)) throw std::runtime_error(fmt::format("cannot open {} (no such file)", path.string()));
  int error = 0;
  std::unique_ptr<zip_t, decltype(&zip_discard)> z(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &error), &zip_discard);
  if (!z) {
    zip_error_t e;
    zip_error_init_with_code(&e, error);
    const std::string why = zip_error_strerror(&e);
    zip_error_fini(&e);
    throw std::runtime_error(fmt::format("{}: not a readable .npz (a zip archive of .npy files): {}", path.string(), why));
  }
  std::map<std::string, at::Tensor> out;
  const auto entries = zip_get_num_entries(z.get(), 0);
  for (zip_int64_t i = 0; i < entries; ++i) {
    zip_stat_t st;
    if (zip_stat_index(z.get(), static_cast<zip_uint64_t>(i), 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE))
      throw std::runtime_error(fmt::format("{}: entry {} of the zip directory is damaged", path.string(), i));
    std::string name = st.name;
    const std::string what = fmt::format("{} ({})", path.string(), name);
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".npy") != 0)
      throw std::runtime_error(fmt::format("{}: not a .npy array; an .npz holds only those", what));
    if (st.size > (uint64_t{1} << 42)) throw std::runtime_error(fmt::format("{}: says it holds {} bytes", what, st.size));
    std::unique_ptr<zip_file_t, decltype(&zip_fclose)> f(zip_fopen_index(z.get(), static_cast<zip_uint64_t>(i), 0), &zip_fclose);
    if (!f) throw std::runtime_error(fmt::format("{}: cannot be read: {}", what, zip_strerror(z.get())));
    std::string bytes(st.size, '\0');
    // Read to the end of the entry: libzip checks its CRC there.
    for (zip_uint64_t got = 0;;) {
      char extra = 0;
      const bool all = got == st.size;
      const auto n = all ? zip_fread(f.get(), &extra, 1) : zip_fread(f.get(), bytes.data() + got, st.size - got);
      if (n < 0) throw std::runtime_error(fmt::format("{}: damaged: {}", what, zip_file_strerror(f.get())));
      if (all && n > 0) throw std::runtime_error(fmt::format("{}: damaged: longer than the {} bytes its directory says", what, st.size));
      if (all) break;
      if (n == 0) throw std::runtime_error(fmt::format("{}: damaged: {} bytes where its directory says {}", what, got, st.size));
      got += static_cast<zip_uint64_t>(n);
    }
    out[name.substr(0, name.size() - 4)] = parse_npy(bytes, what);
  }
  if (out.empty()) throw std::runtime_error(fmt::format("{}: an .npz without arrays", path.string()));
  return out;
#else
  throw std::runtime_error(fmt::format("{}: this program was built without libzip (Debian: libzip-dev), which reads .npz files",
                                       path.string()));
#endif
}

}  // namespace casdm::data
