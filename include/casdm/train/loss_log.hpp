#pragma once
// A training run's loss log: every loss term at every step, as CSV (`step,total,<terms>`) on disk
// and as curves in memory (for charts and summaries).
//
//   casdm::train::LossLog log("out/losses.csv", casdm::presets::CasDM::Impl::losses_type::describe(),
//                             resumed ? std::optional<int64_t>(trainer.step_count()) : std::nullopt);
//   log.append(step, trainer.step(x0));     // one row; log.flush() before a checkpoint
//
// Resumed at step k it keeps the file's rows up to k (the checkpoint's step) and drops the rest, which
// the resumed run redoes, so the log matches the run exactly; a log of another run (other terms) or
// one missing a row is refused, naming the file. Resumed at step k with no file there (a run forked
// from another run's checkpoint into a new folder, or a log that was deleted) it starts a new log whose
// first row is step k + 1, and says so (started_anew()).
#include "casdm/io/tensor_file.hpp"
#include "casdm/io/text.hpp"
#include "casdm/loss/set.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <charconv>
#include <map>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace casdm::train {

/// An empty path keeps the log in memory only (no file; a resume starts it empty).
class LossLog {
 public:
  LossLog(std::filesystem::path path, const std::vector<std::pair<std::string, double>>& terms,
          std::optional<int64_t> resume_at = std::nullopt)
      : path_(std::move(path)) {
    series_.push_back("total");
    for (const auto& [name, weight] : terms) series_.push_back(name);
    curves_.resize(series_.size());
    if (path_.empty()) return;  // in memory only (the ranks of a data-parallel run but rank 0)
    const std::string header = fmt::format("step,{}", fmt::join(series_, ","));
    std::string kept = header + "\n";
    if (resume_at && !std::filesystem::exists(path_)) {
      first_step_ = *resume_at;
      started_anew_ = true;
    } else if (resume_at) {
      std::ifstream in(path_);
      std::string line;
      if (!std::getline(in, line) || line != header)
        throw std::runtime_error(fmt::format("{} is not this run's loss log (expected the header {})", path_.string(),
                                             header));
      while (std::getline(in, line)) {
        const auto cells = split(line);
        if (cells.size() != series_.size() + 1 || number(cells[0]) > static_cast<double>(*resume_at)) break;
        if (kept.size() == header.size() + 1)  // the first row: a log that began on a resume begins later
          first_step_ = std::max<int64_t>(0, static_cast<int64_t>(number(cells[0])) - 1);
        for (size_t i = 0; i < series_.size(); ++i) curves_[i].push_back(number(cells[i + 1]));
        kept += line + "\n";
      }
      if (static_cast<int64_t>(curves_[0].size()) != *resume_at - first_step_)
        throw std::runtime_error(fmt::format("{} has {} rows up to step {}, expected one per step", path_.string(),
                                             curves_[0].size(), *resume_at));
    }
    io::write_atomic(path_, std::vector<char>(kept.begin(), kept.end()));
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error(fmt::format("cannot append to {}: {}", path_.string(), std::strerror(errno)));
  }
  LossLog(const LossLog&) = delete;
  LossLog& operator=(const LossLog&) = delete;
  /// Closes the file; rows not flushed are written if they can be (call flush() to see failures).
  ~LossLog() {
    try {
      flush();
    } catch (...) {
    }
    if (fd_ >= 0) ::close(fd_);
  }

  /// One row: the report's total and terms (in the order of the loss set).
  void append(int64_t step, const loss::LossReport& r) {
    if (r.terms.size() + 1 != series_.size())
      throw std::invalid_argument(fmt::format("LossLog: {} terms reported, the log has {}", r.terms.size(),
                                              series_.size() - 1));
    curves_[0].push_back(r.total.item<double>());
    for (size_t i = 0; i < r.terms.size(); ++i) curves_[i + 1].push_back(r.terms[i].second.item<double>());
    std::string row = fmt::format("{}", step);
    for (const auto& c : curves_) row += fmt::format(",{:.9g}", c.back());
    pending_ += row;
    pending_ += '\n';
    if (pending_.size() > (1 << 16)) flush();
  }
  /// Writes the buffered rows; a failed write (a full disk) throws with the system's reason, and
  /// the rows stay buffered.
  void flush() {
    if (fd_ < 0) return pending_.clear();  // in memory only
    size_t done = 0;
    while (done < pending_.size()) {
      const ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        pending_.erase(0, done);
        throw std::runtime_error(fmt::format("cannot write {}: {}", path_.string(), std::strerror(err)));
      }
      done += static_cast<size_t>(n);
    }
    pending_.clear();
  }

  /// "total", then the loss set's term names.
  const std::vector<std::string>& series() const { return series_; }
  /// One curve per series, one value per logged step (the resumed rows included), the first at step
  /// first_step() + 1.
  const std::vector<std::vector<double>>& curves() const { return curves_; }
  /// The step before the log's first row: 0, or the step a log that started anew on resume began after.
  int64_t first_step() const { return first_step_; }
  /// Whether a resume found no log and began a new one after first_step().
  bool started_anew() const { return started_anew_; }
  /// The mean of each series over its last `fraction` of rows (at least one), by series name.
  std::map<std::string, double> tail_means(double fraction = 0.1) const {
    std::map<std::string, double> out;
    for (size_t i = 0; i < series_.size(); ++i) {
      const auto& c = curves_[i];
      const size_t n = std::max<size_t>(1, static_cast<size_t>(static_cast<double>(c.size()) * fraction));
      if (c.empty()) continue;
      double sum = 0;
      for (size_t k = c.size() - std::min(n, c.size()); k < c.size(); ++k) sum += c[k];
      out[series_[i]] = sum / static_cast<double>(std::min(n, c.size()));
    }
    return out;
  }
  /// "total 0.1234 eps 0.5678 …" of the last row (4 significant digits).
  std::string last() const {
    std::string s;
    for (size_t i = 0; i < series_.size(); ++i)
      s += fmt::format("{}{} {:.4g}", i ? " " : "", series_[i], curves_[i].empty() ? 0.0 : curves_[i].back());
    return s;
  }

 private:
  static std::vector<std::string> split(const std::string& line) {
    std::vector<std::string> out;
    size_t start = 0;
    while (true) {
      const auto comma = line.find(',', start);
      out.push_back(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) return out;
      start = comma + 1;
    }
  }
  double number(const std::string& s) const {
    double v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size())
      throw std::runtime_error(fmt::format("{}: '{}' is not a number", path_.string(), s));
    return v;
  }

  std::filesystem::path path_;
  std::vector<std::string> series_;
  std::vector<std::vector<double>> curves_;
  int64_t first_step_ = 0;
  bool started_anew_ = false;
  int fd_ = -1;
  std::string pending_;
};

}  // namespace casdm::train
