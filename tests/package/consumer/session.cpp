// A user's training program: the library's session with a hook of its own (the mean loss of the
// steps it ran), stopped at step 3 and resumed to 6 — ending bit for bit where a straight run ends.
#include <casdm/casdm.hpp>
#include <casdm/train/session.hpp>

#include <filesystem>
#include <iostream>

using Model = casdm::presets::CasDM;

std::vector<at::Tensor> train(const std::filesystem::path& dir, int64_t steps) {
  auto options = casdm::DenoiserOptions().image_size(8).channels(1).diffusion_steps(20).net(
      casdm::net::UNetOptions().model_channels(16).channel_mult({1, 2}).num_res_blocks(1).norm_groups(8).attention_resolutions({4}));
  auto noise = at::make_generator<at::CPUGeneratorImpl>(1);
  casdm::data::ImageSet images{at::randint(0, 256, {32, 1, 8, 8}, noise, at::kByte), {}, "noise images"};
  torch::manual_seed(0);
  casdm::train::Session<Model> session(Model(options), images, casdm::train::TrainerOptions().ema_rates({0.99}),
                                       casdm::train::SessionOptions().steps(steps).checkpoints(dir).loader(
                                           casdm::data::LoaderOptions().batch_size(4)));
  if (auto last = casdm::train::CheckpointDir(dir).latest()) session.resume(casdm::train::read_checkpoint(*last));
  double sum = 0;
  int64_t n = 0;
  session.on_step([&](const casdm::train::StepEvent& e) { sum += e.losses.total.item<double>(), ++n; });
  session.on_end([&](const casdm::train::SessionEnd& e) { std::cout << dir.filename().string() << ": step " << e.step << ", mean loss " << sum / n << "\n"; });
  session.run();
  return session.trainer().model()->parameters();
}

int main(int argc, char** argv) {
  const std::filesystem::path root = argc > 1 ? argv[1] : "session-runs";
  std::filesystem::remove_all(root);
  const auto straight = train(root / "straight", 6);
  train(root / "split", 3);
  const auto resumed = train(root / "split", 6);
  for (size_t i = 0; i < straight.size(); ++i)
    if (!at::equal(straight[i], resumed[i])) return std::cerr << "parameter " << i << " differs after the resume\n", 1;
  std::cout << "session ok\n";
  return 0;
}
