// SPDX-License-Identifier: Apache-2.0
#include "containers/container_metadata.hpp"

#include <cerrno>
#include <nlohmann/json.hpp>
#include <span>

#include "proc/proc_text.hpp"

namespace waitwatch {
namespace {

using json = nlohmann::json;

// A name is at most this long: Kubernetes names are at most 253 bytes, Docker's fewer.
constexpr std::size_t kMaxName = 256;

Error bad(const std::string& what) {
  return Error{EBADMSG, what};
}

Result<json> parseObject(std::string_view text, const char* what) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return bad(std::string(what) + ": not valid JSON");
  if (!j.is_object()) return bad(std::string(what) + ": expected a JSON object");
  return j;
}

// The string member `key` of `object` into `out`, printable and cut; an error when present with
// another type.
Result<void> take(const json& object, const char* key, std::string& out, const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return {};
  if (!it->is_string()) return bad(where + "." + key + ": expected a string");
  out = printable(it->get_ref<const std::string&>(), kMaxName);
  return {};
}

struct Key {
  const char* name;
  std::string ContainerNames::*member;
};

// What containerd's CRI plugin writes (after the annotations a pod passes through, so these
// are its own), and nerdctl's name.
constexpr Key kContainerdKeys[] = {
    {"io.kubernetes.cri.container-name", &ContainerNames::name},
    {"io.kubernetes.cri.sandbox-name", &ContainerNames::podName},
    {"io.kubernetes.cri.sandbox-namespace", &ContainerNames::podNamespace},
    {"io.kubernetes.cri.sandbox-uid", &ContainerNames::podUid},
    {"nerdctl/name", &ContainerNames::name},
};
// The kubelet's labels, which CRI-O and cri-dockerd carry.
constexpr Key kKubeletKeys[] = {
    {"io.kubernetes.container.name", &ContainerNames::name},
    {"io.kubernetes.pod.name", &ContainerNames::podName},
    {"io.kubernetes.pod.namespace", &ContainerNames::podNamespace},
    {"io.kubernetes.pod.uid", &ContainerNames::podUid},
};
constexpr Key kComposeKeys[] = {
    {"com.docker.compose.project", &ContainerNames::composeProject},
    {"com.docker.compose.service", &ContainerNames::composeService},
};

// The `keys` of a string map (OCI annotations, Docker labels) into `n`; the first key that
// names a field wins.
Result<void> fromStringMap(const json& map, std::span<const Key> keys, const std::string& where,
                           ContainerNames& n) {
  if (!map.is_object()) return bad(where + ": expected an object");
  for (const Key& k : keys) {
    if (!(n.*k.member).empty()) continue;
    if (auto r = take(map, k.name, n.*k.member, where); !r) return r.error();
  }
  return {};
}

}  // namespace

Result<ContainerNames> namesFromOciConfig(std::string_view text, OciBundle bundle) {
  auto j = parseObject(text, "config.json");
  if (!j) return j.error();
  ContainerNames n;
  const auto it = j->find("annotations");
  if (it == j->end() || it->is_null()) return n;
  const std::span<const Key> keys =
      bundle == OciBundle::Containerd ? std::span<const Key>(kContainerdKeys) : kKubeletKeys;
  if (auto r = fromStringMap(*it, keys, "config.json: annotations", n); !r) return r.error();
  return n;
}

Result<ContainerNames> namesFromDockerConfig(std::string_view text, bool kubernetes) {
  auto j = parseObject(text, "config.v2.json");
  if (!j) return j.error();
  ContainerNames labels;
  if (const auto config = j->find("Config"); config != j->end() && !config->is_null()) {
    if (!config->is_object()) return bad("config.v2.json: Config: expected an object");
    if (const auto l = config->find("Labels"); l != config->end() && !l->is_null()) {
      const std::string where = "config.v2.json: Config.Labels";
      if (kubernetes) {
        if (auto r = fromStringMap(*l, kKubeletKeys, where, labels); !r) return r.error();
      }
      if (auto r = fromStringMap(*l, kComposeKeys, where, labels); !r) return r.error();
    }
  }
  std::string name;
  if (auto r = take(*j, "Name", name, "config.v2.json"); !r) return r.error();
  if (name.starts_with('/')) name.erase(0, 1);
  ContainerNames n = labels;
  // A Kubernetes container run by cri-dockerd is named by its pod's labels; Docker's own name
  // ("k8s_api_checkout-7d9f_payments_...") is only a composite of them.
  if (labels.name.empty()) n.name = name;
  return n;
}

Result<ContainerNames> namesFromStorageContainers(std::string_view text, std::string_view id) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return bad("containers.json: not valid JSON");
  if (!j.is_array()) return bad("containers.json: expected a JSON array");
  ContainerNames n;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const json& c = j[i];
    const std::string where = "containers.json[" + std::to_string(i) + "]";
    if (!c.is_object()) return bad(where + ": expected an object");
    const auto cid = c.find("id");
    if (cid == c.end() || !cid->is_string()) return bad(where + ".id: missing, or not a string");
    if (cid->get_ref<const std::string&>() != id) continue;
    const auto names = c.find("names");
    if (names == c.end() || names->is_null()) return n;
    if (!names->is_array()) return bad(where + ".names: expected an array");
    if (names->empty()) return n;
    if (!(*names)[0].is_string()) return bad(where + ".names[0]: expected a string");
    n.name = printable((*names)[0].get_ref<const std::string&>(), kMaxName);
    return n;
  }
  return n;
}

}  // namespace waitwatch
