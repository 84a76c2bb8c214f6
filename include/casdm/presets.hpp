#pragma once
// Every preset of the paper (An et al. 2024) and the registry that chooses one by name at run time.
//   casdm/presets/table1.hpp    DDPM_Eps, DDPM_X0, Dual, CasDM, CasDM_FixRes, CasDM_FixRes_Concat,
//                               and beyond the paper DDPM_V, CasDM_V, EDM, CasDM_EDM
//   casdm/presets/lpips.hpp     DDPM_X0_LPIPS, Dual_LPIPS, CasDM_LPIPS, CasDM_FixRes_LPIPS
//   casdm/presets/features.hpp  CasDM_ResNet, CasDM_Inception, CasDM_Swin, CasDM_SmallVGG
// Include one of those alone to parse less (the metric networks and the weight-file reader are
// dear to compile).
//
//   casdm::presets::visit("CasDM", [&](auto type) { using P = typename decltype(type)::type; ... });
//   casdm::presets::names();            // {"DDPM_Eps", "DDPM_X0", ...}
//   casdm::presets::traits("CasDM_LPIPS").features;   // true: needs ObjectiveOptions::feature_weights
//   casdm::presets::find_by_identity("cosine | eps-only(unet) | eps:1");   // "DDPM_Eps"
#include "casdm/presets/features.hpp"
#include "casdm/presets/lpips.hpp"
#include "casdm/presets/table1.hpp"

#include <boost/hana/pair.hpp>
#include <boost/hana/string.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace casdm::presets {

/// Every preset by name, in the paper's order (the v-variants and EDM last):
///   casdm::presets::for_each([&](const char* name, auto type) { using P = typename decltype(type)::type; });
template <class F>
void for_each(F&& f) {
  namespace hana = boost::hana;
  auto list = hana::make_tuple(
      hana::make_pair(BOOST_HANA_STRING("DDPM_Eps"), hana::type_c<DDPM_Eps>),
      hana::make_pair(BOOST_HANA_STRING("DDPM_X0"), hana::type_c<DDPM_X0>),
      hana::make_pair(BOOST_HANA_STRING("Dual"), hana::type_c<Dual>),
      hana::make_pair(BOOST_HANA_STRING("CasDM"), hana::type_c<CasDM>),
      hana::make_pair(BOOST_HANA_STRING("CasDM_FixRes"), hana::type_c<CasDM_FixRes>),
      hana::make_pair(BOOST_HANA_STRING("CasDM_FixRes_Concat"), hana::type_c<CasDM_FixRes_Concat>),
      hana::make_pair(BOOST_HANA_STRING("DDPM_X0_LPIPS"), hana::type_c<DDPM_X0_LPIPS>),
      hana::make_pair(BOOST_HANA_STRING("Dual_LPIPS"), hana::type_c<Dual_LPIPS>),
      hana::make_pair(BOOST_HANA_STRING("CasDM_LPIPS"), hana::type_c<CasDM_LPIPS>),
      hana::make_pair(BOOST_HANA_STRING("CasDM_FixRes_LPIPS"), hana::type_c<CasDM_FixRes_LPIPS>),
      hana::make_pair(BOOST_HANA_STRING("CasDM_ResNet"), hana::type_c<CasDM_ResNet>),
      hana::make_pair(BOOST_HANA_STRING("CasDM_Inception"), hana::type_c<CasDM_Inception>),
      hana::make_pair(BOOST_HANA_STRING("CasDM_Swin"), hana::type_c<CasDM_Swin>),
      hana::make_pair(BOOST_HANA_STRING("CasDM_SmallVGG"), hana::type_c<CasDM_SmallVGG>),
      hana::make_pair(BOOST_HANA_STRING("DDPM_V"), hana::type_c<DDPM_V>),
      hana::make_pair(BOOST_HANA_STRING("CasDM_V"), hana::type_c<CasDM_V>),
      hana::make_pair(BOOST_HANA_STRING("EDM"), hana::type_c<EDM>),
      hana::make_pair(BOOST_HANA_STRING("CasDM_EDM"), hana::type_c<CasDM_EDM>));
  hana::for_each(list, [&](auto p) { f(hana::to<const char*>(hana::first(p)), hana::second(p)); });
}

/// The names of every preset, in the paper's order.
inline std::vector<std::string> names() {
  std::vector<std::string> out;
  for_each([&](const char* n, auto) { out.emplace_back(n); });
  return out;
}

/// Calls f(hana::type_c<Preset>) for the preset called `name` and returns what f returns (f must
/// return the same type for every preset). An unknown name is refused, listing the known ones.
template <class F>
auto visit(std::string_view name, F&& f) {
  using R = decltype(f(boost::hana::type_c<DDPM_Eps>));
  bool found = false;
  if constexpr (std::is_void_v<R>) {
    for_each([&](const char* n, auto type) {
      if (!found && name == n) {
        found = true;
        f(type);
      }
    });
    if (!found) throw std::invalid_argument(fmt::format("unknown preset '{}'; choose one of: {}", name, fmt::join(names(), ", ")));
  } else {
    std::optional<std::remove_cvref_t<R>> out;
    for_each([&](const char* n, auto type) {
      if (!out && name == n) out.emplace(f(type));
    });
    if (!out) throw std::invalid_argument(fmt::format("unknown preset '{}'; choose one of: {}", name, fmt::join(names(), ", ")));
    return std::remove_cvref_t<R>(std::move(*out));  // by value: out dies here
  }
}

/// The preset whose model identity (Model::Impl::identity(), a checkpoint's casdm.identity) is
/// `identity`, or failing that the first whose denoiser identity it is (a model file's
/// casdm.denoiser: presets that differ only in their loss share a denoiser); none if no preset has it.
inline std::optional<std::string> find_by_identity(std::string_view identity) {
  std::optional<std::string> model, denoiser;
  for_each([&](const char* n, auto type) {
    using P = typename decltype(type)::type;
    if (!model && identity == P::Impl::identity()) model = n;
    if (!denoiser && identity == P::Denoiser::Impl::identity()) denoiser = n;
  });
  return model ? model : denoiser;
}

/// What a preset is made of, for programs that refuse options meaning nothing to it.
struct Traits {
  std::string topology;  // "eps-only", "x0-only", "v-only", "dual-head", "cascaded", "cascaded-v"
  std::string sampler;   // "ddim", ...
  bool phi_net = false;   // has a φ network of its own, sized by DenoiserOptions::phi_net (cascaded)
  bool features = false;  // has a feature loss: reads ObjectiveOptions::feature_size / feature_weights
  bool continuous = false;  // a continuous σ schedule (EDM's): the σ-spaced samplers take every σ exactly
  std::vector<std::pair<std::string, double>> losses;  // term names and weights λ
};

/// The traits of a model type.
template <class P>
Traits traits_of() {
  using I = typename P::Impl;
  return {I::topology_type::name, I::sampler_type::name, topology::uses_phi_net<typename I::topology_type>,
          I::losses_type::uses_features, schedule::Continuous<typename I::schedule_type>, I::losses_type::describe()};
}

/// The traits of the preset called `name` (unknown names refused as by visit).
inline Traits traits(std::string_view name) {
  return visit(name, [](auto type) { return traits_of<typename decltype(type)::type>(); });
}

}  // namespace casdm::presets
