// SPDX-License-Identifier: Apache-2.0
// Fuzz entry: the container runtimes' files (waitwatch::containers).
#include <string>
#include <string_view>

#include "containers/container_metadata.hpp"
#include "fuzz_check.hpp"
#include "fuzz_entries.hpp"

namespace waitwatch::fuzz {
namespace {

const char* check(const Result<ContainerNames>& r) {
  if (!r) {
    const std::string& m = r.error().message;
    if (m.empty() || !isPrintableUtf8(m)) return "an error is not one printable line";
    return nullptr;
  }
  for (const std::string* s : {&r->name, &r->podName, &r->podNamespace, &r->podUid,
                               &r->composeProject, &r->composeService}) {
    if (s->size() > 256 || !isPrintableUtf8(*s)) return "a name read is not printable, or too long";
  }
  return nullptr;
}

}  // namespace

const char* containerFiles(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (OciBundle b : {OciBundle::Containerd, OciBundle::CriO}) {
    if (const char* broken = check(namesFromOciConfig(text, b))) return broken;
  }
  for (bool kubernetes : {false, true}) {
    if (const char* broken = check(namesFromDockerConfig(text, kubernetes))) return broken;
  }
  // The id a cgroup path gave, and one the file may list.
  if (const char* broken = check(namesFromStorageContainers(text, "0123abcd"))) return broken;
  return nullptr;
}

}  // namespace waitwatch::fuzz
