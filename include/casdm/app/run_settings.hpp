#pragma once
// The settings that define a training run and the rule a resumed run follows: the program's
// option variables are registered by name, their values are stored in every checkpoint as
// "args.<name>" (text that reads back exactly: numbers by io::number_str), and a resumed run takes
// them from its checkpoint and refuses a command line that asks for other values — but for those
// registered as OnResume::may_change (the objective's: a moved weights folder, a loss weight),
// which the command line may give anew; changes() lists them.
//
//   casdm::app::RunSettings settings;
//   settings.add("batch", &batch);                  // the variable behind --batch
//   meta["args.batch"] = settings.values().at("batch");   // what the checkpoint keeps
//   ...on --resume:
//   settings.resume_from(casdm::app::stored_settings(info),
//                        [&](const std::string& name) { return app.count("--" + name) > 0; }, info.path.string());
#include "casdm/io/text.hpp"
#include "casdm/train/checkpoint.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace casdm::app {

namespace detail {
// A setting's text as checkpoints keep it (numbers: io::number_str, which reads back exactly).
inline std::string text(int64_t v) { return fmt::format("{}", v); }
inline std::string text(const std::string& v) { return v; }
inline std::string text(bool v) { return v ? "true" : "false"; }
inline std::string text(double v) { return io::number_str(v); }
template <class T>
std::string text(const std::vector<T>& v) {
  std::vector<std::string> parts;
  for (const auto& x : v) parts.push_back(text(x));
  return fmt::format("{}", fmt::join(parts, ","));
}
template <class T>
T parse_one(const std::string& s) {
  if constexpr (std::is_same_v<T, std::string>) {
    return s;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (s != "true" && s != "false") throw std::invalid_argument("not true/false: " + s);
    return s == "true";
  } else {
    T v{};
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size()) throw std::invalid_argument("not a number: " + s);
    return v;
  }
}
template <class T>
void parse(const std::string& s, T& out) {
  out = parse_one<T>(s);
}
template <class T>
void parse(const std::string& s, std::vector<T>& out) {
  std::vector<T> v;
  size_t start = 0;
  while (start < s.size()) {
    const size_t end = std::min(s.find(',', start), s.size());
    v.push_back(parse_one<T>(s.substr(start, end - start)));
    start = end + 1;
  }
  out = std::move(v);
}
}  // namespace detail

/// A setting's value as a checkpoint keeps it: "16", "0.99", "true", "1,2,2".
template <class T>
std::string setting_text(const T& v) {
  return detail::text(v);
}

/// The settings that define a run, each the variable behind an option.
class RunSettings {
 public:
  using Ref = std::variant<int64_t*, double*, bool*, std::string*, std::vector<int64_t>*, std::vector<double>*,
                           std::vector<std::string>*>;
  /// Whether a resumed run must keep a setting (the default) or may take a new value from its
  /// command line (settings of the objective, which the checkpoint's weights do not depend on).
  enum class OnResume { kept, may_change };
  /// Registers the variable behind option `name` (no dashes); it must outlive this object.
  void add(const std::string& name, Ref ref, OnResume on_resume = OnResume::kept) {
    if (name.empty() || name.front() == '-')
      throw std::invalid_argument(fmt::format("RunSettings: '{}' is not a setting's name (give it without dashes)", name));
    if (!refs_.emplace(name, ref).second)
      throw std::invalid_argument(fmt::format("RunSettings: '{}' is registered twice", name));
    if (on_resume == OnResume::may_change) changeable_.insert(name);
  }

  /// What the last resume_from took from the command line against the checkpoint:
  /// "--feature-weights /new (the run had /old)".
  const std::vector<std::string>& changes() const { return changes_; }

  /// The current values as text, by name.
  std::map<std::string, std::string> values() const {
    std::map<std::string, std::string> out;
    for (const auto& [k, r] : refs_) out[k] = std::visit([](auto* p) { return detail::text(*p); }, r);
    return out;
  }

  /// Takes the values in `stored` (a checkpoint's, named by `source` in errors). A setting that
  /// `given(name)` says is on this command line must agree with the stored one; every disagreement
  /// is listed in one error, and nothing is changed then. A setting missing from `stored` or one
  /// that does not read as its type is refused the same way.
  void resume_from(const std::map<std::string, std::string>& stored, const std::function<bool(const std::string&)>& given,
                   const std::string& source) {
    const auto mine = values();
    std::string conflicts;
    std::vector<std::string> changes;
    std::set<std::string> keep_mine;
    for (const auto& [k, v] : mine) {
      auto it = stored.find(k);
      const bool here = given && given(k);
      if (here && changeable_.count(k)) {  // the command line's value, whatever the run had
        keep_mine.insert(k);
        if (it == stored.end() || it->second != v)
          changes.push_back(fmt::format("--{} {} (the run had {})", k, v.empty() ? "\"\"" : v,
                                        it == stored.end() ? "none" : it->second.empty() ? "\"\"" : it->second));
        continue;
      }
      if (it == stored.end())
        throw std::runtime_error(fmt::format("{} does not record --{} (not written by casdm-train?)", source, k));
      if (here && it->second != v)
        conflicts += fmt::format("\n  --{} {} (the run has {})", k, v, it->second.empty() ? "\"\"" : it->second);
    }
    if (!conflicts.empty())
      throw std::runtime_error("a resumed run keeps its settings; these differ from " + source + ":" + conflicts);
    // Read every value first: a damaged one leaves all the variables as they were.
    std::vector<std::function<void()>> assign;
    for (auto& [k, r] : refs_) {
      if (keep_mine.count(k)) continue;
      try {
        std::visit([&](auto* p) {
          auto v = *p;
          detail::parse(stored.at(k), v);
          assign.push_back([p, v = std::move(v)] { *p = v; });
        }, r);
      } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format("{} has a damaged --{}: {}", source, k, e.what()));
      }
    }
    for (auto& a : assign) a();
    changes_ = std::move(changes);
  }

 private:
  std::map<std::string, Ref> refs_;
  std::set<std::string> changeable_;
  std::vector<std::string> changes_;
};

/// A checkpoint's stored settings ("args.<name>"), with the values that runs from before a setting
/// existed had: --precision fp32, --class-cond false, --label-dropout 0.1, no --loss-weight.
inline std::map<std::string, std::string> stored_settings(const train::CheckpointInfo& info) {
  auto stored = info.meta_under("args.");
  stored.try_emplace("precision", "fp32");
  stored.try_emplace("class-cond", "false");
  stored.try_emplace("label-dropout", io::number_str(0.1));
  stored.try_emplace("loss-weight", "");
  return stored;
}

}  // namespace casdm::app
