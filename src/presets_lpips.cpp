// The library casdm::presets: one compiled copy of the presets of casdm/presets/lpips.hpp (their
// denoisers, objectives, models and DDIM sampling), so that the programs, tests and benchmarks that
// link it do not each compile them. See include/casdm/presets/instantiation.hpp.
#define CASDM_PRESETS_LIBRARY
#define CASDM_INSTANTIATE_LPIPS
#include "casdm/presets/lpips.hpp"
