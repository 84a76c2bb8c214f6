#pragma once
// Stable names. Every policy carries a registered `name` ("cosine", "cascaded", "eps", "ddim", ...);
// a policy with compile-time parameters also spells them in `spec()` ("ddim(100)", "min-snr(5)",
// "cascaded(fixres <- concat, unet)"). A composition's identity is built from these alone (grammar in
// docs/policies.md, "Identities"), so it is the same text on every compiler and standard library and
// never the compiler's spelling of a type:
//
//   casdm::presets::CasDM::Impl::identity();   // "cosine | cascaded(unet <- x0star, unet) | eps:1 + x0:1 + mu:1"
//   casdm::names::spec<casdm::sampler::DDIM<10>>();   // "ddim(10)"
#include <fmt/format.h>

#include <concepts>
#include <string>

namespace casdm::names {

/// A std::ratio as exact text: "1", "1/10", "-3/2" (std::ratio is reduced, so the text is canonical).
template <class R>
std::string ratio() {
  return R::den == 1 ? fmt::format("{}", R::num) : fmt::format("{}/{}", R::num, R::den);
}

/// The name of policy P with its compile-time parameters: P::spec() where P has one, else P::name.
template <class P>
std::string spec() {
  if constexpr (requires { { P::spec() } -> std::convertible_to<std::string>; })
    return std::string(P::spec());
  else
    return std::string(P::name);
}

}  // namespace casdm::names
