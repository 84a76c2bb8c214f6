#pragma once
// Batches for training, prepared on a background thread while the step runs.
//
//   casdm::data::Loader loader(set, casdm::data::LoaderOptions().batch_size(32).hflip(true).seed(0));
//   for (...) { auto x0 = loader.next(); ... }   // float [B, C, H, W] in [−1, 1] on the device
//
// The batch of step s is a fixed function of (seed, s): images are drawn without replacement in a
// fresh permutation each epoch (permutation e seeded by (seed, e)), flips by (seed, s). A resumed
// run starts the loader at its step and sees exactly the batches the straight run saw; the
// loader's own generators never touch the global one that the model draws t and ε from.
#include "casdm/data/idx.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/arg.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

namespace casdm::data {

struct LoaderOptions {
  TORCH_ARG(int64_t, batch_size) = 32;
  /// Flip each image horizontally with probability ½.
  TORCH_ARG(bool, hflip) = false;
  TORCH_ARG(uint64_t, seed) = 0;
  /// Batches prepared ahead; 0 prepares each one when asked (no thread).
  TORCH_ARG(int64_t, prefetch) = 2;
  /// Where batches go; CUDA batches are copied from pinned memory.
  TORCH_ARG(c10::Device, device) = c10::Device(c10::kCPU);
};

class Loader {
 public:
  /// Serves the batches of steps `first_step`, `first_step` + 1, ...
  Loader(ImageSet set, LoaderOptions o, int64_t first_step = 0)
      : set_(std::move(set)), options_(std::move(o)), next_make_(first_step), next_take_(first_step) {
    if (!set_.images.defined() || set_.images.dim() != 4 || set_.images.scalar_type() != at::kByte)
      throw std::invalid_argument("Loader: images must be uint8 [N, C, H, W]");
    if (set_.size() < 1) throw std::invalid_argument("Loader: the data set " + set_.source + " is empty");
    if (options_.batch_size() < 1) throw std::invalid_argument("Loader: batch size must be >= 1");
    if (options_.prefetch() < 0) throw std::invalid_argument("Loader: prefetch must be >= 0");
    set_.images = set_.images.contiguous();
    if (options_.prefetch() > 0) worker_ = std::thread([this] { work(); });
  }
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;
  ~Loader() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

  const ImageSet& dataset() const { return set_; }
  /// The step whose batch next() returns.
  int64_t position() const { return next_take_; }
  /// Seconds next() has spent waiting for the background thread, in all.
  double wait_seconds() const { return wait_; }

  /// The next step's batch: float [B, C, H, W] in [−1, 1] on options().device().
  at::Tensor next() {
    if (options_.prefetch() == 0) return batch_at(next_take_++);
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !ready_.empty() || error_; });
    wait_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (error_ && ready_.empty()) std::rethrow_exception(error_);
    auto b = std::move(ready_.front());
    ready_.pop_front();
    ++next_take_;
    l.unlock();
    cv_.notify_all();
    return b;
  }

  /// Indices into the data set of the images in step `step`'s batch (before flipping).
  at::Tensor indices_at(int64_t step) {
    const int64_t n = set_.size(), b = options_.batch_size();
    auto out = at::empty({b}, at::kLong);
    auto* o = out.data_ptr<int64_t>();
    std::lock_guard<std::mutex> l(perm_mu_);  // the worker and the caller may both ask
    for (int64_t j = 0; j < b; ++j) {
      const int64_t p = step * b + j;
      o[j] = permutation(p / n)[p % n];
    }
    return out;
  }

  /// The batch of step `step` (a pure function of the seed and the step).
  at::Tensor batch_at(int64_t step) {
    auto x = set_.images.index_select(0, indices_at(step)).to(at::kFloat).div_(127.5).sub_(1.0);
    if (options_.hflip()) {
      auto g = at::make_generator<at::CPUGeneratorImpl>(mix(options_.seed() ^ 0x5EEDF11Bull, static_cast<uint64_t>(step)));
      auto flip = at::rand({x.size(0)}, g).lt(0.5).view({-1, 1, 1, 1});
      x = at::where(flip, x.flip({3}), x);
    }
    if (options_.device().is_cuda()) return x.pin_memory().to(options_.device(), /*non_blocking=*/true);
    return x;
  }

 private:
  static uint64_t mix(uint64_t a, uint64_t b) {  // splitmix64 of the pair
    uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  const int64_t* permutation(int64_t epoch) {
    for (auto& [e, p] : perms_)
      if (e == epoch) return p.data_ptr<int64_t>();
    auto g = at::make_generator<at::CPUGeneratorImpl>(mix(options_.seed(), static_cast<uint64_t>(epoch)));
    if (perms_.size() >= 2) perms_.pop_front();
    perms_.emplace_back(epoch, at::randperm(set_.size(), g, at::kLong));
    return perms_.back().second.data_ptr<int64_t>();
  }

  void work() {
    try {
      while (true) {
        int64_t step;
        {
          std::unique_lock<std::mutex> l(mu_);
          cv_.wait(l, [&] { return stop_ || static_cast<int64_t>(ready_.size()) < options_.prefetch(); });
          if (stop_) return;
          step = next_make_++;
        }
        auto b = batch_at(step);
        {
          std::lock_guard<std::mutex> l(mu_);
          ready_.push_back(std::move(b));
        }
        cv_.notify_all();
      }
    } catch (...) {
      {
        std::lock_guard<std::mutex> l(mu_);
        error_ = std::current_exception();
      }
      cv_.notify_all();
    }
  }

  ImageSet set_;
  LoaderOptions options_;
  std::deque<std::pair<int64_t, at::Tensor>> perms_;
  std::mutex perm_mu_;
  int64_t next_make_, next_take_;
  double wait_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<at::Tensor> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace casdm::data
