#pragma once
// A loss term: one weighted scalar of the training objective.
//
//   struct MyTerm {
//     using kind = MyTerm;                 // identity for "no term twice" (ignores the weight)
//     using weight = std::ratio<1>;        // λ, part of the type
//     static constexpr const char* name = "mine";
//     static constexpr bool needs_eps_head = false, needs_x0_head = true, needs_mix = false;
//     // optional: static constexpr bool needs_v_head = true;   (reads pred.v)
//     // optional: static constexpr bool needs_x0_star_head = true;   (reads pred.x0_star as θ's output)
//     explicit MyTerm(const ObjectiveOptions&);
//     void attach(torch::nn::Module& owner);        // register any (frozen) modules it owns
//     at::Tensor operator()(const LossInputs&);     // unweighted scalar
//   };
#include "casdm/loss/options.hpp"
#include "casdm/core/names.hpp"
#include "casdm/core/prediction.hpp"

#include <torch/nn/module.h>

#include <concepts>
#include <ratio>
#include <string>
#include <type_traits>

namespace casdm::loss {

namespace detail {
template <class R>
concept Ratio = requires {
  { R::num } -> std::convertible_to<intmax_t>;
  { R::den } -> std::convertible_to<intmax_t>;
};
}  // namespace detail

template <class L>
concept LossTerm = requires {
  typename L::kind;
  typename L::weight;
  { L::name } -> std::convertible_to<const char*>;
  { L::needs_eps_head } -> std::convertible_to<bool>;
  { L::needs_x0_head } -> std::convertible_to<bool>;
  { L::needs_mix } -> std::convertible_to<bool>;
} && detail::Ratio<typename L::weight> && std::constructible_from<L, const ObjectiveOptions&> &&
    requires(L& l, torch::nn::Module& owner, const LossInputs& in) {
      l.attach(owner);
      { l(in) } -> std::same_as<at::Tensor>;
    };

/// Whether a term reads θ's own x0⋆ with its graph (L_x0⋆ on CascadedEDM); undeclared: it does not.
template <class L>
inline constexpr bool needs_x0_star_head = requires { requires L::needs_x0_star_head; };

/// Whether a term reads a v head (L_v); a term that does not declare `needs_v_head` does not.
template <class L>
inline constexpr bool needs_v_head = requires { requires L::needs_v_head; };

template <class R>
inline constexpr double ratio_value = static_cast<double>(R::num) / static_cast<double>(R::den);

/// A term's part of an identity: "name[@weighting]:λ" ("eps:1", "eps@min-snr(5):1", "lpips(224):1/10"),
/// λ the exact ratio of the type.
template <class L>
std::string term_spec() {
  return names::spec<L>() + ":" + names::ratio<typename L::weight>();
}

/// Base for terms that own no module.
struct Stateless {
  explicit Stateless(const ObjectiveOptions&) {}
  void attach(torch::nn::Module&) {}
};

}  // namespace casdm::loss
