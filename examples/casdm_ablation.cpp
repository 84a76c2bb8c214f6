// casdm-ablation: a paper table from checkpoints — each row a checkpoint, each column a number of
// DDIM steps — sampled, scored and written as Markdown, JSON, an HTML page (table.html), charts (the
// distance per row and column with its bootstrap spread, chart.png/.svg; the distance against the
// number of steps, steps.png/.svg) and a sample grid per row.
//
//   casdm-ablation --row DDPM=out/ddpm --row Cas-DM=out/casdm --steps 10 25 50 100 \
//                  --scorer weights/fmnist/small_vgg.pt -n 1000 --out docs/results/table5
//
// Table 1 is its rows at 100 steps, Table 5 the same rows at 10 … 100, Tables 3 and 4 other rows;
// scripts/tables.sh trains the rows with casdm-train and calls this program. --redraw rewrites the
// Markdown, the page and the charts of an existing OUT from its table.json, without sampling.
//
// Each cell's scores go to OUT/cells.json as soon as they are known, under a key naming the
// checkpoint file (path, size, time), the sampling settings and the scorer's weights: a run that
// is stopped and started again with the same arguments samples only the cells still missing. The
// distance comes with its bootstrap spread (± one standard deviation over resamples of the
// samples' features), so that differences between rows can be weighed against the sample count.
#include "casdm/casdm.hpp"
#include "casdm/report/chart.hpp"
#include "casdm/report/html.hpp"
#include "image_io.hpp"
#include "scoring.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <iostream>

namespace fs = std::filesystem;

struct Row {
  std::string label, checkpoint, preset, weights;
  int64_t step = 0;
  std::vector<casdm::eval::Scores> scores;  // one per --steps value
  std::vector<double> seconds;              // sampling time per cell (0: from cells.json)
};

namespace {

/// The cache key of one cell: what its numbers depend on.
std::string cell_key(const Row& r, int64_t steps, int64_t n, int64_t seed, int64_t batch, int64_t bootstrap,
                     const std::string& scorer_key) {
  const fs::path f(r.checkpoint);
  const auto time = fs::last_write_time(f).time_since_epoch().count();
  return r.label + "|" + fs::absolute(f).lexically_normal().string() + "|" + std::to_string(fs::file_size(f)) + "|" +
         std::to_string(time) + "|steps=" + std::to_string(steps) + "|n=" + std::to_string(n) + "|seed=" +
         std::to_string(seed) + "|batch=" + std::to_string(batch) + "|bootstrap=" + std::to_string(bootstrap) + "|" +
         scorer_key;
}

/// What a row's grid shows.
std::string grid_caption(const Row& r, int64_t steps) {
  return fmt::format("{}: preset {}, step {}, {} weights, {} DDIM steps", r.label, r.preset, r.step,
                     r.weights.empty() ? "EMA" : r.weights, steps);
}

nlohmann::json cell_json(const casdm::eval::Scores& s, int64_t steps, double seconds) {
  nlohmann::json c{{"steps", steps}, {"fd", s.fd}, {"score", s.is.mean}, {"score_std", s.is.std}, {"n", s.n},
                   {"sampling_seconds", seconds}};
  if (!std::isnan(s.fd_std)) c["fd_std"] = s.fd_std;
  if (!std::isnan(s.spatial_fd)) c["sfid"] = s.spatial_fd;
  return c;
}

casdm::eval::Scores scores_from(const nlohmann::json& c) {
  casdm::eval::Scores s;
  s.fd = c.at("fd").get<double>();
  s.is.mean = c.at("score").get<double>();
  s.is.std = c.at("score_std").get<double>();
  s.n = c.at("n").get<int64_t>();
  if (c.contains("fd_std")) s.fd_std = c.at("fd_std").get<double>();
  if (c.contains("sfid")) s.spatial_fd = c.at("sfid").get<double>();
  return s;
}

/// What the table's files are made from (also read back from table.json by --redraw).
struct Table {
  std::string title, scorer;
  bool fid = false;
  int64_t n = 0, bootstrap = 0, grid = 0;
  std::vector<int64_t> steps;
  std::vector<Row> rows;
};

Table table_from(const std::filesystem::path& json_path) {
  std::ifstream f(json_path);
  if (!f) throw std::runtime_error("cannot open " + json_path.string() + " (--redraw needs a table written before)");
  const auto j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  try {
    Table t{j.at("title"), j.at("scorer"), false, j.at("n"), j.at("bootstrap"), j.value("grid", int64_t{16}),
            j.at("steps").get<std::vector<int64_t>>(), {}};
    t.fid = j.value("fid", t.scorer.find("Inception") != std::string::npos);
    for (const auto& r : j.at("rows")) {
      Row row{r.at("label"), r.at("checkpoint"), r.at("preset"), r.at("weights"), r.at("step")};
      for (const auto& c : r.at("cells")) row.scores.push_back(scores_from(c)), row.seconds.push_back(c.at("sampling_seconds"));
      if (row.scores.size() != t.steps.size()) throw std::runtime_error("a row's cells do not match the steps");
      t.rows.push_back(std::move(row));
    }
    return t;
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{} is not a table of casdm-ablation ({})", json_path.string(), e.what()));
  }
}

/// Writes table.md, table.json, table.html and the charts into `dir`; returns the Markdown.
std::string write_table(const std::filesystem::path& dir, const Table& t) {
  const auto& [title, scorer_name, fid, n, bootstrap, grid, steps, rows] = t;
  // The table: one row per checkpoint, one distance and one score column per step count.
  const std::string fd = fid ? "FID" : "FD (domain)", sc = fid ? "IS" : "score (domain)";
  std::ostringstream md;
  md << "# " << title << "\n\n" << n << " samples per cell, DDIM (η = 0), EMA weights; scorer: " << scorer_name
     << ". Lower " << fd << " is better, higher " << sc << " is better.";
  if (bootstrap > 0)
    md << " ± is one standard deviation of the distance over " << bootstrap
       << " bootstrap resamples of the samples (the noise of the sample count; the reference held fixed).";
  md << "\n\n| row | preset | step |";
  for (auto s : steps) md << " " << fd << " @" << s << " |";
  for (auto s : steps) md << " " << sc << " @" << s << " |";
  md << "\n|---|---|---|";
  for (size_t k = 0; k < 2 * steps.size(); ++k) md << "---|";
  md << "\n";
  nlohmann::json j;
  j["title"] = title;
  j["n"] = n;
  j["steps"] = steps;
  j["scorer"] = scorer_name;
  j["bootstrap"] = bootstrap;
  j["fid"] = fid;
  j["grid"] = grid;
  auto bars = casdm::report::BarChart().title(title + ": " + fd + " (lower is better)").value_label(fd);
  std::vector<std::string> columns;
  for (auto s : steps) columns.push_back(fmt::format("{} steps", s));
  bars.columns(columns);
  auto by_steps = casdm::report::LineChart().title(title + ": " + fd + " against DDIM steps").x_label("DDIM steps")
                      .y_label(fd).log_x(true).markers(true).dodge(0.008);
  by_steps.x_ticks(std::vector<double>(steps.begin(), steps.end()));
  std::vector<std::vector<std::string>> html_rows;
  for (const auto& r : rows) {
    md << "| " << r.label << " | " << r.preset << " | " << r.step << " |";
    std::vector<std::string> cells{r.label, r.preset, fmt::format("{}", r.step)};
    for (const auto& s : r.scores)
      cells.push_back(std::isnan(s.fd_std) ? fmt::format("{:.3f}", s.fd) : fmt::format("{:.3f} ± {:.3f}", s.fd, s.fd_std));
    for (const auto& s : r.scores) cells.push_back(fmt::format("{:.3f}", s.is.mean));
    for (size_t k = 3; k < cells.size(); ++k) md << " " << cells[k] << " |";
    md << "\n";
    html_rows.push_back(cells);
    nlohmann::json jr{{"label", r.label}, {"checkpoint", r.checkpoint}, {"preset", r.preset}, {"step", r.step},
                      {"weights", r.weights}};
    std::vector<double> fds, errs, xs;
    for (size_t k = 0; k < steps.size(); ++k) {
      jr["cells"].push_back(cell_json(r.scores[k], steps[k], r.seconds[k]));
      fds.push_back(r.scores[k].fd);
      errs.push_back(r.scores[k].fd_std);
      xs.push_back(static_cast<double>(steps[k]));
    }
    j["rows"].push_back(jr);
    bars.row(r.label, fds, errs);
    by_steps.add(r.label, xs, fds, errs);
  }
  md << "\nSamples (" << grid << " per row, " << steps.back() << " steps): ";
  for (const auto& r : rows) md << "[" << r.label << "](" << r.label << ".png) ";
  md << "\n\n![" << fd << "](chart.png)\n";
  if (steps.size() > 1) md << "\n![" << fd << " against DDIM steps](steps.png)\n";
  casdm::examples::write_text(dir / "table.md", md.str());
  casdm::examples::write_text(dir / "table.json", j.dump(2) + "\n");
  for (const char* ext : {".png", ".svg"}) {
    bars.write(dir / (std::string("chart") + ext));
    if (steps.size() > 1) by_steps.write(dir / (std::string("steps") + ext));
  }
  // The same on one self-contained page: the table, the charts, each row's grid.
  casdm::report::Html page(title);
  page.paragraph(fmt::format("{} samples per cell, DDIM (eta = 0); scorer: {}. Lower {} is better, higher {} is better.{}",
                             n, scorer_name, fd, sc,
                             bootstrap > 0 ? fmt::format(" ± is one standard deviation of the distance over {} "
                                                         "bootstrap resamples of the samples.", bootstrap) : ""));
  std::vector<std::string> header{"row", "preset", "step"};
  for (auto s : steps) header.push_back(fmt::format("{} @{}", fd, s));
  for (auto s : steps) header.push_back(fmt::format("{} @{}", sc, s));
  page.table(header, html_rows).heading("Charts").figure({"chart.svg", fd + " per row and number of DDIM steps, "
                                                                        "with its bootstrap spread as error bars"});
  if (steps.size() > 1) page.figure({"steps.svg", fd + " against the number of DDIM steps, one line per row"});
  std::vector<casdm::report::Figure> grids;
  for (const auto& r : rows) grids.push_back({r.label + ".png", grid_caption(r, steps.back())});
  page.heading("Samples").gallery(grids, 240).write(dir / "table.html");
  return md.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> rows_arg;
  std::vector<int64_t> steps{10, 25, 50, 100};
  std::string scorer_path, out, title = "casdm ablation", device_name = "cpu";
  casdm::examples::ReferenceSpec ref_spec{"/usr/share/datasets/fashion-mnist"};
  int64_t n = 1000, batch = 100, seed = 0, threads = 0, grid = 16, bootstrap = 50;
  CLI::App app{"Sample and score checkpoints at several DDIM step counts; write the table, a chart and grids"};
  bool redraw = false;
  app.add_option("--row", rows_arg, "LABEL=CHECKPOINT (file or casdm-train folder), once per row");
  app.add_option("--steps", steps, "DDIM steps, one column each")->capture_default_str()->delimiter(',');
  app.add_option("--scorer", scorer_path, "inception_fid.pt (FID, sFID, IS) or small_vgg.pt (domain scores)");
  app.add_option("-n,--n", n, "samples per cell")->capture_default_str()->check(CLI::Range(int64_t{10}, int64_t{1} << 40));
  app.add_option("--out", out, "output folder")->required();
  app.add_option("--title", title, "the table's title")->capture_default_str();
  app.add_option("--data", ref_spec.data, "the data set the reference statistics are of")->capture_default_str();
  app.add_option("--ref-n", ref_spec.n, "reference images (0: the whole training split)")->capture_default_str();
  app.add_option("--stats", ref_spec.stats, "reference statistics cache (default: beside the scorer)");
  app.add_option("--batch", batch, "images per pass")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "seed of the sampling noise (the same for every cell)")->capture_default_str();
  app.add_option("--grid", grid, "images in each row's grid")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--bootstrap", bootstrap, "resamples for the distance's spread (0: none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--redraw", redraw, "only rewrite OUT's table.md/.html and charts from its table.json (no sampling)");
  casdm::examples::add_machine_options(app, threads, device_name);
  if (const int rc = casdm::examples::parse_command_line(app, argc, argv, "casdm-ablation"); rc >= 0) return rc;
  try {
    if (redraw) {
      if (!rows_arg.empty() || !scorer_path.empty()) throw std::runtime_error("--redraw takes the table in --out, not --row or --scorer");
      fmt::print("{}", write_table(out, table_from(fs::path(out) / "table.json")));
      return 0;
    }
    if (rows_arg.empty() || scorer_path.empty()) throw std::runtime_error("--row and --scorer are required (or --redraw)");
    const auto device = casdm::examples::use_machine(threads, device_name);
    std::vector<Row> rows;
    for (const auto& r : rows_arg) {
      const auto eq = r.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == r.size())
        throw std::runtime_error("--row " + r + ": expected LABEL=CHECKPOINT");
      if (r.find_first_of("/\\:") < eq || r.front() == '.')  // the label names the row's grid file
        throw std::runtime_error("--row " + r + ": a label is a file name (no '/', '\\' or ':', not starting with '.')");
      rows.push_back({r.substr(0, eq), casdm::train::resolve_checkpoint(r.substr(eq + 1)).string()});
    }
    for (auto s : steps)
      if (s < 1) throw std::runtime_error("--steps: every entry must be at least 1");
    // Every checkpoint is read (and refused) before any sampling starts.
    std::vector<casdm::train::CheckpointInfo> infos;
    for (auto& r : rows) {
      infos.push_back(casdm::train::read_checkpoint(r.checkpoint));
      r.preset = infos.back().get("preset");
      r.step = infos.back().step;
      if (r.preset.empty()) throw std::runtime_error(r.checkpoint + " names no preset (not written by casdm-train?)");
      for (auto s : steps)
        if (s > infos.back().options.diffusion_steps())
          throw std::runtime_error(fmt::format("--steps {}: more than {}'s T = {}", s, r.checkpoint,
                                               infos.back().options.diffusion_steps()));
    }
    casdm::examples::require_writable_folder(out);
    if (bootstrap == 1) throw std::runtime_error("--bootstrap: 0 (none) or at least 2 resamples");
    // Cells already scored by an earlier run with the same arguments (see the top of this file).
    const auto cells_path = fs::path(out) / "cells.json";
    nlohmann::json cells = nlohmann::json::object();
    if (fs::exists(cells_path)) {
      std::ifstream f(cells_path);
      cells = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
      if (!cells.is_object())
        throw std::runtime_error(cells_path.string() + " is not a cells file of casdm-ablation (remove it to start afresh)");
    }
    bool fid = false;
    std::string scorer_name;
    casdm::examples::with_scorer(scorer_path, device, [&](auto& scorer) {
      fid = casdm::examples::is_fid<std::decay_t<decltype(scorer)>>;
      scorer_name = scorer.name();
      for (size_t i = 0; i < rows.size(); ++i) {
        const auto ref = casdm::examples::reference(scorer, scorer_path, infos[i], ref_spec, device, batch);
        casdm::presets::visit(rows[i].preset, [&](auto type) {
          using P = typename decltype(type)::type;
          auto denoiser = casdm::train::load_denoiser<typename P::Denoiser>(infos[i], {}, &rows[i].weights);
          denoiser->to(device);
          for (auto s : steps) {
            const auto key = cell_key(rows[i], s, n, seed, batch, bootstrap, scorer.key());
            const auto grid_path = fs::path(out) / (rows[i].label + ".png");
            if (cells.contains(key) && (s != steps.back() || fs::exists(grid_path))) {
              fmt::print(stderr, "{}, {} DDIM steps: scored before ({})\n", rows[i].label, s, cells_path.string());
              rows[i].scores.push_back(scores_from(cells.at(key)));
              rows[i].seconds.push_back(cells.at(key).value("sampling_seconds", 0.0));
              continue;
            }
            fmt::print(stderr, "{}, {} DDIM steps\n", rows[i].label, s);
            const auto t0 = std::chrono::steady_clock::now();
            const auto x = casdm::examples::draw(denoiser, n, s, 0.0, batch, static_cast<uint64_t>(seed));
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const auto stats = casdm::eval::image_stats(scorer, x, device, batch, {}, bootstrap > 0);
            rows[i].scores.push_back(casdm::eval::scores_of(stats, ref.stats, 10, bootstrap, static_cast<uint64_t>(seed)));
            rows[i].seconds.push_back(secs);
            if (s == steps.back())
              casdm::examples::write_grid(grid_path, x.slice(0, 0, std::min(grid, n)), 8, grid_caption(rows[i], s));
            cells[key] = cell_json(rows[i].scores.back(), s, secs);
            casdm::examples::write_text(cells_path, cells.dump(2) + "\n");
          }
          return 0;
        });
      }
    });
    const Table table{title, scorer_name, fid, n, bootstrap, std::min(grid, n), steps, rows};
    fmt::print("{}", write_table(out, table));
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "casdm-ablation: {}\n", casdm::examples::message(e));
    return 1;
  }
}
