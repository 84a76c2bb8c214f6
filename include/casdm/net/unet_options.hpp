#pragma once
// The U-Net's sizes, apart from the network itself, so that options can be read, written and
// compared without the module headers.
#include <torch/arg.h>

#include <cstdint>
#include <vector>

namespace casdm::net {

struct UNetOptions {
  UNetOptions(int64_t in_channels = 3, int64_t out_channels = 3) : in_channels_(in_channels), out_channels_(out_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  /// Side of the (square) input; attention placement is decided from it.
  TORCH_ARG(int64_t, image_size) = 32;
  TORCH_ARG(int64_t, model_channels) = 128;
  TORCH_ARG(std::vector<int64_t>, channel_mult) = std::vector<int64_t>{1, 2, 2, 2};
  TORCH_ARG(int64_t, num_res_blocks) = 3;
  /// Resolutions (image_size / 2^level) whose blocks get self-attention.
  TORCH_ARG(std::vector<int64_t>, attention_resolutions) = std::vector<int64_t>{16, 8};
  TORCH_ARG(int64_t, num_heads) = 4;
  /// improved-diffusion's CIFAR-10 recipe, which the paper's θ follows (128 ch, 3 blocks).
  TORCH_ARG(double, dropout) = 0.3;
  TORCH_ARG(bool, use_scale_shift_norm) = true;
  TORCH_ARG(int64_t, norm_groups) = 32;
  /// false gives the Fix-Res CNN: no down/up-sampling; levels keep their widths and their
  /// nominal resolution (image_size / 2^level) still decides where attention goes.
  TORCH_ARG(bool, resample) = true;
  /// Attention in the middle block (always on in improved-diffusion).
  TORCH_ARG(bool, middle_attention) = true;
  /// Class conditioning: K > 0 adds a learned class embedding to the time embedding
  /// (improved-diffusion's label_emb), with one row more, index K, for "no label" — what label
  /// dropout trains and classifier-free guidance's unconditional pass reads. 0: unconditional.
  TORCH_ARG(int64_t, num_classes) = 0;
};

}  // namespace casdm::net
