#define CATCH_CONFIG_RUNNER
#include <ATen/Parallel.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <thread>

int main(int argc, char** argv) {
  // LibTorch starts with one intra-op thread on these machines; use the cores there are.
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (const char* env = std::getenv("CASDM_TEST_THREADS")) threads = std::max(1, std::atoi(env));
  at::set_num_threads(threads);
  return Catch::Session().run(argc, argv);
}
