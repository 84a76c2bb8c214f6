// Data-parallel training on c10d (Gloo, 127.0.0.1): two ranks, each a process of this test program
// started by the test, against one process trained on the combined batch; torchrun's environment
// read and refused.
#include "casdm/presets/table1.hpp"
#include "casdm/train/distributed.hpp"

#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "support.hpp"
#include "tiny.hpp"

extern char** environ;

using namespace casdm;
namespace fs = std::filesystem;

namespace {

using DPModel = presets::CasDM;

/// The run both sides train: a tiny CasDM, 3 steps of a global batch of 8, clipping and weight decay
/// on, no dropout (its masks are drawn per shard). The ranks take micro-batches of 3 of their 4
/// images (chunks of 3 and 1), the one process none.
train::TrainerOptions run_options(int64_t micro_batch) {
  return train::TrainerOptions()
      .optimizer(train::AdamWOptions().lr(1e-3).weight_decay(0.1))
      .ema_rates({0.9})
      .grad_clip(0.5)
      .micro_batch(micro_batch);
}
at::Tensor batch(int64_t step) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(100 + step));
  return at::rand({8, 1, 8, 8}, g) * 2 - 1;
}
/// The parameter no backward reaches: taken out of the graph after the trainer was built, so the
/// optimiser holds it and no step gives it a gradient.
constexpr const char* unused_parameter = "phi.time_embed.0.bias";

/// Three steps; returns each step's gradient norm before clipping and its loss terms, a row each
/// [total, terms...] (float64).
template <class T>
std::pair<at::Tensor, at::Tensor> train_three_steps(T& trainer) {
  trainer.model()->denoiser()->named_parameters()[unused_parameter].requires_grad_(false);
  std::vector<double> norms, losses;
  for (int64_t s = 0; s < 3; ++s) {
    const auto r = trainer.step(batch(s));
    norms.push_back(trainer.last_grad_norm().template item<double>());
    losses.push_back(r.total.template item<double>());
    for (const auto& [name, v] : r.terms) losses.push_back(v.template item<double>());
  }
  return {at::tensor(norms, at::kDouble), at::tensor(losses, at::kDouble).reshape({3, -1})};
}

/// A free TCP port on 127.0.0.1 (the kernel's choice; closed again before use).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t n = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// Starts this test program as rank `rank` of `world` running the hidden case `test`.
pid_t start_rank(int rank, int world, int port, const fs::path& out, const std::string& test) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  for (auto s : {fmt::format("RANK={}", rank), fmt::format("LOCAL_RANK={}", rank), fmt::format("WORLD_SIZE={}", world),
                 std::string("MASTER_ADDR=127.0.0.1"), fmt::format("MASTER_PORT={}", port),
                 "CASDM_DP_OUT=" + out.string()})
    env.push_back(s);
  std::vector<char*> envp;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string exe = fs::read_symlink("/proc/self/exe").string(), filter = test;
  std::vector<char*> argv{exe.data(), filter.data(), nullptr};
  pid_t pid = 0;
  REQUIRE(::posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv.data(), envp.data()) == 0);
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// Environment variables set for the scope.
struct Env {
  std::vector<std::string> names;
  Env(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (auto [k, v] : vars) {
      names.emplace_back(k);
      if (v) ::setenv(k, v, 1); else ::unsetenv(k);
    }
  }
  ~Env() {
    for (const auto& k : names) ::unsetenv(k.c_str());
  }
};

/// A group of two ranks in one process, without communication: rank 0 sees its own values as
/// the others' (the average is the identity), except that `drift` makes the ranks disagree on max().
struct LoneRank : train::GradientSync {
  bool drift = false;
  int64_t rank() const override { return 0; }
  int64_t world_size() const override { return 2; }
  void average(std::vector<at::Tensor>&) override {}
  void broadcast(std::vector<at::Tensor>&) override {}
  std::vector<double> max(std::vector<double> v) override {
    if (drift)
      for (auto& x : v) x += 1;  // another rank's value is larger
    return v;
  }
  void barrier() override {}
};

}  // namespace

// Run by the test below in two processes (RANK 0 and 1): trains and writes its checkpoint.
TEST_CASE("data-parallel rank (started by the two-rank test)", "[.dp-rank]") {
  const auto env = train::DistributedEnv::from_environment();
  REQUIRE(env);
  at::set_num_threads(1);
  auto group = std::make_shared<train::ProcessGroup>(*env, c10::Device("cpu"), std::chrono::seconds(60));
  torch::manual_seed(static_cast<uint64_t>(7 + env->rank));  // different weights at first: the broadcast unifies them
  DPModel model(test::tiny_options());
  torch::manual_seed(0);  // the same draws (t, ε) on every rank
  train::Trainer<DPModel> trainer(model, run_options(3).sync(group).sync_check_every(1));
  const auto [norms, losses] = train_three_steps(trainer);
  const fs::path out = std::getenv("CASDM_DP_OUT");
  trainer.save(out / fmt::format("rank{}.pt", env->rank));
  io::write_tensor_file(out / fmt::format("rank{}-steps.pt", env->rank), {{{"norms", norms}, {"losses", losses}}, {}});
}

TEST_CASE("two ranks (Gloo) train as one process on the combined batch", "[distributed]") {
  const auto dir = test::scratch("dp-two-ranks");
  const int port = free_port();
  const pid_t r0 = start_rank(0, 2, port, dir, "[.dp-rank]"), r1 = start_rank(1, 2, port, dir, "[.dp-rank]");
  CHECK(wait_for(r0) == 0);
  CHECK(wait_for(r1) == 0);

  torch::manual_seed(7);  // rank 0's weights
  DPModel model(test::tiny_options());
  torch::manual_seed(0);
  const auto before = io::state_of(*model->denoiser()).at(unused_parameter).clone();
  train::Trainer<DPModel> single(model, run_options(0));
  const auto [norms, losses] = train_three_steps(single);
  const auto a = io::read_tensor_file(dir / "rank0.pt").tensors, b = io::read_tensor_file(dir / "rank1.pt").tensors;
  // Each step's gradient norm before clipping and its loss terms, as one process has them: a wrong
  // averaging scale (a sum, or a mean over micro-batches of unequal size) is seen here, where
  // AdamW's normalisation and the clipping would hide it in the weights.
  for (int r = 0; r < 2; ++r) {
    const auto steps = io::read_tensor_file(dir / fmt::format("rank{}-steps.pt", r)).tensors;
    CHECK(test::max_abs_diff(steps.at("norms") / norms, at::ones_like(norms)) < 2e-6);
    CHECK(test::max_abs_diff(steps.at("losses") / losses, at::ones_like(losses)) < 2e-6);
  }
  // The parameter no rank's backward reached got no update, as in one process (zeros would have
  // moved it: AdamW's weight decay).
  CHECK(at::equal(io::state_of(*single.model()->denoiser()).at(unused_parameter), before));
  CHECK(at::equal(a.at(std::string("model.") + unused_parameter), before));
  size_t compared = 0;
  for (const auto& [k, v] : io::state_of(*single.model())) {
    INFO(k);
    REQUIRE(a.count("model." + k));
    CHECK(at::equal(a.at("model." + k), b.at("model." + k)));  // the ranks agree bit for bit
    // One process: the same images, t and ε, the gradients summed in another order (the mean of
    // 8 images against the mean of two means of 4, each of two micro-batches): float32 rounding,
    // ~1e-7 relative, which AdamW's first steps (update ≈ lr · sign(g)) carry into the weights at
    // most as lr · 1e-3 here.
    CHECK(test::max_abs_diff(a.at("model." + k), v) < 2e-6);
    ++compared;
  }
  CHECK(compared > 50);
  for (const auto& [k, v] : a)
    if (k.rfind("ema.", 0) == 0 || k.rfind("optim.", 0) == 0) CHECK(at::equal(v, b.at(k)));
}

TEST_CASE("torchrun's environment: one process without it, each bad variable named", "[distributed]") {
  {
    Env e{{"WORLD_SIZE", nullptr}};
    CHECK_FALSE(train::DistributedEnv::from_environment());
  }
  {
    Env e{{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", nullptr}, {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "29400"}};
    const auto d = train::DistributedEnv::from_environment();
    REQUIRE(d);
    CHECK(d->world_size == 4);
    CHECK(d->rank == 3);
    CHECK(d->local_rank == 3);
    CHECK(d->master_addr == "10.0.0.1");
    CHECK(d->master_port == 29400);
  }
  auto refused = [](std::initializer_list<std::pair<const char*, const char*>> vars, const std::string& message) {
    Env e(vars);
    CHECK_THROWS_WITH(train::DistributedEnv::from_environment(), Catch::Contains(message));
  };
  refused({{"WORLD_SIZE", "2"}, {"RANK", nullptr}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1"}}, "RANK is not set");
  refused({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1"}}, "RANK=2: must be an integer in [0, 1]");
  refused({{"WORLD_SIZE", "two"}, {"RANK", "0"}}, "WORLD_SIZE=two: must be an integer");
  refused({{"WORLD_SIZE", "0"}, {"RANK", "0"}}, "WORLD_SIZE=0: must be an integer in [1,");
  refused({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT=70000");
  refused({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", nullptr}, {"MASTER_PORT", "29500"}}, "MASTER_ADDR is not set");
}

TEST_CASE("a rank that never comes ends the rendezvous within its timeout, in one line", "[distributed]") {
  // Rank 1 never comes: rank 0's rendezvous gives up after the timeout with a message.
  const auto env = train::DistributedEnv{0, 2, 0, "127.0.0.1", free_port()};
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(train::ProcessGroup(env, c10::Device("cpu"), std::chrono::seconds(3)),
                    Catch::Contains("rank 0: the 2 ranks did not all join the rendezvous at 127.0.0.1:"));
  // The timeout bounds the whole rendezvous (the store's wait and Gloo's after it), not each part.
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(4500));
  {  // A listener on MASTER_PORT that accepts and never answers: rank 1 gives up within its timeout too.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t n = sizeof a;
    REQUIRE((::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd, 8) == 0 &&
             ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) == 0));
    const auto t1 = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH(train::ProcessGroup(train::DistributedEnv{1, 2, 1, "127.0.0.1", ntohs(a.sin_port)}, c10::Device("cpu"),
                                          std::chrono::seconds(2)),
                      Catch::StartsWith("rank 1: the 2 ranks did not all join the rendezvous at 127.0.0.1:") &&
                          Catch::Contains("accepted the connection but never answered"));
    CHECK(std::chrono::steady_clock::now() - t1 < std::chrono::milliseconds(4500));
    ::close(fd);
  }
  CHECK_THROWS_WITH(train::ProcessGroup(env, c10::Device("cuda"), std::chrono::seconds(2)),
                    Catch::Contains("data-parallel training on cuda (NCCL) is not built yet"));
}

TEST_CASE("data-parallel steps refuse a batch the ranks cannot share, and stop when the weights drift", "[distributed]") {
  auto lone = std::make_shared<LoneRank>();
  torch::manual_seed(0);
  DPModel model(test::tiny_options());
  train::Trainer<DPModel> trainer(model, run_options(2).sync(lone).sync_check_every(2));
  CHECK_THROWS_WITH(trainer.step(at::zeros({5, 1, 8, 8})),
                    Catch::Contains("Trainer::step: a batch of 5 images does not divide among 2 ranks"));
  CHECK(trainer.step_count() == 0);
  trainer.step(batch(0));
  lone->drift = true;  // the check runs every 2 steps
  CHECK_THROWS_WITH(trainer.step(batch(1)), Catch::Contains("step 2: the weights of rank 0 differ from the other ranks'"));
  lone->drift = false;
  CHECK_NOTHROW(trainer.step(batch(2)));
}
