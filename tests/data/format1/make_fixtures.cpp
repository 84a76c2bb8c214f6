// Writes the format-1 fixtures of tests/data/format1/ (casdm-checkpoint-1 / casdm-denoiser-1, the
// format of commit 3606e7b and before). Kept for the record: it builds only against that commit's
// headers (Trainer::save wrote format 1 then). Made with GCC 12 / libstdc++ on Debian 12:
//   g++ -std=c++20 -O1 -Iinclude -I/usr/include/torch/csrc/api/include tests/data/format1/make_fixtures.cpp \
//       -ltorch -ltorch_cpu -lc10 -lfmt -lz -o /tmp/make_fixtures && /tmp/make_fixtures tests/data/format1
// Each checkpoint: one topology family at a tiny size, 2 steps of batch 4 with 1 EMA rate, then
// saved; CasDM.model.pt is CasDM's first EMA copy as a model file. The tests resume and sample each.
#include "casdm/presets/table1.hpp"
#include "casdm/train/checkpoint.hpp"
#include "casdm/train/trainer.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <iostream>

using namespace casdm;

static ModelOptions fixture_options() {
  return ModelOptions().image_size(8).channels(1).diffusion_steps(20).net(
      net::UNetOptions().model_channels(8).channel_mult({1}).num_res_blocks(1).attention_resolutions({}).num_heads(1).norm_groups(4).dropout(0.1));
}

static at::Tensor batch_for(int64_t s) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(1000 + static_cast<uint64_t>(s));
  return at::rand({4, 1, 8, 8}, g) * 2 - 1;
}

template <class P>
void make(const std::string& dir, const std::string& name) {
  at::manual_seed(7);
  P model(fixture_options());
  train::Trainer<P> t(model, train::TrainerOptions().optimizer(train::AdamWOptions().lr(1e-3)).ema_rates({0.9}));
  for (int64_t s = 0; s < 2; ++s) t.step(batch_for(s));
  t.save(dir + "/" + name + ".pt", {{"preset", name}});
  std::cout << name << ": " << model->name() << "\n";
}

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";
  make<presets::DDPM_Eps>(dir, "DDPM_Eps");
  make<presets::DDPM_X0>(dir, "DDPM_X0");
  make<presets::DDPM_V>(dir, "DDPM_V");
  make<presets::Dual>(dir, "Dual");
  make<presets::CasDM>(dir, "CasDM");
  make<presets::CasDM_V>(dir, "CasDM_V");
  // A model file (casdm-denoiser-1) of CasDM's first EMA copy.
  auto info = train::read_checkpoint(dir + "/CasDM.pt");
  auto d = train::load_denoiser<presets::CasDM::Denoiser>(info);
  train::save_denoiser(*d, dir + "/CasDM.model.pt", {{"preset", "CasDM"}});
  return 0;
}
