#pragma once
// The paper's rows as types (An et al. 2024, Tables 1, 4 and 5). Each takes ModelOptions whose
// defaults are the paper's: cosine schedule, T = 4000, U-Net 128 ch × 3 blocks, channel_mult
// (1,2,2,2), attention at 16 and 8, DDIM with 100 steps.
#include "casdm/loss/inception.hpp"
#include "casdm/loss/lpips.hpp"
#include "casdm/loss/mse.hpp"
#include "casdm/loss/resnet.hpp"
#include "casdm/loss/set.hpp"
#include "casdm/loss/small_vgg.hpp"
#include "casdm/loss/swin.hpp"
#include "casdm/model.hpp"
#include "casdm/net/unet.hpp"
#include "casdm/sampler/ddim.hpp"
#include "casdm/schedule/cosine.hpp"
#include "casdm/topology/cascaded.hpp"
#include "casdm/topology/plain.hpp"

#include <boost/hana/pair.hpp>
#include <boost/hana/string.hpp>

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

/// Table 1 with the metric function: LPIPS (λ = 0.1) on the x0 prediction. Each needs
/// ModelOptions::feature_weights, the folder of tools/export_weights.py's files.
using DDPM_X0_LPIPS =
    Model<PaperSchedule, topology::X0Only<>, loss::Set<loss::X0MSE<>, loss::LPIPSLoss<>>, PaperSampler>;
using Dual_LPIPS = Model<PaperSchedule, topology::DualHead<>,
                         loss::Set<loss::X0MSE<>, loss::EpsMSE<>, loss::MuMix<>, loss::LPIPSLoss<>>, PaperSampler>;
using CasLPIPSLosses = loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<>, loss::LPIPSLoss<>>;
using CasDM_LPIPS = Model<PaperSchedule, topology::Cascaded<>, CasLPIPSLosses, PaperSampler>;
/// Table 4: the Fix-Res φ with LPIPS.
using CasDM_FixRes_LPIPS = Model<PaperSchedule, topology::Cascaded<net::arch::FixResCNN>, CasLPIPSLosses, PaperSampler>;

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

/// Every preset by name, for programs that choose one at run time:
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
      hana::make_pair(BOOST_HANA_STRING("CasDM_SmallVGG"), hana::type_c<CasDM_SmallVGG>));
  hana::for_each(list, [&](auto p) { f(hana::to<const char*>(hana::first(p)), hana::second(p)); });
}

}  // namespace casdm::presets
