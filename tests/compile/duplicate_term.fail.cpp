// Rule: no loss term twice, whatever the weights. Twin: two different terms.
// expect: casdm rule: the same loss term appears twice in a loss set
#include "casdm/presets.hpp"
using namespace casdm;
#ifdef CASDM_EXPECT_FAIL
using Losses = loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::EpsMSE<std::ratio<1, 2>>>;
#else
using Losses = loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<std::ratio<1, 2>>>;
#endif
using M = Model<schedule::Cosine, topology::Cascaded<>, Losses, sampler::DDIM<>>;
static_assert(sizeof(M::Impl) > 0);
