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
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

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
    if (set_.labels.defined()) set_.labels = set_.labels.to(at::kLong).contiguous();  // once, not per batch
    for (int64_t k = 0; k < options_.prefetch(); ++k) {
      slots_.push_back(at::empty(batch_shape(), at::TensorOptions(at::kFloat).pinned_memory(options_.device().is_cuda())));
      free_.push_back(static_cast<size_t>(k));
    }
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
    const size_t k = ready_.front();
    ready_.pop_front();
    l.unlock();
    // The caller's own copy, allocated on the caller's thread; the slot goes back to the worker.
    auto b = options_.device().is_cuda() ? slots_[k].to(options_.device()) : slots_[k].clone();
    l.lock();
    free_.push_back(k);
    ++next_take_;
    l.unlock();
    cv_.notify_all();
    return b;
  }

  /// Indices into the data set of the images in step `step`'s batch (before flipping).
  at::Tensor indices_at(int64_t step) {
    auto v = indices(step);
    return at::tensor(v, at::kLong);
  }

  /// The class labels of step `step`'s batch (int64 [B] on options().device(), in the batch's order);
  /// after next(), labels_at(position() - 1) are the labels of the batch it returned.
  at::Tensor labels_at(int64_t step) {
    if (!set_.labels.defined()) throw std::invalid_argument("the data set " + set_.source + " has no class labels");
    if (set_.labels.dim() != 1 || set_.labels.size(0) != set_.size())  // images sliced, labels not
      throw std::invalid_argument(fmt::format("Loader: the {} labels of {} do not pair up with its {} images",
                                              set_.labels.numel(), set_.source, set_.size()));
    auto y = set_.labels.index_select(0, indices_at(step));
    return options_.device().is_cuda() ? y.to(options_.device()) : y;
  }

  /// next() and, when `labelled`, the labels of that batch: {images, labels (undefined otherwise)}.
  std::pair<at::Tensor, at::Tensor> next_labelled(bool labelled) {
    auto x = next();
    return {x, labelled ? labels_at(next_take_ - 1) : at::Tensor{}};
  }

  /// The batch of step `step` (a pure function of the seed and the step).
  at::Tensor batch_at(int64_t step) {
    auto x = at::empty(batch_shape(), at::kFloat);
    fill(step, x);
    return options_.device().is_cuda() ? x.to(options_.device()) : x;
  }

 private:
  std::vector<int64_t> batch_shape() const {
    return {options_.batch_size(), set_.images.size(1), set_.images.size(2), set_.images.size(3)};
  }

  /// Writes step `step`'s batch into `x` (float, contiguous, batch_shape()). Plain loops, no
  /// ATen call: on the worker thread, ATen ops (index_select, randperm, even empty) made the
  /// training step ~20% slower on 2 cores (casdm-train, 2 threads, 5.4 → 3.5–4.1 steps/s); and the
  /// batch memory is allocated by the constructor and the caller, not by the worker.
  void fill(int64_t step, at::Tensor& x) {
    const int64_t b = options_.batch_size(), c = set_.images.size(1), h = set_.images.size(2), w = set_.images.size(3);
    const auto id = indices(step);
    std::vector<uint8_t> flip(static_cast<size_t>(b), 0);
    if (options_.hflip()) {
      std::mt19937_64 rng(mix(options_.seed() ^ 0x5EEDF11Bull, static_cast<uint64_t>(step)));
      for (auto& f : flip) f = static_cast<uint8_t>(rng() >> 63);
    }
    const uint8_t* src = set_.images.data_ptr<uint8_t>();
    float* dst = x.data_ptr<float>();
    for (int64_t i = 0; i < b; ++i)
      for (int64_t r = 0; r < c * h; ++r) {
        const uint8_t* in = src + (id[static_cast<size_t>(i)] * c * h + r) * w;
        float* out = dst + (i * c * h + r) * w;
        for (int64_t j = 0; j < w; ++j) out[j] = static_cast<float>(in[flip[i] ? w - 1 - j : j]) / 127.5f - 1.0f;
      }
  }

  static uint64_t mix(uint64_t a, uint64_t b) {  // splitmix64 of the pair
    uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  std::vector<int64_t> indices(int64_t step) {
    const int64_t n = set_.size(), b = options_.batch_size();
    std::vector<int64_t> out(static_cast<size_t>(b));
    std::lock_guard<std::mutex> l(perm_mu_);  // the worker and the caller may both ask
    for (int64_t j = 0; j < b; ++j) out[static_cast<size_t>(j)] = permutation((step * b + j) / n)[(step * b + j) % n];
    return out;
  }

  /// Epoch `epoch`'s order of the data set: a Fisher–Yates shuffle by a generator seeded with
  /// (seed, epoch). Plain code, no ATen op, for the worker thread's sake (see fill()).
  const int64_t* permutation(int64_t epoch) {
    for (auto& [e, p] : perms_)
      if (e == epoch) return p.data();
    std::vector<int64_t> p(static_cast<size_t>(set_.size()));
    for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<int64_t>(i);
    std::mt19937_64 rng(mix(options_.seed(), static_cast<uint64_t>(epoch)));
    for (size_t i = p.size() - 1; i > 0; --i) std::swap(p[i], p[rng() % (i + 1)]);
    if (perms_.size() >= 2) perms_.pop_front();
    perms_.emplace_back(epoch, std::move(p));
    return perms_.back().second.data();
  }

  void work() {
    try {
      while (true) {
        int64_t step;
        size_t k;
        {
          std::unique_lock<std::mutex> l(mu_);
          cv_.wait(l, [&] { return stop_ || !free_.empty(); });
          if (stop_) return;
          k = free_.back();
          free_.pop_back();
          step = next_make_++;
        }
        fill(step, slots_[k]);
        {
          std::lock_guard<std::mutex> l(mu_);
          ready_.push_back(k);
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
  std::deque<std::pair<int64_t, std::vector<int64_t>>> perms_;
  std::mutex perm_mu_;
  int64_t next_make_, next_take_;
  double wait_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<at::Tensor> slots_;  // batches being filled or ready, allocated by the constructor
  std::deque<size_t> ready_;       // filled slots, in step order
  std::vector<size_t> free_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace casdm::data
