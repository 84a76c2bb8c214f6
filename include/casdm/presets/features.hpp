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
