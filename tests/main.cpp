#define CATCH_CONFIG_RUNNER
#include <ATen/Parallel.h>

#include <catch2/catch.hpp>

#include <thread>

int main(int argc, char** argv) {
  // LibTorch starts with one intra-op thread on these machines; use the cores there are.
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  return Catch::Session().run(argc, argv);
}
