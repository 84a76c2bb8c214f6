#pragma once
// One compiled copy of each preset's code, for programs that link the library casdm::presets.
//
// Each family header (table1.hpp, lpips.hpp, features.hpp) ends with its presets' explicit
// instantiations, written with the macros below and a family switch:
//   CASDM_INSTANTIATE_<FAMILY> defined — instantiation definitions: the family's .cpp in src/
//                                        compiles the denoisers, objectives, models and DDIM runs;
//   else CASDM_PRESETS_LIBRARY defined — extern declarations: a translation unit that links the
//                                        library (its target sets this) compiles none of that code;
//   else                               — nothing: plain header-only use, everything instantiated
//                                        where it is used, as for any template.
// The member functions of DenoiserImpl, ObjectiveImpl and ModelImpl are defined outside their
// classes (not inline) so that an extern declaration really keeps them out of a translation unit.
#include "casdm/denoiser.hpp"
#include "casdm/model.hpp"
#include "casdm/objective.hpp"

/// Denoiser type D (a casdm::Denoiser). Sampling is compiled once per sampler, whatever the denoiser
/// (casdm::sample on AnyDenoiser).
#define CASDM_INSTANTIATE_DENOISER(EXTERN, D) \
  EXTERN template class casdm::DenoiserImpl<D::Impl::schedule_type, D::Impl::topology_type>;

/// The objective of loss set L (its constructor loads the metric networks).
#define CASDM_INSTANTIATE_OBJECTIVE(EXTERN, L) EXTERN template class casdm::ObjectiveImpl<L>;

/// Preset P's model and its objective applied to its denoiser.
#define CASDM_INSTANTIATE_MODEL(EXTERN, P)                                                                     \
  EXTERN template casdm::loss::LossReport casdm::ObjectiveImpl<P::Impl::losses_type>::forward<P::Denoiser::Impl>( \
      P::Denoiser::Impl&, const at::Tensor&);                                                                  \
  EXTERN template casdm::loss::LossReport casdm::ObjectiveImpl<P::Impl::losses_type>::forward<P::Denoiser::Impl>( \
      P::Denoiser::Impl&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,          \
      const casdm::Process*);                                                                                  \
  EXTERN template class casdm::ModelImpl<P::Impl::schedule_type, P::Impl::topology_type, P::Impl::losses_type, \
                                         P::Impl::sampler_type>;
