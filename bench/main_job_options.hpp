#pragma once
// The main job's model size (scripts/main-job.sh): Fashion-MNIST 28×28, U-Net 16 ch, channel_mult
// (1,2,2), one block per level, attention at 7, T = 1000.
#include "casdm/topology/options.hpp"

inline casdm::DenoiserOptions main_job_options() {
  return casdm::DenoiserOptions()
      .image_size(28)
      .channels(1)
      .diffusion_steps(1000)
      .net(casdm::net::UNetOptions()
               .model_channels(16)
               .channel_mult({1, 2, 2})
               .num_res_blocks(1)
               .attention_resolutions({7})
               .num_heads(4)
               .norm_groups(8)
               .dropout(0.0));
}
