#pragma once
// The paper's rows without a metric network (An et al. 2024, Tables 1, 4 and 5), and their
// v-prediction variants (DDPM_V, CasDM_V; beyond the paper), and EDM and CasDM_EDM (beyond the paper). Each takes
// DenoiserOptions whose defaults are the paper's: cosine schedule, T = 4000, U-Net 128 ch × 3 blocks,
// channel_mult (1,2,2,2), attention at 16 and 8, DDIM with 100 steps. Including this header alone
// parses no metric network and no serialization code.
#include "casdm/loss/mse.hpp"
#include "casdm/loss/set.hpp"
#include "casdm/model.hpp"
#include "casdm/net/unet.hpp"
#include "casdm/loss/weighting.hpp"
#include "casdm/sampler/ddim.hpp"
#include "casdm/sampler/karras.hpp"
#include "casdm/schedule/cosine.hpp"
#include "casdm/schedule/edm.hpp"
#include "casdm/topology/cascaded.hpp"
#include "casdm/topology/edm.hpp"
#include "casdm/topology/plain.hpp"

namespace casdm::presets {

using PaperSchedule = schedule::Cosine;
using PaperSampler = sampler::DDIM<100>;
using CasLosses = loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<>>;

/// Table 1: DDPM predicting ε.
using DDPM_Eps = Model<PaperSchedule, topology::EpsOnly<>, loss::Set<loss::EpsMSE<>>, PaperSampler>;
/// Table 1: DDPM predicting x0.
using DDPM_X0 = Model<PaperSchedule, topology::X0Only<>, loss::Set<loss::X0MSE<>>, PaperSampler>;
/// Table 1: dual diffusion (Benny & Wolf 2022): one network, x0′ + ε′ + r.
using Dual = Model<PaperSchedule, topology::DualHead<>, loss::Set<loss::X0MSE<>, loss::EpsMSE<>, loss::MuMix<>>,
                   PaperSampler>;
/// Table 1: Cas-DM, θ → ε′, φ(x0⋆) → x0′, r.
using CasDM = Model<PaperSchedule, topology::Cascaded<>, CasLosses, PaperSampler>;
/// Table 4: φ a Fix-Res CNN.
using CasDM_FixRes = Model<PaperSchedule, topology::Cascaded<net::arch::FixResCNN>, CasLosses, PaperSampler>;
/// Table 4: φ a Fix-Res CNN on concat(x0⋆, ε′).
using CasDM_FixRes_Concat =
    Model<PaperSchedule, topology::Cascaded<net::arch::FixResCNN, topology::phi_input::Concat>, CasLosses,
          PaperSampler>;

// Beyond the paper: the v-parameterisation (Salimans & Ho 2022).
/// DDPM predicting v; x0′ and ε′ derived.
using DDPM_V = Model<PaperSchedule, topology::VOnly<>, loss::Set<loss::VMSE<>>, PaperSampler>;
/// Cas-DM with θ predicting v: θ → v′ (L_v), x0⋆ from v′, φ(x0⋆) → x0′, r (L_x0, L_μ) as CasDM.
using CasDM_V = Model<PaperSchedule, topology::CascadedV<>, loss::Set<loss::VMSE<>, loss::X0MSE<>, loss::MuMix<>>,
                      PaperSampler>;

// Beyond the paper: EDM (Karras et al. 2022), the σ-parameterised side of the field.
/// EDM's recipe: the continuous σ process (σ in [0.002, 80], training ln σ ~ N(−1.2, 1.2²)), the
/// preconditioned denoiser D (an x0 head) trained by L_x0 under EDM's weight (σ² + σ_d²)/(σ·σ_d)², and
/// Heun's sampler with 18 steps (35 evaluations) at Karras's σ exactly.
using EDM = Model<schedule::EDM, topology::EDMPrecond<>, loss::Set<loss::Weighted<loss::X0MSE<>, loss::weighting::EDM<>>>,
                  sampler::Heun<18>>;
/// Cas-DM on EDM: θ is EDM's denoiser (x0⋆ = D_θ(x; σ), trained by EDM's weighted L_x0⋆), φ(sg[x0⋆])
/// → x0′, r trained by Cas-DM's L_x0 and L_μ (on the mixed estimate: no posterior at a continuous σ);
/// EDM's process and sampler.
using CasDM_EDM = Model<schedule::EDM, topology::CascadedEDM<>,
                        loss::Set<loss::Weighted<loss::X0StarMSE<>, loss::weighting::EDM<>>, loss::X0MSE<>, loss::MuMix<>>,
                        sampler::Heun<18>>;

}  // namespace casdm::presets

// Compiled once in the library casdm::presets (src/presets_table1.cpp); see instantiation.hpp.
#if defined(CASDM_INSTANTIATE_TABLE1) || defined(CASDM_PRESETS_LIBRARY)
#include "casdm/presets/instantiation.hpp"
#ifdef CASDM_INSTANTIATE_TABLE1
#define CASDM_PRESETS_EXTERN
#else
#define CASDM_PRESETS_EXTERN extern
#endif
CASDM_INSTANTIATE_DENOISER(CASDM_PRESETS_EXTERN, casdm::presets::DDPM_Eps::Denoiser)
CASDM_INSTANTIATE_DENOISER(CASDM_PRESETS_EXTERN, casdm::presets::DDPM_X0::Denoiser)
CASDM_INSTANTIATE_DENOISER(CASDM_PRESETS_EXTERN, casdm::presets::Dual::Denoiser)
CASDM_INSTANTIATE_DENOISER(CASDM_PRESETS_EXTERN, casdm::presets::CasDM::Denoiser)
CASDM_INSTANTIATE_DENOISER(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_FixRes::Denoiser)
CASDM_INSTANTIATE_DENOISER(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_FixRes_Concat::Denoiser)
CASDM_INSTANTIATE_DENOISER(CASDM_PRESETS_EXTERN, casdm::presets::DDPM_V::Denoiser)
CASDM_INSTANTIATE_DENOISER(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_V::Denoiser)
CASDM_INSTANTIATE_DENOISER(CASDM_PRESETS_EXTERN, casdm::presets::EDM::Denoiser)
CASDM_INSTANTIATE_DENOISER(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_EDM::Denoiser)
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::DDPM_Eps::Impl::losses_type)
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::DDPM_X0::Impl::losses_type)
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::Dual::Impl::losses_type)
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::CasDM::Impl::losses_type)
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::DDPM_V::Impl::losses_type)
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_V::Impl::losses_type)
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::EDM::Impl::losses_type)
CASDM_INSTANTIATE_OBJECTIVE(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_EDM::Impl::losses_type)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::DDPM_Eps)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::DDPM_X0)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::Dual)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::CasDM)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_FixRes)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_FixRes_Concat)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::DDPM_V)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_V)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::EDM)
CASDM_INSTANTIATE_MODEL(CASDM_PRESETS_EXTERN, casdm::presets::CasDM_EDM)
#undef CASDM_PRESETS_EXTERN
#endif
