#pragma once
// A paper-style table of scored samples — rows (checkpoints) × columns (DDIM step counts) — and
// everything written from it: table.md, table.json, table.html, chart.png/.svg (the distance per
// row and column, ± the bootstrap spread) and steps.png/.svg (the distance against the steps).
// casdm-ablation fills one by sampling; Table::read(dir/"table.json") gets one back, so that the
// files can be redrawn without sampling.
//
//   casdm::report::Table t{"Table 5", "SmallVGG domain classifier", /*fid=*/false, 1000, 50, 16, {10, 100}};
//   t.rows.push_back({"CasDM", "out/casdm/checkpoints/ckpt-000003000.pt", "CasDM", "ema 0.99", 3000,
//                     {{10, 35.6, 1.9, 3.9, 0.3, 1000, 42.7}, {100, 7.4, 0.8, 5.3, 0.4, 1000, 410}}});
//   std::string markdown = t.write("docs/results/table5");
#include "casdm/io/files.hpp"
#include "casdm/report/chart.hpp"
#include "casdm/report/html.hpp"
#include "casdm/sampler/registry.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::report {

/// One cell: a row's scores at one number of sampling steps.
struct TableCell {
  int64_t steps = 0;
  double fd = 0, fd_std = std::nan(""), score = 0, score_std = 0;
  int64_t n = 0;
  double seconds = 0;               // sampling time
  double sfid = std::nan("");       // spatial FID, with the FID scorer
  double kid = std::nan(""), kid_std = std::nan("");  // KID (mean and spread over its subsets), where taken

  nlohmann::json json() const {
    nlohmann::json c{{"steps", steps}, {"fd", fd}, {"score", score}, {"score_std", score_std}, {"n", n},
                     {"sampling_seconds", seconds}};
    if (!std::isnan(fd_std)) c["fd_std"] = fd_std;
    if (!std::isnan(sfid)) c["sfid"] = sfid;
    if (!std::isnan(kid)) c["kid"] = kid, c["kid_std"] = kid_std;
    return c;
  }
  static TableCell from_json(const nlohmann::json& c) {
    TableCell t;
    t.steps = c.value("steps", int64_t{0});
    t.fd = c.at("fd").get<double>();
    t.score = c.at("score").get<double>();
    t.score_std = c.at("score_std").get<double>();
    t.n = c.at("n").get<int64_t>();
    t.seconds = c.value("sampling_seconds", 0.0);
    if (c.contains("fd_std")) t.fd_std = c.at("fd_std").get<double>();
    if (c.contains("sfid")) t.sfid = c.at("sfid").get<double>();
    if (c.contains("kid")) t.kid = c.at("kid").get<double>(), t.kid_std = c.value("kid_std", std::nan(""));
    return t;
  }
};

struct TableRow {
  std::string label, checkpoint, preset, weights;
  int64_t step = 0;
  std::vector<TableCell> cells;  // one per column
};

struct Table {
  std::string title, scorer;
  bool fid = false;  // FID/IS (Inception) or the domain scorer's FD/score
  int64_t n = 0, bootstrap = 0, grid = 0;
  std::vector<int64_t> steps;
  std::vector<TableRow> rows;
  /// The sampler of every cell, by its library name (sampler/registry.hpp); tables from before say none: DDIM.
  std::string sampler = "ddim";

  /// The sampler's short name in the table's words ("DDIM", "DPM-Solver++(2M)", …).
  std::string sampler_short() const { return known() ? casdm::sampler::info(sampler).label : sampler; }
  /// How the table's samples were drawn, for its text.
  std::string sampler_long() const { return known() ? casdm::sampler::info(sampler).description : sampler; }
  /// Whether `sampler` is one of the registry's (tables of a user's own sampler show its name).
  bool known() const {
    const auto all = casdm::sampler::names();
    return std::find(all.begin(), all.end(), sampler) != all.end();
  }

  /// What row r's grid (<label>.png, drawn at the last column's steps) shows.
  std::string caption(const TableRow& r) const {
    return fmt::format("{}: preset {}, step {}, {} weights, {} {} steps", r.label, r.preset, r.step,
                       r.weights.empty() ? "EMA" : r.weights, steps.empty() ? 0 : steps.back(), sampler_short());
  }

  nlohmann::json json() const {
    nlohmann::json j{{"title", title}, {"n", n}, {"steps", steps}, {"scorer", scorer}, {"bootstrap", bootstrap},
                     {"fid", fid}, {"grid", grid}};
    if (sampler != "ddim") j["sampler"] = sampler;
    for (const auto& r : rows) {
      nlohmann::json jr{{"label", r.label}, {"checkpoint", r.checkpoint}, {"preset", r.preset}, {"step", r.step},
                        {"weights", r.weights}};
      for (const auto& c : r.cells) jr["cells"].push_back(c.json());
      j["rows"].push_back(jr);
    }
    return j;
  }

  /// A table.json written by write(); anything else is refused naming the file.
  static Table read(const std::filesystem::path& json_path) {
    std::ifstream f(json_path);
    if (!f) throw std::runtime_error("cannot open " + json_path.string() + " (a table written before is needed)");
    const auto j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
    try {
      Table t{j.at("title"), j.at("scorer"), false, j.at("n"), j.at("bootstrap"), j.value("grid", int64_t{16}),
              j.at("steps").get<std::vector<int64_t>>(), {}};
      t.fid = j.value("fid", t.scorer.find("Inception") != std::string::npos);  // tables from before "fid"
      t.sampler = j.value("sampler", std::string("ddim"));
      for (const auto& r : j.at("rows")) {
        TableRow row{r.at("label"), r.at("checkpoint"), r.at("preset"), r.at("weights"), r.at("step"), {}};
        for (const auto& c : r.at("cells")) row.cells.push_back(TableCell::from_json(c));
        if (row.cells.size() != t.steps.size()) throw std::runtime_error("a row's cells do not match the steps");
        t.rows.push_back(std::move(row));
      }
      return t;
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("{} is not a table of casdm-ablation ({})", json_path.string(), e.what()));
    }
  }

  /// Whether any cell has a KID (tables of before, and cells scored before, have none).
  bool has_kid() const {
    for (const auto& r : rows)
      for (const auto& c : r.cells)
        if (!std::isnan(c.kid)) return true;
    return false;
  }

  /// The Markdown table: one row per checkpoint, a distance (± spread) and a score column per step
  /// count, and a KID column per step count where any cell has one (×10³, ± its spread over the subsets).
  std::string markdown() const {
    const std::string fd_name = fid ? "FID" : "FD (domain)", sc = fid ? "IS" : "score (domain)";
    std::ostringstream md;
    md << "# " << title << "\n\n" << n << " samples per cell, " << sampler_long() << ", EMA weights; scorer: " << scorer
       << ". Lower " << fd_name << " is better, higher " << sc << " is better.";
    if (bootstrap > 0)
      md << " ± is one standard deviation of the distance over " << bootstrap
         << " bootstrap resamples of the samples (the noise of the sample count; the reference held fixed).";
    if (has_kid())
      md << " " << kid_name() << " is the kernel distance ×10³ in the same features (lower is better), ± its standard "
         << "deviation over its subsets; — where a cell was scored before the KID.";
    md << "\n\n|";
    for (const auto& h : header()) md << " " << h << " |";
    md << "\n|";
    for (size_t k = 0; k < header().size(); ++k) md << "---|";
    md << "\n";
    for (const auto& r : rows) {
      md << "|";
      for (const auto& c : cells_of(r)) md << " " << c << " |";
      md << "\n";
    }
    md << "\nSamples (" << grid << " per row, " << (steps.empty() ? 0 : steps.back()) << " steps): ";
    for (const auto& r : rows) md << "[" << r.label << "](" << r.label << ".png) ";
    md << "\n\n![" << fd_name << "](chart.png)\n";
    if (steps.size() > 1) md << "\n![" << fd_name << " against " << sampler_short() << " steps](steps.png)\n";
    return md.str();
  }

  /// Writes table.md, table.json, table.html and the charts into `dir`; returns the Markdown.
  std::string write(const std::filesystem::path& dir) const {
    const std::string fd_name = fid ? "FID" : "FD (domain)";
    auto bars = BarChart().title(title + ": " + fd_name + " (lower is better)").value_label(fd_name);
    std::vector<std::string> columns;
    for (auto s : steps) columns.push_back(fmt::format("{} steps", s));
    bars.columns(columns);
    auto by_steps = LineChart().title(title + ": " + fd_name + " against " + sampler_short() + " steps")
                        .x_label(sampler_short() + " steps")
                        .y_label(fd_name).log_x(true).markers(true).dodge(0.008)
                        .x_ticks(std::vector<double>(steps.begin(), steps.end()));
    std::vector<std::vector<std::string>> html_rows;
    std::vector<Figure> grids;
    for (const auto& r : rows) {
      std::vector<double> fds, errs, xs;
      for (const auto& c : r.cells) fds.push_back(c.fd), errs.push_back(c.fd_std), xs.push_back(static_cast<double>(c.steps));
      bars.row(r.label, fds, errs);
      by_steps.add(r.label, xs, fds, errs);
      html_rows.push_back(cells_of(r));
      grids.push_back({r.label + ".png", caption(r)});
    }
    const auto md = markdown();
    io::write_atomic(dir / "table.md", md);
    io::write_atomic(dir / "table.json", json().dump(2) + "\n");
    for (const char* ext : {".png", ".svg"}) {
      bars.write(dir / (std::string("chart") + ext));
      if (steps.size() > 1) by_steps.write(dir / (std::string("steps") + ext));
    }
    Html page(title);
    page.paragraph(fmt::format("{} samples per cell, {}; scorer: {}. Lower {} is better, higher {} is better.{}",
                               n, sampler == "ddim" ? std::string("DDIM (eta = 0)") : sampler_long(), scorer, fd_name, fid ? "IS" : "score (domain)",
                               bootstrap > 0 ? fmt::format(" ± is one standard deviation of the distance over {} "
                                                           "bootstrap resamples of the samples.", bootstrap) : ""));
    page.table(header(), html_rows).heading("Charts").figure({"chart.svg", fd_name + " per row and number of " + sampler_short() +
                                                                  " steps, with its bootstrap spread as error bars"});
    if (steps.size() > 1)
      page.figure({"steps.svg", fd_name + " against the number of " + sampler_short() + " steps, one line per row"});
    page.heading("Samples").gallery(grids, 240).write(dir / "table.html");
    return md;
  }

 private:
  std::vector<std::string> header() const {
    const std::string fd_name = fid ? "FID" : "FD (domain)", sc = fid ? "IS" : "score (domain)";
    std::vector<std::string> h{"row", "preset", "step"};
    for (auto s : steps) h.push_back(fmt::format("{} @{}", fd_name, s));
    for (auto s : steps) h.push_back(fmt::format("{} @{}", sc, s));
    if (has_kid())
      for (auto s : steps) h.push_back(fmt::format("{} ×10³ @{}", kid_name(), s));
    return h;
  }
  std::string kid_name() const { return fid ? "KID" : "KID (domain)"; }
  std::vector<std::string> cells_of(const TableRow& r) const {
    std::vector<std::string> cells{r.label, r.preset, fmt::format("{}", r.step)};
    for (const auto& c : r.cells)
      cells.push_back(std::isnan(c.fd_std) ? fmt::format("{:.3f}", c.fd) : fmt::format("{:.3f} ± {:.3f}", c.fd, c.fd_std));
    for (const auto& c : r.cells) cells.push_back(fmt::format("{:.3f}", c.score));
    if (has_kid())
      for (const auto& c : r.cells)
        cells.push_back(std::isnan(c.kid) ? "—" : fmt::format("{:.2f} ± {:.2f}", 1e3 * c.kid, 1e3 * c.kid_std));
    return cells;
  }
};

}  // namespace casdm::report
