// Rule: L_x0star trains theta's own x0 estimate, which only the EDM cascade's theta outputs; in the
// paper's cascade x0star is derived from a detached eps. Twin: CasDM_EDM's losses on CascadedEDM.
// expect: casdm rule: L_x0star needs a topology whose theta outputs x0star itself
#include "casdm/presets.hpp"
using namespace casdm;
#ifdef CASDM_EXPECT_FAIL
using S = schedule::Cosine;
using Topo = topology::Cascaded<>;
#else
using S = schedule::EDM;
using Topo = topology::CascadedEDM<>;
#endif
using M = Model<S, Topo, loss::Set<loss::Weighted<loss::X0StarMSE<>, loss::weighting::EDM<>>, loss::X0MSE<>, loss::MuMix<>>,
                sampler::Heun<18>>;
static_assert(sizeof(M::Impl) > 0);
