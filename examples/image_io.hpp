#pragma once
// PNG output of the example programs: image grids and labelled loss curves (stb_image_write,
// stb_easy_font for the text).
#include "casdm/io/files.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <stb/stb_easy_font.h>
#include <stb/stb_image_write.h>  // implementation in libstb (casdm::data links it)

namespace casdm::examples {

/// Encodes in memory, then writes atomically (io::write_atomic): a failed write keeps the old picture.
inline void write_png(const std::filesystem::path& path, int w, int h, int c, const std::vector<uint8_t>& px) {
  std::vector<char> png;
  auto append = [](void* ctx, void* data, int n) {
    auto* out = static_cast<std::vector<char>*>(ctx);
    out->insert(out->end(), static_cast<const char*>(data), static_cast<const char*>(data) + n);
  };
  if (!stbi_write_png_to_func(append, &png, w, h, c, px.data(), w * c))
    throw std::runtime_error("cannot encode the picture " + path.string());
  io::write_atomic(path, png);
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

/// An RGB canvas with pixels, lines and text.
struct Canvas {
  int W, H;
  std::vector<uint8_t> px;
  Canvas(int w, int h) : W(w), H(h), px(static_cast<size_t>(w * h * 3), 255) {}
  void put(int x, int y, const std::array<uint8_t, 3>& c) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    for (int k = 0; k < 3; ++k) px[static_cast<size_t>((y * W + x) * 3 + k)] = c[static_cast<size_t>(k)];
  }
  void line(int x0, int y0, int x1, int y1, const std::array<uint8_t, 3>& c, int thick = 1) {
    const int steps = std::max(std::abs(x1 - x0), std::abs(y1 - y0)) + 1;
    for (int k = 0; k <= steps; ++k)
      for (int d = 0; d < thick; ++d) put(x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps + d, c);
  }
  /// Text with its top-left corner at (x, y), `scale` pixels per font unit (~7 units high).
  void text(int x, int y, const std::string& s, const std::array<uint8_t, 3>& c, int scale = 2) {
    std::vector<char> buf(s.size() * 1024 + 1024);  // up to ~10 quads of 64 bytes per glyph
    std::string copy = s;
    const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buf.data(), static_cast<int>(buf.size()));
    for (int q = 0; q < quads; ++q) {
      const float* v = reinterpret_cast<const float*>(buf.data() + q * 4 * 16);
      const float x0 = v[0], y0 = v[1], x1 = v[8], y1 = v[9];  // opposite corners of an axis-aligned quad
      for (int yy = static_cast<int>(y0 * scale); yy < static_cast<int>(y1 * scale); ++yy)
        for (int xx = static_cast<int>(x0 * scale); xx < static_cast<int>(x1 * scale); ++xx) put(x + xx, y + yy, c);
    }
  }
  static int text_width(const std::string& s, int scale = 2) {
    std::string copy = s;
    return stb_easy_font_width(copy.data()) * scale;
  }
  void save(const std::filesystem::path& path) const { write_png(path, W, H, 3, px); }
};

/// Loss curves on a log scale, one colour per series (blue, orange, green, red, purple, brown),
/// each smoothed by a moving average, with a legend of `names`, decade labels on the y axis and
/// step labels (1-based) on the x axis.
inline void write_curves(const std::filesystem::path& path, const std::vector<std::vector<double>>& series,
                         const std::vector<std::string>& names = {}, const std::string& title = "",
                         int W = 900, int H = 520) {
  static constexpr std::array<std::array<uint8_t, 3>, 6> colours{
      {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}, {140, 86, 75}}};
  Canvas cv(W, H);
  const int L = 80, R = W - 20, T = 50, B = H - 70;
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
  const double llo = std::floor(std::log10(lo)), lhi = std::max(llo + 1, std::ceil(std::log10(hi)));
  auto ymap = [&](double v) {
    return B - static_cast<int>((std::log10(std::max(v, 1e-300)) - llo) / (lhi - llo) * (B - T));
  };
  auto xmap = [&](double i) { return L + static_cast<int>(i / static_cast<double>(len - 1) * (R - L)); };
  const std::array<uint8_t, 3> black{0, 0, 0}, grey{120, 120, 120}, light{225, 225, 225};
  for (double e = llo; e <= lhi; e += 1) {
    const int y = ymap(std::pow(10.0, e));
    cv.line(L, y, R, y, light);
    const std::string label = "1e" + std::to_string(static_cast<int>(e));
    cv.text(L - 8 - Canvas::text_width(label), y - 6, label, grey);
  }
  for (int k = 0; k <= 4; ++k) {  // x ticks at 0, ¼, ½, ¾, 1 of the run
    const double i = static_cast<double>(len - 1) * k / 4.0;
    const int x = xmap(i);
    cv.line(x, B, x, B + 5, black);
    const std::string label = std::to_string(static_cast<long long>(std::llround(i + 1)));
    cv.text(x - Canvas::text_width(label) / 2, B + 10, label, grey);
  }
  cv.text((L + R) / 2 - Canvas::text_width("step") / 2, B + 32, "step", black);
  cv.line(L, B, R, B, black);
  cv.line(L, T, L, B, black);
  if (!title.empty()) cv.text(L, 12, title, black);
  int lx = L + 10;
  for (size_t s = 0; s < smooth.size(); ++s) {
    const auto& c = colours[s % colours.size()];
    int px0 = -1, py0 = -1;
    for (size_t i = 0; i < smooth[s].size(); ++i) {
      const int x = xmap(static_cast<double>(i)), y = ymap(smooth[s][i]);
      if (px0 >= 0) cv.line(px0, py0, x, y, c, 2);
      px0 = x, py0 = y;
    }
    const std::string name = s < names.size() ? names[s] : "series " + std::to_string(s);
    for (int dy = 0; dy < 4; ++dy) cv.line(lx, T + 10 + dy, lx + 24, T + 10 + dy, c);  // legend, top left
    cv.text(lx + 30, T + 5, name, black);
    lx += 30 + Canvas::text_width(name) + 24;
  }
  cv.save(path);
}

}  // namespace casdm::examples

namespace casdm::examples {

/// Grouped bars: one group per entry of `groups`, one bar per entry of `bars` in each (colours as
/// write_curves), values[g][b] on a linear axis from 0, the value written above each bar.
inline void write_bars(const std::filesystem::path& path, const std::vector<std::string>& groups,
                       const std::vector<std::string>& bars, const std::vector<std::vector<double>>& values,
                       const std::string& title, int W = 900, int H = 520) {
  static constexpr std::array<std::array<uint8_t, 3>, 6> colours{
      {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}, {140, 86, 75}}};
  Canvas cv(W, H);
  const int L = 90, R = W - 20, T = 70, B = H - 50;
  double hi = 0;
  for (const auto& g : values)
    for (double v : g)
      if (std::isfinite(v)) hi = std::max(hi, v);
  if (hi <= 0) hi = 1;
  const std::array<uint8_t, 3> black{0, 0, 0}, grey{120, 120, 120}, light{225, 225, 225};
  for (int k = 0; k <= 4; ++k) {
    const int y = B - static_cast<int>(k / 4.0 * (B - T));
    cv.line(L, y, R, y, light);
    char label[32];
    std::snprintf(label, sizeof label, "%.3g", hi * k / 4.0);
    cv.text(L - 8 - Canvas::text_width(label), y - 6, label, grey);
  }
  const int gw = (R - L) / std::max<int>(1, static_cast<int>(groups.size()));
  const int bw = std::max(4, (gw - 20) / std::max<int>(1, static_cast<int>(bars.size())));
  for (size_t g = 0; g < groups.size(); ++g) {
    const int x0 = L + static_cast<int>(g) * gw + 10;
    for (size_t b = 0; b < bars.size() && g < values.size() && b < values[g].size(); ++b) {
      const double v = values[g][b];
      if (!std::isfinite(v)) continue;
      const int top = B - static_cast<int>(v / hi * (B - T));
      for (int x = x0 + static_cast<int>(b) * bw; x < x0 + static_cast<int>(b + 1) * bw - 2; ++x)
        cv.line(x, top, x, B, colours[b % colours.size()]);
      char label[32];
      std::snprintf(label, sizeof label, "%.3g", v);
      cv.text(x0 + static_cast<int>(b) * bw, top - 14, label, grey, 1);
    }
    cv.text(x0, B + 10, groups[g], black);
  }
  cv.line(L, B, R, B, black);
  cv.line(L, T, L, B, black);
  cv.text(L, 12, title, black);
  int lx = L + 10;
  for (size_t b = 0; b < bars.size(); ++b) {
    for (int dy = 0; dy < 8; ++dy) cv.line(lx, 40 + dy, lx + 16, 40 + dy, colours[b % colours.size()]);
    cv.text(lx + 22, 36, bars[b], black);
    lx += 22 + Canvas::text_width(bars[b]) + 24;
  }
  cv.save(path);
}

}  // namespace casdm::examples
