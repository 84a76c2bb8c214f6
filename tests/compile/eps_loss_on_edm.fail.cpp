// Rule: L_eps needs an eps head; EDM's preconditioned denoiser D is an x0 head (its eps is derived).
// Twin: the EDM preset's own loss, EDM-weighted L_x0.
// expect: casdm rule: L_eps needs a topology with an eps head
#include "casdm/presets.hpp"
#include "casdm/sampler/registry.hpp"
using namespace casdm;
#ifdef CASDM_EXPECT_FAIL
using Losses = loss::Set<loss::EpsMSE<>>;
#else
using Losses = loss::Set<loss::Weighted<loss::X0MSE<>, loss::weighting::EDM<>>>;
#endif
using M = Model<schedule::EDM, topology::EDMPrecond<>, Losses, sampler::Heun<18>>;
static_assert(sizeof(M::Impl) > 0);
