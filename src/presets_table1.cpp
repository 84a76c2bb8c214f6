// The library casdm::presets: one compiled copy of the presets of casdm/presets/table1.hpp (their
// denoisers, objectives, models and DDIM sampling), so that the programs, tests and benchmarks that
// link it do not each compile them. See include/casdm/presets/instantiation.hpp.
#define CASDM_PRESETS_LIBRARY
#define CASDM_INSTANTIATE_TABLE1
#include "casdm/presets/table1.hpp"
