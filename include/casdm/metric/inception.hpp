#pragma once
// Inception v3 as torchvision builds it (`torchvision.models.inception_v3(aux_logits=False)`),
// with torchvision's parameter and buffer names, so its ImageNet weights load as they are. The
// auxiliary classifier is left out (it only matters for training Inception itself); the final
// classifier `fc` is there only when InceptionV3Options::num_classes > 0.
//
// `fid_variant` builds the network FID is defined with (pytorch-fid's port of the 2015 TensorFlow
// graph, weights pt_inception-2015-12-05): average pools that leave the padding out of the count
// in the A, C and first E blocks, a max pool in the last E block's pooling branch, and 1008 classes.
//
// Input: images already mapped to [−1, 1] (2x − 1 for x in [0, 1]) — what torchvision's pretrained
// model computes from ImageNet-normalised input with transform_input=True, and what pytorch-fid
// feeds. The smallest side it accepts is 75.
//
//   casdm::metric::InceptionV3 net;
//   auto blocks = net->blocks(2 * x - 1);   // 64, 192, 768, 2048 channels (pytorch-fid's blocks)
#include <fmt/format.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <ATen/ATen.h>

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::metric {

struct InceptionV3Options {
  /// Classes of the final linear layer `fc`; 0 leaves it out (features only).
  TORCH_ARG(int64_t, num_classes) = 0;
  /// pytorch-fid's FID Inception (see above).
  TORCH_ARG(bool, fid_variant) = false;
};

/// torchvision's BasicConv2d: convolution without bias, batch norm (eps 0.001), ReLU.
class BasicConv2dImpl : public torch::nn::Cloneable<BasicConv2dImpl> {
 public:
  BasicConv2dImpl(int64_t in, int64_t out, std::array<int64_t, 2> k, std::array<int64_t, 2> stride = {1, 1},
                  std::array<int64_t, 2> pad = {0, 0})
      : in_(in), out_(out), k_(k), stride_(stride), pad_(pad) {
    reset();
  }
  void reset() override {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_, out_, {k_[0], k_[1]})
                                                         .stride({stride_[0], stride_[1]})
                                                         .padding({pad_[0], pad_[1]})
                                                         .bias(false)));
    bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out_).eps(0.001)));
  }
  at::Tensor forward(const at::Tensor& x) { return at::relu(bn(conv(x))); }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};

 private:
  int64_t in_, out_;
  std::array<int64_t, 2> k_, stride_, pad_;
};
TORCH_MODULE(BasicConv2d);

inline BasicConv2d basic_conv2d(int64_t in, int64_t out, std::array<int64_t, 2> k, std::array<int64_t, 2> stride = {1, 1},
                                std::array<int64_t, 2> pad = {0, 0}) {
  return BasicConv2d(std::make_shared<BasicConv2dImpl>(in, out, k, stride, pad));
}

namespace detail {

/// A module holding named BasicConv2d's, the common base of the Inception blocks (cloneable, as
/// EMA copies of a model that holds a backbone need).
template <class Derived>
class InceptionBlock : public torch::nn::Cloneable<Derived> {
 protected:
  BasicConv2d add(const std::string& name, int64_t in, int64_t out, std::array<int64_t, 2> k,
                  std::array<int64_t, 2> stride = {1, 1}, std::array<int64_t, 2> pad = {0, 0}) {
    return this->register_module(name, basic_conv2d(in, out, k, stride, pad));
  }
  /// The pooling branch's 3×3 average pool (stride 1, padding 1); the FID graph leaves padding
  /// out of the average.
  static at::Tensor avg3(const at::Tensor& x, bool fid) {
    return at::avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, /*ceil_mode=*/false, /*count_include_pad=*/!fid);
  }
  static constexpr std::array<int64_t, 2> k1{1, 1}, k3{3, 3}, k5{5, 5}, k17{1, 7}, k71{7, 1}, k13{1, 3}, k31{3, 1};
};

}  // namespace detail

class InceptionAImpl : public detail::InceptionBlock<InceptionAImpl> {
 public:
  InceptionAImpl(int64_t in, int64_t pool_features, bool fid) : in_(in), pool_features_(pool_features), fid_(fid) {
    reset();
  }
  void reset() override {
    const int64_t in = in_;
    b1 = add("branch1x1", in, 64, k1);
    b5_1 = add("branch5x5_1", in, 48, k1);
    b5_2 = add("branch5x5_2", 48, 64, k5, {1, 1}, {2, 2});
    d1 = add("branch3x3dbl_1", in, 64, k1);
    d2 = add("branch3x3dbl_2", 64, 96, k3, {1, 1}, {1, 1});
    d3 = add("branch3x3dbl_3", 96, 96, k3, {1, 1}, {1, 1});
    pool = add("branch_pool", in, pool_features_, k1);
  }
  at::Tensor forward(const at::Tensor& x) {
    return at::cat({b1(x), b5_2(b5_1(x)), d3(d2(d1(x))), pool(avg3(x, fid_))}, 1);
  }
  BasicConv2d b1{nullptr}, b5_1{nullptr}, b5_2{nullptr}, d1{nullptr}, d2{nullptr}, d3{nullptr}, pool{nullptr};

 private:
  int64_t in_, pool_features_;
  bool fid_;
};
TORCH_MODULE(InceptionA);

class InceptionBImpl : public detail::InceptionBlock<InceptionBImpl> {
 public:
  explicit InceptionBImpl(int64_t in) : in_(in) { reset(); }
  void reset() override {
    const int64_t in = in_;
    b3 = add("branch3x3", in, 384, k3, {2, 2});
    d1 = add("branch3x3dbl_1", in, 64, k1);
    d2 = add("branch3x3dbl_2", 64, 96, k3, {1, 1}, {1, 1});
    d3 = add("branch3x3dbl_3", 96, 96, k3, {2, 2});
  }
  at::Tensor forward(const at::Tensor& x) {
    return at::cat({b3(x), d3(d2(d1(x))), at::max_pool2d(x, {3, 3}, {2, 2})}, 1);
  }
  BasicConv2d b3{nullptr}, d1{nullptr}, d2{nullptr}, d3{nullptr};

 private:
  int64_t in_;
};
TORCH_MODULE(InceptionB);

class InceptionCImpl : public detail::InceptionBlock<InceptionCImpl> {
 public:
  InceptionCImpl(int64_t in, int64_t c7, bool fid) : in_(in), c7_(c7), fid_(fid) { reset(); }
  void reset() override {
    const int64_t in = in_, c7 = c7_;
    b1 = add("branch1x1", in, 192, k1);
    s1 = add("branch7x7_1", in, c7, k1);
    s2 = add("branch7x7_2", c7, c7, k17, {1, 1}, {0, 3});
    s3 = add("branch7x7_3", c7, 192, k71, {1, 1}, {3, 0});
    d1 = add("branch7x7dbl_1", in, c7, k1);
    d2 = add("branch7x7dbl_2", c7, c7, k71, {1, 1}, {3, 0});
    d3 = add("branch7x7dbl_3", c7, c7, k17, {1, 1}, {0, 3});
    d4 = add("branch7x7dbl_4", c7, c7, k71, {1, 1}, {3, 0});
    d5 = add("branch7x7dbl_5", c7, 192, k17, {1, 1}, {0, 3});
    pool = add("branch_pool", in, 192, k1);
  }
  at::Tensor forward(const at::Tensor& x) {
    return at::cat({b1(x), s3(s2(s1(x))), d5(d4(d3(d2(d1(x))))), pool(avg3(x, fid_))}, 1);
  }
  BasicConv2d b1{nullptr}, s1{nullptr}, s2{nullptr}, s3{nullptr}, d1{nullptr}, d2{nullptr}, d3{nullptr},
      d4{nullptr}, d5{nullptr}, pool{nullptr};

 private:
  int64_t in_, c7_;
  bool fid_;
};
TORCH_MODULE(InceptionC);

class InceptionDImpl : public detail::InceptionBlock<InceptionDImpl> {
 public:
  explicit InceptionDImpl(int64_t in) : in_(in) { reset(); }
  void reset() override {
    const int64_t in = in_;
    t1 = add("branch3x3_1", in, 192, k1);
    t2 = add("branch3x3_2", 192, 320, k3, {2, 2});
    s1 = add("branch7x7x3_1", in, 192, k1);
    s2 = add("branch7x7x3_2", 192, 192, k17, {1, 1}, {0, 3});
    s3 = add("branch7x7x3_3", 192, 192, k71, {1, 1}, {3, 0});
    s4 = add("branch7x7x3_4", 192, 192, k3, {2, 2});
  }
  at::Tensor forward(const at::Tensor& x) {
    return at::cat({t2(t1(x)), s4(s3(s2(s1(x)))), at::max_pool2d(x, {3, 3}, {2, 2})}, 1);
  }
  BasicConv2d t1{nullptr}, t2{nullptr}, s1{nullptr}, s2{nullptr}, s3{nullptr}, s4{nullptr};

 private:
  int64_t in_;
};
TORCH_MODULE(InceptionD);

/// The E block; `pool` says what its pooling branch does: 0 torchvision's average pool, 1 the FID
/// graph's average pool without padding in the count (Mixed_7b), 2 its max pool (Mixed_7c).
class InceptionEImpl : public detail::InceptionBlock<InceptionEImpl> {
 public:
  InceptionEImpl(int64_t in, int pool_kind) : in_(in), pool_kind_(pool_kind) { reset(); }
  void reset() override {
    const int64_t in = in_;
    b1 = add("branch1x1", in, 320, k1);
    t1 = add("branch3x3_1", in, 384, k1);
    t2a = add("branch3x3_2a", 384, 384, k13, {1, 1}, {0, 1});
    t2b = add("branch3x3_2b", 384, 384, k31, {1, 1}, {1, 0});
    d1 = add("branch3x3dbl_1", in, 448, k1);
    d2 = add("branch3x3dbl_2", 448, 384, k3, {1, 1}, {1, 1});
    d3a = add("branch3x3dbl_3a", 384, 384, k13, {1, 1}, {0, 1});
    d3b = add("branch3x3dbl_3b", 384, 384, k31, {1, 1}, {1, 0});
    pool = add("branch_pool", in, 192, k1);
  }
  at::Tensor forward(const at::Tensor& x) {
    auto t = t1(x);
    auto d = d2(d1(x));
    auto p = pool_kind_ == 2 ? at::max_pool2d(x, {3, 3}, {1, 1}, {1, 1}) : avg3(x, pool_kind_ == 1);
    return at::cat({b1(x), t2a(t), t2b(t), d3a(d), d3b(d), pool(p)}, 1);
  }
  BasicConv2d b1{nullptr}, t1{nullptr}, t2a{nullptr}, t2b{nullptr}, d1{nullptr}, d2{nullptr}, d3a{nullptr},
      d3b{nullptr}, pool{nullptr};

 private:
  int64_t in_;
  int pool_kind_;
};
TORCH_MODULE(InceptionE);

class InceptionV3Impl : public torch::nn::Cloneable<InceptionV3Impl> {
 public:
  /// Channels of the four blocks `blocks` returns.
  static constexpr std::array<int64_t, 4> block_channels{64, 192, 768, 2048};
  static constexpr int64_t min_size = 75;

  explicit InceptionV3Impl(InceptionV3Options o = {}) : options(o) { reset(); }

  void reset() override {
    const bool fid = options.fid_variant();
    Conv2d_1a_3x3 = register_module("Conv2d_1a_3x3", basic_conv2d(3, 32, {3, 3}, {2, 2}));
    Conv2d_2a_3x3 = register_module("Conv2d_2a_3x3", basic_conv2d(32, 32, {3, 3}));
    Conv2d_2b_3x3 = register_module("Conv2d_2b_3x3", basic_conv2d(32, 64, {3, 3}, {1, 1}, {1, 1}));
    Conv2d_3b_1x1 = register_module("Conv2d_3b_1x1", basic_conv2d(64, 80, {1, 1}));
    Conv2d_4a_3x3 = register_module("Conv2d_4a_3x3", basic_conv2d(80, 192, {3, 3}));
    Mixed_5b = register_module("Mixed_5b", InceptionA(192, 32, fid));
    Mixed_5c = register_module("Mixed_5c", InceptionA(256, 64, fid));
    Mixed_5d = register_module("Mixed_5d", InceptionA(288, 64, fid));
    Mixed_6a = register_module("Mixed_6a", InceptionB(288));
    Mixed_6b = register_module("Mixed_6b", InceptionC(768, 128, fid));
    Mixed_6c = register_module("Mixed_6c", InceptionC(768, 160, fid));
    Mixed_6d = register_module("Mixed_6d", InceptionC(768, 160, fid));
    Mixed_6e = register_module("Mixed_6e", InceptionC(768, 192, fid));
    Mixed_7a = register_module("Mixed_7a", InceptionD(768));
    Mixed_7b = register_module("Mixed_7b", InceptionE(1280, fid ? 1 : 0));
    Mixed_7c = register_module("Mixed_7c", InceptionE(2048, fid ? 2 : 0));
    fc = nullptr;
    if (options.num_classes() > 0) fc = register_module("fc", torch::nn::Linear(2048, options.num_classes()));
  }

  /// The outputs of pytorch-fid's four blocks for images [N, 3, H, W] in [−1, 1]: after maxpool1
  /// (64 channels), after maxpool2 (192), Mixed_6e (768), Mixed_7c before pooling (2048).
  std::vector<at::Tensor> blocks(const at::Tensor& x) { return walk(x, nullptr); }

  /// The 2048 pooled features (global average of the last block): FID's statistics.
  at::Tensor pool_features(const at::Tensor& x) { return blocks(x).back().mean({2, 3}); }

  /// What the scores need in one pass: pool features [N, 2048]; spatial features [N, 7·h·w], the
  /// first 7 channels of Mixed_6d's 1×1 branch (TensorFlow's "mixed_6/conv", sFID's features as
  /// the guided-diffusion evaluator takes them; h = w = 17 at side 299); logits when fc exists.
  struct Outputs {
    at::Tensor pool, spatial, logits;
  };
  Outputs score_outputs(const at::Tensor& x) {
    Outputs o;
    o.pool = walk(x, &o.spatial).back().mean({2, 3});
    if (fc) o.logits = fc(o.pool);
    return o;
  }

  /// Class logits (needs num_classes > 0): the Inception Score's input.
  at::Tensor logits(const at::Tensor& x) {
    if (!fc) throw std::logic_error("InceptionV3: built without a classifier (InceptionV3Options::num_classes = 0)");
    return fc(pool_features(x));
  }

  InceptionV3Options options;
  BasicConv2d Conv2d_1a_3x3{nullptr}, Conv2d_2a_3x3{nullptr}, Conv2d_2b_3x3{nullptr}, Conv2d_3b_1x1{nullptr},
      Conv2d_4a_3x3{nullptr};
  InceptionA Mixed_5b{nullptr}, Mixed_5c{nullptr}, Mixed_5d{nullptr};
  InceptionB Mixed_6a{nullptr};
  InceptionC Mixed_6b{nullptr}, Mixed_6c{nullptr}, Mixed_6d{nullptr}, Mixed_6e{nullptr};
  InceptionD Mixed_7a{nullptr};
  InceptionE Mixed_7b{nullptr}, Mixed_7c{nullptr};
  torch::nn::Linear fc{nullptr};

 private:
  /// The four blocks; `spatial`, if given, receives the first 7 channels of Mixed_6d's 1×1 branch.
  std::vector<at::Tensor> walk(const at::Tensor& x, at::Tensor* spatial) {
    check(x);
    std::vector<at::Tensor> out;
    auto h = at::max_pool2d(Conv2d_2b_3x3(Conv2d_2a_3x3(Conv2d_1a_3x3(x))), {3, 3}, {2, 2});
    out.push_back(h);
    h = at::max_pool2d(Conv2d_4a_3x3(Conv2d_3b_1x1(h)), {3, 3}, {2, 2});
    out.push_back(h);
    h = Mixed_6c(Mixed_6b(Mixed_6a(Mixed_5d(Mixed_5c(Mixed_5b(h))))));
    if (spatial) *spatial = Mixed_6d->b1(h).slice(1, 0, 7).flatten(1);
    h = Mixed_6e(Mixed_6d(h));
    out.push_back(h);
    out.push_back(Mixed_7c(Mixed_7b(Mixed_7a(h))));
    return out;
  }

  static void check(const at::Tensor& x) {
    if (x.dim() != 4 || x.size(1) != 3)
      throw std::invalid_argument(fmt::format("InceptionV3: expected images [N, 3, H, W], got {} dimensions{}", x.dim(), (x.dim() >= 2 ? " with " + std::to_string(x.size(1)) + " channels" : "")));
    if (x.size(2) < min_size || x.size(3) < min_size)
      throw std::invalid_argument(fmt::format("InceptionV3: images must be at least 75×75 (got {}×{}); for the Inception feature loss set feature_size ≥ 75", x.size(2), x.size(3)));
  }
};
TORCH_MODULE(InceptionV3);

}  // namespace casdm::metric
