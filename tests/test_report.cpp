// Reports: charts (PLplot) checked in the pictures they write — size, the series drawn in their
// colours, legends outside the plotting box, bar labels that never overlap — HTML pages that stay
// self-contained, and the progress line in both its modes.
#include <stb/stb_image.h>

#include <csignal>
#include <fstream>
#include <iterator>
#include <regex>
#include <chrono>
#include <set>
#include <thread>

#include "casdm/report/chart.hpp"
#include "casdm/report/image_grid.hpp"
#include "casdm/report/progress.hpp"
#include "casdm/presets.hpp"
#include "casdm/report/run_page.hpp"
#include "casdm/app/ablation.hpp"
#include "casdm/eval/scorers.hpp"
#include "casdm/app/model_flags.hpp"
#include "casdm/app/run_report.hpp"
#include "casdm/app/run_settings.hpp"
#include "casdm/app/sampling.hpp"
#include "casdm/app/score_cache.hpp"
#include "casdm/app/stop.hpp"
#include "casdm/app/machine.hpp"
#include "casdm/app/training_run.hpp"
#include "casdm/train/checkpoint.hpp"
#include "casdm/eval/draw.hpp"
#include "support.hpp"
#include "tiny.hpp"

using namespace casdm;

namespace {

struct Picture {
  int w = 0, h = 0;
  std::vector<unsigned char> rgb;
  /// Pixels within `tolerance` of colour c (per channel).
  int64_t count(const std::array<int, 3>& c, int tolerance = 12, int x0 = 0, int x1 = -1) const {
    int64_t n = 0;
    if (x1 < 0) x1 = w;
    for (int y = 0; y < h; ++y)
      for (int x = x0; x < x1; ++x) {
        const auto* p = &rgb[static_cast<size_t>((y * w + x) * 3)];
        if (std::abs(p[0] - c[0]) <= tolerance && std::abs(p[1] - c[1]) <= tolerance && std::abs(p[2] - c[2]) <= tolerance) ++n;
      }
    return n;
  }
};

Picture load_png(const std::filesystem::path& p) {
  Picture pic;
  int c = 0;
  unsigned char* data = stbi_load(p.c_str(), &pic.w, &pic.h, &c, 3);
  REQUIRE(data != nullptr);
  pic.rgb.assign(data, data + static_cast<size_t>(pic.w) * static_cast<size_t>(pic.h) * 3);
  stbi_image_free(data);
  return pic;
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), {}};
}

/// The texts of an SVG written by PLplot's svg driver: (text, x, y of its anchor, font size, anchor).
struct SvgText {
  std::string text;
  double x, y, size;
  std::string anchor;
};
std::vector<SvgText> svg_texts(const std::string& svg) {
  std::vector<SvgText> out;
  const std::regex text_re(R"re(<text[^>]*font-size="([0-9.]+)"[^>]*matrix\(([-0-9. ]+)\)"[^>]*text-anchor="(\w+)"[^>]*>\s*<tspan[^>]*>([^<]*)</tspan>)re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), text_re); it != std::sregex_iterator(); ++it) {
    SvgText t;
    t.size = std::stod((*it)[1]);
    std::istringstream m((*it)[2].str());
    double a, b, c, d;
    m >> a >> b >> c >> d >> t.x >> t.y;
    t.anchor = (*it)[3];
    const std::string enc = (*it)[4];
    const std::regex ref_re("&#x([0-9a-fA-F]+);");
    std::string text;
    for (auto r = std::sregex_iterator(enc.begin(), enc.end(), ref_re); r != std::sregex_iterator(); ++r) {
      const auto cp = std::stoul((*r)[1].str(), nullptr, 16);
      text += cp < 128 ? static_cast<char>(cp) : '?';
    }
    t.text = text;
    out.push_back(t);
  }
  return out;
}

/// The largest x of every polyline point in an SVG (lines, filled areas).
double svg_max_line_x(const std::string& svg) {
  double m = -1e300;
  const std::regex pts_re(R"re(<polyline[^>]*points="([^"]*)")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), pts_re); it != std::sregex_iterator(); ++it) {
    std::istringstream s((*it)[1].str());
    std::string pair;
    while (s >> pair) m = std::max(m, std::stod(pair.substr(0, pair.find(','))));
  }
  return m;
}

const std::array<int, 3> blue{31, 119, 180}, orange{255, 127, 14}, green{44, 160, 44};

}  // namespace

TEST_CASE("moving_average is the trailing mean, shorter at the start", "[report]") {
  const auto m = report::moving_average({1, 2, 3, 4, 5, 6}, 3);
  REQUIRE(m.size() == 6);
  CHECK(m[0] == 1);
  CHECK(m[1] == 1.5);
  CHECK(m[2] == 2);
  CHECK(m[3] == 3);
  CHECK(m[5] == 5);
  CHECK(report::moving_average({4, 8}, 0) == std::vector<double>{4, 8});
  CHECK(report::moving_average({}, 5).empty());
}

TEST_CASE("a line chart draws every series in its colour with the legend outside the box", "[report]") {
  const auto dir = test::scratch("report-line");
  std::vector<double> a, b, c;
  for (int i = 0; i < 300; ++i) {
    a.push_back(1.0 / (1 + i * 0.05));
    b.push_back(0.3 / (1 + i * 0.02));
    c.push_back(i == 40 ? std::nan("") : 0.01 * (1 + (i % 7)));  // a NaN: left out, not fatal
  }
  const auto chart = report::loss_chart({a, b, c}, {"total", "eps", "x0_phi # LPIPS"}, "CasDM: training losses");
  chart.write(dir / "loss.png", 800, 450);
  const auto pic = load_png(dir / "loss.png");
  CHECK(pic.w == 800);
  CHECK(pic.h == 450);
  CHECK(pic.count(blue, 12) > 300);  // each curve (and its legend line) is there
  CHECK(pic.count(orange, 12) > 300);
  CHECK(pic.count(green, 12) > 300);
  CHECK(pic.count({255, 255, 255}, 0) > 800 * 450 / 2);

  chart.write(dir / "loss.svg", 800, 450);
  const auto svg = read_text(dir / "loss.svg");
  const auto texts = svg_texts(svg);
  const double lines_right = svg_max_line_x(svg);  // data, frame and legend samples
  int legend = 0;
  for (const auto& t : texts)
    if (t.text == "total" || t.text == "eps" || t.text == "x0_phi # LPIPS") {
      ++legend;
      CHECK(t.x > lines_right);  // right of the plotting box and of everything drawn in it
    }
  CHECK(legend == 3);
  bool title = false;
  for (const auto& t : texts) title = title || t.text.find("CasDM: training losses (moving average of 6 steps)") == 0;
  CHECK(title);
}

TEST_CASE("a long curve is thinned for drawing, keeping its spikes", "[report]") {
  const auto dir = test::scratch("report-thin");
  std::vector<double> y(200000, 1.0);
  for (size_t i = 0; i < y.size(); ++i) y[i] += 0.01 * static_cast<double>(i % 13);
  y[123457] = 100;  // one spike, far from any bucket's first or last point
  report::LineChart().add("long", y).write(dir / "long.svg");
  const auto svg = read_text(dir / "long.svg");
  CHECK(svg.size() < 400000);  // not 200000 points
  // The blue polyline still reaches from the curve's floor up to the spike: its y extent spans
  // most of the plotting box (the axis runs from ~1 to 100, padded by 5 %).
  const std::regex blue_re(R"re(stroke="#1F77B4"[^>]*points="([^"]*)")re");
  double lo = 1e300, hi = -1e300, frame_lo = 1e300, frame_hi = -1e300;
  size_t points = 0;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), blue_re); it != std::sregex_iterator(); ++it) {
    std::istringstream s((*it)[1].str());
    std::string pair;
    while (s >> pair) {
      const double v = std::stod(pair.substr(pair.find(',') + 1));
      lo = std::min(lo, v), hi = std::max(hi, v), ++points;
    }
  }
  const std::regex frame_re(R"re(stroke="#000000"[^>]*points="([^"]*)")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), frame_re); it != std::sregex_iterator(); ++it) {
    std::istringstream s((*it)[1].str());
    std::string pair;
    while (s >> pair) {
      const double v = std::stod(pair.substr(pair.find(',') + 1));
      frame_lo = std::min(frame_lo, v), frame_hi = std::max(frame_hi, v);
    }
  }
  CHECK(points < 5000);
  CHECK(hi - lo > 0.85 * (frame_hi - frame_lo));
}

TEST_CASE("a bar chart gives each row its own line, never overlapping, and draws the spread", "[report]") {
  const auto dir = test::scratch("report-bars");
  report::BarChart bars;
  bars.title("ablation: FD").value_label("FD").columns({"10 steps", "25 steps", "50 steps", "100 steps"});
  std::vector<std::string> labels;
  for (int r = 0; r < 12; ++r) {
    labels.push_back(r % 3 == 0 ? fmt::format("CasDM_SmallVGG_seed{}_with_a_long_label", r) : fmt::format("Dual_seed{}", r));
    bars.row(labels.back(), {9.0 + r, 7, 6, 5.5}, {0.3, 0.2, std::nan(""), 0.1});
  }
  bars.write(dir / "bars.svg");
  const auto svg = read_text(dir / "bars.svg");
  std::vector<SvgText> found;
  for (const auto& t : svg_texts(svg))
    if (std::find(labels.begin(), labels.end(), t.text) != labels.end()) found.push_back(t);
  REQUIRE(found.size() == labels.size());
  std::sort(found.begin(), found.end(), [](const SvgText& p, const SvgText& q) { return p.y < q.y; });
  for (size_t i = 1; i < found.size(); ++i) CHECK(found[i].y - found[i - 1].y >= found[i].size);  // no two overlap
  for (const auto& t : found) CHECK(t.anchor == "end");  // right-aligned against the axis ...
  // ... and left of every bar: the bars (filled polylines) start at the axis.
  const std::regex bar_re(R"re(fill="#1F77B4"[^>]*points="([0-9.]+))re");
  double axis = 1e300;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), bar_re); it != std::sregex_iterator(); ++it)
    axis = std::min(axis, std::stod((*it)[1]));
  REQUIRE(axis < 1e300);
  for (const auto& t : found) CHECK(t.x <= axis + 1);
  // The spread: "value ± error" after each bar with an error, the value alone without.
  int spreads = 0, bare = 0;
  for (const auto& t : svg_texts(svg)) spreads += t.text == "7 ? 0.2", bare += t.text == "6";
  CHECK(spreads == 12);
  CHECK(bare == 12);

  bars.write(dir / "bars.png");
  const auto pic = load_png(dir / "bars.png");
  CHECK(pic.w == 900);
  CHECK(pic.h == report::BarChart::height_for(12, 4));
  CHECK(pic.h > 12 * 4 * 16);  // grows with the rows
  CHECK(pic.count(blue, 6) > 12 * 200);
}

TEST_CASE("charts refuse what they cannot draw, in one line", "[report]") {
  const auto dir = test::scratch("report-bad");
  report::LineChart chart;
  chart.add("a", {1, 2, 3});
  CHECK_THROWS_WITH(chart.write(dir / "a.jpg"), Catch::Contains("the format follows the extension, .png or .svg"));
  CHECK_THROWS_WITH(chart.write(dir / "a.png", 10, 10), Catch::Contains("10x10 pixels is not a chart size"));
  CHECK_THROWS_WITH(chart.write(dir / "missing" / "a.png"), Catch::Contains("folder does not exist"));
  CHECK_THROWS_WITH(chart.write(dir), Catch::Contains("the format follows the extension"));
  CHECK_THROWS_WITH(report::LineChart().add("b", {1, 2}, {1}), Catch::Contains("chart series 'b': 2 x values, 1 y values"));
  CHECK_THROWS_WITH(report::BarChart().columns({"x"}).row("r", {1, 2}),
                    Catch::Contains("bar chart row 'r': 2 values and 0 errors for 1 columns"));
  CHECK_THROWS_WITH(report::loss_chart({{1.0}}, {}, "t"), Catch::Contains("loss chart: 1 curves, 0 names"));
  CHECK_FALSE(std::filesystem::exists(dir / "a.png"));
  // Nothing drawable (empty, all NaN, non-positive on a log axis) still makes a chart that says so.
  report::LineChart().log_y(true).add("z", {0, -1, std::nan("")}).add("e", {}).write(dir / "empty.png");
  CHECK(load_png(dir / "empty.png").w == 900);
  report::BarChart().columns({}).write(dir / "no-rows.png");
  CHECK(std::filesystem::file_size(dir / "no-rows.png") > 0);
}

TEST_CASE("HTML pages escape their text and link only files beside them", "[report]") {
  CHECK(report::escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;");
  report::Html page("run <1>");
  page.refresh(30).heading("Figures").pairs({{"steps/s", "12.3"}, {"name", "<script>"}});
  page.table({"row", "FD"}, {{"CasDM", "6.1 ± 0.2"}}).figure({"loss.svg", "losses"}).gallery({{"samples-1.png", "step 1"}});
  page.files({{"checkpoints/ckpt-1.pt", "note"}});
  const auto html = page.str();
  CHECK(html.find("<title>run &lt;1&gt;</title>") != std::string::npos);
  CHECK(html.find("<meta http-equiv=\"refresh\" content=\"30\">") != std::string::npos);
  CHECK(html.find("&lt;script&gt;") != std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("://") == std::string::npos);  // no URL at all: nothing fetched from elsewhere
  CHECK(html.find("<img src=\"loss.svg\" alt=\"losses\">") != std::string::npos);
  CHECK(html.find("<td class=\"n\">6.1 ± 0.2</td>") != std::string::npos);
  CHECK(report::Html("x").str().find("refresh") == std::string::npos);
  for (const char* bad : {"http://example.com/a.png", "//host/a.png", "/etc/passwd", "../a.png", "a/../../b.png",
                          "data:image/png;base64,AAAA", "file:///a.png", ""})
    CHECK_THROWS_WITH(report::Html("x").figure({bad, "c"}), Catch::Contains("a report links only files in its own folder"));
  CHECK_NOTHROW(report::Html("x").figure({"sub/a.png", "c"}).figure({"b/a:c.png", "a colon after a slash"}));

  const auto dir = test::scratch("report-page");
  for (const char* f : {"samples-000000020.png", "samples-000000100.png", "samples.png", "samples-x.png", "loss.png"})
    std::ofstream(dir / f) << "x";
  const auto grids = report::RunPage::grids_in(dir, 300, [](int64_t s) { return fmt::format("step {}", s); });
  REQUIRE(grids.size() == 3);
  CHECK(grids[0].src == "samples-000000020.png");
  CHECK(grids[1].caption == "step 100");
  CHECK(grids[2].src == "samples.png");
  CHECK(grids[2].caption == "step 300");
  report::RunPage run;
  run.title = "t";
  run.running = true;
  run.grids = grids;
  run.write(dir / "index.html");
  const auto written = read_text(dir / "index.html");
  CHECK(written == run.html().str());
  CHECK(written.find("refresh") != std::string::npos);
  run.running = false;
  CHECK(run.html().str().find("refresh") == std::string::npos);
}

TEST_CASE("progress: one line redrawn in place on a terminal, plain lines elsewhere", "[report]") {
  CHECK(report::Progress::bar(0.5, 10) == "[=====>    ]");
  CHECK(report::Progress::bar(1.0, 4) == "[====]");
  CHECK(report::Progress::bar(0.0, 3) == "[>  ]");
  char* buf = nullptr;
  size_t size = 0;
  FILE* f = open_memstream(&buf, &size);
  REQUIRE(f);
  CHECK_FALSE(report::is_live_terminal(f));
  {
    report::Progress live(0, 10, report::ProgressOptions().live(true).redraw_seconds(0).width(200), f);
    const auto cut = live.line(3, std::string(100, 'x'), 40);
    CHECK(cut.size() == 39 + std::string("…").size());
    CHECK(cut.rfind("3/10 [", 0) == 0);
    CHECK(live.live());
    live.update(1, "total 0.5");
    live.print("step 1 skipped: loss term 'eps' is nan");
    live.update(10, "total 0.25");
  }
  std::fflush(f);
  std::string out(buf, size);
  CHECK(out.rfind("\r\x1b[2K1/10 [==>", 0) == 0);
  CHECK(out.find("\r\x1b[2Kstep 1 skipped: loss term 'eps' is nan\n1/10 [") != std::string::npos);  // cleared, redrawn
  CHECK(out.find("\r\x1b[2K10/10 [====================] 100% |") != std::string::npos);
  CHECK(out.find("| total 0.25") != std::string::npos);
  CHECK(out.back() == '\n');  // the last line ended when the progress ends
  std::fclose(f);
  std::free(buf);

  f = open_memstream(&buf, &size);
  {
    report::Progress plain(0, 10, report::ProgressOptions().every(4), f);
    CHECK_FALSE(plain.live());
    for (int s = 1; s <= 10; ++s) plain.update(s, "total 1");
    plain.print("a message");
  }
  std::fflush(f);
  out.assign(buf, size);
  std::fclose(f);
  std::free(buf);
  CHECK(out.find('\r') == std::string::npos);
  CHECK(out.find("step 4/10 | ") == 0);
  CHECK(out.find("step 8/10 | ") != std::string::npos);
  CHECK(out.find("step 10/10 | ") != std::string::npos);
  CHECK(out.find("step 5/10") == std::string::npos);
  CHECK(out.find("ETA") != std::string::npos);
  CHECK(out.find("a message\n") != std::string::npos);
  CHECK(std::count(out.begin(), out.end(), '\n') == 4);
  // No rate from a time too short to measure (it printed "1.1e+08 steps/s" for 100 steps reported at
  // once); a rate once min_rate_seconds have passed.
  report::Progress early(0, 1000, report::ProgressOptions().live(false));
  const auto first = early.line(100, "", 0, false);  // "?" unless this thread waited 10 ms for a core
  if (first.find('?') != std::string::npos)
    CHECK(first == "100/1000 | ? steps/s | ETA ?");
  else
    CHECK(std::stod(first.substr(first.find("| ") + 2)) <= 100 / 0.01);  // min_rate_seconds
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto later = early.line(100, "", 0, false);
  CHECK(later.find('?') == std::string::npos);
  CHECK(std::stod(later.substr(later.find("| ") + 2)) <= 100 / 0.02);
}

TEST_CASE("run_json takes the run's figures from the page's state and the program's own keys", "[report]") {
  report::RunState s;
  s.preset = "CasDM", s.device = "cpu", s.data_source = "fmnist", s.last = 40, s.trained = 1234, s.frozen = 0;
  s.skipped = 2, s.threads = 2, s.steps_per_second = 3.5, s.data_wait_fraction = 0.25;
  s.series = {"total", "eps"}, s.loss_means = {{"total", 0.5}, {"eps", 0.25}}, s.settings = {{"lr", "0.001"}};
  auto j = report::run_json(s, {{"checkpoint", "c.pt"}, {"steps", 41}});
  CHECK(j["preset"] == "CasDM");
  CHECK(j["data"] == "fmnist");
  CHECK(j["parameters"] == 1234);
  CHECK(j["skipped_steps"] == 2);
  CHECK(j["steps_per_second"] == 3.5);
  CHECK(j["data_wait_fraction"] == 0.25);
  CHECK(j["loss_series"] == nlohmann::json({"total", "eps"}));
  CHECK(j["loss_mean_last_10pct"]["eps"] == 0.25);
  CHECK(j["settings"]["lr"] == "0.001");
  CHECK(j["checkpoint"] == "c.pt");
  CHECK(j["steps"] == 41);  // the program's keys win
  CHECK(!j.contains("frozen_parameters"));
  s.frozen = 7;
  CHECK(report::run_json(s)["frozen_parameters"] == 7);
}

TEST_CASE("RunReport: steps/s over training time only, the data wait, the page as the run goes, run.json at the end", "[report]") {
  const auto dir = test::scratch("run_report");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "checkpoints");
  torch::manual_seed(3);
  presets::CasDM model(test::tiny_options());
  train::Trainer<presets::CasDM> trainer(model, train::TrainerOptions().optimizer(train::AdamWOptions().lr(1e-3)));
  const auto terms = presets::CasDM::Impl::losses_type::describe();
  train::LossLog log(dir / "losses.csv", terms);
  train::CheckpointDir ckpts(dir / "checkpoints");
  double now = 100, paused = 0, wait = 0;  // the clock, the preview time and the data wait, set by hand
  auto options = app::RunReportOptions()
                     .title("a run").preset("CasDM").data_source("fmnist").settings({{"lr", "0.001"}})
                     .caption([](int64_t step) { return fmt::format("grid of step {}", step); })
                     .clock([&] { return now; }).paused_seconds([&] { return paused; })
                     .data_wait_seconds([&] { return wait; });
  app::RunReport run(dir, trainer, log, ckpts, 0, 4, options);
  auto step = [&] {
    const auto r = trainer.step(at::rand({2, 1, 8, 8}) * 2 - 1);
    log.append(trainer.step_count(), r);
  };
  auto page = [&] {
    std::ifstream in(dir / "index.html");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };

  CHECK(run.state(0, "", true).steps_per_second == -1);  // no step yet
  CHECK(!run.due());
  run.training(0);
  CHECK(page().find("training: step 0 of 4") != std::string::npos);
  CHECK(std::filesystem::exists(dir / "loss.png"));
  CHECK(std::filesystem::exists(dir / "loss.svg"));
  step(), step();
  now = 110, paused = 2, wait = 1;
  auto s = run.state(2, "x", true);
  CHECK(s.steps_per_second == Approx(2.0 / 8).epsilon(1e-12));  // 10 s on the clock, 2 of them previews
  CHECK(s.data_wait_fraction == Approx(0.1).epsilon(1e-12));
  CHECK(s.trained == train::parameter_counts(model).first);
  CHECK(s.frozen == 0);
  CHECK(s.series == log.series());
  CHECK(s.curves == &log.curves());
  CHECK(s.caption(7) == "grid of step 7");
  CHECK(!run.due());  // 10 s since the page of step 0
  now = 115;
  CHECK(run.due());
  run.training(2);
  CHECK(page().find("training: step 2 of 4") != std::string::npos);
  CHECK(!run.due());
  step(), step();
  now = 120, paused = 3, wait = 2;
  run.stop_clock();  // what comes after (a last grid, the figures) is not training
  now = 500, paused = 50, wait = 40;
  const nlohmann::json j = run.finish(dir / "checkpoints" / "c.pt", {{"sample_steps", 50}, {"images", 9}});
  CHECK(j["steps_per_second"].get<double>() == Approx(4.0 / 17).epsilon(1e-12));
  CHECK(j["data_wait_fraction"].get<double>() == Approx(2.0 / 20).epsilon(1e-12));  // as they were at stop_clock()
  CHECK(j["train_seconds_this_invocation"] == 20.0);
  CHECK(j["resumed_at_step"] == 0);
  CHECK(j["steps"] == 4);
  CHECK(j["checkpoint"] == (dir / "checkpoints" / "c.pt").string());
  CHECK(j["sample_steps"] == 50);
  CHECK(j["settings"]["lr"] == "0.001");
  CHECK(j["parameters"] == train::parameter_counts(model).first);
  for (const auto& [name, weight] : terms) CHECK(j["loss_weights"][name] == weight);
  CHECK(j["loss_weights"].size() == terms.size());
  std::ifstream in(dir / "run.json");
  CHECK(nlohmann::json::parse(in) == j);
  CHECK(page().find("finished: 4 steps in " + io::duration_str(20)) != std::string::npos);
  CHECK(page().find("href=\"run.json\"") != std::string::npos);

  // A run stopped by a signal says so and how to go on; bad spans are refused in one line.
  app::RunReport stopped(dir, trainer, log, ckpts, 4, 9, options);
  stopped.stopped(6, SIGTERM);
  CHECK(page().find("stopped by SIGTERM after step 6 (continue with --resume)") != std::string::npos);
  CHECK_THROWS_WITH(app::RunReport(dir, trainer, log, ckpts, 5, 4, options),
                    Catch::Contains("steps 5 to 4 are not a run"));
  CHECK_THROWS_WITH(app::RunReport(dir, trainer, log, ckpts, 0, 4, app::RunReportOptions(options).min_interval(-1)),
                    Catch::Contains("min_interval must be >= 0, got -1"));
}

TEST_CASE("an image grid puts image i at row i / cols, column i % cols, and says what it shows", "[report]") {
  const auto dir = test::scratch("image_grid");
  // Three grey 2x3 images: values -1, 0, 1 and out-of-range ones (clipped), a 2-wide grid.
  auto x = at::tensor({-1.0, 0.0, 1.0, -2.0, 0.5, -0.5,  //
                       1.0, 1.0, 1.0, 1.0, 1.0, 1.0,     //
                       0.2, 0.2, 0.2, 0.2, 0.2, 3.0})
               .to(at::kFloat)
               .reshape({3, 1, 2, 3});
  const std::string caption = "CasDM, step 7: \xc3\xa9 non-ASCII";  // é goes out as "??"
  report::write_grid(dir / "grid.png", x, 2, caption);
  // Expected pixels by hand: a 2-pixel white border around and between 2x3 cells.
  const int W = 2 * (3 + 2) + 2, H = 2 * (2 + 2) + 2;
  std::vector<uint8_t> want(static_cast<size_t>(W * H), 255);
  auto put = [&](int i, const std::vector<int>& v) {
    for (int y = 0; y < 2; ++y)
      for (int c = 0; c < 3; ++c) want[static_cast<size_t>((2 + (i / 2) * 4 + y) * W + 2 + (i % 2) * 5 + c)] = static_cast<uint8_t>(v[y * 3 + c]);
  };
  put(0, {0, 128, 255, 0, 191, 64});  // (v+1)·127.5 rounded half to even: 127.5 → 128, 191.25 → 191, 63.75 → 64
  put(1, {255, 255, 255, 255, 255, 255});
  put(2, {153, 153, 153, 153, 153, 255});  // 1.2·127.5 = 153
  // The empty fourth cell stays white.
  {
    std::ofstream f(dir / "want.raw", std::ios::binary);
    f.write(reinterpret_cast<const char*>(want.data()), static_cast<std::streamsize>(want.size()));
  }
  test::run_python("png_ref.py", fmt::format("{} {} {} L '{}' {}", (dir / "grid.png").string(), W, H,
                                       "CasDM, step 7: ?? non-ASCII", (dir / "want.raw").string()));
  // An RGB grid keeps the channels in order; no description, no chunk.
  auto rgb = at::stack({at::full({2, 2}, -1.0), at::full({2, 2}, 0.0), at::full({2, 2}, 1.0)}).unsqueeze(0);
  report::write_grid(dir / "rgb.png", rgb, 4);
  const auto pic = load_png(dir / "rgb.png");
  CHECK(pic.w == 4 * 4 + 2);
  CHECK(pic.h == 2 + 2 + 2);
  CHECK(std::vector<int>(pic.rgb.begin() + (2 * pic.w + 2) * 3, pic.rgb.begin() + (2 * pic.w + 2) * 3 + 3) ==
        std::vector<int>{0, 128, 255});
  CHECK(std::vector<int>(pic.rgb.begin() + (2 * pic.w + 6) * 3, pic.rgb.begin() + (2 * pic.w + 6) * 3 + 3) ==
        std::vector<int>{255, 255, 255});  // the second cell is empty
  // What is not a batch of images is refused in one line naming the file.
  CHECK_THROWS_WITH(report::write_grid(dir / "bad.png", at::zeros({3, 4, 4}), 2),
                    Catch::Contains("bad.png") && Catch::Contains("expected images [N >= 1, 1 or 3, H, W], got 3x4x4"));
  CHECK_THROWS_WITH(report::write_grid(dir / "bad.png", at::zeros({1, 2, 4, 4}), 2), Catch::Contains("got 1x2x4x4"));
  CHECK_THROWS_WITH(report::write_grid(dir / "bad.png", x, 0), Catch::Contains("0 columns"));
  CHECK(!std::filesystem::exists(dir / "bad.png"));
}

TEST_CASE("RunSettings: values as checkpoints keep them, and a resume takes them and refuses contradictions, changing nothing", "[app]") {
  int64_t batch = 32;
  double lr = 0.1;
  bool hflip = false;
  std::string fit = "pad";
  std::vector<int64_t> mult{1, 2, 2};
  std::vector<double> ema{0.9999, 0.99};
  app::RunSettings s;
  s.add("batch", &batch), s.add("lr", &lr), s.add("hflip", &hflip), s.add("fit", &fit), s.add("channel-mult", &mult);
  s.add("ema", &ema);
  const std::map<std::string, std::string> want{{"batch", "32"}, {"lr", "0.1"}, {"hflip", "false"}, {"fit", "pad"},
                                                {"channel-mult", "1,2,2"}, {"ema", "0.9999,0.99"}};
  CHECK(s.values() == want);
  CHECK_THROWS_WITH(s.add("lr", &lr), "RunSettings: 'lr' is registered twice");
  CHECK_THROWS_WITH(s.add("--lr", &lr), Catch::Contains("give it without dashes"));

  // The stored values come in, exactly (1/3 written by io::number_str reads back to the same double).
  auto stored = want;
  stored["batch"] = "64", stored["lr"] = io::number_str(1.0 / 3), stored["hflip"] = "true", stored["channel-mult"] = "1,2";
  auto given = [](std::set<std::string> names) { return [names](const std::string& n) { return names.count(n) > 0; }; };
  s.resume_from(stored, given({"fit"}), "c.pt");  // --fit pad agrees with the run
  CHECK(batch == 64);
  CHECK(lr == 1.0 / 3);
  CHECK(hflip);
  CHECK(mult == std::vector<int64_t>{1, 2});
  CHECK(ema == std::vector<double>{0.9999, 0.99});

  // Contradictions: every one listed in one error; nothing changes.
  batch = 8, lr = 0.5;
  CHECK_THROWS_WITH(s.resume_from(stored, given({"batch", "lr", "ema"}), "c.pt"),
                    "a resumed run keeps its settings; these differ from c.pt:\n  --batch 8 (the run has 64)\n"
                    "  --lr 0.5 (the run has " + io::number_str(1.0 / 3) + ")");
  CHECK(batch == 8);
  // A setting the checkpoint does not record, or a damaged one, is refused before any variable
  // changes (here "batch" reads before the damaged "lr").
  auto missing = stored;
  missing.erase("fit");
  CHECK_THROWS_WITH(s.resume_from(missing, {}, "c.pt"), "c.pt does not record --fit (not written by casdm-train?)");
  for (const auto& [key, bad] : std::map<std::string, std::string>{{"lr", "0.1x"}, {"hflip", "yes"}, {"channel-mult", "1,,2"}}) {
    auto damaged = stored;
    damaged[key] = bad;
    batch = 8;
    CHECK_THROWS_WITH(s.resume_from(damaged, {}, "c.pt"), Catch::StartsWith("c.pt has a damaged --" + key + ": "));
    CHECK(batch == 8);
  }

  // A checkpoint from before --precision, --class-cond and --label-dropout existed: their values then.
  train::CheckpointInfo info;
  info.meta = {{"args.batch", "16"}, {"args.precision", "bf16"}, {"format", "x"}};
  CHECK(app::stored_settings(info) == std::map<std::string, std::string>{
                                          {"batch", "16"}, {"precision", "bf16"}, {"class-cond", "false"}, {"label-dropout", "0.1"}, {"loss-weight", ""}});
}

TEST_CASE("RunSettings: a setting that may change on resume takes the command line's value and is reported", "[app]") {
  std::string weights = "/old";
  std::vector<std::string> loss{"x0=0.5"};
  int64_t batch = 32;
  app::RunSettings s;
  using R = app::RunSettings::OnResume;
  s.add("feature-weights", &weights, R::may_change), s.add("loss-weight", &loss, R::may_change), s.add("batch", &batch);
  CHECK(s.values().at("loss-weight") == "x0=0.5");
  const std::map<std::string, std::string> stored{{"feature-weights", "/run/weights"}, {"loss-weight", ""}, {"batch", "64"}};
  auto given = [](std::set<std::string> names) { return [names](const std::string& n) { return names.count(n) > 0; }; };
  // Not on the command line: the run's values, changing nothing.
  s.resume_from(stored, given({}), "c.pt");
  CHECK(weights == "/run/weights");
  CHECK(loss.empty());
  CHECK(batch == 64);
  CHECK(s.changes().empty());
  // Given anew: taken, and listed; a kept setting still refuses a contradiction.
  weights = "/new", loss = {"x0=0.5", "mu=2"};
  s.resume_from(stored, given({"feature-weights", "loss-weight"}), "c.pt");
  CHECK(weights == "/new");
  CHECK(loss == std::vector<std::string>{"x0=0.5", "mu=2"});
  CHECK(s.changes() == std::vector<std::string>{"--feature-weights /new (the run had /run/weights)",
                                                "--loss-weight x0=0.5,mu=2 (the run had \"\")"});
  batch = 8;
  CHECK_THROWS_WITH(s.resume_from(stored, given({"batch", "feature-weights"}), "c.pt"),
                    Catch::Contains("--batch 8 (the run has 64)"));
  // A checkpoint from before the setting existed: the command line's value counts as a change.
  auto older = stored;
  older.erase("loss-weight");
  batch = 64;
  s.resume_from(older, given({"loss-weight"}), "c.pt");
  CHECK(s.changes() == std::vector<std::string>{"--loss-weight x0=0.5,mu=2 (the run had none)"});
}

TEST_CASE("ModelFlags: the options a training program gives, as the model's sizes, checked against the preset", "[app]") {
  app::ModelFlags f;
  f.diffusion_steps = 300, f.model_channels = 24, f.res_blocks = 2, f.heads = 2, f.norm_groups = 4;
  f.channel_mult = {1, 2}, f.attention = {14}, f.dropout = 0.25;
  auto o = f.denoiser(3, 28, 10);
  CHECK(o.image_size() == 28);
  CHECK(o.channels() == 3);
  CHECK(o.diffusion_steps() == 300);
  CHECK(o.num_classes() == 0);  // without class_cond the classes are not used
  CHECK(!o.phi_net().has_value());
  for (const auto& n : {o.theta_net(), o.phi_net_options()}) {  // φ as θ
    CHECK(n.model_channels() == 24);
    CHECK(n.num_res_blocks() == 2);
    CHECK(n.num_heads() == 2);
    CHECK(n.norm_groups() == 4);
    CHECK(n.channel_mult() == std::vector<int64_t>{1, 2});
    CHECK(n.attention_resolutions() == std::vector<int64_t>{14});
    CHECK(n.dropout() == 0.25);
    CHECK(n.image_size() == 28);
  }
  // φ's overrides change what they name and nothing else.
  f.phi_res_blocks = 1, f.phi_attention = {7};
  o = f.denoiser(3, 28, 10);
  REQUIRE(o.phi_net().has_value());
  const auto phi = o.phi_net_options();
  CHECK(phi.num_res_blocks() == 1);
  CHECK(phi.attention_resolutions() == std::vector<int64_t>{7});
  CHECK(phi.model_channels() == 24);
  CHECK(phi.channel_mult() == std::vector<int64_t>{1, 2});
  CHECK(o.theta_net().num_res_blocks() == 2);
  // An attention resolution no level has is named, with the levels there are: φ's 7 on sides 28 and 14.
  CHECK(app::ModelFlags::unused_attention(o) ==
        std::vector<std::string>{"--phi-attention 7: no level of the U-Net is 7 wide (its levels: 28, 14); no attention is added for it"});
  CHECK(app::ModelFlags::unused_attention(f.denoiser(3, 56, 10)).size() == 2);  // 14 and 7 on 56 and 28
  // Class conditioning takes the data set's classes (the label dropout is the trainer's).
  f.class_cond = true, f.label_dropout = 0.2;
  o = f.denoiser(1, 32, 10);
  CHECK(o.num_classes() == 10);
  CHECK(o.theta_net().num_classes() == 10);
  CHECK(o.phi_net_options().num_classes() == 10);
  CHECK_THROWS_WITH(f.denoiser(1, 32, 0), "--class-cond: the data set has 0 classes");

  // What the preset would not read is refused, naming the option.
  CHECK_NOTHROW(f.check("CasDM"));
  CHECK_THROWS_WITH(f.check("DDPM_Eps"), "--phi-res-blocks: preset DDPM_Eps has no phi network (only the cascaded presets do)");
  app::ModelFlags g;
  CHECK_NOTHROW(g.check("DDPM_Eps"));
  g.feature_weights = "w";
  CHECK_THROWS_WITH(g.check("CasDM"), "--feature-weights: preset CasDM has no feature loss");
  CHECK_NOTHROW(g.check("CasDM_LPIPS"));
  g.feature_size = 64;
  CHECK(g.objective("CasDM_LPIPS").feature_weights() == "w");
  CHECK(g.objective("CasDM_LPIPS").feature_size() == 64);
  g.feature_size = 0;
  g.feature_weights.clear(), g.label_dropout = 1.5;
  CHECK_THROWS_WITH(g.check("CasDM"), "--label-dropout: a probability in [0, 1], got 1.5");
  g.label_dropout = 0.1;
  CHECK_THROWS_WITH(g.check("NoSuchPreset"), Catch::Contains("NoSuchPreset"));
  // --loss-weight NAME=VALUE: into ObjectiveOptions::loss_weights, checked against the preset's terms.
  g.loss_weights = {"x0=0.5", "mu=2"};
  CHECK_NOTHROW(g.check("CasDM"));
  CHECK(g.objective("CasDM").loss_weights() == std::map<std::string, double>{{"x0", 0.5}, {"mu", 2.0}});
  CHECK_THROWS_WITH(g.check("DDPM_Eps"), "--loss-weight x0=0.5: preset DDPM_Eps has no loss term 'x0' (its terms: eps)");
  for (const auto& [bad, why] : std::map<std::string, std::string>{
           {"x0", "--loss-weight x0: expected NAME=VALUE, e.g. x0=0.5"},
           {"=1", "--loss-weight =1: expected NAME=VALUE, e.g. x0=0.5"},
           {"x0=half", "--loss-weight x0=half: expected NAME=VALUE, e.g. x0=0.5"},
           {"x0=-1", "--loss-weight x0=-1: a weight is a finite number >= 0"},
           {"x0=inf", "--loss-weight x0=inf: a weight is a finite number >= 0"}}) {
    g.loss_weights = {bad};
    CHECK_THROWS_WITH(g.check("CasDM"), why);
  }
  g.loss_weights = {"x0=1", "x0=2"};
  CHECK_THROWS_WITH(g.check("CasDM"), "--loss-weight x0=2: term 'x0' is given twice");
}

TEST_CASE("end_pictures: the last samples and the training images beside the page, their figures for run.json", "[app]") {
  const auto dir = test::scratch("end_pictures");
  // Samples: two 1x2x2 images, values -1, 1, 0, 0.5 and 1, 1, 1, -1.
  const auto samples = at::tensor({-1.0, 1.0, 0.0, 0.5, 1.0, 1.0, 1.0, -1.0}).to(at::kFloat).reshape({2, 1, 2, 2});
  data::ImageSet set;
  set.images = at::tensor({0, 255, 255, 255, 51, 51, 51, 51, 0, 0, 0, 0}, at::kByte).reshape({3, 1, 2, 2});
  set.source = "toy";
  const auto j = app::end_pictures(dir, samples, "the end", set, 2);  // the first two training images
  CHECK(j["images"] == 3);
  CHECK(j["image_shape"] == nlohmann::json::array({1, 2, 2}));
  // By hand: samples' sum 2.5 over 8, so mean 0.3125; squares sum 6.25 → var (6.25 − 8·0.3125²)/7.
  CHECK(j["sample_mean"].get<double>() == Approx(0.3125).epsilon(1e-12));
  CHECK(j["sample_std"].get<double>() == Approx(std::sqrt((6.25 - 8 * 0.3125 * 0.3125) / 7)).epsilon(1e-12));
  // Training images 0 and 1 in [-1, 1]: -1, 1, 1, 1 and four of 51/127.5 − 1 = −0.6.
  const double m = (2 - 4 * 0.6) / 8, ss = 4 + 4 * 0.36;
  CHECK(j["data_mean"].get<double>() == Approx(m).epsilon(1e-12));
  CHECK(j["data_std"].get<double>() == Approx(std::sqrt((ss - 8 * m * m) / 7)).epsilon(1e-12));
  const auto data_png = load_png(dir / "data.png");
  CHECK(data_png.w == 8 * (2 + 2) + 2);  // write_grid's 8 columns
  CHECK(int(data_png.rgb[(2 * data_png.w + 2) * 3]) == 0);
  CHECK(int(data_png.rgb[(2 * data_png.w + 3) * 3]) == 255);
  CHECK(int(data_png.rgb[(2 * data_png.w + 6) * 3]) == 51);  // the second image
  CHECK(int(data_png.rgb[(2 * data_png.w + 10) * 3]) == 255);  // no third: count was 2
  const auto samples_png = load_png(dir / "samples.png");
  CHECK(int(samples_png.rgb[(3 * samples_png.w + 3) * 3]) == 191);  // sample 0's 0.5: 1.5 · 127.5 = 191.25
  CHECK_THROWS_WITH(app::end_pictures(dir, samples, "", set, 0), "end_pictures: count must be >= 1, got 0");
  set.images = set.images.to(at::kFloat);
  CHECK_THROWS_WITH(app::end_pictures(dir, samples, "", set, 2), Catch::Contains("uint8 images"));
}

TEST_CASE("ScoreCache: each result on disk as soon as it is put and found again by a later run, and file_key changes with the file", "[app]") {
  const auto dir = test::scratch("score_cache");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto file = dir / "cells.json";
  {
    app::ScoreCache c(file);  // no file yet: empty, nothing written
    CHECK(c.size() == 0);
    CHECK(!std::filesystem::exists(file));
    CHECK(c.find("a") == nullptr);
    c.put("a", {{"fd", 1.5}});
    c.put("b|steps=10", 2);
    c.put("a", {{"fd", 2.5}});  // replaced
    CHECK((*c.find("a"))["fd"] == 2.5);
  }
  app::ScoreCache again(file);  // a later run
  CHECK(again.size() == 2);
  CHECK((*again.find("a"))["fd"] == 2.5);
  CHECK(*again.find("b|steps=10") == 2);
  CHECK(nlohmann::json::parse(read_text(file)) == nlohmann::json{{"a", {{"fd", 2.5}}}, {"b|steps=10", 2}});
  for (const std::string bad : {"not json", "[1, 2]", ""}) {
    { std::ofstream(file) << bad; }
    CHECK_THROWS_WITH(app::ScoreCache(file), file.string() + " is not a cache of scores (remove it to start afresh)");
    CHECK(read_text(file) == bad);  // left as it was
  }

  // The key of a file: its absolute path, size and time, as casdm-ablation's cells.json files
  // written before this function existed have them; rewriting the file changes it.
  const auto ckpt = dir / "sub" / ".." / "c.pt";
  std::filesystem::create_directories(dir / "sub");
  { std::ofstream(ckpt) << "12345"; }
  const auto t = std::filesystem::last_write_time(ckpt).time_since_epoch().count();
  const auto k = app::file_key(ckpt);
  CHECK(k == (dir / "c.pt").string() + "|5|" + std::to_string(t));
  { std::ofstream(ckpt) << "123456"; }
  std::filesystem::last_write_time(ckpt, std::filesystem::last_write_time(ckpt) + std::chrono::seconds(1));
  CHECK(app::file_key(ckpt) != k);
  CHECK_THROWS_WITH(app::file_key(dir / "missing.pt"), Catch::StartsWith((dir / "missing.pt").string() + ": "));
}

TEST_CASE("stop_between_batches: a drawing goes on until a signal, then stops after the batch under way", "[app][signal]") {
  std::vector<int64_t> seen;
  train::StopSignals signals("this batch of samples");
  auto progress = app::stop_between_batches(signals, [&](int64_t done, int64_t, double) { seen.push_back(done); });
  CHECK_NOTHROW(progress(10, 30, 1.0));
  ::raise(SIGTERM);  // recorded by the handler, the process goes on
  try {
    progress(20, 30, 2.0);
    FAIL("no stop");
  } catch (const app::Stopped& s) {
    CHECK(s.signal == SIGTERM);
    CHECK(std::string(s.what()) == "stopped by SIGTERM");
  }
  CHECK(seen == std::vector<int64_t>{10, 20});  // the batch's progress is still reported
  // In a drawing: the samples of a tiny model stop after the first batch.
  train::StopSignals again;  // a new guard starts with no signal
  torch::manual_seed(0);
  presets::CasDM model(test::tiny_options());
  int64_t calls = 0;
  auto counting = app::stop_between_batches(again, [&](int64_t, int64_t, double) {
    if (++calls == 1) ::raise(SIGINT);
  });
  CHECK_THROWS_AS(eval::draw_samples<sampler::DDIM<>>(model->denoiser(), 6,
                                                      eval::DrawOptions().sample(SampleOptions().steps(2)).batch(2).progress(counting)),
                  app::Stopped);
  CHECK(calls == 1);
}

TEST_CASE("run_training: the files of a run, its settings in the checkpoints, and a run stopped and resumed logs what one run straight through logs", "[app][trainer]") {
  namespace fs = std::filesystem;
  const auto dir = test::scratch("run_training");
  fs::remove_all(dir);
  app::TrainingFlags f;  // a tiny DDPM (x0) on Fashion-MNIST brought to 8x8
  f.preset = "DDPM_X0";
  f.image_size = 8;
  f.fit = "resize";
  f.batch = 4;
  f.samples = 4;
  f.sample_steps = 2;
  f.log_every = 1;
  f.keep = 2;
  f.checkpoint_every = 2;
  f.model.diffusion_steps = 20;
  f.model.model_channels = 4;
  f.model.channel_mult = {1};
  f.model.attention = {};
  f.model.heads = 1;
  f.model.norm_groups = 2;
  f.steps = 4;
  f.out = (dir / "straight").string();
  REQUIRE_NOTHROW(f.check());
  const std::map<std::string, std::string> settings{{"batch", "4"}, {"seed", "0"}};
  const auto end = app::run_training<presets::DDPM_X0>(f, settings);
  CHECK(end.step == 4);
  CHECK(end.signal == 0);
  CHECK(end.checkpoint == dir / "straight" / "checkpoints" / "ckpt-000000004.pt");
  for (const char* name : {"index.html", "samples.png", "data.png", "loss.png", "loss.svg", "losses.csv", "run.json"})
    CHECK(fs::exists(dir / "straight" / name));
  const auto run = nlohmann::json::parse(read_text(dir / "straight" / "run.json"));
  CHECK(run["steps"] == 4);
  CHECK(run["preset"] == "DDPM_X0");
  CHECK(run["sample_steps"] == 2);
  CHECK(run["image_shape"] == nlohmann::json::array({1, 8, 8}));
  const auto info = train::read_checkpoint(end.checkpoint);
  CHECK(info.get("preset") == "DDPM_X0");
  CHECK(info.get("program") == "casdm-train");
  CHECK(info.get("args.batch") == "4");
  const auto samples = load_png(dir / "straight" / "samples.png");
  CHECK(samples.w == 8 * (8 + 2) + 2);  // write_grid's 8 columns of 8x8 images
  // The same run in two calls: to step 2, then resumed from that checkpoint to step 4.
  f.out = (dir / "split").string();
  f.steps = 2;
  CHECK(app::run_training<presets::DDPM_X0>(f, settings).step == 2);
  const auto resume = train::CheckpointDir(dir / "split" / "checkpoints", 2).resume_point(true);
  REQUIRE(resume.has_value());
  CHECK(resume->step == 2);
  f.steps = 4;
  CHECK(app::run_training<presets::DDPM_X0>(f, settings, resume).step == 4);
  const auto straight = read_text(dir / "straight" / "losses.csv");
  CHECK(std::count(straight.begin(), straight.end(), '\n') == 5);  // the header and four steps
  CHECK(read_text(dir / "split" / "losses.csv") == straight);
  // A run already at the step asked is refused, and a run's misfit options before anything is read.
  CHECK_THROWS_WITH(app::run_training<presets::DDPM_X0>(f, settings, train::CheckpointDir(dir / "split" / "checkpoints", 2).resume_point(true)),
                    "the run is at step 4 already; --steps is the total to reach");
  auto bad = f;
  bad.micro_batch = 5;
  CHECK_THROWS_WITH(bad.check(), "--micro-batch 5: must be in [0, --batch 4]");
  bad = f;
  bad.model.phi_res_blocks = 2;
  CHECK_THROWS_WITH(bad.check(), "--phi-res-blocks: preset DDPM_X0 has no phi network (only the cascaded presets do)");
  bad = f;
  bad.sample_steps = 6;
  CHECK_THROWS_WITH(bad.check(), "--sample-steps 6: DDIM takes the steps of T = 20 at an integer stride, which makes 5 or 7 but not 6");
  bad = f;
  bad.fit = "stretch";
  CHECK_THROWS_WITH(bad.check(), Catch::Contains("stretch"));
  bad = f;
  bad.samples = 0;
  CHECK_THROWS_WITH(bad.check(), "--samples: must be >= 1, got 0");
  bad = f;
  bad.data = (dir / "no-such-data").string();
  CHECK_THROWS_WITH(app::run_training<presets::DDPM_X0>(bad), Catch::Contains("no-such-data"));
}

TEST_CASE("machine: threads, device and precision as a program's options name them, refused in one line", "[app]") {
  const int before = at::get_num_threads();
  CHECK(app::use_machine(1, "cpu") == c10::Device("cpu"));
  CHECK(at::get_num_threads() == 1);
  CHECK_THROWS_WITH(app::use_machine(1, "gpu"), "--device gpu: not a device name (cpu, cuda, cuda:1, ...)");
  CHECK_THROWS_WITH(app::use_machine(-1, "cpu"), "--threads -1: must be >= 0 (0: every core)");
  if (!torch::cuda::is_available())
    CHECK_THROWS_WITH(app::use_machine(1, "cuda:0"), "--device cuda:0: this LibTorch sees 0 CUDA device(s)");
  at::set_num_threads(before);
  CHECK(app::precision_type("fp32", c10::Device("cpu")) == at::kFloat);
  CHECK(app::precision_type("bf16", c10::Device("cpu")) == at::kBFloat16);
  CHECK_THROWS_WITH(app::precision_type("fp16", c10::Device("cpu")),
                    "--precision fp16: float16 autocast needs a CUDA device (LibTorch's CPU autocast runs bfloat16 only; on cpu use bf16)");
  CHECK_THROWS_WITH(app::precision_type("fp8", c10::Device("cpu")), "--precision fp8: expected fp32, bf16 or fp16");
}

TEST_CASE("SamplingRequest: a sampler's settings checked against the sampler and the checkpoint, as options and records", "[app]") {
  auto given = [](std::set<std::string> flags) { return [flags](std::string_view f) { return flags.count(std::string(f)) > 0; }; };
  app::SamplingRequest r;
  r.sampler = "dpmpp2m-sde";
  r.settle(given({}));
  CHECK(r.eta == sampler::info("dpmpp2m-sde").default_eta);  // the sampler's own η where none is given
  CHECK(r.eta == 1);
  r.eta = 0.25;
  r.settle(given({"--eta"}));
  CHECK(r.eta == 0.25);
  r.sampler = "dpmpp2m";
  CHECK_THROWS_WITH(r.settle(given({"--eta"})), "--eta: the dpmpp2m sampler has no eta (ddim and the stochastic samplers have)");
  CHECK_THROWS_WITH(r.settle(given({"--churn-noise"})), "--churn-noise: the dpmpp2m sampler has no churn (euler and heun have)");
  r.sampler = "ddim";
  r.exact_sigmas = true;
  CHECK_THROWS_WITH(r.settle(given({})), Catch::StartsWith("--exact-sigmas: the ddim sampler visits trained steps;"));
  r = {};
  r.sampler = "heun";
  r.churn = {.amount = 40, .t_min = 2, .t_max = 1};
  CHECK_THROWS_WITH(r.settle(given({"--churn"})), "--churn-tmax 1 is below --churn-tmin 2");
  r.churn.t_max = 10;
  r.guidance = 2;
  CHECK_THROWS_WITH(r.settle(given({"--churn"})), "--guidance: needs --class (guidance steers towards a class)");
  r.cls = "all";
  r.settle(given({"--churn"}));

  // Against a checkpoint of T = 20 and 3 classes.
  train::CheckpointInfo c;
  c.path = "run/ckpt.pt";
  c.meta["preset"] = "CasDM";
  c.denoiser_options.diffusion_steps(20).num_classes(3);
  const auto labels = r.checked(5, c);
  CHECK(labels.equal(at::tensor({0, 1, 2, 0, 1}, at::kLong)));
  CHECK(r.steps == std::min<int64_t>(sampler::info("heun").default_steps, 20));  // 0: the default, recorded as run
  r.cls = "2";
  CHECK(r.checked(2, c).equal(at::tensor({2, 2}, at::kLong)));
  for (const auto& [cls, why] : std::vector<std::pair<std::string, std::string>>{
           {"3", "--class 3: the model has 3 classes (0 to 2)"}, {"-1", "--class -1: the model has 3 classes (0 to 2)"},
           {"shirt", "--class: expected an integer or 'all', got 'shirt'"}, {"1x", "--class: expected an integer or 'all', got '1x'"}}) {
    r.cls = cls;
    CHECK_THROWS_WITH(r.checked(2, c), why);
  }
  r.cls = "1";
  r.steps = 21;
  CHECK_THROWS_WITH(r.checked(2, c), Catch::StartsWith("--steps 21: more than the model's T = 20"));
  r.steps = 7;
  c.denoiser_options.num_classes(0);
  CHECK_THROWS_WITH(r.checked(2, c), "--class: run/ckpt.pt is an unconditional model (trained without --class-cond)");
  r.cls = "";
  r.guidance = 0;
  CHECK_FALSE(r.checked(2, c).defined());

  // What the run is given and what is recorded of it.
  const auto so = r.options({});
  CHECK(so.steps() == 7);
  CHECK(so.churn().amount == 40);
  CHECK(so.churn().t_max == 10);
  CHECK_FALSE(so.exact_sigmas());
  CHECK(r.caption() == "heun 7 steps");
  CHECK(r.class_caption().empty());
  const auto rec = r.record();
  CHECK(rec.at("sampler") == "heun");
  CHECK(rec.at("steps") == "7");
  CHECK(rec.at("churn") == "40 in [2, 10], noise 1");
  CHECK(rec.at("sigmas") == "snapped");
  const auto j = r.json();
  CHECK(j.dump() == R"({"churn":{"amount":40.0,"noise":1.0,"t_max":10.0,"t_min":2.0},"kind":"heun","sigmas":"snapped","steps":7})");
  // On a continuous σ model (EDM's) the σ-spaced samplers' σ are exact, asked for or not.
  c.meta["preset"] = "EDM";
  (void)r.checked(2, c);
  CHECK(r.continuous);
  CHECK(r.record().at("sigmas") == "exact");
  CHECK(r.json().at("sigmas") == "exact");
  r.sampler = "ddim";
  r.churn = {};
  r.cls = "all";
  r.guidance = 1.5;
  CHECK(r.json().dump() == R"({"eta":0.0,"kind":"ddim","steps":7})");  // no σ spacing, no churn
  CHECK(r.caption() == "ddim 7 steps");
  CHECK(r.class_caption() == ", class all, guidance 1.5");
}

namespace {
/// What `command` prints on stdout and stderr.
std::string output_of(const std::string& command) {
  std::string out;
  if (FILE* p = popen((command + " 2>&1").c_str(), "r")) {
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    pclose(p);
  }
  return out;
}
}  // namespace

TEST_CASE("every program's --help lists every entry of the registries it chooses from", "[app][registry]") {
  // The programs are built beside the tests (examples/); without them (CASDM_BUILD_EXAMPLES=OFF) nothing to check.
  const auto dir = std::filesystem::path(CASDM_TEST_BINARY_DIR) / ".." / "examples";
  if (!std::filesystem::exists(dir / "casdm-sample")) {
    WARN("the example programs are not built; nothing to check");
    return;
  }
  // CLI11 wraps long help lines: compare with whitespace runs made one space.
  auto help = [&](const std::string& program) {
    return std::regex_replace(output_of((dir / program).string() + " --help"), std::regex(R"(\s+)"), " ");
  };
  for (const char* program : {"casdm-sample", "casdm-eval", "casdm-ablation"}) {
    INFO(program);
    const auto text = help(program);
    for (const auto& s : sampler::infos()) {
      CHECK_THAT(text, Catch::Contains(s.name + " (" + s.description));
      CHECK_THAT(text, Catch::Contains(fmt::format("{} steps)", s.default_steps)));
    }
  }
  const auto train = help("casdm-train");
  for (const auto& p : presets::names()) CHECK_THAT(train, Catch::Contains(p));
  for (const char* program : {"casdm-train", "casdm-eval"}) {
    INFO(program);
    const auto text = help(program);
    for (const auto& f : data::formats()) CHECK_THAT(text, Catch::Contains(f.name + " (" + f.description + ")"));
  }
  const auto metric = help("casdm-metric");
  for (const auto& f : data::formats()) CHECK((metric.find(f.name + " (") != std::string::npos) == f.split);  // labelled splits only
  for (const char* program : {"casdm-eval", "casdm-ablation"}) {
    INFO(program);
    const auto text = help(program);
    eval::for_each_scorer([&](auto* s) {
      using S = std::decay_t<decltype(*s)>;
      CHECK_THAT(text, Catch::Contains(fmt::format("{} ({})", S::file, S::scores)));
    });
  }
  CHECK(eval::scorer_files() == std::vector<std::string>{"inception_fid.pt", "small_vgg.pt"});
  CHECK_THROWS_WITH(eval::with_scorer("w/vgg.pt", at::kCPU, [](auto&) {}),
                    "scorer weights w/vgg.pt: expected a file named inception_fid.pt or small_vgg.pt");
}

TEST_CASE("ablation rows: LABEL=CHECKPOINT read and checked before any sampling, and the cells' cache keys of before", "[app]") {
  const auto dir = test::scratch("ablation-rows");
  torch::manual_seed(3);
  presets::DDPM_Eps m(test::tiny_options(8, 1, 20));
  train::Trainer<presets::DDPM_Eps> t(m, train::TrainerOptions().ema_rates({0.9}));
  t.step(at::rand({2, 1, 8, 8}) * 2 - 1);
  t.save(dir / "eps.pt");  // no "preset": found by its identity
  const auto rows = app::ablation_rows({"a=" + (dir / "eps.pt").string()}, {5, 20}, "ddim");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].first.label == "a");
  CHECK(rows[0].first.preset == "DDPM_Eps");
  CHECK(rows[0].first.step == 1);
  CHECK(rows[0].second.step == 1);
  const auto eps = (dir / "eps.pt").string();
  for (const auto& [args, why] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"a"}, "--row a: expected LABEL=CHECKPOINT"},
           {{"=x"}, "--row =x: expected LABEL=CHECKPOINT"},
           {{"a/b=" + eps}, "a label is a file name"},
           {{"a=" + eps, "a=" + eps}, "the label a names two rows"},
           {{"a=" + (dir / "absent.pt").string()}, "(no such file)"}})
    CHECK_THROWS_WITH(app::ablation_rows(args, {5}, "ddim"), Catch::Contains(why));
  CHECK_THROWS_WITH(app::ablation_rows({"a=" + eps}, {40}, "ddim"), Catch::Contains("--steps 40: more than"));
  CHECK_THROWS_WITH(app::ablation_rows({"a=" + eps}, {9}, "ddim"), Catch::Contains("--steps 9: DDIM takes the steps of T = 20"));
  CHECK_THROWS_WITH(app::check_step_list({5, 0}), "--steps: every entry must be at least 1");
  CHECK_THROWS_WITH(app::check_step_list({5, 10, 5}), "--steps: 5 is given twice");
  // The keys casdm-ablation's cells.json was written with: a DDIM cell's names no sampler.
  const auto key = app::file_key(eps);
  CHECK(app::cell_key(rows[0].first, 10, 100, 0, 50, 20, "scorer", "ddim") ==
        "a|" + key + "|steps=10|n=100|seed=0|batch=50|bootstrap=20|scorer");
  CHECK(app::cell_key(rows[0].first, 10, 100, 0, 50, 20, "scorer", "heun") ==
        "a|" + key + "|steps=10|n=100|seed=0|batch=50|bootstrap=20|scorer|sampler=heun");
}

TEST_CASE("an ablation table shows the KID (x10^3 and its spread) where a cell has one and says so", "[report][kid]") {
  eval::Scores s;
  s.fd = 12.5, s.fd_std = 0.5, s.n = 100;
  s.is = {3.25, 0.125};
  s.kid = {0.0123456, 0.00078, 1000, {0.01, 0.0146912}};
  const auto with = app::cell_of(s, 10, 2.0);
  CHECK(with.kid == s.kid.mean);
  CHECK(with.kid_std == s.kid.std);
  s.kid = {};
  const auto without = app::cell_of(s, 20, 4.0);
  CHECK(std::isnan(without.kid));
  // JSON both ways: a cell of before (no "kid") reads as none.
  CHECK(report::TableCell::from_json(with.json()).kid == with.kid);
  CHECK(report::TableCell::from_json(with.json()).kid_std == with.kid_std);
  CHECK(!without.json().contains("kid"));
  CHECK(std::isnan(report::TableCell::from_json(without.json()).kid));
  report::Table t{"t", "SmallVGG", false, 100, 0, 4, {10, 20}, {{"cas", "c.pt", "CasDM", "ema 0.99", 5, {with, without}}}};
  CHECK(t.has_kid());
  const auto md = t.markdown();
  CHECK_THAT(md, Catch::Contains("| score (domain) @20 | KID (domain) ×10³ @10 | KID (domain) ×10³ @20 |"));
  CHECK_THAT(md, Catch::Contains("| cas | CasDM | 5 | 12.500 ± 0.500 | 12.500 ± 0.500 | 3.250 | 3.250 | 12.35 ± 0.78 | — |"));
  CHECK_THAT(md, Catch::Contains("KID (domain) is the kernel distance ×10³"));
  t.rows[0].cells = {without, without};
  CHECK(!t.has_kid());
  CHECK_THAT(t.markdown(), !Catch::Contains("KID"));
  t.fid = true;
  t.rows[0].cells = {with, with};
  CHECK_THAT(t.markdown(), Catch::Contains("| KID ×10³ @10 |"));
}
