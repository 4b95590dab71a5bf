// SPDX-License-Identifier: Apache-2.0
// Fuzz entries for the /api/v1 documents as `waitwatch --from` reads them from a daemon.
#include <nlohmann/json.hpp>

#include "api/alerts_json.hpp"
#include "api/snapshot_json.hpp"
#include "fuzz_entries.hpp"

namespace waitwatch::fuzz {

using api::alertsFromJson;
using api::snapshotFromJson;
using api::SnapshotJsonOptions;
using api::snapshotToJson;

const char* apiDocuments(const std::uint8_t* data, std::size_t size) {
  const auto json = nlohmann::json::parse(data, data + size, nullptr, false);
  if (json.is_discarded()) return nullptr;
  (void)alertsFromJson(json);
  auto doc = snapshotFromJson(json);
  if (!doc) return doc.error().message.empty() ? "an error without a message" : nullptr;
  const Snapshot& s = doc->snapshot;
  for (const TimeWaitGroup& g : s.timeWait) {
    if (g.netns >= s.namespaces.size()) return "a TIME_WAIT group outside the namespaces";
  }
  for (const TimeWaitByCloser& t : s.timeWaitByCloser) {
    if (t.group >= s.timeWait.size()) return "a closer count outside the TIME_WAIT groups";
    if (t.closer != kNoIndex && t.closer >= s.closers.size()) return "a closer out of range";
    if (t.created > t.timeWait) return "more new TIME_WAIT sockets than TIME_WAIT sockets";
  }
  // What was read is written back and read again as the same document.
  const SnapshotJsonOptions options{.closeWaitOldest = doc->closeWaitOldest};
  const std::string text = snapshotToJson(s, options).dump();
  auto again = snapshotFromJson(nlohmann::json::parse(text));
  if (!again) return "a document written from a read one does not read back";
  if (snapshotToJson(again->snapshot,
                     SnapshotJsonOptions{.closeWaitOldest = again->closeWaitOldest})
          .dump() != text) {
    return "a document does not read back as itself";
  }
  return nullptr;
}

}  // namespace waitwatch::fuzz
