// Rule: L_v needs a v head (VOnly or CascadedV). Twin: the same loss on VOnly.
// expect: casdm rule: L_v needs a topology with a v head
#include "casdm/presets.hpp"
#include "casdm/sampler/registry.hpp"
using namespace casdm;
#ifdef CASDM_EXPECT_FAIL
using Topo = topology::EpsOnly<>;
#else
using Topo = topology::VOnly<>;
#endif
using M = Model<schedule::Cosine, Topo, loss::Set<loss::Weighted<loss::VMSE<>, loss::weighting::MinSNR<>>>, sampler::DPMSolverPP<>>;
static_assert(sizeof(M::Impl) > 0);
