#pragma once
// Files a run writes, written so that a failure never costs a good file, and output folders with
// one writer at a time.
//
//   casdm::io::write_atomic("out/run.json", text);   // temporary + fsync + rename; errors say why
//   casdm::io::remove_orphans("out");                // temporaries of processes that died mid-write
//   casdm::io::FolderLock lock("out");               // a second process is refused, naming the holder
//   casdm::io::OutputFolder run("out", {"checkpoints"});  // all three, for a run's output folder
#include <fcntl.h>
#include <fstream>
#include <fmt/format.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace casdm::io {

namespace detail {

[[noreturn]] inline void fail_errno(const std::string& what, const std::filesystem::path& p, int err = errno) {
  throw std::runtime_error(fmt::format("{} {}: {}", what, p.string(), std::strerror(err)));
}

/// Whether process `pid` exists (a process of another user counts).
inline bool process_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

}  // namespace detail

/// The temporary file write_atomic uses for `path` in this process: ".<name>.tmp.<pid>" beside it.
inline std::filesystem::path temporary_for(const std::filesystem::path& path, long pid = ::getpid()) {
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  return dir / fmt::format(".{}.tmp.{}", path.filename().string(), pid);
}

/// Writes `size` bytes at `data` to `path` atomically: a temporary file in the same folder, fsync,
/// rename, fsync of the folder — a crash leaves either the old file or the new one, and a failed
/// write (a full disk, a quota) throws with the system's reason and leaves the old file as it was.
/// `before_rename` (tests) runs after the data is synced and before it replaces `path`; if it
/// throws, the temporary file is removed and `path` is unchanged.
inline void write_atomic(const std::filesystem::path& path, const void* data, size_t size,
                         const std::function<void()>& before_rename = {}) {
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  if (!std::filesystem::is_directory(dir)) throw std::runtime_error("folder does not exist: " + dir.string());
  if (std::filesystem::is_directory(path)) throw std::runtime_error(fmt::format("cannot write {}: it is a folder", path.string()));
  const auto tmp = temporary_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) detail::fail_errno("cannot create", tmp);
  const char* bytes = static_cast<const char*>(data);
  try {
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::write(fd, bytes + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) detail::fail_errno("cannot write", path);
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) detail::fail_errno("cannot write", path);
    const int closed = ::close(fd);
    if (closed != 0) detail::fail_errno("cannot write", path);
  } catch (...) {
    ::close(fd);
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  try {
    if (before_rename) before_rename();
    if (::rename(tmp.c_str(), path.c_str()) != 0) detail::fail_errno("cannot rename onto", path);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}
inline void write_atomic(const std::filesystem::path& path, const std::vector<char>& bytes,
                         const std::function<void()>& before_rename = {}) {
  write_atomic(path, bytes.data(), bytes.size(), before_rename);
}
inline void write_atomic(const std::filesystem::path& path, std::string_view text,
                         const std::function<void()>& before_rename = {}) {
  write_atomic(path, text.data(), text.size(), before_rename);
}

/// Removes the temporary files (".<name>.tmp.<pid>") that processes no longer running left in
/// `dir` (killed while writing); those of live processes stay. Returns what was removed.
inline std::vector<std::filesystem::path> remove_orphans(const std::filesystem::path& dir) {
  static const std::regex re(R"(\..+\.tmp\.(\d+))");
  std::vector<std::filesystem::path> removed;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::smatch m;
    const auto name = e.path().filename().string();
    if (!std::regex_match(name, m, re)) continue;
    long pid = 0;
    const auto digits = m[1].str();
    if (std::from_chars(digits.data(), digits.data() + digits.size(), pid).ec != std::errc()) continue;
    if (detail::process_alive(pid)) continue;
    std::error_code rm;
    if (std::filesystem::remove(e.path(), rm)) removed.push_back(e.path());
  }
  return removed;
}

/// An exclusive lock on a folder (flock on "<dir>/.lock", holding the owner's pid) for the lifetime
/// of the object. A second holder — another process, or another FolderLock here — is refused
/// naming the holder's pid; the kernel drops the lock when its process dies, so a stale lock file
/// never blocks. The holder removes the file as it lets go (a lock taken on a file that was removed
/// meanwhile is taken again on a new one), so a run leaves no lock file behind.
class FolderLock {
 public:
  explicit FolderLock(const std::filesystem::path& dir) : path_(dir / ".lock") {
    for (int attempt = 0;; ++attempt) {
      take(dir);
      struct stat held {}, named {};
      // The file locked is still the one the path names: not removed by a holder letting go meanwhile.
      if (::fstat(fd_, &held) == 0 && ::stat(path_.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
          held.st_dev == named.st_dev)
        break;
      ::close(fd_);
      if (attempt == 100) detail::fail_errno("cannot keep hold of the lock file", path_, EAGAIN);
    }
    const auto pid = fmt::format("{}\n", ::getpid());
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
      const int err = errno;
      release();
      detail::fail_errno("cannot write", path_, err);
    }
  }
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  ~FolderLock() { release(); }

 private:
  /// Removes the lock file while still holding it, then lets go.
  void release() {
    ::unlink(path_.c_str());
    ::close(fd_);
  }
  void take(const std::filesystem::path& dir) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) detail::fail_errno("cannot create the lock file", path_);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      char buf[32] = {};
      const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      ::close(fd_);
      if (err != EWOULDBLOCK) detail::fail_errno("cannot lock", path_, err);
      const std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("?");
      throw std::runtime_error(fmt::format("{} is in use by process {} (one run per output folder)",
                                           dir.string(), holder.substr(0, holder.find('\n'))));
    }
  }

  std::filesystem::path path_;
  int fd_ = -1;
};

/// This machine's memory in bytes (what sizes are checked against before allocating).
inline double physical_memory() {
  return static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGE_SIZE));
}

/// Refuses, in one line, to write `bytes` for `what` into `dir` (an existing folder) when its file
/// system has less room free, saying both.
inline void require_space(const std::filesystem::path& dir, double bytes, const std::string& what) {
  std::error_code ec;
  const auto space = std::filesystem::space(dir, ec);
  if (ec) return;  // not measurable here: the write itself will say
  if (bytes > static_cast<double>(space.available))
    throw std::runtime_error(fmt::format("{} need {:.3g} GB in {}; its file system has {:.3g} GB free", what, bytes / 1e9,
                                         dir.string(), static_cast<double>(space.available) / 1e9));
}

/// The folders create_directories(dir) would make: `dir` and its missing parents, deepest first.
inline std::vector<std::filesystem::path> missing_folders(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (auto p = std::filesystem::absolute(dir, ec); !ec && !p.empty() && !std::filesystem::exists(p, ec);
       p = p.parent_path()) {
    out.push_back(p);
    if (p == p.parent_path()) break;
  }
  return out;
}

/// Creates `dir` and proves it writable, or throws naming it; an empty name is refused. A refusal
/// leaves nothing behind: neither the probe file nor a folder it made.
inline void require_writable_folder(const std::filesystem::path& dir) {
  if (dir.empty()) throw std::runtime_error("the output folder is named by an empty path");
  const auto made = missing_folders(dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const auto probe = dir / ".casdm-write-test";
  const bool writable = !ec && std::ofstream(probe).good();
  std::filesystem::remove(probe, ec);
  if (!writable) {
    for (const auto& f : made) std::filesystem::remove(f, ec);  // deepest first; only while empty
    throw std::runtime_error(fmt::format("output folder {} is not writable", dir.string()));
  }
}

/// A run's output folder for the lifetime of the object: created and proved writable, locked
/// (FolderLock: one run at a time), and cleared of the temporaries that dead processes left in it
/// and in its `subfolders` (removed() lists them, for the run to say so). The folders it made are
/// removed again at its end if nothing was written into them: a run refused before it wrote
/// anything leaves the file system as it found it.
class OutputFolder {
 public:
  explicit OutputFolder(const std::filesystem::path& dir, const std::vector<std::string>& subfolders = {})
      : made_(missing_folders(dir)), lock_(std::in_place, (require_writable_folder(dir), dir)) {
    removed_ = remove_orphans(dir);
    for (const auto& sub : subfolders)
      for (auto& f : remove_orphans(dir / sub)) removed_.push_back(std::move(f));
  }
  OutputFolder(const OutputFolder&) = delete;
  OutputFolder& operator=(const OutputFolder&) = delete;
  ~OutputFolder() {
    lock_.reset();  // its file first
    std::error_code ec;
    for (const auto& f : made_) std::filesystem::remove(f, ec);  // deepest first; only while empty
  }
  const std::vector<std::filesystem::path>& removed() const { return removed_; }

 private:
  std::vector<std::filesystem::path> made_;
  std::optional<FolderLock> lock_;
  std::vector<std::filesystem::path> removed_;
};

}  // namespace casdm::io
