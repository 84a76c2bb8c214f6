// Rule: L_mu needs a mixing weight r (dual head or cascaded). Twin: the same losses on the dual head.
// expect: casdm rule: L_mu needs a topology with a mixing weight r
#include "casdm/presets.hpp"
using namespace casdm;
#ifdef CASDM_EXPECT_FAIL
using Topo = topology::X0Only<>;
#else
using Topo = topology::DualHead<>;
#endif
using M = Model<schedule::Cosine, Topo, loss::Set<loss::X0MSE<>, loss::MuMix<>>, sampler::DDIM<>>;
static_assert(sizeof(M::Impl) > 0);
