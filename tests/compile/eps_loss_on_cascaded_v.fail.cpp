// Rule: L_eps needs an eps head; CascadedV's theta predicts v (its eps is derived). Twin: CasDM's
// eps-predicting cascade with the same losses.
// expect: casdm rule: L_eps needs a topology with an eps head
#include "casdm/presets.hpp"
#include "casdm/sampler/registry.hpp"
using namespace casdm;
#ifdef CASDM_EXPECT_FAIL
using Topo = topology::CascadedV<>;
#else
using Topo = topology::Cascaded<>;
#endif
using M = Model<schedule::Cosine, Topo, loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<>>, sampler::Heun<>>;
static_assert(sizeof(M::Impl) > 0);
