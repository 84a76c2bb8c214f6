#pragma once
// What the generated documentation tests share (tests/docs/extract_blocks.py): each Markdown
// file's blocks run in a scratch folder of their own, in order, so a later block may read what an
// earlier one wrote; `small` shrinks a paper-scale model to one that runs in seconds on a CPU;
// `lpips_weights` writes random VGG16/LPIPS weight files (tests/reference/lpips_ref.py).
#include <casdm/casdm.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>

namespace casdm::doctest {

/// Makes the scratch folder of `file` the working directory; emptied the first time in a process.
inline void enter(const std::string& file) {
  static std::set<std::string> entered;
  const auto dir = std::filesystem::path(CASDM_DOC_SCRATCH) / file;
  if (entered.insert(file).second) std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::current_path(dir);
}

/// The same options with a 16-channel, two-level U-Net and T = 100.
inline DenoiserOptions small(DenoiserOptions o) {
  return o.diffusion_steps(100).net(
      net::UNetOptions().model_channels(16).channel_mult({1, 2}).num_res_blocks(1).attention_resolutions({}).norm_groups(8));
}

inline void lpips_weights(const std::string& dir) {
  std::filesystem::create_directories(dir);
  if (std::filesystem::exists(std::filesystem::path(dir) / "lpips_linear.pt")) return;
  const auto cmd = fmt::format("{} {}/reference/lpips_ref.py {}", CASDM_PYTHON, CASDM_TEST_SOURCE_DIR, dir);
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
}

}  // namespace casdm::doctest
