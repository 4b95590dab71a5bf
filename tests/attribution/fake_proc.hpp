// SPDX-License-Identifier: Apache-2.0
#pragma once
// A /proc-shaped tree in a temporary directory, built at test time: <root>/<pid>/{stat, status,
// cmdline, cgroup, exe, fd/<n> -> "socket:[inode]"}. The resolver reads it exactly as it reads
// /proc, through its configurable root.
//
// Two procfs behaviours a plain file system does not have are reproduced by the helpers:
//  - /proc/<pid> gets a new inode when the pid is reused: reusePid() builds the new directory
//    before removing the old one, so the file system cannot hand back the same inode;
//  - stat() of /proc/<pid>/fd reports a changed size when fds come and go: the helpers that
//    change fd/ also move its mtime forward (the resolver watches size and mtime).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace waitwatch::testing {

struct FakeProcess {
  std::int32_t pid = 0;
  std::string comm = "proc";
  std::uint64_t startTime = 1000;
  std::uint32_t uid = 1000;
  std::string cgroup = "0::/system.slice/demo.service\n";
  std::string cmdline{};  // raw, NUL-separated
  std::string exe = "/usr/bin/demo";
};

class FakeProc {
 public:
  FakeProc() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "waitwatch-proc-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    root_ = tmpl;
    std::filesystem::permissions(root_, std::filesystem::perms(0755));
    std::filesystem::create_directories(root_ / "proc");
    std::filesystem::create_directories(root_ / "cgroup");
  }
  ~FakeProc() {
    // Unreadable fd directories must be readable again to be removed by a non-root user.
    chmodTree(root_);
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  FakeProc(const FakeProc&) = delete;
  FakeProc& operator=(const FakeProc&) = delete;

  [[nodiscard]] std::string procRoot() const { return (root_ / "proc").string(); }
  [[nodiscard]] std::string cgroupRoot() const { return (root_ / "cgroup").string(); }
  [[nodiscard]] std::filesystem::path dir(std::int32_t pid) const {
    return root_ / "proc" / std::to_string(pid);
  }

  void addProcess(const FakeProcess& p) { writeProcess(dir(p.pid), p); }

  void addSocket(std::int32_t pid, int fd, std::uint32_t inode) {
    link(pid, fd, "socket:[" + std::to_string(inode) + "]");
  }
  void link(std::int32_t pid, int fd, const std::string& target) {
    const auto path = dir(pid) / "fd" / std::to_string(fd);
    std::error_code ec;
    std::filesystem::remove(path, ec);
    std::filesystem::create_symlink(target, path);
    touchFdDir(pid);
  }
  void closeFd(std::int32_t pid, int fd) {
    std::filesystem::remove(dir(pid) / "fd" / std::to_string(fd));
    touchFdDir(pid);
  }
  void removeProcess(std::int32_t pid) { std::filesystem::remove_all(dir(pid)); }

  // The pid now names a different process (a new start time, a new /proc/<pid> inode).
  void reusePid(const FakeProcess& p) {
    const auto fresh = root_ / ("fresh-" + std::to_string(p.pid));
    writeProcess(fresh, p);
    const auto old = root_ / ("old-" + std::to_string(p.pid));
    std::filesystem::rename(dir(p.pid), old);
    std::filesystem::rename(fresh, dir(p.pid));
    std::filesystem::remove_all(old);
  }

  void writeFile(std::int32_t pid, const std::string& name, const std::string& content) {
    std::ofstream(dir(pid) / name, std::ios::binary) << content;
  }

  // A cgroup directory under the cgroup root listing `pids`; returns its id (inode).
  std::uint64_t addCgroup(const std::string& path, const std::string& procs) {
    const auto d = root_ / "cgroup" / path;
    std::filesystem::create_directories(d);
    std::ofstream(d / "cgroup.procs") << procs;
    struct stat st {};
    ::stat(d.c_str(), &st);
    return st.st_ino;
  }

  void setFdDirMode(std::int32_t pid, unsigned mode) {
    std::filesystem::permissions(dir(pid) / "fd", std::filesystem::perms(mode));
  }

 private:
  static std::string statLine(const FakeProcess& p) {
    std::string s = std::to_string(p.pid) + " (" + p.comm + ") S 1";
    for (int field = 5; field <= 21; ++field)
      s += " 0";
    s += " " + std::to_string(p.startTime);
    for (int field = 23; field <= 52; ++field)
      s += " 0";
    return s + "\n";
  }

  void writeProcess(const std::filesystem::path& d, const FakeProcess& p) {
    std::filesystem::create_directories(d / "fd");
    std::filesystem::permissions(d, std::filesystem::perms(0755));
    std::filesystem::permissions(d / "fd", std::filesystem::perms(0755));
    std::ofstream(d / "stat") << statLine(p);
    const std::string uid = std::to_string(p.uid);
    std::ofstream(d / "status") << "Name:\t" << p.comm << "\nUid:\t" << uid << "\t" << uid << "\t"
                                << uid << "\t" << uid << "\n";
    std::ofstream(d / "comm") << p.comm << "\n";
    std::ofstream(d / "cmdline", std::ios::binary) << p.cmdline;
    std::ofstream(d / "cgroup") << p.cgroup;
    if (!p.exe.empty()) std::filesystem::create_symlink(p.exe, d / "exe");
  }

  // Moves fd/'s mtime forward by a second each time, as a changed fd table would show.
  void touchFdDir(std::int32_t pid) {
    const auto fd = dir(pid) / "fd";
    std::error_code ec;
    const auto t = std::filesystem::last_write_time(fd, ec);
    std::filesystem::last_write_time(fd, t + std::chrono::seconds(++ticks_), ec);
  }

  static void chmodTree(const std::filesystem::path& p) {
    std::error_code ec;
    if (std::filesystem::is_symlink(p, ec)) return;
    if (std::filesystem::is_directory(p, ec)) {
      std::filesystem::permissions(p, std::filesystem::perms(0755), ec);
      for (const auto& e : std::filesystem::directory_iterator(p, ec))
        chmodTree(e.path());
    }
  }

  std::filesystem::path root_;
  int ticks_ = 0;
};

}  // namespace waitwatch::testing
