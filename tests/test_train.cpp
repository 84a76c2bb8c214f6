// Model files: exact round trips, Python's torch.load/torch.save on the same files, strict loading
// that names what does not fit, atomic writes, and clear errors for bad files.
#include "casdm/presets.hpp"
#include "casdm/train/checkpoint.hpp"
#include "casdm/train/loss_log.hpp"
#include "casdm/train/trainer.hpp"
#include "support.hpp"
#include "tiny.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <iterator>

using namespace casdm;
namespace fs = std::filesystem;

namespace {
bool same_state(torch::nn::Module& a, torch::nn::Module& b) {
  auto sa = io::state_of(a), sb = io::state_of(b);
  if (sa.size() != sb.size()) return false;
  for (const auto& [k, v] : sa)
    if (!sb.count(k) || !at::equal(v.cpu(), sb.at(k).cpu())) return false;
  return true;
}
}  // namespace

TEST_CASE("a saved model loads back exactly, and Python reads and writes the same format", "[checkpoint]") {
  const auto dir = test::scratch("checkpoint-roundtrip");
  torch::manual_seed(1);
  presets::CasDM a(test::tiny_options());
  test::perturb(*a);
  io::save_module(*a, dir / "a.pt");
  torch::manual_seed(2);
  presets::CasDM b(test::tiny_options());
  CHECK(!same_state(*a, *b));
  io::load_module(*b, dir / "a.pt");
  CHECK(same_state(*a, *b));

  test::run_python("double_tensors.py", (dir / "a.pt").string() + " " + (dir / "doubled.pt").string());
  auto doubled = io::read_tensor_file(dir / "doubled.pt");
  auto state = io::state_of(*a);
  REQUIRE(doubled.tensors.size() == state.size());
  for (const auto& [k, v] : state) CHECK(at::equal(doubled.tensors.at(k), v * 2));
}

TEST_CASE("strict loading refuses another preset or size, names the parameters, changes nothing", "[checkpoint]") {
  const auto dir = test::scratch("checkpoint-strict");
  presets::DDPM_Eps eps(test::tiny_options());
  io::save_module(*eps, dir / "eps.pt");
  presets::CasDM cas(test::tiny_options());
  const auto before = io::state_of(*cas);
  std::map<std::string, at::Tensor> copy;
  for (const auto& [k, v] : before) copy.emplace(k, v.clone());
  try {
    io::load_module(*cas, dir / "eps.pt");
    FAIL("loaded a DDPM_Eps file into CasDM");
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("does not fit this model"));
    CHECK_THAT(msg, Catch::Contains("written by casdm::ModelImpl<casdm::schedule::Cosine, casdm::topology::EpsOnly"));
    CHECK_THAT(msg, Catch::Contains("missing: phi."));
  }
  for (const auto& [k, v] : io::state_of(*cas)) CHECK(at::equal(v, copy.at(k)));

  presets::CasDM wide(test::tiny_options().net(test::tiny_options().net().model_channels(32)));
  io::save_module(*wide, dir / "wide.pt");
  CHECK_THROWS_WITH(io::load_module(*cas, dir / "wide.pt"),
                    Catch::Contains("254 mis-shaped: phi.decoder.0.attn.norm.norm.bias (file [64], model [32])"));
  CHECK_THROWS_WITH(io::load_module(*eps, dir / "wide.pt"), Catch::Contains("unexpected: phi."));
}

TEST_CASE("an interrupted write leaves the previous file intact and no temporary behind", "[checkpoint]") {
  const auto dir = test::scratch("checkpoint-atomic");
  fs::remove_all(dir);
  fs::create_directories(dir);
  presets::DDPM_Eps m(test::tiny_options());
  io::save_module(*m, dir / "m.pt");
  const auto size = fs::file_size(dir / "m.pt");
  io::TensorFile other{{{"x", at::ones({1000})}}, {}};
  CHECK_THROWS_WITH(io::write_tensor_file(dir / "m.pt", other, [] { throw std::runtime_error("killed"); }),
                    Catch::Contains("killed"));
  CHECK(fs::file_size(dir / "m.pt") == size);
  presets::DDPM_Eps back(test::tiny_options());
  io::load_module(*back, dir / "m.pt");
  CHECK(same_state(*m, *back));
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}) == 1);
  CHECK_THROWS_WITH(io::save_module(*m, dir / "no-such-folder" / "m.pt"), Catch::Contains("folder does not exist"));
}

TEST_CASE("missing, truncated and foreign files get one clear message", "[checkpoint]") {
  const auto dir = test::scratch("checkpoint-bad");
  presets::DDPM_Eps m(test::tiny_options());
  CHECK_THROWS_WITH(io::load_module(*m, dir / "absent.pt"), Catch::Contains("(no such file)"));
  io::save_module(*m, dir / "full.pt");
  {
    std::ifstream in(dir / "full.pt", std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(dir / "cut.pt", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  CHECK_THROWS_WITH(io::load_module(*m, dir / "cut.pt"), Catch::Contains("not a readable tensor file"));
  std::ofstream(dir / "text.pt") << "hello";
  CHECK_THROWS_WITH(io::load_module(*m, dir / "text.pt"), Catch::Contains("not a readable tensor file"));
  // Found by fuzzing: a changed length in the pickle made LibTorch's unpickler reserve a 4 GB string.
  CHECK_THROWS_WITH(io::read_tensor_file(fs::path(CASDM_TEST_SOURCE_DIR) / "data" / "pickle-4gb-string.pt"),
                    Catch::Contains("its pickle is damaged: a value declares 4294965"));
  // Found by fuzzing: a pickle whose first value became a TUPLE2 (on an empty stack) made LibTorch's
  // unpickler read before its stack (a segfault); the stack is walked first now. And the other ways
  // a pickle's stack can run dry.
  CHECK_THROWS_WITH(io::read_tensor_file(fs::path(CASDM_TEST_SOURCE_DIR) / "data" / "pickle-stack-underflow.pt"),
                    Catch::Contains("its pickle is damaged: opcode 0x86 takes 2 values from a stack of 0"));
  auto damage = [](const std::string& pickle) { return io::detail::pickle_problem(pickle.data(), pickle.size()); };
  CHECK(damage("\x80\x02)\x85.") == "");  // ((),)
  CHECK(damage("\x80\x02(K\x01K\x02t.") == "");  // (1, 2)
  CHECK(damage("\x80\x02R.") == "opcode 0x52 takes 2 values from a stack of 0");
  CHECK(damage("\x80\x02(K\x01\x86.") == "opcode 0x86 takes 2 values from a stack of 1");  // not across a MARK
  CHECK(damage("\x80\x02(K\x01K\x02u.") == "opcode 0x75 needs 1 values below its MARK, the stack has 0");
  CHECK(damage("\x80\x02.") == "opcode 0x2e takes 1 values from a stack of 0");
  CHECK(damage("\x80\x02\x94") == "opcode 0x94 takes 1 values from a stack of 0");
  CHECK(damage("\x80\x02K\x01t.") == "opcode 0x74 closes a MARK that was never set");
  // Found by fuzzing: a damaged zip directory made miniz read 0 bytes into a null buffer, which the
  // reader passed on to memcpy (undefined behaviour; the sanitized build of this test stops there).
  CHECK_THROWS_WITH(io::read_tensor_file(fs::path(CASDM_TEST_SOURCE_DIR) / "data" / "zip-empty-record.pt"),
                    Catch::Contains("zip-empty-record.pt is not a readable tensor file (corrupt or truncated?)"));
  // Found by fuzzing: a zip directory giving a tensor record 4 GB made LibTorch's in-memory reader
  // (pickle_load's) copy past the end of the file (the sanitized build of this test stops there).
  CHECK_THROWS_WITH(io::read_tensor_file(fs::path(CASDM_TEST_SOURCE_DIR) / "data" / "zip-record-past-end.pt"),
                    Catch::Contains("zip-record-past-end.pt is not a readable tensor file (corrupt or truncated?)"));
  fs::create_directories(dir / "folder.pt");
  CHECK_THROWS_WITH(io::load_module(*m, dir / "folder.pt"), Catch::Contains("folder.pt is a folder, not a tensor file"));
}

TEST_CASE("a model file holds one denoiser with its options and loads back without a model", "[checkpoint]") {
  const auto dir = test::scratch("model-file");
  torch::manual_seed(4);
  presets::CasDM m(test::tiny_options());
  test::perturb(*m);
  train::save_denoiser(*m->denoiser(), dir / "casdm.pt", {{"note", "x"}});
  std::string which;
  auto back = train::load_denoiser<presets::CasDM::Denoiser>(dir / "casdm.pt", train::Weights::raw(), &which);
  CHECK(which == "model file");
  CHECK(same_state(*back, *m->denoiser()));
  CHECK(options_differences(back->options, m->denoiser()->options).empty());
  CHECK_THROWS_WITH(train::load_denoiser<presets::DDPM_Eps::Denoiser>(dir / "casdm.pt"),
                    Catch::Contains("holds another denoiser") &&
                        Catch::Contains("cosine | cascaded(unet <- x0star, unet), not cosine | eps-only(unet)"));
  // A model file is not a checkpoint: nothing to resume from.
  train::Trainer<presets::CasDM> t(m);
  CHECK_THROWS_WITH(t.load(dir / "casdm.pt"), Catch::Contains("is a model file"));
}

TEST_CASE("the loss log keeps the rows up to the resumed step and refuses another run's log", "[train][log]") {
  const auto dir = test::scratch("loss-log");
  const std::vector<std::pair<std::string, double>> terms{{"eps", 1.0}, {"x0", 1.0}};
  auto report = [](double e, double x) {
    loss::LossReport r;
    r.terms = {{"eps", at::scalar_tensor(e, at::kDouble)}, {"x0", at::scalar_tensor(x, at::kDouble)}};
    r.total = r.terms[0].second + r.terms[1].second;
    return r;
  };
  {
    train::LossLog log(dir / "losses.csv", terms);
    for (int s = 1; s <= 5; ++s) log.append(s, report(0.5 * s, 0.25));
  }
  {
    train::LossLog log(dir / "losses.csv", terms, 3);  // resumed from the step-3 checkpoint
    REQUIRE(log.curves()[0].size() == 3);
    CHECK(log.curves()[1] == std::vector<double>{0.5, 1.0, 1.5});
    CHECK(log.last() == "total 1.75 eps 1.5 x0 0.25");
    log.append(4, report(9, 1));
  }
  std::ifstream in(dir / "losses.csv");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == "step,total,eps,x0\n1,0.75,0.5,0.25\n2,1.25,1,0.25\n3,1.75,1.5,0.25\n4,10,9,1\n");
  {
    train::LossLog log(dir / "losses.csv", terms, 4);
    const auto tail = log.tail_means(0.5);  // the last 2 of 4 rows
    CHECK(tail.at("eps") == 0.5 * (1.5 + 9));
    CHECK(tail.at("total") == 0.5 * (1.75 + 10));
    CHECK(log.tail_means(0.1).at("x0") == 1);  // at least one row
  }
  CHECK_THROWS_WITH(train::LossLog(dir / "losses.csv", {{"eps", 1.0}}, 2), Catch::Contains("is not this run's loss log"));
  CHECK_THROWS_WITH(train::LossLog(dir / "losses.csv", terms, 7), Catch::Contains("has 4 rows up to step 7"));
  CHECK(!train::LossLog(dir / "losses.csv", terms, 4).started_anew());
  // No log where a resume at step 4 looks (a fork into a new folder, a deleted log): a new one, from step 5.
  std::filesystem::remove(dir / "fork.csv");
  {
    train::LossLog log(dir / "fork.csv", terms, 4);
    CHECK(log.started_anew());
    CHECK(log.first_step() == 4);
    CHECK(log.curves()[0].empty());
    log.append(5, report(2, 1));
    log.append(6, report(3, 1));
    CHECK(log.tail_means(1.0).at("eps") == 2.5);
  }
  std::ifstream fork(dir / "fork.csv");
  const std::string forked((std::istreambuf_iterator<char>(fork)), std::istreambuf_iterator<char>());
  CHECK(forked == "step,total,eps,x0\n5,3,2,1\n6,4,3,1\n");
  // It resumes like any log: its rows up to the step, counted from its first.
  {
    train::LossLog log(dir / "fork.csv", terms, 5);
    CHECK(!log.started_anew());
    CHECK(log.first_step() == 4);
    CHECK(log.curves()[1] == std::vector<double>{2});
  }
  CHECK_THROWS_WITH(train::LossLog(dir / "fork.csv", terms, 7), Catch::Contains("has 1 rows up to step 7"));
}

TEST_CASE("a run folder resumes from its newest checkpoint and refuses to be overwritten", "[train][checkpoint]") {
  const auto dir = test::scratch("resume-point") / "run";
  fs::remove_all(dir);
  const train::CheckpointDir ckpts(dir / "checkpoints", 2);
  CHECK(!ckpts.resume_point(false).has_value());  // a fresh run in an empty folder
  CHECK_THROWS_WITH(ckpts.resume_point(true), Catch::StartsWith("resume: no checkpoint in"));
  CHECK_THROWS_AS(ckpts.resume_point(true), SettingError);
  torch::manual_seed(5);
  presets::DDPM_Eps m(test::tiny_options());
  train::Trainer<presets::DDPM_Eps> t(m, train::TrainerOptions().ema_rates({0.9}));
  t.step(at::rand({2, 1, 8, 8}) * 2 - 1);
  ckpts.save(t, {{"args.lr", "0.001"}});
  t.step(at::rand({2, 1, 8, 8}) * 2 - 1);
  ckpts.save(t, {{"args.lr", "0.002"}});
  const auto newest = ckpts.resume_point(true);
  REQUIRE(newest);
  CHECK(newest->step == 2);
  CHECK(newest->meta_under("args.") == std::map<std::string, std::string>{{"lr", "0.002"}});
  CHECK(ckpts.resume_point(false, ckpts.file_for(1))->step == 1);
  CHECK_THROWS_WITH(ckpts.resume_point(false), Catch::StartsWith("checkpoints: " + dir.string()) &&
                                                    Catch::Contains("holds checkpoints of an earlier run: resume it"));
}

namespace {
std::vector<char> file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void put_bytes(const fs::path& p, const std::vector<char>& b) {
  std::ofstream(p, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
}
/// Flips one bit inside the stored bytes of `t` (found by its contents) in file `p`.
void flip_bit_in(const fs::path& p, const at::Tensor& t) {
  auto bytes = file_bytes(p);
  const auto c = t.contiguous();
  const char* data = static_cast<const char*>(c.data_ptr());
  auto at = std::search(bytes.begin(), bytes.end(), data, data + c.nbytes());
  REQUIRE(at != bytes.end());
  *(at + static_cast<std::ptrdiff_t>(c.nbytes() / 2)) ^= 0x10;
  put_bytes(p, bytes);
}
/// `steps` training steps on random images, each followed by a checkpoint in `ckpts` (when given).
template <class T>
void step_and_save(T& t, int steps, const train::CheckpointDir* ckpts) {
  for (int s = 0; s < steps; ++s) {
    t.step(at::rand({2, 1, 8, 8}) * 2 - 1);
    if (ckpts) ckpts->save(t);
  }
}
}  // namespace

TEST_CASE("a flipped bit in a tensor's data is refused, naming the file and the tensor", "[checkpoint][integrity]") {
  const auto dir = test::scratch("integrity");
  io::TensorFile f;
  f.tensors["a"] = at::arange(1000, at::kFloat);
  f.tensors["b"] = at::linspace(-1, 1, 300, at::kDouble);
  f.meta["note"] = "kept";
  io::write_tensor_file(dir / "f.pt", f);
  auto back = io::read_tensor_file(dir / "f.pt");
  CHECK(back.meta == std::map<std::string, std::string>{{"note", "kept"}});  // checksums are checked, not returned
  CHECK(at::equal(back.tensors.at("b"), f.tensors["b"]));
  flip_bit_in(dir / "f.pt", f.tensors["b"]);
  CHECK_THROWS_WITH(io::read_tensor_file(dir / "f.pt"),
                    Catch::Contains("f.pt is corrupt: tensor 'b' fails its checksum"));
  // Without checksums LibTorch reads the damaged value as if nothing happened:
  io::TensorFile plain;
  plain.tensors["b"] = f.tensors["b"];
  put_bytes(dir / "plain.pt", io::detail::torch_save_bytes(c10::IValue([&] {
              c10::impl::GenericDict d(c10::StringType::get(), c10::AnyType::get());
              d.insert("b", f.tensors["b"]);
              return d;
            }())));
  flip_bit_in(dir / "plain.pt", f.tensors["b"]);
  auto silent = io::read_tensor_file(dir / "plain.pt");
  CHECK(!at::equal(silent.tensors.at("b"), f.tensors["b"]));
}

TEST_CASE("a resume passes over a corrupt newest checkpoint to the newest valid one, saying so", "[train][checkpoint][integrity]") {
  const auto dir = test::scratch("resume-fallback") / "run";
  fs::remove_all(dir);
  const train::CheckpointDir ckpts(dir / "checkpoints", 3);
  torch::manual_seed(6);
  presets::DDPM_Eps m(test::tiny_options());
  train::Trainer<presets::DDPM_Eps> t(m, train::TrainerOptions().ema_rates({0.9}));
  step_and_save(t, 2, &ckpts);
  CHECK(ckpts.resume_point(true)->notes.empty());
  flip_bit_in(ckpts.file_for(2), io::state_of(*m->denoiser()).at("theta.out_conv.weight"));
  const auto c = ckpts.resume_point(true);
  REQUIRE(c);
  CHECK(c->step == 1);
  REQUIRE(c->notes.size() == 2);
  CHECK_THAT(c->notes[0], Catch::Contains("ckpt-000000002.pt is corrupt: tensor") && Catch::Contains("out_conv.weight"));
  CHECK_THAT(c->notes[1], Catch::Contains("resuming from ckpt-000000001.pt"));
  put_bytes(ckpts.file_for(1), {'x'});
  CHECK_THROWS_WITH(ckpts.resume_point(true), Catch::Contains("no valid checkpoint in") &&
                                                  Catch::Contains("ckpt-000000001.pt is not a readable tensor file"));
}

TEST_CASE("a failed write says why and keeps the previous file", "[io][files]") {
  const auto dir = test::scratch("write-fails");
  fs::remove_all(dir);
  fs::create_directories(dir);
  io::write_atomic(dir / "run.json", std::string("{\"good\": 1}\n"));
  // A full disk, simulated by a file-size limit (the write fails with EFBIG instead of ENOSPC).
  struct Limit {
    rlimit old{};
    explicit Limit(rlim_t bytes) {
      ::signal(SIGXFSZ, SIG_IGN);
      ::getrlimit(RLIMIT_FSIZE, &old);
      rlimit l = old;
      l.rlim_cur = bytes;
      ::setrlimit(RLIMIT_FSIZE, &l);
    }
    ~Limit() { ::setrlimit(RLIMIT_FSIZE, &old); }
  };
  {
    Limit small(4096);
    CHECK_THROWS_WITH(io::write_atomic(dir / "run.json", std::string(100000, 'x')),
                      Catch::Contains("cannot write") && Catch::Contains("run.json: File too large"));
    train::LossLog log(dir / "losses.csv", {{"mse", 1.0}});
    loss::LossReport r{at::ones({}), {{"mse", at::ones({})}}};
    CHECK_THROWS_WITH(([&] {
                        for (int64_t s = 1; s <= 2000; ++s) log.append(s, r);
                        log.flush();
                      }()),
                      Catch::Contains("cannot write") && Catch::Contains("losses.csv: File too large"));
  }
  CHECK(file_bytes(dir / "run.json").size() == 12);
  for (const auto& e : fs::directory_iterator(dir)) CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
  CHECK_THROWS_WITH(io::write_atomic(dir, std::string("x")), Catch::Contains("it is a folder"));
}

TEST_CASE("temporary files of dead processes are removed, those of live ones kept", "[io][files]") {
  const auto dir = test::scratch("orphans");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  ::waitpid(child, nullptr, 0);  // now a pid of no process
  std::ofstream(io::temporary_for(dir / "ckpt-000000004.pt", child)) << "half";
  std::ofstream(io::temporary_for(dir / "ckpt-000000006.pt")) << "being written";  // this process
  std::ofstream(dir / "ckpt-000000002.pt") << "whole";
  const auto removed = io::remove_orphans(dir);
  REQUIRE(removed.size() == 1);
  CHECK(removed[0].filename() == fmt::format(".ckpt-000000004.pt.tmp.{}", child));
  CHECK(fs::exists(io::temporary_for(dir / "ckpt-000000006.pt")));
  CHECK(fs::exists(dir / "ckpt-000000002.pt"));
}

TEST_CASE("an output folder has one writer, and a stale lock file does not block", "[io][files]") {
  const auto dir = test::scratch("lock");
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / ".lock") << "999999999\n";  // left by a process that is gone: no lock held
  {
    io::FolderLock held(dir);
    CHECK_THROWS_WITH(io::FolderLock(dir), Catch::Contains(fmt::format("is in use by process {} ", ::getpid())));
    const pid_t child = ::fork();  // another process is refused too
    if (child == 0) {
      try {
        io::FolderLock again(dir);
        ::_exit(0);
      } catch (const std::exception&) {
        ::_exit(3);
      }
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WEXITSTATUS(status) == 3);
  }
  CHECK(!fs::exists(dir / ".lock"));  // its holder removed it as it let go
  {
    io::FolderLock after(dir);  // released with its holder
    CHECK(fs::exists(dir / ".lock"));
  }
  CHECK(!fs::exists(dir / ".lock"));
  // A lock taken on a file that its holder removed as it let go is taken again on a new file.
  const int stale = ::open((dir / ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ::unlink((dir / ".lock").c_str());
  {
    io::FolderLock taken(dir);
    CHECK(fs::exists(dir / ".lock"));
    CHECK(::flock(stale, LOCK_EX | LOCK_NB) == 0);  // the removed file is no lock on the folder
  }
  ::close(stale);

  // An output folder the run made goes again if nothing was written into it; one it found stays.
  const auto made = dir / "new" / "run";
  {
    io::OutputFolder out(made, {"checkpoints"});
    CHECK(fs::exists(made / ".lock"));
  }
  CHECK(!fs::exists(dir / "new"));
  {
    io::OutputFolder out(made);
    std::ofstream(made / "index.html") << "written";
  }
  CHECK(fs::exists(made / "index.html"));
  CHECK(!fs::exists(made / ".lock"));
  { io::OutputFolder again(made); }
  CHECK(fs::exists(made / "index.html"));
  CHECK_THROWS_WITH(io::require_writable_folder(""), "the output folder is named by an empty path");
  CHECK_THROWS_WITH(io::require_space(dir, 1e30, "the samples"), Catch::StartsWith("the samples need 1e+21 GB in " + dir.string()));
  CHECK_NOTHROW(io::require_space(dir, 1000, "a little"));
  CHECK_THROWS_WITH(io::require_writable_folder("/proc/casdm/x"), "output folder /proc/casdm/x is not writable");
}

TEST_CASE("the checkpoint folder keeps what a resume needs: damaged files aside, strays passed over, rotation never losing the newest", "[train][checkpoint][integrity]") {
  const auto dir = test::scratch("folder-hygiene") / "run";
  fs::remove_all(dir);
  const train::CheckpointDir ckpts(dir / "checkpoints", 2);
  torch::manual_seed(7);
  presets::DDPM_Eps m(test::tiny_options());
  train::Trainer<presets::DDPM_Eps> t(m, train::TrainerOptions().ema_rates({0.9}));
  step_and_save(t, 3, &ckpts);
  CHECK(ckpts.list() == std::vector<fs::path>{ckpts.file_for(2), ckpts.file_for(3)});
  // The newest damaged, a stray newer still (another model's checkpoint saved as step 9), and junk
  // under a name whose number is no step count.
  flip_bit_in(ckpts.file_for(3), io::state_of(*m->denoiser()).at("theta.out_conv.weight"));
  presets::DDPM_Eps other(test::tiny_options(8, 1, 50));  // T = 50: another model
  train::Trainer<presets::DDPM_Eps> o(other, train::TrainerOptions().ema_rates({0.9}));
  step_and_save(o, 1, nullptr);
  o.save(dir / "checkpoints" / "ckpt-000000009.pt");  // step 1 inside: its name lies
  put_bytes(dir / "checkpoints" / "ckpt-99999999999999999999999.pt", {'j', 'u', 'n', 'k'});  // not a step count
  // Sampling a folder passes over the stray and the damaged file, and moves nothing.
  CHECK(train::resolve_checkpoint(dir) == ckpts.file_for(2));
  CHECK(fs::exists(ckpts.file_for(3)));
  const auto c = ckpts.resume_point(true);
  REQUIRE(c);
  CHECK(c->step == 2);
  REQUIRE(c->notes.size() == 3);
  CHECK_THAT(c->notes[0], Catch::Contains("ckpt-000000009.pt holds step 1, not the step its name says") &&
                              Catch::Contains("moved it aside to ckpt-000000009.pt.damaged"));
  CHECK_THAT(c->notes[1], Catch::Contains("ckpt-000000003.pt is corrupt") && Catch::Contains("ckpt-000000003.pt.damaged"));
  CHECK(c->notes[2] == "resuming from ckpt-000000002.pt, the newest valid checkpoint");
  CHECK(fs::exists(dir / "checkpoints" / "ckpt-000000003.pt.damaged"));
  // Resumed at 2, the run saves 3 again: rotation keeps 2 and the new 3, nothing lost.
  train::Trainer<presets::DDPM_Eps> r(m, train::TrainerOptions().ema_rates({0.9}));
  r.load(*c);
  step_and_save(r, 1, &ckpts);
  CHECK(ckpts.list() == std::vector<fs::path>{ckpts.file_for(2), ckpts.file_for(3)});
  CHECK(train::read_checkpoint(ckpts.file_for(3)).step == 3);
  // A later step's file (another branch) is neither counted nor removed, and the new file stays.
  fs::copy_file(ckpts.file_for(3), dir / "elsewhere.pt");
  fs::rename(dir / "elsewhere.pt", ckpts.file_for(50));
  step_and_save(r, 1, &ckpts);
  CHECK(ckpts.list() == std::vector<fs::path>{ckpts.file_for(3), ckpts.file_for(4), ckpts.file_for(50)});
  // A file copied in from another model with a matching name and step is passed over too.
  fs::remove(ckpts.file_for(50));
  step_and_save(o, 4, nullptr);  // step 5
  o.save(ckpts.file_for(5));
  const auto again = ckpts.resume_point(true);
  REQUIRE(again);
  CHECK(again->step == 4);
  CHECK_THAT(again->notes.at(0), Catch::Contains("ckpt-000000005.pt holds another model than ckpt-000000004.pt"));
}
