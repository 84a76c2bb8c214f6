// Rule: a feature (metric-function) loss needs an x0 head. Twin: the same loss on x0-only.
// expect: casdm rule: L_x0 and feature losses need a topology with an x0 head
#include "casdm/loss/feature.hpp"
#include "casdm/presets.hpp"

#include <torch/nn/modules/conv.h>
using namespace casdm;
struct Backbone {
  static constexpr const char* name = "b";
  using Module = torch::nn::Conv2d;
  static Module make(const ObjectiveOptions&) { return torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 1, 1)); }
  static at::Tensor distance(Module& m, const at::Tensor& a, const at::Tensor& b) { return (m(a) - m(b)).square().mean(); }
};
#ifdef CASDM_EXPECT_FAIL
using M = Model<schedule::Cosine, topology::EpsOnly<>, loss::Set<loss::EpsMSE<>, loss::Feature<Backbone>>, sampler::DDIM<>>;
#else
using M = Model<schedule::Cosine, topology::X0Only<>, loss::Set<loss::X0MSE<>, loss::Feature<Backbone>>, sampler::DDIM<>>;
#endif
static_assert(sizeof(M::Impl) > 0);
