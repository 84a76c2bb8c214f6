#pragma once
// The paper's rows with LPIPS (VGG16) as the metric function (Tables 1, 3 and 4).
#include "casdm/loss/lpips.hpp"
#include "casdm/presets/table1.hpp"

namespace casdm::presets {

/// Table 1 with the metric function: LPIPS (λ = 0.1) on the x0 prediction. Each needs
/// ObjectiveOptions::feature_weights, the folder of tools/export_weights.py's files.
using DDPM_X0_LPIPS =
    Model<PaperSchedule, topology::X0Only<>, loss::Set<loss::X0MSE<>, loss::LPIPSLoss<>>, PaperSampler>;
using Dual_LPIPS = Model<PaperSchedule, topology::DualHead<>,
                         loss::Set<loss::X0MSE<>, loss::EpsMSE<>, loss::MuMix<>, loss::LPIPSLoss<>>, PaperSampler>;
using CasLPIPSLosses = loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<>, loss::LPIPSLoss<>>;
using CasDM_LPIPS = Model<PaperSchedule, topology::Cascaded<>, CasLPIPSLosses, PaperSampler>;
/// Table 4: the Fix-Res φ with LPIPS.
using CasDM_FixRes_LPIPS = Model<PaperSchedule, topology::Cascaded<net::arch::FixResCNN>, CasLPIPSLosses, PaperSampler>;

}  // namespace casdm::presets

// Compiled once in the library casdm::presets (src/presets_lpips.cpp); see instantiation.hpp.
#if defined(CASDM_INSTANTIATE_LPIPS) || defined(CASDM_PRESETS_LIBRARY)
#include "casdm/presets/instantiation.hpp"
#ifdef CASDM_INSTANTIATE_LPIPS
#define CASDM_PRESETS_EXTERN
#else
#define CASDM_PRESETS_EXTERN extern
#endif
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::DDPM_X0_LPIPS::Impl::losses_type)
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::Dual_LPIPS::Impl::losses_type)
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_LPIPS::Impl::losses_type)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::DDPM_X0_LPIPS)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::Dual_LPIPS)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_LPIPS)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_FixRes_LPIPS)
#undef CASDM_PRESETS_EXTERN
#endif
