#pragma once
// PNG output of the example programs: image grids and loss curves (stb_image_write).
#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

namespace casdm::examples {

inline void write_png(const std::filesystem::path& path, int w, int h, int c, const std::vector<uint8_t>& px) {
  if (!stbi_write_png(path.c_str(), w, h, c, px.data(), w * c))
    throw std::runtime_error("cannot write " + path.string());
}

/// Images [N, C, H, W] in [−1, 1] as a grid `cols` wide with a 2-pixel border.
inline void write_grid(const std::filesystem::path& path, const at::Tensor& images, int64_t cols) {
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
  write_png(path, static_cast<int>(W), static_cast<int>(H), static_cast<int>(oc), px);
}

/// Loss curves on a log scale, one colour per series (in order: blue, orange, green, red, purple,
/// brown), each smoothed by a moving average; light grid lines at every power of ten.
inline void write_curves(const std::filesystem::path& path, const std::vector<std::vector<double>>& series,
                         int W = 800, int H = 450) {
  static constexpr std::array<std::array<uint8_t, 3>, 6> colours{
      {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}, {140, 86, 75}}};
  std::vector<uint8_t> px(static_cast<size_t>(W * H * 3), 255);
  auto put = [&](int x, int y, const std::array<uint8_t, 3>& c) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    for (int k = 0; k < 3; ++k) px[static_cast<size_t>((y * W + x) * 3 + k)] = c[static_cast<size_t>(k)];
  };
  const int L = 50, R = W - 20, T = 20, B = H - 40;
  double lo = 1e300, hi = -1e300;
  size_t len = 0;
  std::vector<std::vector<double>> smooth;
  for (const auto& s : series) {
    std::vector<double> v(s.size());
    const size_t k = std::max<size_t>(1, s.size() / 50);
    double acc = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      acc += s[i];
      if (i >= k) acc -= s[i - k];
      v[i] = acc / static_cast<double>(std::min(i + 1, k));
      if (v[i] > 0) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
    }
    len = std::max(len, v.size());
    smooth.push_back(std::move(v));
  }
  if (len < 2 || !(lo < hi)) lo = 1e-3, hi = 1, len = std::max<size_t>(len, 2);
  const double llo = std::floor(std::log10(lo)), lhi = std::ceil(std::log10(hi));
  auto ymap = [&](double v) { return B - static_cast<int>((std::log10(std::max(v, 1e-300)) - llo) / (lhi - llo) * (B - T)); };
  for (double e = llo; e <= lhi; e += 1)
    for (int x = L; x <= R; ++x) put(x, ymap(std::pow(10.0, e)), {220, 220, 220});
  for (int x = L; x <= R; ++x) put(x, B, {0, 0, 0});
  for (int y = T; y <= B; ++y) put(L, y, {0, 0, 0});
  for (size_t s = 0; s < smooth.size(); ++s) {
    const auto& c = colours[s % colours.size()];
    int px0 = -1, py0 = -1;
    for (size_t i = 0; i < smooth[s].size(); ++i) {
      const int x = L + static_cast<int>(static_cast<double>(i) / static_cast<double>(len - 1) * (R - L));
      const int y = ymap(smooth[s][i]);
      if (px0 >= 0) {  // Bresenham-free: interpolate enough points
        const int steps = std::max(std::abs(x - px0), std::abs(y - py0)) + 1;
        for (int k = 0; k <= steps; ++k)
          for (int d = 0; d < 2; ++d)
            put(px0 + (x - px0) * k / steps, py0 + (y - py0) * k / steps + d, c);
      }
      px0 = x, py0 = y;
    }
    for (int dy = 0; dy < 10; ++dy)  // legend swatch, in series order, under the axis
      for (int dx = 0; dx < 30; ++dx) put(L + static_cast<int>(s) * 45 + dx, B + 15 + dy, c);
  }
  write_png(path, W, H, 3, px);
}

}  // namespace casdm::examples
