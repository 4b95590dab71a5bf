#include "cli/render.hpp"

#include <algorithm>
#include <vector>

namespace waitwatch::cli {

nlohmann::ordered_json stateCountsJson(const StateCounts& counts) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (TcpState s : kAllTcpStates)
    j[std::string(stateName(s))] = counts[s];
  return j;
}

nlohmann::ordered_json snapshotJson(const Snapshot& snapshot) {
  nlohmann::ordered_json namespaces = nlohmann::ordered_json::array();
  for (const auto& ns : snapshot.namespaces) {
    namespaces.push_back({
        {"inode", ns.ref.inode},
        {"name", ns.ref.name.empty() ? nlohmann::ordered_json(nullptr)
                                     : nlohmann::ordered_json(ns.ref.name)},
        {"states", stateCountsJson(ns.states)},
    });
  }
  return {{"states", stateCountsJson(snapshot.totals())}, {"namespaces", std::move(namespaces)}};
}

std::string renderStateTable(const Snapshot& snapshot) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header{"NETNS"};
  for (TcpState s : kAllTcpStates)
    header.emplace_back(ssStateName(s));
  header.emplace_back("TOTAL");
  rows.push_back(std::move(header));

  auto row = [](std::string label, const StateCounts& c) {
    std::vector<std::string> r{std::move(label)};
    for (TcpState s : kAllTcpStates)
      r.push_back(std::to_string(c[s]));
    r.push_back(std::to_string(c.total()));
    return r;
  };
  for (const auto& ns : snapshot.namespaces)
    rows.push_back(row(ns.ref.label(), ns.states));
  if (snapshot.namespaces.size() > 1) rows.push_back(row("TOTAL", snapshot.totals()));

  std::vector<std::size_t> width(rows.front().size(), 0);
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (i == 0) {  // names left-aligned, numbers right-aligned
        line += r[i] + std::string(width[i] - r[i].size(), ' ');
      } else {
        line += "  " + std::string(width[i] - r[i].size(), ' ') + r[i];
      }
    }
    out += line + '\n';
  }
  return out;
}

}  // namespace waitwatch::cli
