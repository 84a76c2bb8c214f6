// Rule: the cascaded φ's input is built from θ's detached outputs by a phi input policy; a
// network policy (or anything else) in that slot is refused. Twin: the concat input.
// expect: casdm rule: the cascaded phi input must be a phi input policy
#include "casdm/presets.hpp"
using namespace casdm;
#ifdef CASDM_EXPECT_FAIL
using Input = net::arch::UNet;
#else
using Input = topology::phi_input::Concat;
#endif
using M = Model<schedule::Cosine, topology::Cascaded<net::arch::FixResCNN, Input>, presets::CasLosses, sampler::DDIM<>>;
static_assert(sizeof(M::Impl) > 0);
