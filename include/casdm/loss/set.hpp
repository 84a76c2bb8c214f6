#pragma once
// A loss set: the weighted sum Σ λ_i·L_i of distinct terms, the weights in the type.
//
//   using Losses = casdm::loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<>>;
#include "casdm/detail/hana.hpp"
#include "casdm/loss/concepts.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace casdm::loss {

/// The value of one training batch: the weighted total and every unweighted term by name.
struct LossReport {
  at::Tensor total;
  std::vector<std::pair<std::string, at::Tensor>> terms;

  const at::Tensor& operator[](const std::string& name) const {
    for (const auto& [n, v] : terms)
      if (n == name) return v;
    throw std::out_of_range("LossReport: no term named '" + name + "'");
  }
};

namespace detail {
/// The weights of terms `defaults` (name, the type's λ) with `overrides` applied by name; an unknown
/// name, or a negative or non-finite λ, is refused naming it. Not a template: compiled once per unit.
inline std::vector<double> term_weights(const std::vector<std::pair<std::string, double>>& defaults,
                                        const std::map<std::string, double>& overrides) {
  std::vector<double> out;
  for (const auto& d : defaults) out.push_back(d.second);
  for (const auto& [name, w] : overrides) {
    auto it = std::find_if(defaults.begin(), defaults.end(), [&](const auto& d) { return d.first == name; });
    if (it == defaults.end()) {
      std::string known;
      for (const auto& d : defaults) known += (known.empty() ? "" : ", ") + d.first;
      throw std::invalid_argument("loss weight '" + name + "': this model has no such loss term (its terms: " + known + ")");
    }
    if (!(w >= 0) || !std::isfinite(w))
      throw std::invalid_argument(fmt::format("loss weight '{}' = {}: a weight is a finite number >= 0", name, w));
    out[static_cast<size_t>(it - defaults.begin())] = w;
  }
  return out;
}
}  // namespace detail

template <LossTerm... Terms>
class Set {
  static_assert(sizeof...(Terms) > 0, "casdm rule: a loss set needs at least one term");
  static_assert(casdm::detail::unique_kinds<Terms...>(),
                "casdm rule: the same loss term appears twice in a loss set (weights are part of the term's "
                "type: give one term its total weight instead); see docs/policies.md");

 public:
  static constexpr bool needs_eps_head = (Terms::needs_eps_head || ...);
  static constexpr bool needs_x0_head = (Terms::needs_x0_head || ...);
  static constexpr bool needs_mix = (Terms::needs_mix || ...);
  static constexpr bool needs_v_head = (loss::needs_v_head<Terms> || ...);
  static constexpr bool needs_x0_star_head = (loss::needs_x0_star_head<Terms> || ...);
  static constexpr std::size_t size = sizeof...(Terms);
  /// A term computes features of a fixed network (it reads ObjectiveOptions::feature_size/weights).
  static constexpr bool uses_features = (requires { Terms::default_size; } || ...);

  /// The terms, each weighted by its type's λ or by o.loss_weights()[name]; an unknown name or a
  /// negative or non-finite λ is refused naming it.
  explicit Set(const ObjectiveOptions& o) : terms_(Terms(o)...) {
    const auto w = detail::term_weights(describe(), o.loss_weights());
    std::copy(w.begin(), w.end(), weights_.begin());
  }

  void attach(torch::nn::Module& owner) {
    std::apply([&](auto&... t) { (t.attach(owner), ...); }, terms_);
  }

  LossReport operator()(const LossInputs& in) {
    LossReport r;
    r.terms.reserve(size);
    std::apply(
        [&](auto&... t) {
          (
              [&](auto& term) {
                using T = std::remove_cvref_t<decltype(term)>;
                auto v = term(in);
                auto weighted = v * weights_[r.terms.size()];
                r.total = r.total.defined() ? r.total + weighted : weighted;
                r.terms.emplace_back(T::name, std::move(v));
              }(t),
              ...);
        },
        terms_);
    return r;
  }

  /// The set's part of an identity: its terms' specs joined by " + " ("eps:1 + x0:1 + mu:1").
  static std::string spec() {
    std::string out;
    casdm::detail::for_each_type<Terms...>([&](auto t) {
      out += (out.empty() ? "" : " + ") + term_spec<typename decltype(t)::type>();
    });
    return out;
  }

  /// Term names in order, with their weights.
  static std::vector<std::pair<std::string, double>> describe() {
    std::vector<std::pair<std::string, double>> out;
    casdm::detail::for_each_type<Terms...>([&](auto t) {
      using T = typename decltype(t)::type;
      out.emplace_back(T::name, ratio_value<typename T::weight>);
    });
    return out;
  }

  /// Term names in order, with the weights this set uses (the type's, or the options' overrides).
  std::vector<std::pair<std::string, double>> weights() const {
    auto out = describe();
    for (size_t i = 0; i < size; ++i) out[i].second = weights_[i];
    return out;
  }

 private:
  std::tuple<Terms...> terms_;
  std::array<double, size> weights_{};
};

template <class S>
concept LossSet = requires { S::needs_eps_head; S::needs_x0_head; S::needs_mix; S::size; } &&
                  std::constructible_from<S, const ObjectiveOptions&> &&
                  requires(S& s, torch::nn::Module& owner, const LossInputs& in) {
                    s.attach(owner);
                    { s(in) } -> std::same_as<LossReport>;
                  };

}  // namespace casdm::loss
