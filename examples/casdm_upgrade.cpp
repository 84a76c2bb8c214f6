// casdm-upgrade: converts checkpoints and model files of format 1 (written before 2026-12-07) to
// format 2, in place, once; this build reads format 2 only (examples/format1.hpp says how).
//
//   casdm-upgrade out/casdm                   # every *.pt there and in its checkpoints/
//   casdm-upgrade old/ckpt-000001200.pt model.pt
//
// Each file is converted beside itself, read back and compared, and only then put in its place; a
// file already of format 2 is left as it is. Exit status 1 if any file could not be converted.
#include "format1.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::vector<std::string> paths;
  CLI::App app{"Convert casdm checkpoints and model files of format 1 (before 2026-12-07) to format 2, in place"};
  app.add_option("paths", paths, "files, or folders: every *.pt in one and in its checkpoints/")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::string what = e.what();
    fmt::print(stderr, "casdm-upgrade: {} (see --help)\n", what.substr(0, what.find('\n')));
    return 2;
  }
  int failed = 0;
  for (const fs::path p : paths) {
    std::vector<fs::path> files;  // a folder's *.pt files, or the file named
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (const auto& dir : {p, p / "checkpoints"})
        for (const auto& e : fs::directory_iterator(dir, ec))
          if (e.path().extension() == ".pt" && e.is_regular_file()) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      if (files.empty()) fmt::print("{}: no *.pt files\n", p.string());
    } else {
      files.push_back(p);
    }
    for (const auto& f : files) {
      try {
        fmt::print("{}\n", casdm::format1::upgrade_file(f, f != p));
      } catch (const std::exception& e) {
        fmt::print(stderr, "casdm-upgrade: {}\n", e.what());
        ++failed;
      }
    }
  }
  return failed ? 1 : 0;
}
