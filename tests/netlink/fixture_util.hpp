// SPDX-License-Identifier: Apache-2.0
#pragma once
// Loading the recorded sock_diag replies and the recorder's manifest (see fixtures/README.md).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace waitwatch::testing {

inline std::string fixtureDir() {
  return std::string(WAITWATCH_TEST_DATA_DIR) + "/fixtures";
}

inline std::vector<std::byte> readBytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open fixture " + p.string());
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

inline std::string readText(const std::string& name) {
  std::ifstream in(fixtureDir() + "/" + name);
  if (!in) throw std::runtime_error("cannot open fixture " + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every recv() buffer of one recorded dump, in order: NAME.00.bin, NAME.01.bin, ...
inline std::vector<std::vector<std::byte>> loadDump(const std::string& name) {
  std::vector<std::vector<std::byte>> parts;
  for (int i = 0;; ++i) {
    char file[64];
    std::snprintf(file, sizeof file, "%s.%02d.bin", name.c_str(), i);
    const std::filesystem::path p = std::filesystem::path(fixtureDir()) / file;
    if (!std::filesystem::exists(p)) break;
    parts.push_back(readBytes(p));
  }
  if (parts.empty()) throw std::runtime_error("no fixture parts for " + name);
  return parts;
}

// One line of manifest.txt: what the recorder knew about a socket it made.
struct ManifestEntry {
  int family = 0;  // 4 or 6
  std::string state, local, remote, uid, inode, cookie, recvq, sendq, timer, cgroup;
};

inline std::vector<ManifestEntry> loadManifest() {
  std::istringstream in(readText("manifest.txt"));
  std::vector<ManifestEntry> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream f(line);
    ManifestEntry e;
    f >> e.family >> e.state >> e.local >> e.remote >> e.uid >> e.inode >> e.cookie >> e.recvq >>
        e.sendq >> e.timer >> e.cgroup;
    if (!f) throw std::runtime_error("bad manifest line: " + line);
    out.push_back(e);
  }
  return out;
}

// Offsets of the netlink messages in a buffer, walked by nlmsg_len (a test-side oracle that
// trusts the fixture, which the kernel wrote).
inline std::vector<std::size_t> messageOffsets(const std::vector<std::byte>& buf) {
  std::vector<std::size_t> offs;
  std::size_t off = 0;
  while (off + 16 <= buf.size()) {
    std::uint32_t len = 0;
    std::memcpy(&len, buf.data() + off, 4);
    if (len < 16 || len > buf.size() - off) break;
    offs.push_back(off);
    off += (len + 3u) & ~3u;
  }
  return offs;
}

inline std::uint16_t messageType(const std::vector<std::byte>& buf, std::size_t off) {
  std::uint16_t t = 0;
  std::memcpy(&t, buf.data() + off + 4, 2);
  return t;
}

inline std::uint32_t messageLength(const std::vector<std::byte>& buf, std::size_t off) {
  std::uint32_t l = 0;
  std::memcpy(&l, buf.data() + off, 4);
  return l;
}

}  // namespace waitwatch::testing
