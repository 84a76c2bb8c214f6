#pragma once
// PNG files' bytes from 8-bit pixels (stb_image_write), with an optional tEXt chunk "Description"
// that says what the picture shows (image viewers and PIL's `Image.text` read it). Used by the
// charts (report/chart.hpp) and the image grids (report/image_grid.hpp). Needs stb_image_write
// (Debian: libstb-dev; CMake target casdm::report) and zlib (the chunk's CRC).
#include <fmt/format.h>
#include <stb/stb_image_write.h>  // implementation in libstb
#include <zlib.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::report {

/// A PNG tEXt chunk "Description" holding `text` (printable ASCII kept, anything else as '?'),
/// length, type, data and CRC, to be placed after the IHDR chunk.
inline std::vector<char> png_description(const std::string& text) {
  std::string body = "tEXtDescription";
  body += '\0';
  for (char ch : text) body += (ch >= 32 && ch < 127) ? ch : '?';
  auto be32 = [](uint32_t v) {
    std::string b(4, '\0');
    for (size_t k = 0; k < 4; ++k) b[k] = static_cast<char>((v >> (8 * (3 - k))) & 0xff);
    return b;
  };
  const auto crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  // The length counts the data, not the type.
  const std::string chunk = be32(static_cast<uint32_t>(body.size() - 4)) + body + be32(static_cast<uint32_t>(crc));
  return {chunk.begin(), chunk.end()};
}

/// 8-bit pixels (`c` = 1 grey, 3 RGB, 4 RGBA; rows top to bottom) as a PNG file's bytes, with
/// `description` as its tEXt chunk when not empty.
inline std::vector<char> encode_png(int w, int h, int c, const uint8_t* px, const std::string& description = "") {
  if (w <= 0 || h <= 0 || c < 1 || c > 4)
    throw std::invalid_argument(fmt::format("encode_png: {}x{} pixels with {} channels is not a picture", w, h, c));
  std::vector<char> png;
  auto append = [](void* ctx, void* data, int n) {
    auto* out = static_cast<std::vector<char>*>(ctx);
    out->insert(out->end(), static_cast<const char*>(data), static_cast<const char*>(data) + n);
  };
  if (!stbi_write_png_to_func(append, &png, w, h, c, px, w * c))
    throw std::runtime_error(fmt::format("cannot encode a {}x{} PNG (stb_image_write failed)", w, h));
  if (!description.empty()) {
    const size_t after_ihdr = 8 + 4 + 4 + 13 + 4;  // signature; IHDR's length, type, data, CRC
    const auto chunk = png_description(description);
    png.insert(png.begin() + static_cast<std::ptrdiff_t>(after_ihdr), chunk.begin(), chunk.end());
  }
  return png;
}

}  // namespace casdm::report
