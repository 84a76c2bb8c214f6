#pragma once
// Table 3's other feature losses (ResNet-50, Inception v3, Swin-T) and the CPU-scale SmallVGG row.
#include "casdm/loss/inception.hpp"
#include "casdm/loss/resnet.hpp"
#include "casdm/loss/small_vgg.hpp"
#include "casdm/loss/swin.hpp"
#include "casdm/presets/table1.hpp"

namespace casdm::presets {

/// Table 3: the ResNet-50 feature loss (λ = 0.1) in place of LPIPS.
using CasDM_ResNet = Model<PaperSchedule, topology::Cascaded<>,
                           loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<>, loss::ResNetLoss<>>, PaperSampler>;
/// Table 3: the Inception v3 feature loss (λ = 0.1).
using CasDM_Inception = Model<PaperSchedule, topology::Cascaded<>,
                              loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<>, loss::InceptionLoss<>>, PaperSampler>;
/// Table 3: the Swin-T feature loss (λ = 0.1).
using CasDM_Swin = Model<PaperSchedule, topology::Cascaded<>,
                         loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<>, loss::SwinLoss<>>, PaperSampler>;

/// CPU scale: the metric a SmallVGG classifier trained on the data itself (casdm-metric), λ = 0.1.
using CasDM_SmallVGG = Model<PaperSchedule, topology::Cascaded<>,
                             loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<>, loss::SmallVGGLoss<>>, PaperSampler>;

}  // namespace casdm::presets

// Compiled once in the library casdm::presets (src/presets_features.cpp); see instantiation.hpp.
#if defined(CASDM_INSTANTIATE_FEATURES) || defined(CASDM_PRESETS_LIBRARY)
#include "casdm/presets/instantiation.hpp"
#ifdef CASDM_INSTANTIATE_FEATURES
#define CASDM_PRESETS_EXTERN
#else
#define CASDM_PRESETS_EXTERN extern
#endif
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_ResNet::Impl::losses_type)
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_Inception::Impl::losses_type)
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_Swin::Impl::losses_type)
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_SmallVGG::Impl::losses_type)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_ResNet)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_Inception)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_Swin)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_SmallVGG)
#undef CASDM_PRESETS_EXTERN
#endif
