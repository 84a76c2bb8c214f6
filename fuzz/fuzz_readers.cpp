// libFuzzer harnesses for everything casdm reads from outside: IDX files (plain or gzip), CIFAR-10
// binary batches, image files (PNG/JPEG/BMP through stb_image), tensor files and checkpoints (the
// torch.save zip, its pickle, the checksums, the metadata and the model options they carry), and
// the options' string form. One binary; the target is the environment variable CASDM_FUZZ_TARGET
// (idx, cifar10, image, checkpoint, options). scripts/fuzz.sh builds and runs them.
//
// A refusal (an exception) is the expected answer to bad input; a crash, a hang, a sanitizer report
// or an allocation past libFuzzer's -rss_limit_mb is a finding.
#include "casdm/data/idx.hpp"
#include "casdm/data/images.hpp"
#include "casdm/topology/options_io.hpp"
#include "casdm/train/checkpoint.hpp"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>

namespace fs = std::filesystem;

namespace {

enum class Target { Idx, Cifar10, Image, Checkpoint, Options };
Target target = Target::Idx;
fs::path scratch;

void put(const fs::path& p, const uint8_t* data, size_t size) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

void one_input(const uint8_t* data, size_t size) {
  switch (target) {
    case Target::Idx: {
      put(scratch / "x-idx3-ubyte", data, size);
      (void)casdm::data::read_idx(scratch / "x-idx3-ubyte");
      break;
    }
    case Target::Cifar10: {
      put(scratch / "cifar" / "test_batch.bin", data, size);
      (void)casdm::data::load_cifar10(scratch / "cifar", false);
      break;
    }
    case Target::Image: {
      put(scratch / "images" / "x.png", data, size);
      (void)casdm::data::load_image_folder(scratch / "images");
      break;
    }
    case Target::Checkpoint: {
      put(scratch / "x.pt", data, size);
      auto c = casdm::train::read_checkpoint(scratch / "x.pt");
      (void)c.ema_rates();
      (void)casdm::train::chosen_weights(c, casdm::train::Weights::ema_copy());
      break;
    }
    case Target::Options: {  // lines "key=value" → ModelOptions
      std::map<std::string, std::string> m;
      std::string_view s(reinterpret_cast<const char*>(data), size);
      while (!s.empty()) {
        const auto nl = s.find('\n');
        const auto line = s.substr(0, nl);
        if (const auto eq = line.find('='); eq != std::string_view::npos)
          m[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
        if (nl == std::string_view::npos) break;
        s.remove_prefix(nl + 1);
      }
      auto o = casdm::options_from_map(m);
      (void)casdm::options_to_map(o);
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* t = std::getenv("CASDM_FUZZ_TARGET");
  const std::string name = t ? t : "";
  if (name == "idx") target = Target::Idx;
  else if (name == "cifar10") target = Target::Cifar10;
  else if (name == "image") target = Target::Image;
  else if (name == "checkpoint") target = Target::Checkpoint;
  else if (name == "options") target = Target::Options;
  else {
    fprintf(stderr, "casdm_fuzz: set CASDM_FUZZ_TARGET to idx, cifar10, image, checkpoint or options\n");
    std::exit(2);
  }
  scratch = fs::temp_directory_path() / ("casdm-fuzz-" + name + "-" + std::to_string(::getpid()));
  fs::create_directories(scratch / "cifar");
  fs::create_directories(scratch / "images");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    one_input(data, size);
  } catch (const std::exception&) {  // a refusal, as it should be (c10::Error is a std::exception)
  }
  return 0;
}
