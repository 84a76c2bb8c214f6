// casdm-metric: trains the SmallVGG metric network (a classifier of the training data) for the
// CasDM_SmallVGG preset, when no ImageNet weights are at hand; reports its test accuracy.
//
//   casdm-metric --out weights/fmnist                  # Fashion-MNIST, 2000 steps, side 32
//   casdm-train --preset CasDM_SmallVGG --feature-weights weights/fmnist ...
//
// Writes OUT/small_vgg.pt (torch.save format; the architecture and the accuracy in "casdm.*"
// strings) and OUT/metric.json. The data set needs labels: Fashion-MNIST/MNIST IDX or CIFAR-10.
#include "casdm/data/images.hpp"
#include "casdm/metric/small_vgg.hpp"
#include "casdm/train/small_vgg.hpp"
#include "program.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::string data = "/usr/share/datasets/fashion-mnist", format = "auto", out, device = "cpu";
  int64_t steps = 2000, batch = 128, image_size = 32, seed = 0, threads = 0;
  std::vector<int64_t> widths{32, 64, 128};
  double lr = 2e-3;
  bool no_hflip = false;
  CLI::App app{"Train a small VGG-style classifier on a labelled data set, as the CasDM_SmallVGG metric network"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--data", data, "data folder: IDX files or CIFAR-10 *.bin batches")->capture_default_str();
  app.add_option("--data-format", format, "one of (a train and a test split): " + casdm::data::formats_help(true))
      ->capture_default_str()->check(CLI::IsMember(casdm::data::format_names(true)));
  app.add_option("--out", out, "output folder (becomes casdm-train's --feature-weights)")->required();
  app.add_option("--steps", steps, "training steps")->capture_default_str()->check(casdm::examples::at_least<int64_t>(1));
  app.add_option("--batch", batch, "images per step")->capture_default_str()->check(casdm::examples::at_least<int64_t>(1));
  app.add_option("--image-size", image_size, "side the images are resized to (casdm-train's --feature-size)")
      ->capture_default_str()->check(casdm::examples::in_range<int64_t>(4, 4096));
  app.add_option("--widths", widths, "channels of each stage")->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)->delimiter(',');
  app.add_option("--lr", lr, "AdamW learning rate")->capture_default_str();
  app.add_flag("--no-hflip", no_hflip, "no random horizontal flips");
  app.add_option("--seed", seed, "seed of weights and batches")->capture_default_str()->check(casdm::examples::at_least<int64_t>(0));
  casdm::examples::add_machine_options(app, threads, device);
  if (const int rc = casdm::examples::parse_command_line(app, argc, argv, "casdm-metric"); rc >= 0) return rc;
  try {
    const auto dev = casdm::examples::use_machine(threads, device);
    for (auto w : widths)
      if (w < 1) throw std::runtime_error("--widths: every stage needs at least one channel");
    const auto train = casdm::data::open_dataset(data, format, true);
    if (!train.labels.defined() || train.labels.numel() == 0)
      throw std::runtime_error(train.source + " has no labels; casdm-metric trains a classifier and needs IDX or CIFAR-10 data");
    const auto test = casdm::data::open_dataset(data, format, false);
    const int64_t classes = train.labels.max().item<int64_t>() + 1;
    casdm::examples::require_writable_folder(out);
    fmt::print("training SmallVGG ({}) on {}: {} images, {} classes, side {}, {} steps\n",
               casdm::app::setting_text(widths), train.source, train.size(), classes, image_size, steps);
    const auto t0 = std::chrono::steady_clock::now();
    auto o = casdm::train::SmallVGGTraining()
                 .net(casdm::metric::SmallVGGOptions().widths(widths).num_classes(classes))
                 .image_size(image_size)
                 .steps(steps)
                 .batch_size(batch)
                 .lr(lr)
                 .hflip(!no_hflip)
                 .seed(static_cast<uint64_t>(seed))
                 .device(dev);
    auto r = casdm::train::train_small_vgg(train.images, train.labels, o, [&](int64_t s, double loss) {
      if (s % 250 == 0 || s == steps) fmt::print("step {}/{}  cross-entropy {:g}\n", s, steps, loss);
    });
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double acc = casdm::metric::small_vgg_accuracy(r.net, test.images, test.labels, image_size);
    casdm::metric::save_small_vgg(r.net, fs::path(out) / "small_vgg.pt",
                                  {{"image_size", fmt::format("{}", image_size)},
                                   {"test_accuracy", casdm::io::number_str(acc)},
                                   {"data", train.source},
                                   {"steps", fmt::format("{}", steps)}});
    nlohmann::json j;
    j["data"] = train.source;
    j["test_data"] = test.source;
    j["widths"] = widths;
    j["classes"] = classes;
    j["image_size"] = image_size;
    j["steps"] = steps;
    j["batch"] = batch;
    j["final_cross_entropy"] = r.final_loss;
    j["test_accuracy"] = acc;
    j["seconds"] = secs;
    casdm::examples::write_text(fs::path(out) / "metric.json", j.dump(2) + "\n");
    fmt::print("test accuracy {:g} on {} images ({}); wrote {}/{{small_vgg.pt,metric.json}}\n", acc, test.size(),
               casdm::io::duration_str(secs), out);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "casdm-metric: {}\n", casdm::examples::message(e));
    return 1;
  }
}
