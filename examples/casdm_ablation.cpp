// casdm-ablation: a paper table from checkpoints — each row a checkpoint, each column a number of
// sampling steps (DDIM's, or --sampler's) — sampled, scored and written as Markdown, JSON, an HTML page (table.html), charts (the
// distance per row and column with its bootstrap spread, chart.png/.svg; the distance against the
// number of steps, steps.png/.svg) and a sample grid per row.
//
//   casdm-ablation --row DDPM=out/ddpm --row Cas-DM=out/casdm --steps 10 25 50 100 \
//                  --scorer weights/fmnist/small_vgg.pt -n 1000 --out docs/results/table5
//   casdm-ablation ... --sampler dpmpp2m --steps 10,20     # every cell with DPM-Solver++(2M)
//
// Table 1 is its rows at 100 steps, Table 5 the same rows at 10 … 100, Tables 3 and 4 other rows;
// scripts/tables.sh trains the rows with casdm-train and calls this program. --redraw rewrites the
// Markdown, the page and the charts of an existing OUT from its table.json, without sampling.
//
// Each cell's scores go to OUT/cells.json as soon as they are known, under a key naming the
// checkpoint file (path, size, time), the sampling settings and the scorer's weights: a run that
// is stopped (Ctrl-C or SIGTERM: the batch of samples under way finishes, exit 130 or 143) and started
// again with the same arguments samples only the cells still missing. The
// distance comes with its bootstrap spread (± one standard deviation over resamples of the
// samples' features), so that differences between rows can be weighed against the sample count.
#include "casdm/casdm.hpp"
#include "casdm/app/ablation.hpp"
#include "casdm/app/stop.hpp"
#include "casdm/report/table.hpp"
#include "casdm/report/image_grid.hpp"
#include "scoring.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <iostream>

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::vector<std::string> rows_arg;
  std::vector<int64_t> steps{10, 25, 50, 100};
  std::string scorer_path, out, title = "casdm ablation", device_name = "cpu", sampler_name = "ddim";
  casdm::examples::ReferenceSpec ref_spec{"/usr/share/datasets/fashion-mnist"};
  int64_t n = 1000, batch = 100, seed = 0, threads = 0, grid = 16, bootstrap = 50;
  casdm::eval::KidOptions kid;
  CLI::App app{"Sample and score checkpoints at several sampling step counts (DDIM unless --sampler); write the table, a chart and grids"};
  bool redraw = false;
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a later -n wins; lists add up
  app.add_option("--row", rows_arg, "LABEL=CHECKPOINT (file or casdm-train folder), once per row")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--steps", steps, "sampling steps, one column each")->capture_default_str()->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--sampler", sampler_name, "the sampler of every cell, one of: " + casdm::sampler::help())
      ->capture_default_str()->check(CLI::IsMember(casdm::sampler::names()));
  app.add_option("--scorer", scorer_path, casdm::eval::scorer_help());
  app.add_option("-n,--n", n, "samples per cell")->capture_default_str()->check(casdm::examples::in_range<int64_t>(10, int64_t{1} << 40));
  app.add_option("--out", out, "output folder")->required();
  app.add_option("--title", title, "the table's title")->capture_default_str();
  app.add_option("--data", ref_spec.data, "the data set the reference statistics are of")->capture_default_str();
  app.add_option("--ref-n", ref_spec.n, "reference images (0: the whole training split)")->capture_default_str()
      ->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--stats", ref_spec.stats, "reference statistics cache (default: beside the scorer)");
  app.add_option("--batch", batch, "images per pass")->capture_default_str()->check(casdm::examples::at_least<int64_t>(1));
  app.add_option("--seed", seed, "seed of the sampling noise (the same for every cell)")->capture_default_str()->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--grid", grid, "images in each row's grid")->capture_default_str()->check(casdm::examples::at_least<int64_t>(1));
  app.add_option("--bootstrap", bootstrap, "resamples for the distance's spread (0: none)")
      ->capture_default_str()
      ->check(casdm::examples::at_least<int64_t>(0));
  app.add_option("--kid-subsets", kid.subsets, "KID subset pairs of min(1000, -n) vectors each (0: no KID)")
      ->capture_default_str()->check(casdm::examples::at_least<int64_t>(0));
  app.add_flag("--redraw", redraw, "only rewrite OUT's table.md/.html and charts from its table.json (no sampling)");
  casdm::examples::add_machine_options(app, threads, device_name);
  if (const int rc = casdm::examples::parse_command_line(app, argc, argv, "casdm-ablation"); rc >= 0) return rc;
  try {
    if (redraw) {
      if (!rows_arg.empty() || !scorer_path.empty() || app.count("--sampler"))
        throw std::runtime_error("--redraw takes the table in --out, not --row, --scorer or --sampler");
      fmt::print("{}", casdm::report::Table::read(fs::path(out) / "table.json").write(out));
      return 0;
    }
    if (rows_arg.empty() || scorer_path.empty()) throw std::runtime_error("--row and --scorer are required (or --redraw)");
    const auto device = casdm::examples::use_machine(threads, device_name);
    // Every checkpoint is read (and refused, as is a step count it cannot take) before any sampling starts.
    std::vector<casdm::report::TableRow> rows;
    std::vector<casdm::train::CheckpointInfo> infos;
    for (auto& [row, info] : casdm::app::ablation_rows(rows_arg, steps, sampler_name))
      rows.push_back(std::move(row)), infos.push_back(std::move(info));
    casdm::examples::require_writable_folder(out);
    if (bootstrap == 1) throw std::runtime_error("--bootstrap: 0 (none) or at least 2 resamples");
    // Cells already scored by an earlier run with the same arguments (see the top of this file).
    casdm::app::ScoreCache cells(fs::path(out) / "cells.json");
    bool fid = false;
    std::string scorer_name;
    casdm::report::Table table{title, "", false, n, bootstrap, std::min(grid, n), steps, {}, sampler_name};
    const std::string sampler_words = table.sampler_short();
    // SIGINT/SIGTERM: the batch under way finishes, the cells scored so far stay in cells.json.
    casdm::train::StopSignals signals("this batch of samples");
    const auto progress = casdm::app::stop_between_batches(signals, casdm::eval::print_draw_progress());
    try {
      casdm::eval::with_scorer(scorer_path, device, [&](auto& scorer) {
        fid = casdm::eval::is_fid_v<std::decay_t<decltype(scorer)>>;
        scorer_name = scorer.name();
        for (size_t i = 0; i < rows.size(); ++i) {
          const auto ref = casdm::examples::reference(scorer, scorer_path, infos[i], ref_spec, device, batch);
          const auto denoiser = casdm::app::load_any_denoiser(infos[i], {}, device, &rows[i].weights);
          {
            for (auto s : steps) {
              const auto key = casdm::app::cell_key(rows[i], s, n, seed, batch, bootstrap, scorer.key(), sampler_name);
              const auto grid_path = fs::path(out) / (rows[i].label + ".png");
              // A cell scored before the KID (when one is asked for now) is scored again.
              if (const auto* hit = cells.find(key);
                  hit && (s != steps.back() || fs::exists(grid_path)) && (kid.subsets == 0 || hit->contains("kid"))) {
                fmt::print(stderr, "{}, {} {} steps: scored before ({})\n", rows[i].label, s, sampler_words, cells.path().string());
                rows[i].cells.push_back(casdm::report::TableCell::from_json(*hit));
                continue;
              }
              fmt::print(stderr, "{}, {} {} steps\n", rows[i].label, s, sampler_words);
              const auto t0 = std::chrono::steady_clock::now();
              const auto x = casdm::eval::draw_samples(
                  sampler_name, *denoiser, n, casdm::eval::DrawOptions().sample(casdm::SampleOptions().steps(s)).batch(batch)
                                                  .seed(static_cast<uint64_t>(seed)).progress(progress));
              const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              const auto stats = casdm::eval::image_stats(scorer, x, device, batch, {}, bootstrap > 0 || kid.subsets > 0);
              rows[i].cells.push_back(casdm::app::cell_of(
                  casdm::eval::scores_of(stats, ref.stats, 10, bootstrap, static_cast<uint64_t>(seed), kid), s, secs));
              if (s == steps.back())
                casdm::report::write_grid(grid_path, x.slice(0, 0, std::min(grid, n)), 8, table.caption(rows[i]));
              cells.put(key, rows[i].cells.back().json());
            }
          }
        }
      });
    } catch (const casdm::app::Stopped& stop) {
      if (fs::exists(cells.path()))
        fmt::print(stderr, "casdm-ablation: {}; the cells scored so far are kept in {} (the same command goes on from there)\n",
                   stop.what(), cells.path().string());
      else
        fmt::print(stderr, "casdm-ablation: {} before any cell was scored; nothing kept\n", stop.what());
      return 128 + stop.signal;
    }
    table.scorer = scorer_name;
    table.fid = fid;
    table.rows = rows;
    fmt::print("{}", table.write(out));
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "casdm-ablation: {}\n", casdm::examples::message(e));
    return 1;
  }
}
