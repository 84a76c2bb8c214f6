#pragma once
// PNG output of the example programs: image grids (stb_image_write) that say what they show in
// the file's own description (a PNG tEXt chunk); charts are casdm/report/chart.hpp's.
#include "casdm/io/files.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <stb/stb_image_write.h>  // implementation in libstb (casdm::data links it)
#include <zlib.h>

namespace casdm::examples {

/// A PNG tEXt chunk "Description" holding `text` (printable ASCII kept, the rest as '?'), to be
/// placed after the IHDR chunk.
inline std::vector<char> png_description(const std::string& text) {
  std::string data = "Description";
  data += '\0';
  for (char ch : text) data += (ch >= 32 && ch < 127) ? ch : '?';
  std::vector<char> chunk;
  auto u32 = [&](uint32_t v) {
    for (int k = 3; k >= 0; --k) chunk.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
  };
  u32(static_cast<uint32_t>(data.size()));
  const std::string body = "tEXt" + data;
  chunk.insert(chunk.end(), body.begin(), body.end());
  u32(static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
  return chunk;
}

/// Encodes in memory (with `description` as its tEXt chunk, if any), then writes atomically
/// (io::write_atomic): a failed write keeps the old picture.
inline void write_png(const std::filesystem::path& path, int w, int h, int c, const std::vector<uint8_t>& px,
                      const std::string& description = "") {
  std::vector<char> png;
  auto append = [](void* ctx, void* data, int n) {
    auto* out = static_cast<std::vector<char>*>(ctx);
    out->insert(out->end(), static_cast<const char*>(data), static_cast<const char*>(data) + n);
  };
  if (!stbi_write_png_to_func(append, &png, w, h, c, px.data(), w * c))
    throw std::runtime_error("cannot encode the picture " + path.string());
  if (!description.empty()) {
    const size_t after_ihdr = 8 + 4 + 4 + 13 + 4;  // signature, IHDR's length, type, data, CRC
    const auto chunk = png_description(description);
    png.insert(png.begin() + static_cast<std::ptrdiff_t>(after_ihdr), chunk.begin(), chunk.end());
  }
  io::write_atomic(path, png);
}

/// Images [N, C, H, W] in [−1, 1] as a grid `cols` wide with a 2-pixel border; `description`
/// (what the grid shows: preset, step, weights) goes into the PNG file.
inline void write_grid(const std::filesystem::path& path, const at::Tensor& images, int64_t cols,
                       const std::string& description = "") {
  auto x = images.detach().to(at::kCPU, at::kFloat).clamp(-1, 1).add(1).mul(127.5).round().to(at::kByte);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), pad = 2;
  const int64_t rows = (n + cols - 1) / cols, W = cols * (w + pad) + pad, H = rows * (h + pad) + pad;
  const int64_t oc = c == 1 ? 1 : 3;
  std::vector<uint8_t> px(static_cast<size_t>(W * H * oc), 255);
  auto a = x.accessor<uint8_t, 4>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t xx = 0; xx < w; ++xx)
        for (int64_t ch = 0; ch < oc; ++ch) {
          const int64_t Y = pad + (i / cols) * (h + pad) + y, X = pad + (i % cols) * (w + pad) + xx;
          px[static_cast<size_t>((Y * W + X) * oc + ch)] = a[i][ch][y][xx];
        }
  write_png(path, static_cast<int>(W), static_cast<int>(H), static_cast<int>(oc), px, description);
}

}  // namespace casdm::examples
