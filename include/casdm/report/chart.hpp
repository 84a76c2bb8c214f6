#pragma once
// Charts of a run and of an ablation table, drawn by PLplot (cairo for PNG, its SVG driver for
// SVG) and written atomically (io::write_atomic): the format follows the file's extension.
//
//   casdm::report::LineChart().title("CasDM: training losses").x_label("step").y_label("loss")
//       .log_y(true).smooth(20).raw(true).add("total", totals).add("eps", eps).write("out/loss.png");
//   casdm::report::BarChart().title("FD at 10, 25, 50, 100 steps").columns({"10", "25", "50", "100"})
//       .row("DDPM_Eps", {9.1, 7.2, 6.8, 6.5}, {0.3, 0.2, 0.2, 0.2}).write("out/chart.svg");
//
// Legends sit outside the plotting box (they never cover data); a bar chart gives every row its
// own band with its label on one line to the left (labels never overlap: the picture grows with
// the rows, and the text shrinks only if a band could not hold it); ± errors are drawn as error
// bars. Needs PLplot's C++ library and its cairo driver (Debian: libplplot-dev plplot-driver-cairo)
// and stb_image_write for PNG encoding (libstb-dev): CMake target casdm::report.
#include "casdm/io/files.hpp"
#include "casdm/report/png.hpp"

#include <fmt/format.h>
#include <plplot/plstream.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::report {

/// The moving average of `v` over a trailing window of `k` values (the first k−1 over what there is).
inline std::vector<double> moving_average(const std::vector<double>& v, size_t k) {
  std::vector<double> out(v.size());
  k = std::max<size_t>(k, 1);
  double acc = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    acc += v[i];
    if (i >= k) acc -= v[i - k];
    out[i] = acc / static_cast<double>(std::min(i + 1, k));
  }
  return out;
}

namespace detail {

/// The colours of series and bars, in order (Tableau's ten), then again with dashed lines.
inline constexpr std::array<std::array<int, 3>, 10> palette{{{31, 119, 180}, {255, 127, 14}, {44, 160, 44},
                                                             {214, 39, 40}, {148, 103, 189}, {140, 86, 75},
                                                             {227, 119, 194}, {127, 127, 127}, {188, 189, 34},
                                                             {23, 190, 207}}};
// Colour map 0 slots: 0 background, 1 text and axes, 2 grid, 3 faint text; 4.. the palette, then
// the palette at 30 % opacity (raw curves behind their averages).
inline constexpr int ink = 1, grid_colour = 2, faint = 3, first_series = 4;
inline int series_colour(size_t i) { return first_series + static_cast<int>(i % palette.size()); }
inline int faint_colour(size_t i) { return first_series + static_cast<int>(palette.size() + i % palette.size()); }
inline int series_style(size_t i) { return 1 + static_cast<int>((i / palette.size()) % 8); }  // 1: solid

/// PLplot text escapes '#' (its escape character): "##" prints one.
inline std::string plain(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == '#') out += '#';
  }
  return out;
}

/// A page to draw on: PLplot set up for a PNG (memcairo into an RGBA buffer) or an SVG (its svg
/// driver into memory); finish() ends the stream and writes the file atomically. PLplot keeps
/// global state: one page at a time in a process (a lock), and its fatal errors become exceptions
/// instead of exit().
class Page {
 public:
  Page(const std::filesystem::path& path, int width, int height) : lock_(mutex()), path_(path), w_(width), h_(height) {
    const auto ext = path.extension().string();
    if (ext != ".png" && ext != ".svg")
      throw std::runtime_error(fmt::format("chart {}: the format follows the extension, .png or .svg", path.string()));
    if (width < 100 || height < 100 || width > 20000 || height > 20000)
      throw std::runtime_error(fmt::format("chart {}: {}x{} pixels is not a chart size (100 to 20000 a side)",
                                           path.string(), width, height));
    const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    if (!std::filesystem::is_directory(dir)) throw std::runtime_error("folder does not exist: " + dir.string());
    svg_ = ext == ".svg";
    plsexit(&on_fatal);
    plsabort(&on_warning);
    warnings().clear();
    pls_.emplace();
    plsError(&error_code_, error_text_.data());  // PLplot's non-fatal errors: kept, not printed
    if (svg_) {
      memfile_ = open_memstream(&mem_, &mem_size_);
      if (!memfile_) throw std::runtime_error("chart: cannot open a memory stream");
      pls_->sdev("svg");
      pls_->sfile(memfile_);  // PLplot closes it when the stream ends
      pls_->spage(0, 0, width, height, 0, 0);
    } else {
      rgba_.assign(static_cast<size_t>(width) * static_cast<size_t>(height) * 4, 255);
      pls_->sdev("memcairo");
      pls_->smema(width, height, rgba_.data());
    }
    pls_->scolbg(255, 255, 255);
    pls_->init();
    colours();
    pls_->col0(ink);
    pls_->adv(0);
    pls_->fontld(1);
  }
  Page(const Page&) = delete;
  Page& operator=(const Page&) = delete;
  ~Page() {
    if (pls_) pls_.reset();  // ends the stream (and closes memfile_)
    std::free(mem_);
  }

  plstream& pl() { return *pls_; }
  int width() const { return w_; }
  int height() const { return h_; }
  /// The character height as a fraction of the page's height (PLplot's current scale).
  double char_height() {
    PLFLT def = 0, ht = 0, x0 = 0, x1 = 0, y0 = 0, y1 = 0;
    pls_->gchr(def, ht);
    pls_->gspa(x0, x1, y0, y1);
    return ht / (y1 - y0);
  }
  /// The same height as a fraction of the page's width.
  double char_height_x() { return char_height() * h_ / w_; }

  void finish() {
    pls_.reset();
    if (!warnings().empty()) throw std::runtime_error(fmt::format("chart {}: PLplot: {}", path_.string(), warnings()));
    if (svg_) {
      io::write_atomic(path_, mem_, mem_size_);
      return;
    }
    std::vector<unsigned char> rgb(static_cast<size_t>(w_) * static_cast<size_t>(h_) * 3);
    for (size_t i = 0, n = rgb.size() / 3; i < n; ++i)
      for (size_t k = 0; k < 3; ++k) rgb[3 * i + k] = rgba_[4 * i + k];
    io::write_atomic(path_, encode_png(w_, h_, 3, rgb.data()));
  }

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::string& warnings() {
    static std::string w;
    return w;
  }
  static int on_fatal(const char* message) { throw std::runtime_error(fmt::format("PLplot: {}", message)); }
  static void on_warning(const char* message) { warnings() += warnings().empty() ? message : std::string("; ") + message; }
  void colours() {
    pls_->scmap0n(static_cast<PLINT>(first_series + 2 * palette.size()));
    pls_->scol0(0, 255, 255, 255);
    pls_->scol0(ink, 0, 0, 0);
    pls_->scol0(grid_colour, 225, 225, 225);
    pls_->scol0(faint, 110, 110, 110);
    for (size_t i = 0; i < palette.size(); ++i) {
      const auto& c = palette[i];
      pls_->scol0(series_colour(i), c[0], c[1], c[2]);
      pls_->scol0a(faint_colour(i), c[0], c[1], c[2], 0.3);
    }
  }

  std::unique_lock<std::mutex> lock_;
  std::filesystem::path path_;
  int w_, h_;
  bool svg_ = false;
  std::vector<unsigned char> rgba_;
  char* mem_ = nullptr;
  size_t mem_size_ = 0;
  FILE* memfile_ = nullptr;
  std::optional<plstream> pls_;
  PLINT error_code_ = 0;
  std::array<char, 1024> error_text_{};
};

/// The legend to the right of the plotting box, outside it: a line (and a marker) per entry, or a
/// colour box per entry (bars).
inline void legend(plstream& pl, const std::vector<std::string>& names, bool markers, bool boxes = false) {
  const auto n = static_cast<PLINT>(names.size());
  if (n == 0) return;
  const PLINT kind = boxes ? PL_LEGEND_COLOR_BOX : PL_LEGEND_LINE | (markers ? PL_LEGEND_SYMBOL : 0);
  std::vector<PLINT> opts(names.size(), kind), text_colours(names.size(), ink), colours(names.size()),
      styles(names.size()), symbol_numbers(names.size(), 1), patterns(names.size(), 0);
  std::vector<PLFLT> widths(names.size(), 2.0), symbol_scales(names.size(), 1.0), box_scales(names.size(), 0.8);
  std::vector<std::string> texts;
  std::vector<const char*> text_ptrs, symbols(names.size(), "#(728)");
  for (size_t i = 0; i < names.size(); ++i) {
    colours[i] = series_colour(i);
    styles[i] = boxes ? 1 : series_style(i);
    texts.push_back(plain(names[i]));
  }
  for (const auto& t : texts) text_ptrs.push_back(t.c_str());
  PLFLT w = 0, h = 0;
  pl.legend(&w, &h, 0, PL_POSITION_RIGHT | PL_POSITION_OUTSIDE | PL_POSITION_VIEWPORT, 0.01, 0.0,
            0.05, 0, ink, 1, n, 1, n, opts.data(), 1.0, 0.9, 2.0, 0.0, text_colours.data(), text_ptrs.data(),
            colours.data(), patterns.data(), box_scales.data(), widths.data(), colours.data(), styles.data(),
            widths.data(), colours.data(), symbol_scales.data(), symbol_numbers.data(), symbols.data());
}

/// The title over the plotting box [left, right] (page fractions), centred on it, its text made
/// smaller when it would not fit the page otherwise.
inline void title(Page& page, const std::string& text, double left, double right) {
  if (text.empty()) return;
  const double centre = (left + right) / 2, room = 2 * std::min(centre - 0.01, 0.99 - centre);
  const double width = 0.85 * page.char_height_x() * static_cast<double>(text.size());
  const double scale = std::clamp(room / width, 0.4, 1.0);
  page.pl().schr(0, scale);
  page.pl().mtex("t", 2.0 / scale, 0.5, 0.5, plain(text).c_str());
  page.pl().schr(0, 1.0);
}

/// The widest text among `names`, in characters (a rough measure of its width: ~0.85 of a height each).
inline size_t widest(const std::vector<std::string>& names) {
  size_t m = 0;
  for (const auto& s : names) m = std::max(m, s.size());
  return m;
}

/// An axis range [lo, hi] holding every value, padded, never empty.
inline std::pair<double, double> span(double lo, double hi, bool log) {
  if (!(lo <= hi)) return log ? std::make_pair(-1.0, 1.0) : std::make_pair(0.0, 1.0);
  if (log) return hi - lo < 1e-9 ? std::make_pair(lo - 0.5, hi + 0.5) : std::make_pair(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo));
  const double pad = hi > lo ? 0.05 * (hi - lo) : std::max(1.0, std::abs(lo) * 0.1);
  return {lo - pad, hi + pad};
}

}  // namespace detail

/// Curves on shared axes: any number of series, each with its x values (1, 2, … when not given)
/// and an optional ± error per point; log scales, a trailing moving average (the raw values
/// drawn faintly behind it on request), markers, and a legend outside the plotting box.
/// Non-finite values (and values ≤ 0 on a log axis) are left out of the drawing.
class LineChart {
 public:
  LineChart& title(std::string t) { return title_ = std::move(t), *this; }
  LineChart& x_label(std::string t) { return x_label_ = std::move(t), *this; }
  LineChart& y_label(std::string t) { return y_label_ = std::move(t), *this; }
  LineChart& log_x(bool on) { return log_x_ = on, *this; }
  LineChart& log_y(bool on) { return log_y_ = on, *this; }
  /// The moving-average window (0 or 1: none).
  LineChart& smooth(size_t window) { return smooth_ = window, *this; }
  /// Draws the values before smoothing faintly behind each averaged curve.
  LineChart& raw(bool on) { return raw_ = on, *this; }
  LineChart& markers(bool on) { return markers_ = on, *this; }
  /// Shifts series sideways by this fraction of the x axis each (so that error bars at the same x
  /// stay apart; 0: none).
  LineChart& dodge(double fraction) { return dodge_ = fraction, *this; }
  /// Labels the x axis at these values only (e.g. the step counts of a table's columns).
  LineChart& x_ticks(std::vector<double> at) { return x_ticks_ = std::move(at), *this; }

  /// A series at x = 1, 2, …
  LineChart& add(std::string name, std::vector<double> y) {
    std::vector<double> x(y.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i + 1);
    return add(std::move(name), std::move(x), std::move(y));
  }
  /// A series of points (x[i], y[i]) with error bars y[i] ± err[i] (err empty: none).
  LineChart& add(std::string name, std::vector<double> x, std::vector<double> y, std::vector<double> err = {}) {
    if (x.size() != y.size() || (!err.empty() && err.size() != y.size()))
      throw std::invalid_argument(fmt::format("chart series '{}': {} x values, {} y values, {} errors", name, x.size(),
                                              y.size(), err.size()));
    series_.push_back({std::move(name), std::move(x), std::move(y), std::move(err)});
    return *this;
  }
  size_t size() const { return series_.size(); }

  /// Draws the chart to `path` (.png or .svg), width × height pixels (SVG: points).
  void write(const std::filesystem::path& path, int width = 900, int height = 520) const {
    detail::Page page(path, width, height);
    auto& pl = page.pl();
    struct Drawn {
      std::vector<double> x, y, lo, hi, raw;
    };
    std::vector<Drawn> drawn;
    double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
    auto ok_x = [&](double v) { return std::isfinite(v) && (!log_x_ || v > 0); };
    auto ok_y = [&](double v) { return std::isfinite(v) && (!log_y_ || v > 0); };
    auto tx = [&](double v) { return log_x_ ? std::log10(v) : v; };
    auto ty = [&](double v) { return log_y_ ? std::log10(v) : v; };
    for (const auto& s : series_) {
      const auto avg = smooth_ > 1 ? moving_average(s.y, smooth_) : s.y;
      Drawn d;
      for (size_t i = 0; i < s.y.size(); ++i) {
        if (!ok_x(s.x[i]) || !ok_y(avg[i])) continue;
        d.x.push_back(tx(s.x[i]));
        d.y.push_back(ty(avg[i]));
        d.raw.push_back(ok_y(s.y[i]) ? ty(s.y[i]) : std::nan(""));
        const double e = s.err.empty() || !std::isfinite(s.err[i]) ? 0 : std::abs(s.err[i]);
        d.lo.push_back(ok_y(avg[i] - e) ? ty(avg[i] - e) : d.y.back());
        d.hi.push_back(ty(avg[i] + e));
        xlo = std::min(xlo, d.x.back()), xhi = std::max(xhi, d.x.back());
        ylo = std::min(ylo, d.lo.back()), yhi = std::max(yhi, d.hi.back());
        if (raw_ && std::isfinite(d.raw.back())) ylo = std::min(ylo, d.raw.back()), yhi = std::max(yhi, d.raw.back());
      }
      drawn.push_back(std::move(d));
    }
    std::vector<std::string> names;
    for (const auto& s : series_) names.push_back(s.name);
    const double cw = 0.85 * page.char_height_x();  // a character's width (DejaVu Sans: ~0.83 of a height), in page widths
    const double right = names.empty() ? 0.96 : std::max(0.55, 0.97 - cw * static_cast<double>(detail::widest(names) + 6));
    const double left = 0.11, bottom = 0.13, top = title_.empty() ? 0.95 : 0.9;
    pl.vpor(left, right, bottom, top);
    auto [x0, x1] = detail::span(xlo, xhi, log_x_);
    if (!log_x_ && xlo >= 0 && xhi > xlo) x0 = std::max(x0, 0.0), x1 = xhi;  // steps: the axis ends at the last one
    const auto [y0, y1] = detail::span(ylo, yhi, log_y_);
    pl.wind(x0, x1, y0, y1);
    const std::string xo = std::string("g") + (log_x_ ? "l" : ""), yo = std::string("gv") + (log_y_ ? "l" : "");
    pl.col0(detail::grid_colour);
    pl.box(x_ticks_.empty() ? xo.c_str() : "", 0, 0, yo.c_str(), 0, 0);
    for (double v : x_ticks_)
      if (ok_x(v)) pl.join(tx(v), y0, tx(v), y1);
    pl.col0(detail::ink);
    pl.box(x_ticks_.empty() ? ("bcnst" + xo.substr(1)).c_str() : "bc", 0, 0, ("bcnstv" + yo.substr(2)).c_str(), 0, 0);
    for (double v : x_ticks_)
      if (ok_x(v) && tx(v) >= x0 && tx(v) <= x1)
        pl.mtex("b", 1.5, (tx(v) - x0) / (x1 - x0), 0.5, fmt::format("{:g}", v).c_str());
    pl.lab(detail::plain(x_label_).c_str(), detail::plain(y_label_).c_str(), "");
    detail::title(page, title_, left, right);
    for (size_t s = 0; s < drawn.size(); ++s) {
      auto& d = drawn[s];
      const double shift = dodge_ * (x1 - x0) * (static_cast<double>(s) - static_cast<double>(drawn.size() - 1) / 2);
      for (auto& x : d.x) x += shift;
      const auto n = static_cast<PLINT>(d.x.size());
      if (n == 0) continue;
      if (raw_ && smooth_ > 1) {
        pl.col0(detail::faint_colour(s));
        pl.width(1);
        pl.lsty(1);
        draw_line(pl, d.x, d.raw);
      }
      pl.col0(detail::series_colour(s));
      pl.width(2);
      pl.lsty(detail::series_style(s));
      if (n > 1) draw_line(pl, d.x, d.y);
      pl.lsty(1);
      if (markers_ || n == 1) pl.string(n, d.x.data(), d.y.data(), "#(728)");
      if (!series_[s].err.empty()) {
        pl.width(1.5);
        pl.erry(n, d.x.data(), d.lo.data(), d.hi.data());
      }
    }
    pl.width(1);
    pl.col0(detail::ink);
    if (drawn.empty() || std::all_of(drawn.begin(), drawn.end(), [](const Drawn& d) { return d.x.empty(); }))
      pl.ptex((x0 + x1) / 2, (y0 + y1) / 2, 1, 0, 0.5, "no data yet");
    detail::legend(pl, names, markers_);
    page.finish();
  }

 private:
  struct Series {
    std::string name;
    std::vector<double> x, y, err;
  };
  /// A polyline broken where y is not finite; a long one is thinned to `buckets` runs of points
  /// of which the first, lowest, highest and last are kept (a chart is a few hundred pixels wide:
  /// every spike stays, the file and the drawing time stay small however long the run).
  static void draw_line(plstream& pl, const std::vector<double>& x, const std::vector<double>& y,
                        size_t buckets = 1000) {
    std::vector<double> tx, ty;
    const std::vector<double>*px = &x, *py = &y;
    if (x.size() > 4 * buckets) {
      const size_t per = (x.size() + buckets - 1) / buckets;
      for (size_t b = 0; b < x.size(); b += per) {
        const size_t e = std::min(b + per, x.size());
        size_t lo = b, hi = b;
        for (size_t k = b; k < e; ++k)
          if (std::isfinite(y[k])) {
            if (!std::isfinite(y[lo]) || y[k] < y[lo]) lo = k;
            if (!std::isfinite(y[hi]) || y[k] > y[hi]) hi = k;
          }
        for (size_t k : {b, std::min(lo, hi), std::max(lo, hi), e - 1})
          if (tx.empty() || x[k] != tx.back() || !(y[k] == ty.back())) tx.push_back(x[k]), ty.push_back(y[k]);
      }
      px = &tx, py = &ty;
    }
    size_t i = 0;
    const auto& X = *px;
    const auto& Y = *py;
    while (i < X.size()) {
      while (i < X.size() && !std::isfinite(Y[i])) ++i;
      size_t j = i;
      while (j < X.size() && std::isfinite(Y[j])) ++j;
      if (j - i > 1) pl.line(static_cast<PLINT>(j - i), X.data() + i, Y.data() + i);
      i = j;
    }
  }
  std::string title_, x_label_, y_label_;
  bool log_x_ = false, log_y_ = false, raw_ = false, markers_ = false;
  size_t smooth_ = 0;
  std::vector<Series> series_;
  std::vector<double> x_ticks_;
  double dodge_ = 0;
};

/// The loss chart of a run: one curve per series (log scale), each a moving average over 1/50 of
/// the steps drawn over its raw values, x the step.
/// `first_step`: the step before the curves' first value (a log that began on a resume).
inline LineChart loss_chart(const std::vector<std::vector<double>>& curves, const std::vector<std::string>& names,
                            std::string title, int64_t first_step = 0) {
  if (curves.size() != names.size())
    throw std::invalid_argument(fmt::format("loss chart: {} curves, {} names", curves.size(), names.size()));
  size_t steps = 0;
  for (const auto& c : curves) steps = std::max(steps, c.size());
  const size_t window = std::max<size_t>(1, steps / 50);
  LineChart chart;
  chart.title(window > 1 ? fmt::format("{} (moving average of {} steps)", title, window) : title)
      .x_label("step").y_label("loss").log_y(true).smooth(window).raw(true);
  for (size_t i = 0; i < curves.size(); ++i) {
    std::vector<double> x(curves[i].size());
    for (size_t k = 0; k < x.size(); ++k) x[k] = static_cast<double>(first_step) + static_cast<double>(k + 1);
    chart.add(names[i], std::move(x), curves[i]);
  }
  return chart;
}

/// Horizontal grouped bars: one band per row (its label on the left, on one line), one bar per
/// column inside it (colours and the legend as LineChart's series), ± errors as error bars and
/// each value written after its bar. The height grows with the rows (width × height is a minimum).
class BarChart {
 public:
  BarChart& title(std::string t) { return title_ = std::move(t), *this; }
  BarChart& value_label(std::string t) { return value_label_ = std::move(t), *this; }
  BarChart& columns(std::vector<std::string> names) { return columns_ = std::move(names), *this; }
  /// A row: one value per column and, optionally, one ± error per column (NaN: none).
  BarChart& row(std::string label, std::vector<double> values, std::vector<double> errors = {}) {
    if (values.size() != columns_.size() || (!errors.empty() && errors.size() != values.size()))
      throw std::invalid_argument(fmt::format("bar chart row '{}': {} values and {} errors for {} columns", label,
                                              values.size(), errors.size(), columns_.size()));
    if (errors.empty()) errors.assign(values.size(), std::nan(""));
    rows_.push_back({std::move(label), std::move(values), std::move(errors)});
    return *this;
  }
  size_t size() const { return rows_.size(); }

  /// The picture's height for `rows` rows of `columns` bars: at least `min_height`, and at least
  /// 16 pixels a bar and 30 a band, so that every band holds its label.
  static int height_for(size_t rows, size_t columns, int min_height = 420) {
    const auto band = std::max<size_t>(30, 16 * std::max<size_t>(columns, 1) + 10);
    return std::max(min_height, static_cast<int>(150 + rows * band));
  }

  void write(const std::filesystem::path& path, int width = 900, int min_height = 420) const {
    detail::Page page(path, width, height_for(rows_.size(), columns_.size(), min_height));
    auto& pl = page.pl();
    const size_t R = std::max<size_t>(rows_.size(), 1), C = std::max<size_t>(columns_.size(), 1);
    std::vector<std::string> labels;
    for (const auto& r : rows_) labels.push_back(r.label);
    const double bottom = 0.06 + 60.0 / page.height(), top = 1 - 50.0 / page.height();
    // Text scale: one band holds a label 1.2 characters high; labels take at most 35 % of the width.
    double scale = std::min(1.0, (top - bottom) / static_cast<double>(R) / (1.2 * page.char_height()));
    const double cw = 0.85 * page.char_height_x();
    scale = std::min(scale, 0.35 / (cw * static_cast<double>(std::max<size_t>(detail::widest(labels), 1))));
    scale = std::max(scale, 0.3);
    pl.schr(0, scale);
    const double left = std::max(0.08, 0.03 + cw * scale * static_cast<double>(detail::widest(labels) + 1));
    const double right = std::max(left + 0.2, 0.97 - cw * static_cast<double>(detail::widest(columns_) + 6));
    pl.vpor(left, right, bottom, top);
    double hi = 0;
    for (const auto& r : rows_)
      for (size_t c = 0; c < r.values.size(); ++c)
        if (std::isfinite(r.values[c]))
          hi = std::max(hi, r.values[c] + (std::isfinite(r.errors[c]) ? std::abs(r.errors[c]) : 0));
    if (hi <= 0) hi = 1;
    const double xmax = hi * 1.3;  // room for the values written after the bars
    pl.wind(0, xmax, 0, static_cast<double>(R));
    pl.col0(detail::grid_colour);
    pl.box("g", 0, 0, "", 0, 0);
    pl.col0(detail::ink);
    pl.box("bcnst", 0, 0, "bc", 0, 0);
    pl.schr(0, 1.0);
    pl.lab(detail::plain(value_label_).c_str(), "", "");
    detail::title(page, title_, left, right);
    const double bar = 0.8 / static_cast<double>(C);
    for (size_t r = 0; r < rows_.size(); ++r) {
      const double band_top = static_cast<double>(R - r);  // the first row at the top
      pl.schr(0, scale);
      pl.col0(detail::ink);
      pl.mtex("lv", 0.8, (band_top - 0.5) / static_cast<double>(R), 1.0, detail::plain(rows_[r].label).c_str());
      for (size_t c = 0; c < columns_.size(); ++c) {
        const double v = rows_[r].values[c], e = rows_[r].errors[c];
        if (!std::isfinite(v)) continue;
        const double y1 = band_top - 0.1 - bar * static_cast<double>(c), y0 = y1 - bar * 0.9, ym = (y0 + y1) / 2;
        const double w = std::max(0.0, v);
        PLFLT xs[4] = {0, w, w, 0}, ys[4] = {y0, y0, y1, y1};
        pl.col0(detail::series_colour(c));
        pl.fill(4, xs, ys);
        double end = w;
        pl.col0(detail::ink);
        if (std::isfinite(e) && e != 0) {
          PLFLT lo = std::max(0.0, v - std::abs(e)), hi_e = v + std::abs(e), yy = ym;
          pl.width(1.5);
          pl.errx(1, &lo, &hi_e, &yy);
          pl.width(1);
          end = hi_e;
        }
        pl.schr(0, std::min(scale, 0.75) * std::min(1.0, bar * 1.6 * static_cast<double>(C) / 1.0));
        const auto text = std::isfinite(e) ? fmt::format("{:.3g} ± {:.2g}", v, std::abs(e)) : fmt::format("{:.3g}", v);
        pl.col0(detail::faint);
        pl.ptex(end + xmax * 0.01, ym, 1, 0, 0, text.c_str());
      }
    }
    pl.schr(0, 1.0);
    detail::legend(pl, columns_, false, true);
    page.finish();
  }

 private:
  struct Row {
    std::string label;
    std::vector<double> values, errors;
  };
  std::string title_, value_label_;
  std::vector<std::string> columns_;
  std::vector<Row> rows_;
};

}  // namespace casdm::report
