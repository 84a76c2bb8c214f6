#pragma once
// A loss set: the weighted sum Σ λ_i·L_i of distinct terms, the weights in the type.
//
//   using Losses = casdm::loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<>>;
#include "casdm/detail/hana.hpp"
#include "casdm/loss/concepts.hpp"

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
  static constexpr std::size_t size = sizeof...(Terms);
  /// A term computes features of a fixed network (it reads ModelOptions::feature_size/weights).
  static constexpr bool uses_features = (requires { Terms::default_size; } || ...);

  explicit Set(const ModelOptions& o) : terms_(Terms(o)...) {}

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
                auto weighted = v * ratio_value<typename T::weight>;
                r.total = r.total.defined() ? r.total + weighted : weighted;
                r.terms.emplace_back(T::name, std::move(v));
              }(t),
              ...);
        },
        terms_);
    return r;
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

 private:
  std::tuple<Terms...> terms_;
};

template <class S>
concept LossSet = requires { S::needs_eps_head; S::needs_x0_head; S::needs_mix; S::size; } &&
                  std::constructible_from<S, const ModelOptions&> &&
                  requires(S& s, torch::nn::Module& owner, const LossInputs& in) {
                    s.attach(owner);
                    { s(in) } -> std::same_as<LossReport>;
                  };

}  // namespace casdm::loss
