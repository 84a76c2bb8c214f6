#pragma once
// Where the time of a step goes, per operator, through LibTorch's own profiler (the one behind
// Python's torch.profiler): run `f` `iterations` times under it, then every operator's calls, total
// time and self time (its time less that of the operators it called), largest self time first.
//
//   auto prof = casdm::train::profile_ops([&] { trainer.step(x0); }, 10);
//   fmt::print("{}", prof.table(20));   // op | calls/iter | self ms/iter | % | total ms/iter
//
// CPU operators are timed on the host; on CUDA the CPU side of each launch is what is timed (what a
// launch-bound step spends), with the device synchronised after each iteration.
#include "casdm/core/compat.hpp"

#include <ATen/ATen.h>
#include <c10/core/Device.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::train {

struct OpStat {
  std::string name;
  int64_t calls = 0;
  double self_us = 0, total_us = 0;
};

struct OpProfile {
  std::vector<OpStat> ops;  // largest self time first
  int64_t iterations = 0;
  double wall_us = 0;  // the profiled iterations, with the profiler's own overhead

  double self_us() const {
    double s = 0;
    for (const auto& o : ops) s += o.self_us;
    return s;
  }
  int64_t calls() const {
    int64_t n = 0;
    for (const auto& o : ops) n += o.calls;
    return n;
  }
  /// A Markdown table of the `top` operators with the largest self time, per iteration.
  std::string table(size_t top = 25) const {
    const double it = static_cast<double>(std::max<int64_t>(iterations, 1)), all = self_us();
    std::string s = fmt::format("{} operator calls per iteration, {:.2f} ms of operator self time per iteration, "
                                "{:.2f} ms wall per iteration under the profiler\n\n",
                                static_cast<double>(calls()) / it, all / it / 1e3, wall_us / it / 1e3);
    s += "| operator | calls/iter | self ms/iter | self % | total ms/iter |\n|---|---:|---:|---:|---:|\n";
    for (size_t i = 0; i < ops.size() && i < top; ++i) {
      const auto& o = ops[i];
      s += fmt::format("| {} | {:g} | {:.3f} | {:.1f} | {:.3f} |\n", o.name, static_cast<double>(o.calls) / it,
                       o.self_us / it / 1e3, all > 0 ? 100 * o.self_us / all : 0.0, o.total_us / it / 1e3);
    }
    return s;
  }
};

namespace detail {
struct Span {
  std::string name;
  uint64_t thread;
  double start, duration, children = 0;
};
/// Self times from intervals: per thread, an operator's children are the operators that start
/// and end inside it.
inline std::vector<OpStat> aggregate(std::vector<Span> spans) {
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    if (a.thread != b.thread) return a.thread < b.thread;
    if (a.start != b.start) return a.start < b.start;
    return a.duration > b.duration;
  });
  std::vector<size_t> open;
  for (size_t i = 0; i < spans.size(); ++i) {
    if (!open.empty() && spans[open.back()].thread != spans[i].thread) open.clear();
    while (!open.empty() && spans[open.back()].start + spans[open.back()].duration <= spans[i].start) open.pop_back();
    if (!open.empty()) spans[open.back()].children += spans[i].duration;
    open.push_back(i);
  }
  std::map<std::string, OpStat> by;
  for (const auto& s : spans) {
    auto& o = by[s.name];
    o.name = s.name;
    ++o.calls;
    o.total_us += s.duration;
    o.self_us += std::max(0.0, s.duration - s.children);
  }
  std::vector<OpStat> out;
  for (auto& [k, v] : by) out.push_back(std::move(v));
  std::sort(out.begin(), out.end(), [](const OpStat& a, const OpStat& b) { return a.self_us > b.self_us; });
  return out;
}
}  // namespace detail

/// Runs `f` once untimed (allocator, algorithm choices), then `iterations` times under the profiler.
inline OpProfile profile_ops(const std::function<void()>& f, int64_t iterations, c10::Device device = c10::kCPU) {
  namespace prof = torch::profiler::impl;
  if (iterations < 1) throw std::invalid_argument(fmt::format("profile_ops: iterations must be >= 1, got {}", iterations));
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
  };
  f();
  sync();
  std::set<prof::ActivityType> activities{prof::ActivityType::CPU};
  torch::autograd::profiler::prepareProfiler(prof::ProfilerConfig(prof::ProfilerState::KINETO), activities);
  torch::autograd::profiler::enableProfiler(prof::ProfilerConfig(prof::ProfilerState::KINETO), activities);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    for (int64_t i = 0; i < iterations; ++i) {
      f();
      sync();
    }
  } catch (...) {
    torch::autograd::profiler::disableProfiler();
    throw;
  }
  const double wall = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  auto result = torch::autograd::profiler::disableProfiler();
  std::vector<detail::Span> spans;
  for (const auto& e : result->events()) {
    if (e.deviceType() != c10::DeviceType::CPU) continue;
#if CASDM_TORCH_AT_LEAST(2, 1)
    spans.push_back({e.name(), e.startThreadId(), static_cast<double>(e.startNs()) / 1e3, static_cast<double>(e.durationNs()) / 1e3});
#else
    spans.push_back({e.name(), e.startThreadId(), static_cast<double>(e.startUs()), static_cast<double>(e.durationUs())});
#endif
  }
  return OpProfile{detail::aggregate(std::move(spans)), iterations, wall};
}

}  // namespace casdm::train
