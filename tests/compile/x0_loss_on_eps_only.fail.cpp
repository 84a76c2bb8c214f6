// Rule: L_x0 needs a topology with an x0 head. Twin: the same losses on the dual head.
// expect: casdm rule: L_x0 and feature losses need a topology with an x0 head
#include "casdm/presets.hpp"
using namespace casdm;
#ifdef CASDM_EXPECT_FAIL
using Topo = topology::EpsOnly<>;
#else
using Topo = topology::DualHead<>;
#endif
using M = Model<schedule::Cosine, Topo, loss::Set<loss::EpsMSE<>, loss::X0MSE<>>, sampler::DDIM<>>;
static_assert(sizeof(M::Impl) > 0);
