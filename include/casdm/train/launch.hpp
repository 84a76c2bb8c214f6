#pragma once
// Starting the ranks of a data-parallel run on this machine, as torchrun does: the same program
// N times with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT set.
//
//   if (nproc > 1 && !std::getenv("WORLD_SIZE"))   // waits for all of them
//     return casdm::train::launch_local(nproc, casdm::train::own_command(argc, argv, "--nproc-per-node"));
//
// The first rank to fail ends the others (SIGTERM, then SIGKILL after `grace`); its exit status is
// the launcher's. SIGINT and SIGTERM sent to the launcher are passed on to every rank. A rank dies
// with its launcher: it asks the kernel for SIGTERM when the launcher ends (PR_SET_PDEATHSIG, set as
// it starts, CASDM_LAUNCHER_PID naming the launcher), so a launcher killed with SIGKILL leaves no rank
// training on, holding the output folder.
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace casdm::train {

namespace detail {
inline pid_t launched[1024];
inline volatile sig_atomic_t launched_count = 0;
inline volatile sig_atomic_t passed_on = 0;  // the signal last passed on to the ranks
inline void pass_on(int sig) {
  passed_on = sig;
  for (sig_atomic_t i = 0; i < launched_count; ++i) ::kill(launched[i], sig);
}
}  // namespace detail

/// A TCP port on 127.0.0.1 free at the time of the call (the kernel's choice).
inline int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot open a socket: {}", std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error(fmt::format("cannot find a free port: {}", std::strerror(err)));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

/// This program's command line (argv[0] as /proc/self/exe) without `option` and its value.
inline std::vector<std::string> own_command(int argc, char** argv, const std::string& option) {
  std::vector<std::string> args{std::filesystem::read_symlink("/proc/self/exe").string()};
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == option) ++i;
    else if (s.rfind(option + "=", 0) != 0) args.push_back(s);
  }
  return args;
}

/// A rank started by launch_local (CASDM_LAUNCHER_PID set) asks for SIGTERM when its launcher dies,
/// and refuses to start if it is gone already; elsewhere nothing.
inline void follow_launcher() {
  const char* launcher = std::getenv("CASDM_LAUNCHER_PID");
  if (!launcher) return;
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (std::to_string(::getppid()) != launcher)  // it died before the request took effect
    throw std::runtime_error(fmt::format("the launcher (process {}) that started this rank is gone", launcher));
}

/// Runs `args` (args[0]: the program) as ranks 0 … nproc−1 and waits for them; returns 0 if all
/// succeed, else the exit status of the first to fail (128 + signal if one was killed), which
/// `failure` (if given) describes: "rank 1 was killed by signal 9"; or, when the ranks ended on a
/// SIGINT or SIGTERM the launcher passed on, that status with `stopped` (if given) set.
inline int launch_local(int nproc, const std::vector<std::string>& args, std::string* failure = nullptr,
                        std::chrono::seconds grace = std::chrono::seconds(10), bool* stopped = nullptr) {
  if (nproc < 1 || nproc > 1024) throw std::invalid_argument(fmt::format("--nproc-per-node {}: 1 to 1024", nproc));
  const int port = free_local_port();
  std::vector<std::string> base;
  for (char** e = environ; *e; ++e) {
    const std::string v(*e);
    const auto key = v.substr(0, v.find('='));
    if (key != "RANK" && key != "LOCAL_RANK" && key != "WORLD_SIZE" && key != "MASTER_ADDR" && key != "MASTER_PORT" &&
        key != "CASDM_LAUNCHER_PID")
      base.push_back(v);
  }
  base.push_back(fmt::format("CASDM_LAUNCHER_PID={}", ::getpid()));
  detail::passed_on = 0;
  struct sigaction sa{}, old_int{}, old_term{};
  sa.sa_handler = detail::pass_on;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  std::vector<pid_t> pids;
  auto end_all = [&](int sig) {
    for (pid_t p : pids) ::kill(p, sig);
  };
  for (int r = 0; r < nproc; ++r) {
    auto env = base;
    env.push_back(fmt::format("RANK={}", r));
    env.push_back(fmt::format("LOCAL_RANK={}", r));
    env.push_back(fmt::format("WORLD_SIZE={}", nproc));
    env.push_back("MASTER_ADDR=127.0.0.1");
    env.push_back(fmt::format("MASTER_PORT={}", port));
    std::vector<char*> envp, argv;
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
    auto copy = args;
    for (auto& s : copy) argv.push_back(s.data());
    argv.push_back(nullptr);
    // Each rank in a process group of its own: a Ctrl-C reaches the launcher alone, which passes
    // it on once (a rank that got it twice would take it as "exit at once").
    posix_spawnattr_t attr;
    ::posix_spawnattr_init(&attr);
    ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    ::posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid = 0;
    const int err = ::posix_spawn(&pid, argv[0], nullptr, &attr, argv.data(), envp.data());
    ::posix_spawnattr_destroy(&attr);
    if (err != 0) {
      end_all(SIGTERM);
      throw std::runtime_error(fmt::format("cannot start rank {} ({}): {}", r, args.at(0), std::strerror(err)));
    }
    pids.push_back(pid);
    detail::launched[r] = pid;
    detail::launched_count = r + 1;
  }
  int status = 0, left = nproc;
  while (left > 0) {
    int ws = 0;
    const pid_t pid = ::waitpid(-1, &ws, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    const auto it = std::find(pids.begin(), pids.end(), pid);
    if (it == pids.end()) continue;
    --left;
    const int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    if (code != 0 && status == 0 && detail::passed_on != 0 && code == 128 + detail::passed_on) {
      status = code;  // a stop the launcher passed on: each rank ends on its own, after its checkpoint
      if (stopped) *stopped = true;
      if (failure) *failure = fmt::format("the ranks stopped on {}", detail::passed_on == SIGINT ? "SIGINT" : "SIGTERM");
    } else if (code != 0 && status == 0) {
      status = code;
      if (failure)
        *failure = WIFEXITED(ws) ? fmt::format("rank {} exited with status {}", it - pids.begin(), code)
                                 : fmt::format("rank {} was killed by signal {}", it - pids.begin(), WTERMSIG(ws));
      end_all(SIGTERM);  // the rest would wait for the failed rank until their timeout
      std::thread([pids, grace] {
        std::this_thread::sleep_for(grace);
        for (pid_t p : pids) ::kill(p, SIGKILL);
      }).detach();
    }
  }
  detail::launched_count = 0;
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  return status;
}

/// A program's `--nproc-per-node N` (`option`): nullopt when this process trains itself (N = 1, or
/// a rank started by a launcher or torchrun); else the ranks were started here and waited for, and
/// this is the status to exit with (a failure said on stderr as "<program>: rank 1 was killed by
/// signal 9; the other ranks were stopped"). N > 1 under torchrun's WORLD_SIZE is refused.
inline std::optional<int> run_ranks_if_asked(int64_t nproc, int argc, char** argv, const std::string& program,
                                             const std::string& option = "--nproc-per-node") {
  follow_launcher();  // a rank this launcher started
  if (nproc <= 1) return std::nullopt;
  if (std::getenv("WORLD_SIZE"))
    throw std::runtime_error(option + ": WORLD_SIZE is set already (torchrun or the like starts the ranks)");
  std::string failure;
  bool stopped = false;
  const int rc = launch_local(static_cast<int>(nproc), own_command(argc, argv, option), &failure,
                              std::chrono::seconds(10), &stopped);
  if (rc != 0 && stopped)
    fmt::print(stderr, "{}: {}\n", program, failure);
  else if (rc != 0)
    fmt::print(stderr, "{}: {}; the other ranks were stopped\n", program, failure);
  return rc;
}

}  // namespace casdm::train
