// SPDX-License-Identifier: Apache-2.0
#include "proc/cgroup.hpp"

#include <array>
#include <charconv>

#include "proc/proc_text.hpp"

namespace waitwatch {
namespace {

constexpr std::size_t kContainerIdLength = 64;
constexpr std::size_t kMaxUnitBytes = 256;

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}
bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool isContainerId(std::string_view s) {
  if (s.size() != kContainerIdLength) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Pod uids are UUIDs (static pods: a 32-digit hash); the systemd driver writes '-' as '_'.
std::string podUid(std::string_view s) {
  if (s.size() < 8 || s.size() > 64) return {};
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (c == '_' || c == '-') {
      out.push_back('-');
    } else if (hex) {
      out.push_back(c);
    } else {
      return {};
    }
  }
  return out;
}

// Calls fn(component) for each non-empty '/'-separated component, in order.
template <typename Fn>
void forEachComponent(std::string_view path, Fn&& fn) {
  while (!path.empty()) {
    const auto slash = path.find('/');
    const std::string_view c = path.substr(0, slash);
    if (!c.empty()) fn(c);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
}

struct Prefixed {
  std::string_view prefix;
  std::string_view runtime;  // empty: a monitor process, not inside the container
};
constexpr std::array<Prefixed, 7> kPrefixes = {{
    {"libpod-conmon-", ""},
    {"crio-conmon-", ""},
    {"docker-", "docker"},
    {"libpod-", "podman"},
    {"cri-containerd-", "containerd"},
    {"nerdctl-", "containerd"},
    {"crio-", "cri-o"},
}};

enum class Match { None, Container, Monitor };

// "docker-<id>.scope", "libpod-<id>", ... -> runtime and id.
Match matchPrefixed(std::string_view part, std::string_view& runtime, std::string_view& id) {
  if (endsWith(part, ".scope")) part.remove_suffix(6);
  for (const auto& p : kPrefixes) {
    if (!startsWith(part, p.prefix)) continue;
    const std::string_view rest = part.substr(p.prefix.size());
    if (!isContainerId(rest)) return Match::None;
    if (p.runtime.empty()) return Match::Monitor;
    runtime = p.runtime;
    id = rest;
    return Match::Container;
  }
  return Match::None;
}

}  // namespace

std::string unitFromCgroupPath(std::string_view path) {
  constexpr std::array<std::string_view, 5> kLeafSuffixes = {".service", ".scope", ".socket",
                                                             ".mount", ".swap"};
  std::string_view leaf;
  std::string_view slice;
  forEachComponent(path, [&](std::string_view c) {
    for (auto suffix : kLeafSuffixes) {
      if (c.size() > suffix.size() && endsWith(c, suffix)) leaf = c;
    }
    if (c.size() > 6 && endsWith(c, ".slice")) slice = c;
  });
  return printable(leaf.empty() ? slice : leaf, kMaxUnitBytes);
}

ContainerInfo containerFromCgroupPath(std::string_view path) {
  bool kube = false;
  bool underContainerd = false;  // below containerd.service: bare ids are its containers
  bool underLibpod = false;      // podman's cgroupfs driver: /libpod_parent/libpod-<id>
  bool monitor = false;
  std::string pod;
  std::string_view runtime;
  std::string_view id;
  std::string_view previous;
  // Pod slices: "kubepods-burstable-pod<uid_with_underscores>.slice" (systemd driver, also
  // as the first part of containerd's "<slice>:cri-containerd:<id>"), "pod<uid>" (cgroupfs).
  auto notePod = [&](std::string_view part) {
    if (startsWith(part, "kubepods")) {
      kube = true;
      if (endsWith(part, ".slice")) {
        const std::string_view name = part.substr(0, part.size() - 6);
        const auto dash = name.rfind("-pod");
        if (dash != std::string_view::npos) {
          std::string uid = podUid(name.substr(dash + 4));
          if (!uid.empty()) pod = std::move(uid);
        }
      }
    } else if (kube && startsWith(part, "pod")) {
      std::string uid = podUid(part.substr(3));
      if (!uid.empty()) pod = std::move(uid);
    }
  };
  forEachComponent(path, [&](std::string_view c) {
    if (c == "containerd.service") underContainerd = true;
    if (c == "libpod_parent") underLibpod = true;
    // containerd's systemd driver below containerd.service: "<slice>:cri-containerd:<id>".
    std::string_view partPrevious;
    std::string_view rest = c;
    while (true) {
      const auto colon = rest.find(':');
      const std::string_view part = rest.substr(0, colon);
      notePod(part);
      std::string_view r;
      std::string_view i;
      const Match m = matchPrefixed(part, r, i);
      if (m == Match::Monitor) {
        monitor = true;
      } else if (m == Match::Container) {
        runtime = r;
        id = i;
        monitor = false;
      } else if (isContainerId(part)) {
        std::string_view context = partPrevious.empty() ? previous : partPrevious;
        std::string_view bare;
        if (context == "docker") bare = "docker";
        if (context == "cri-containerd" || underContainerd) bare = "containerd";
        if (context == "crio") bare = "cri-o";
        if (underLibpod) bare = "podman";
        if (kube && bare.empty()) bare = "kubernetes";
        if (!bare.empty()) {
          runtime = bare;
          id = part;
          monitor = false;
        }
      }
      if (colon == std::string_view::npos) break;
      partPrevious = part;
      rest.remove_prefix(colon + 1);
    }
    previous = c;
  });
  ContainerInfo info;
  if (monitor) return info;
  if (kube && (!pod.empty() || !id.empty())) {
    info.runtime = "kubernetes";
    info.id = std::string(id);
    info.pod = std::move(pod);
    return info;
  }
  if (!runtime.empty()) {
    info.runtime = std::string(runtime);
    info.id = std::string(id);
  }
  return info;
}

Result<CgroupInfo> parseCgroupFile(std::string_view text) {
  std::string_view unified;
  std::string_view systemd;
  bool haveUnified = false;
  ContainerInfo v1Container;
  std::size_t lineNo = 0;
  std::size_t parsed = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    ++lineNo;
    if (line.empty()) continue;
    const auto c1 = line.find(':');
    const auto c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    auto bad = [&](std::string_view why) {
      return Error{0, "cgroup: line " + std::to_string(lineNo) + ": " + std::string(why) + ": '" +
                          printable(line, 64) + "'"};
    };
    if (c2 == std::string_view::npos) return bad("expected 'hierarchy-id:controllers:path'");
    const std::string_view idText = line.substr(0, c1);
    unsigned hierarchy = 0;
    auto [ptr, ec] = std::from_chars(idText.data(), idText.data() + idText.size(), hierarchy);
    if (idText.empty() || ec != std::errc() || ptr != idText.data() + idText.size()) {
      return bad("hierarchy id is not a number");
    }
    const std::string_view controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string_view path = line.substr(c2 + 1);
    if (endsWith(path, " (deleted)")) path.remove_suffix(10);
    if (path.empty() || path.front() != '/') return bad("path does not start with '/'");
    ++parsed;
    if (hierarchy == 0 && controllers.empty()) {
      unified = path;
      haveUnified = true;
    } else if (controllers == "name=systemd") {
      systemd = path;
    } else if (v1Container.empty()) {
      v1Container = containerFromCgroupPath(path);
    }
  }
  if (parsed == 0) return Error{0, "cgroup: no 'hierarchy-id:controllers:path' line"};
  CgroupInfo info;
  appendPrintable(info.path, haveUnified ? unified : systemd, kMaxCgroupPathBytes);
  info.unit = unitFromCgroupPath(unified);
  if (info.unit.empty()) info.unit = unitFromCgroupPath(systemd);
  info.container = containerFromCgroupPath(unified);
  if (info.container.empty()) info.container = containerFromCgroupPath(systemd);
  if (info.container.empty()) info.container = std::move(v1Container);
  return info;
}

}  // namespace waitwatch
