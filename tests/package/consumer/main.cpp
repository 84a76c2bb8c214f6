// A user's program: one preset and one custom composition, trained a step and sampled.
#include <casdm/casdm.hpp>

#include <iostream>

// A user's own schedule: constant betas.
struct ConstantSchedule {
  static constexpr const char* name = "constant";
  static at::Tensor betas(int64_t T) { return at::full({T}, 0.02, at::kDouble); }
};
using Custom = casdm::Model<ConstantSchedule, casdm::topology::EpsOnly<>, casdm::loss::Set<casdm::loss::EpsMSE<>>,
                            casdm::sampler::DDIM<5>>;

int main() {
  auto options = casdm::DenoiserOptions().image_size(8).channels(1).diffusion_steps(20).net(
      casdm::net::UNetOptions().model_channels(16).channel_mult({1, 2}).num_res_blocks(1).norm_groups(8).attention_resolutions({4}));
  casdm::presets::CasDM model(options);
  Custom custom(options);
  auto x0 = at::rand({2, 1, 8, 8}) * 2 - 1;
  model->training_losses(x0).total.backward();
  custom->training_losses(x0).total.backward();
  auto a = model->sample(2, casdm::SampleOptions().steps(4));
  auto b = custom->sample(2);
  if (a.sizes() != b.sizes() || !a.isfinite().all().item<bool>()) return 1;
  std::cout << "consumer ok\n";
  return 0;
}
