// Rule: EDM's preconditioning feeds its network c_noise = ln(sigma)/4, the time of a continuous
// schedule; on the cosine schedule's steps it has none. Twin: the same denoiser on schedule::EDM.
// expect: casdm rule: EDM's preconditioning \(topology::EDMPrecond\) feeds the network c_noise
#include "casdm/presets.hpp"
using namespace casdm;
#ifdef CASDM_EXPECT_FAIL
using S = schedule::Cosine;
#else
using S = schedule::EDM;
#endif
using D = Denoiser<S, topology::EDMPrecond<>>;
static_assert(sizeof(D::Impl) > 0);
