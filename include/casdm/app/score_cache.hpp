#pragma once
// Results kept by key in one JSON file as soon as each is known, so that a long evaluation stopped
// part-way (a signal, the end of a session) and started again with the same arguments redoes only
// what is missing — casdm-ablation's OUT/cells.json, one entry per table cell.
//
//   casdm::app::ScoreCache cells(out / "cells.json");      // read if it exists
//   const auto key = casdm::app::file_key(checkpoint) + "|steps=100";
//   if (auto* hit = cells.find(key)) use(*hit);
//   else cells.put(key, score());                          // on disk at once (atomic)
#include "casdm/io/files.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace casdm::app {

/// A file as a cache key sees it: "<absolute path>|<size>|<modification time>", so that a file
/// rewritten in place (a row trained again) never matches the entries of the one before.
inline std::string file_key(const std::filesystem::path& file) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: {}", file.string(), ec.message()));
  const auto time = std::filesystem::last_write_time(file, ec).time_since_epoch().count();
  if (ec) throw std::runtime_error(fmt::format("{}: {}", file.string(), ec.message()));
  return fmt::format("{}|{}|{}", std::filesystem::absolute(file).lexically_normal().string(), size, time);
}

class ScoreCache {
 public:
  /// Reads `file` if it exists; one that is not a JSON object is refused, and left as it is.
  explicit ScoreCache(std::filesystem::path file) : file_(std::move(file)) {
    if (!std::filesystem::exists(file_)) return;
    std::ifstream in(file_);
    entries_ = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!entries_.is_object())
      throw std::runtime_error(file_.string() + " is not a cache of scores (remove it to start afresh)");
  }

  /// The entry under `key`, or null.
  const nlohmann::json* find(const std::string& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : &*it;
  }
  /// Keeps `value` under `key` (replacing an entry) and rewrites the file at once, atomically: a
  /// crash leaves the file as it was before this call or as after it.
  void put(const std::string& key, nlohmann::json value) {
    entries_[key] = std::move(value);
    io::write_atomic(file_, entries_.dump(2) + "\n");
  }

  size_t size() const { return entries_.size(); }
  const std::filesystem::path& path() const { return file_; }

 private:
  std::filesystem::path file_;
  nlohmann::json entries_ = nlohmann::json::object();
};

}  // namespace casdm::app
