#pragma once
// Data-parallel training on PyTorch's c10d: the rendezvous torchrun sets up (RANK, WORLD_SIZE,
// LOCAL_RANK, MASTER_ADDR, MASTER_PORT), a TCPStore, and ProcessGroupGloo on CPU tensors.
//
//   auto env = casdm::train::DistributedEnv::from_environment();   // nullopt: one process
//   auto group = std::make_shared<casdm::train::ProcessGroup>(*env, device);
//   casdm::train::Trainer<Model> trainer(model, casdm::train::TrainerOptions().sync(group));
//   trainer.step(global_batch);   // the same batch on every rank; each trains on its shard
//
// Needs LibTorch's distributed build (Debian's libtorch-dev has it) and gloo's headers (Debian:
// libgloo-dev). CUDA tensors (NCCL) are refused for now.
#include "casdm/core/errors.hpp"
#include "casdm/train/trainer.hpp"

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <charconv>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::train {

/// torchrun's environment contract.
struct DistributedEnv {
  int64_t rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;

  /// From RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; nullopt when WORLD_SIZE is
  /// unset (one process). A variable that is malformed or out of range, or missing while
  /// WORLD_SIZE is set, is refused in one line naming it. LOCAL_RANK defaults to RANK.
  static std::optional<DistributedEnv> from_environment() {
    const char* world = std::getenv("WORLD_SIZE");
    if (!world) return std::nullopt;
    auto number = [](const char* name, int64_t lo, int64_t hi, std::optional<int64_t> fallback = {}) -> int64_t {
      const char* v = std::getenv(name);
      if (!v) {
        if (fallback) return *fallback;
        throw std::runtime_error(fmt::format("{} is not set (WORLD_SIZE is: data-parallel needs RANK, WORLD_SIZE, "
                                             "MASTER_ADDR and MASTER_PORT, as torchrun sets them)", name));
      }
      int64_t x = 0;
      const std::string s(v);
      const auto r = std::from_chars(s.data(), s.data() + s.size(), x);
      if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || x < lo || x > hi)
        throw std::runtime_error(fmt::format("{}={}: must be an integer in [{}, {}]", name, s, lo, hi));
      return x;
    };
    DistributedEnv e;
    e.world_size = number("WORLD_SIZE", 1, 1 << 20);
    e.rank = number("RANK", 0, e.world_size - 1);
    e.local_rank = number("LOCAL_RANK", 0, 1 << 20, e.rank);
    e.master_port = number("MASTER_PORT", 1, 65535);
    const char* addr = std::getenv("MASTER_ADDR");
    if (!addr || !*addr) throw std::runtime_error("MASTER_ADDR is not set (WORLD_SIZE is)");
    e.master_addr = addr;
    return e;
  }
};

/// A c10d process group for data-parallel training (GradientSync): a TCPStore at the master (rank
/// 0 serves it) and ProcessGroupGloo. Every collective waits at most `timeout`; a rank that died
/// or hangs makes the others' collectives throw within it.
class ProcessGroup final : public GradientSync {
 public:
  ProcessGroup(const DistributedEnv& env, c10::Device device, std::chrono::milliseconds timeout = std::chrono::minutes(5),
               size_t bucket_bytes = size_t{25} << 20)
      : env_(env), bucket_bytes_(bucket_bytes) {
    if (!device.is_cpu())
      throw std::runtime_error(fmt::format("data-parallel training on {} (NCCL) is not built yet; use the CPU (Gloo)",
                                           device.str()));
    ::c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    // One bound for the whole rendezvous: the store's wait for the ranks gives up silently at the
    // timeout, and Gloo would wait a timeout more; so every rank checks in on the store and waits for
    // the others within what is left of `timeout`, and Gloo starts only once all are there. The store
    // is reached on a thread of its own: a listener on MASTER_PORT that never answers (not a rank 0's
    // store, or a rank 0 that hangs) blocks c10d's client past any timeout, and then this rank gives
    // up without it (the thread is left to the process's end).
    const auto join_failed = [env, timeout](const std::string& why) {
      return std::runtime_error(fmt::format("rank {}: the {} ranks did not all join the rendezvous at {}:{} within {} s ({})",
                                            env.rank, env.world_size, env.master_addr, env.master_port,
                                            std::chrono::duration_cast<std::chrono::seconds>(timeout).count(), why));
    };
    struct Join {
      std::mutex m;
      std::condition_variable cv;
      bool done = false;
      c10::intrusive_ptr<::c10d::Store> store;
      std::exception_ptr error;
    };
    auto join = std::make_shared<Join>();
    std::thread([join, env, so, timeout, join_failed, start = std::chrono::steady_clock::now()] {
      c10::intrusive_ptr<::c10d::Store> store;
      std::exception_ptr error;
      try {
        try {
          store = c10::make_intrusive<::c10d::TCPStore>(env.master_addr, so);
        } catch (const std::exception& e) {
          throw std::runtime_error(fmt::format("rank {}: cannot {} the rendezvous at {}:{} ({})", env.rank,
                                               env.rank == 0 ? "open" : "reach", env.master_addr, env.master_port,
                                               first_line(e)));
        }
        try {
          for (int64_t joined = store->add("casdm/joined", 1); joined < env.world_size;
               joined = store->add("casdm/joined", 0)) {
            if (std::chrono::steady_clock::now() - start >= timeout) throw join_failed(fmt::format("{} of them came", joined));
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        } catch (const c10::Error& e) {
          throw join_failed(first_line(e));
        }
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(join->m);
      join->store = std::move(store), join->error = error, join->done = true;
      join->cv.notify_all();
    }).detach();
    {
      std::unique_lock<std::mutex> lock(join->m);
      if (!join->cv.wait_for(lock, timeout + std::chrono::seconds(2), [&] { return join->done; }))
        throw join_failed(fmt::format("{}:{} accepted the connection but never answered: another program on "
                                      "MASTER_PORT, or a rank 0 that hangs?", env.master_addr, env.master_port));
      if (join->error) std::rethrow_exception(join->error);
      store_ = join->store;
    }
    auto opts = ::c10d::ProcessGroupGloo::Options::create();
    opts->timeout = timeout;
    const bool local = env.master_addr == "127.0.0.1" || env.master_addr == "localhost" || env.master_addr == "::1";
    try {
      opts->devices.push_back(local ? ::c10d::ProcessGroupGloo::createDeviceForHostname(
                                          env.master_addr == "localhost" ? std::string("127.0.0.1") : env.master_addr)
                                    : ::c10d::ProcessGroupGloo::createDefaultDevice());  // this host's name
      group_ = c10::make_intrusive<::c10d::ProcessGroupGloo>(store_, static_cast<int>(env.rank),
                                                             static_cast<int>(env.world_size), opts);
    } catch (const std::exception& e) {
      throw join_failed(first_line(e));
    }
  }

  int64_t rank() const override { return env_.rank; }
  int64_t world_size() const override { return env_.world_size; }
  const DistributedEnv& env() const { return env_; }

  /// Refuses, on every rank and before any collective, ranks started with other `settings` (name →
  /// value) than rank 0's — where a mismatch would otherwise train on what nobody asked for, abort
  /// in Gloo or time out. Rank 0 compares every rank's, through the rendezvous's store, and all
  /// ranks throw the same SettingError naming the first setting that differs and both values.
  void agree(const std::map<std::string, std::string>& settings) {
    auto put = [&](const std::string& key, const std::string& text) {
      store_->set(key, std::vector<uint8_t>(text.begin(), text.end()));
    };
    auto get = [&](const std::string& key) {
      const auto bytes = store_->get(key);  // waits for it (the store's timeout)
      return std::string(bytes.begin(), bytes.end());
    };
    put(fmt::format("casdm/settings/{}", env_.rank), nlohmann::json(settings).dump());
    nlohmann::json verdict = nlohmann::json::object();
    if (env_.rank == 0) {
      for (int64_t r = 1; r < env_.world_size && verdict.empty(); ++r) {
        const auto theirs = nlohmann::json::parse(get(fmt::format("casdm/settings/{}", r))).get<std::map<std::string, std::string>>();
        std::set<std::string> names;
        for (const auto& [k, v] : settings) names.insert(k);
        for (const auto& [k, v] : theirs) names.insert(k);
        for (const auto& name : names) {
          auto value = [&](const std::map<std::string, std::string>& m) {
            auto it = m.find(name);
            return it == m.end() ? std::string("(unset)") : it->second;
          };
          if (value(settings) == value(theirs)) continue;
          verdict = {{"setting", name},
                     {"detail", fmt::format("{} on rank {}, {} on rank 0 (every rank must be started with the same "
                                            "settings)", value(theirs), r, value(settings))}};
          break;
        }
      }
      put("casdm/settings/verdict", verdict.dump());
    } else {
      verdict = nlohmann::json::parse(get("casdm/settings/verdict"));
    }
    if (!verdict.empty()) throw SettingError(verdict["setting"].get<std::string>(), verdict["detail"].get<std::string>());
  }

  /// Bucketed: tensors of one dtype are packed into flat buffers of up to `bucket_bytes`, each
  /// summed across the ranks in one all-reduce, divided by the world size and copied back.
  void average(std::vector<at::Tensor>& tensors) override {
    at::NoGradGuard no_grad;
    size_t i = 0;
    while (i < tensors.size()) {
      size_t j = i, bytes = 0;
      while (j < tensors.size() && tensors[j].scalar_type() == tensors[i].scalar_type() &&
             (j == i || bytes + tensors[j].nbytes() <= bucket_bytes_))
        bytes += tensors[j].nbytes(), ++j;
      std::vector<at::Tensor> flat_parts;
      for (size_t k = i; k < j; ++k) flat_parts.push_back(tensors[k].reshape({-1}));
      std::vector<at::Tensor> flat{at::cat(flat_parts)};
      run("all-reduce", [&] { return group_->allreduce(flat); });
      flat[0].div_(static_cast<double>(env_.world_size));
      int64_t off = 0;
      for (size_t k = i; k < j; ++k) {
        const int64_t n = tensors[k].numel();
        tensors[k].copy_(flat[0].slice(0, off, off + n).view(tensors[k].sizes()));
        off += n;
      }
      i = j;
    }
  }

  /// Overlapped averaging: the gradients are packed into buckets in the reverse of their order
  /// (roughly the order backward completes them); a bucket's all-reduce starts, asynchronously,
  /// when its last gradient is ready, and finish() waits for them all.
  void begin(const std::vector<at::Tensor>& grads) override {
    if (!overlap_) return;
    if (slots_.size() != grads.size()) plan(grads);
    for (auto& b : buckets_) b.ready = 0, b.work.reset();
    next_ = 0;
  }
  void gradient_ready(size_t i, const at::Tensor& g) override {
    if (!overlap_ || i >= slots_.size()) return;
    const auto [b, offset] = slots_[i];
    auto& bucket = buckets_[b];
    bucket.flat.slice(0, offset, offset + g.numel()).copy_(g.reshape({-1}));
    ++bucket.ready;
    // Collectives start in the same order on every rank: bucket k only after buckets 0 … k−1.
    while (next_ < buckets_.size() && buckets_[next_].ready == buckets_[next_].members.size()) launch(buckets_[next_++]);
  }
  void finish(std::vector<at::Tensor>& grads) override {
    at::NoGradGuard no_grad;
    const auto t0 = std::chrono::steady_clock::now();
    if (!overlap_ || slots_.size() != grads.size()) {  // all of it after backward
      average(grads);
      waited_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return;
    }
    for (; next_ < buckets_.size(); ++next_) {  // buckets not complete (a parameter this step did not use) as they are
      for (size_t i : buckets_[next_].members) gradient_ready_copy(i, grads[i]);
      launch(buckets_[next_]);
    }
    for (auto& bucket : buckets_) {
      wait(bucket);
      bucket.flat.div_(static_cast<double>(env_.world_size));
      for (size_t i : bucket.members)
        grads[i].copy_(bucket.flat.slice(0, slots_[i].second, slots_[i].second + grads[i].numel()).view(grads[i].sizes()));
    }
    waited_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  /// Seconds the step waited for gradient all-reduces after its backward pass.
  double seconds_waiting() const { return waited_; }
  /// Whether all-reduces start during backward (default) or all after it (to measure the overlap).
  void overlap(bool on) { overlap_ = on; }

  void broadcast(std::vector<at::Tensor>& tensors) override {
    at::NoGradGuard no_grad;
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t.is_contiguous() ? t : t.contiguous()};
      run("broadcast", [&] { return group_->broadcast(one); });
      if (!one[0].is_same(t)) t.copy_(one[0]);
    }
  }

  std::vector<double> max(std::vector<double> values) override {
    std::vector<at::Tensor> v{at::tensor(values, at::kDouble)};
    run("all-reduce", [&] { return group_->allreduce(v, ::c10d::AllreduceOptions{::c10d::ReduceOp::MAX}); });
    const auto* p = v[0].data_ptr<double>();
    return std::vector<double>(p, p + values.size());
  }

  void barrier() override {
    run("barrier", [&] { return group_->barrier(); });
  }

 private:
  static std::string first_line(const std::exception& e) {
    const auto* c = dynamic_cast<const c10::Error*>(&e);
    std::string s = c ? c->what_without_backtrace() : e.what();
    if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
    return s;
  }
  struct Bucket {
    std::vector<size_t> members;
    at::Tensor flat;
    size_t ready = 0;
    c10::intrusive_ptr<::c10d::Work> work;
  };
  void plan(const std::vector<at::Tensor>& grads) {
    buckets_.clear();
    slots_.assign(grads.size(), {0, 0});
    size_t bytes = 0;
    for (size_t k = grads.size(); k-- > 0;) {
      const auto& g = grads[k];
      if (buckets_.empty() || bytes + g.nbytes() > bucket_bytes_ ||
          grads[buckets_.back().members.front()].scalar_type() != g.scalar_type())
        buckets_.emplace_back(), bytes = 0;
      auto& b = buckets_.back();
      slots_[k] = {buckets_.size() - 1, static_cast<int64_t>(bytes / g.element_size())};
      b.members.push_back(k);
      bytes += g.nbytes();
    }
    for (auto& b : buckets_) {
      int64_t n = 0;
      for (size_t i : b.members) n += grads[i].numel();
      b.flat = at::empty({n}, grads[b.members.front()].options());
    }
  }
  void gradient_ready_copy(size_t i, const at::Tensor& g) {
    auto& bucket = buckets_[slots_[i].first];
    bucket.flat.slice(0, slots_[i].second, slots_[i].second + g.numel()).copy_(g.reshape({-1}));
  }
  void launch(Bucket& b) {
    std::vector<at::Tensor> one{b.flat};
    try {
      b.work = group_->allreduce(one);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("rank {}: all-reduce failed — another rank has died or hangs ({})", env_.rank,
                                           first_line(e)));
    }
  }
  void wait(Bucket& b) {
    try {
      b.work->wait();
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("rank {}: all-reduce failed — another rank has died or hangs ({})", env_.rank,
                                           first_line(e)));
    }
  }

  template <class F>
  void run(const char* what, F&& start) {
    try {
      start()->wait();
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("rank {}: {} failed — another rank has died or hangs ({})", env_.rank, what,
                                           first_line(e)));
    }
  }

  DistributedEnv env_;
  size_t bucket_bytes_;
  c10::intrusive_ptr<::c10d::Store> store_;
  c10::intrusive_ptr<::c10d::ProcessGroupGloo> group_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<size_t, int64_t>> slots_;  // parameter → (bucket, offset in elements)
  bool overlap_ = true;
  size_t next_ = 0;  // the next bucket to start
  double waited_ = 0;
};

/// The process group torchrun's environment describes, or nullptr (no WORLD_SIZE, or one rank).
/// `batch`, the global batch, must divide among the ranks (else SettingError "batch"). CASDM_DIST_OVERLAP=0 starts every
/// all-reduce after backward (to measure the overlap).
inline std::shared_ptr<ProcessGroup> process_group_from_environment(c10::Device device, std::chrono::milliseconds timeout,
                                                                    int64_t batch) {
  const auto env = DistributedEnv::from_environment();
  if (!env || env->world_size == 1) return nullptr;
  if (batch % env->world_size != 0)
    throw SettingError("batch", fmt::format("{} does not divide among {} ranks", batch, env->world_size));
  auto group = std::make_shared<ProcessGroup>(*env, device, timeout);
  if (const char* o = std::getenv("CASDM_DIST_OVERLAP"); o && std::string(o) == "0") group->overlap(false);
  return group;
}

}  // namespace casdm::train
