#pragma once
// Pictures of images: a batch in [−1, 1] as one PNG grid that says what it shows in the file's own
// description (report/png.hpp), written atomically (io::write_atomic): a failed write keeps the
// old picture.
//
//   casdm::report::write_grid("out/samples.png", model->sample(64), 8, "CasDM, step 1200, EMA 0.99");
//
// CMake target casdm::report.
#include "casdm/io/files.hpp"
#include "casdm/report/png.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::report {

/// Images [N, C, H, W] in [−1, 1] (C = 1 or 3; values outside are clipped) as a grid `cols` wide
/// with a white 2-pixel border, written to `path` (PNG) with `description`.
inline void write_grid(const std::filesystem::path& path, const at::Tensor& images, int64_t cols,
                       const std::string& description = "") {
  if (images.dim() != 4 || (images.size(1) != 1 && images.size(1) != 3) || images.size(0) < 1)
    throw std::invalid_argument(fmt::format("write_grid {}: expected images [N >= 1, 1 or 3, H, W], got {}",
                                            path.string(), fmt::join(images.sizes(), "x")));
  if (cols < 1) throw std::invalid_argument(fmt::format("write_grid {}: {} columns", path.string(), cols));
  const auto x = images.detach().to(at::kCPU, at::kFloat).clamp(-1, 1).add(1).mul(127.5).round().to(at::kByte).contiguous();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), pad = 2;
  const int64_t rows = (n + cols - 1) / cols, W = cols * (w + pad) + pad, H = rows * (h + pad) + pad;
  std::vector<uint8_t> px(static_cast<size_t>(W * H * c), 255);
  const auto a = x.accessor<uint8_t, 4>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t xx = 0; xx < w; ++xx)
        for (int64_t ch = 0; ch < c; ++ch) {
          const int64_t Y = pad + (i / cols) * (h + pad) + y, X = pad + (i % cols) * (w + pad) + xx;
          px[static_cast<size_t>((Y * W + X) * c + ch)] = a[i][ch][y][xx];
        }
  io::write_atomic(path, encode_png(static_cast<int>(W), static_cast<int>(H), static_cast<int>(c), px.data(), description));
}

}  // namespace casdm::report
