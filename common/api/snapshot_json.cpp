// SPDX-License-Identifier: Apache-2.0
#include "api/snapshot_json.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <limits>

#include "proc/proc_text.hpp"

namespace waitwatch::api {
namespace {

using json = nlohmann::ordered_json;

double seconds(Duration d) {
  return static_cast<double>(d.count()) / 1000.0;
}

std::string netnsLabel(const Snapshot& s, std::uint32_t index) {
  return index < s.namespaces.size() ? s.namespaces[index].ref.label() : std::string();
}

// Local ports: classed with their namespace's ephemeral range (core/ports.hpp).
PortClass localPortClass(const Snapshot& s, std::uint32_t netns, std::uint16_t port) {
  return netns < s.namespaces.size() ? classifyPort(port, s.namespaces[netns].ephemeral)
                                     : classifyPort(port);
}

json portsJson(const Snapshot& s, std::uint32_t netns, const std::vector<std::uint16_t>& ports) {
  json a = json::array();
  for (std::uint16_t p : ports)
    a.push_back({{"port", p}, {"class", portClassName(localPortClass(s, netns, p))}});
  return a;
}

json processJson(const Snapshot& s, std::size_t i, const SnapshotJsonOptions& o) {
  const ProcessEntry& p = s.processes[i];
  json item{{"pid", p.info.key.pid},
            {"start_time", p.info.key.startTime},
            {"comm", p.info.comm},
            {"user", p.info.user},
            {"uid", p.info.uid},
            {"unit", p.info.unit},
            {"container", p.info.container.shortName()},
            {"container_runtime", p.info.container.runtime},
            {"container_id", p.info.container.id},
            {"container_name", p.info.container.name},
            {"pod", p.info.container.pod},
            {"pod_name", p.info.container.podName},
            {"pod_namespace", p.info.container.podNamespace},
            {"pod_uid", p.info.container.pod},
            {"compose_project", p.info.container.composeProject},
            {"compose_service", p.info.container.composeService},
            {"netns", netnsLabel(s, p.netns)},
            {"states", stateCountsJson(p.states)},
            {"close_wait_kinds", closeWaitKindsJson(p.closeWaitKinds)},
            {"listen_ports", p.listenPorts},
            {"listen", portsJson(s, p.netns, p.listenPorts)}};
  if (o.commandLines) {
    item["cmdline"] = p.info.cmdline;
    item["exe"] = p.info.exe;
  }
  if (i < o.closeWaitOldest.size() && p.states[TcpState::CloseWait] > 0) {
    item["close_wait_oldest_age_seconds"] = seconds(o.closeWaitOldest[i].age);
    item["close_wait_oldest_age_is_lower_bound"] = o.closeWaitOldest[i].lowerBound;
  }
  // Read for processes holding CLOSE_WAIT sockets only.
  if (p.openFds != 0) item["open_fds"] = p.openFds;
  if (p.maxFds != 0) item["max_fds"] = p.maxFds;
  if (p.fdForecast) {
    item["fd_growth_per_minute"] = p.fdForecast->perMinute;
    item["fd_exhaustion_seconds"] = seconds(p.fdForecast->exhaustion);
  }
  return item;
}

// The closers of one TIME_WAIT group: Snapshot::timeWaitByCloser[*at...] while its group is
// `group` (the list is sorted by group).
void closersJson(const Snapshot& s, std::uint32_t group, std::size_t& at, json& item) {
  json closers = json::array();
  std::uint32_t unknown = 0;
  for (; at < s.timeWaitByCloser.size() && s.timeWaitByCloser[at].group <= group; ++at) {
    const TimeWaitByCloser& t = s.timeWaitByCloser[at];
    if (t.group != group) continue;
    if (t.closer >= s.closers.size()) {
      unknown += t.timeWait;
      continue;
    }
    const ProcessInfo& p = s.closers[t.closer];
    closers.push_back({{"pid", p.key.pid},
                       {"start_time", p.key.startTime},
                       {"comm", p.comm},
                       {"user", p.user},
                       {"uid", p.uid},
                       {"unit", p.unit},
                       {"container", p.container.shortName()},
                       {"time_wait", t.timeWait},
                       {"created", t.created}});
  }
  item["closers"] = std::move(closers);
  item["closer_unknown"] = unknown;
}

json timeWaitJson(const Snapshot& s, const TimeWaitGroup& g) {
  json item{{"netns", netnsLabel(s, g.netns)},
            {"side", g.serverSide ? "server" : "client"},
            {"time_wait", g.timeWait},
            {"live", g.live},
            {"created", g.created}};
  if (g.serverSide) {
    item["local"] = g.destination.toString();
    item["local_port_class"] = portClassName(localPortClass(s, g.netns, g.destination.port));
    if (g.listener < s.processes.size()) {
      const ProcessInfo& l = s.processes[g.listener].info;
      item["listener"] = {{"pid", l.key.pid}, {"start_time", l.key.startTime}, {"comm", l.comm}};
    }
  } else {
    item["source"] = g.source.toString();
    item["destination"] = g.destination.toString();
    // A destination on loopback is in this namespace: its port is classed as a local one.
    item["destination_port_class"] = portClassName(
        g.destination.address.isLoopback() ? localPortClass(s, g.netns, g.destination.port)
                                           : classifyPort(g.destination.port));
    item["port_usage_ratio"] = g.portUsageRatio;
    if (g.closeWait > 0) item["close_wait"] = g.closeWait;
    if (g.portExhaustion) item["port_exhaustion_seconds"] = seconds(g.portExhaustion->exhaustion);
  }
  return item;
}

// --- reading -------------------------------------------------------------------------------

// A JSON value with the path that leads to it, so every error names where it is.
class Node {
 public:
  Node(const nlohmann::json& value, std::string path) : v_(value), path_(std::move(path)) {}

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const nlohmann::json& value() const { return v_; }

  Result<Node> key(std::string_view name) const {
    if (!v_.is_object()) return fail("expected an object");
    const auto it = v_.find(name);
    if (it == v_.end()) return Error{EBADMSG, child(name) + ": missing"};
    return Node(*it, child(name));
  }
  [[nodiscard]] bool has(std::string_view name) const {
    return v_.is_object() && v_.contains(name) && !v_.at(std::string(name)).is_null();
  }
  Result<std::vector<Node>> items() const {
    if (!v_.is_array()) return fail("expected an array");
    std::vector<Node> out;
    out.reserve(v_.size());
    for (std::size_t i = 0; i < v_.size(); ++i)
      out.emplace_back(v_[i], path_ + "[" + std::to_string(i) + "]");
    return out;
  }
  template <typename T>
  Result<T> integer() const {
    if (v_.is_number_unsigned()) {
      const auto u = v_.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(u);
    } else if (v_.is_number_integer()) {
      const auto n = v_.get<std::int64_t>();
      if (n >= 0 && static_cast<std::uint64_t>(n) <=
                        static_cast<std::uint64_t>(std::numeric_limits<T>::max())) {
        return static_cast<T>(n);
      }
    }
    return fail("expected an integer between 0 and " +
                std::to_string(std::numeric_limits<T>::max()));
  }
  Result<double> number() const {
    if (!v_.is_number() || !std::isfinite(v_.get<double>())) return fail("expected a number");
    return v_.get<double>();
  }
  Result<std::string> string() const {
    if (!v_.is_string()) return fail("expected a string");
    return v_.get<std::string>();
  }
  Result<bool> boolean() const {
    if (!v_.is_boolean()) return fail("expected true or false");
    return v_.get<bool>();
  }
  [[nodiscard]] Error fail(const std::string& what) const {
    return Error{EBADMSG, (path_.empty() ? std::string("(top level)") : path_) + ": " + what};
  }

 private:
  [[nodiscard]] std::string child(std::string_view name) const {
    return path_.empty() ? std::string(name) : path_ + "." + std::string(name);
  }
  const nlohmann::json& v_;
  std::string path_;
};

#define WW_TRY(var, expr)               \
  auto var##_r = (expr);                \
  if (!var##_r) return var##_r.error(); \
  auto var = std::move(*var##_r)

template <typename T>
Result<T> intKey(const Node& n, std::string_view name) {
  auto k = n.key(name);
  if (!k) return k.error();
  return k->integer<T>();
}

// Every string of the document is made printable as it is read: a daemon's names reach the
// operator's terminal, and control characters there would move the cursor or set its title.
Result<std::string> stringKey(const Node& n, std::string_view name) {
  auto k = n.key(name);
  if (!k) return k.error();
  auto text = k->string();
  if (!text) return text.error();
  return printable(*text, 64 * 1024);
}

// An optional string key: "" when absent or null.
Result<std::string> optionalString(const Node& n, std::string_view name) {
  if (!n.has(name)) return std::string();
  return stringKey(n, name);
}

Result<StateCounts> readStates(const Node& n) {
  if (!n.value().is_object()) return n.fail("expected an object of state counts");
  StateCounts c;
  for (TcpState s : kAllTcpStates) {
    auto v = intKey<std::uint64_t>(n, stateName(s));
    if (!v) return v.error();
    c[s] = *v;
  }
  return c;
}

// Each kind's count; together they are the process's CLOSE_WAIT count.
Result<CloseWaitKinds> readCloseWaitKinds(const Node& n, std::uint64_t closeWait) {
  if (!n.value().is_object()) return n.fail("expected an object of counts by kind");
  CloseWaitKinds kinds;
  for (CloseWaitKind k : kCloseWaitKinds) {
    auto v = intKey<std::uint32_t>(n, closeWaitKindName(k));
    if (!v) return v.error();
    kinds[k] = *v;
  }
  if (kinds.total() != closeWait) {
    return n.fail("the kinds add up to " + std::to_string(kinds.total()) + ", not to the " +
                  std::to_string(closeWait) + " CLOSE_WAIT sockets of \"states\"");
  }
  return kinds;
}

Result<IpAddress> readAddress(const Node& n, std::string_view text) {
  auto a = IpAddress::parse(text);
  if (!a) return n.fail("\"" + std::string(text) + "\" is not an IP address");
  return *a;
}

// "10.0.0.1:80" or "[::1]:80"
Result<Endpoint> readEndpoint(const Node& n) {
  auto text = n.string();
  if (!text) return text.error();
  const std::string& t = *text;
  const auto colon = t.rfind(':');
  if (colon == std::string::npos) return n.fail("\"" + t + "\" is not an address:port");
  std::string host = t.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::uint32_t p = 0;
  const std::string portText = t.substr(colon + 1);
  const auto [ptr, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), p);
  if (ec != std::errc() || ptr != portText.data() + portText.size() || portText.empty() ||
      p > 65535) {
    return n.fail("\"" + t + "\" has no valid port");
  }
  auto address = readAddress(n, host);
  if (!address) return address.error();
  return Endpoint{*address, static_cast<std::uint16_t>(p)};
}

Result<NetnsEntry> readNamespace(const Node& n) {
  NetnsEntry e;
  WW_TRY(inode, intKey<std::uint64_t>(n, "inode"));
  e.ref.inode = inode;
  WW_TRY(name, optionalString(n, "name"));
  e.ref.name = name;
  // An unnamed namespace's label is its alias ("host", a container): kept as read, so that the
  // processes' "netns" labels find it.
  WW_TRY(label, optionalString(n, "label"));
  if (name.empty() && label != "net:[" + std::to_string(inode) + "]") e.ref.alias = label;
  WW_TRY(statesNode, n.key("states"));
  WW_TRY(states, readStates(statesNode));
  e.states = states;
  if (n.has("time_wait_created")) {
    WW_TRY(created, intKey<std::uint64_t>(n, "time_wait_created"));
    e.timeWaitCreated = created;
  }
  if (n.has("time_wait_window_seconds")) {
    WW_TRY(w, n.key("time_wait_window_seconds"));
    WW_TRY(secs, w.number());
    if (secs < 0) return w.fail("a negative time");
    e.timeWaitWindow = Duration(std::llround(secs * 1000));
  }
  if (n.has("max_time_wait_buckets")) {
    WW_TRY(buckets, intKey<std::uint32_t>(n, "max_time_wait_buckets"));
    e.maxTimeWaitBuckets = buckets;
  }
  if (n.has("tcp_hash")) {
    WW_TRY(hash, n.key("tcp_hash"));
    WW_TRY(bucketsNode, hash.key("buckets"));
    WW_TRY(buckets, bucketsNode.integer<std::uint32_t>());
    if (buckets == 0) return bucketsNode.fail("a table has at least one bucket");
    WW_TRY(sharedNode, hash.key("shared_with_host"));
    WW_TRY(shared, sharedNode.boolean());
    e.tcpHash = TcpHashTable{buckets, shared};
  }
  if (n.has("ephemeral_ports")) {
    WW_TRY(range, n.key("ephemeral_ports"));
    WW_TRY(low, intKey<std::uint16_t>(range, "low"));
    WW_TRY(high, intKey<std::uint16_t>(range, "high"));
    WW_TRY(usable, intKey<std::uint32_t>(range, "usable"));
    if (low > high) return range.fail("low is above high");
    const std::uint32_t size = std::uint32_t{high} - low + 1;
    if (usable > size) return range.fail("more usable ports than the range holds");
    // The JSON names how many ports are usable, not which are reserved: reserving that many
    // from the top of the range gives the same low, high and usable count, all a view shows.
    e.ephemeral = EphemeralRange(low, high);
    for (std::uint32_t p = high, left = size - usable; left > 0; --p, --left)
      e.ephemeral.reserve(static_cast<std::uint16_t>(p));
  }
  if (n.has("kernel")) {
    WW_TRY(k, n.key("kernel"));
    struct Field {
      const char* name;
      std::uint64_t KernelTcpCounters::*member;
    };
    static constexpr Field fields[] = {
        {"TCPTimeWaitOverflow", &KernelTcpCounters::timeWaitOverflow},
        {"TW", &KernelTcpCounters::timeWaitEntered},
        {"TCPAbortOnClose", &KernelTcpCounters::abortOnClose},
        {"TCPAbortOnTimeout", &KernelTcpCounters::abortOnTimeout},
        {"ListenOverflows", &KernelTcpCounters::listenOverflows},
        {"ListenDrops", &KernelTcpCounters::listenDrops},
        {"ActiveOpens", &KernelTcpCounters::activeOpens},
        {"PassiveOpens", &KernelTcpCounters::passiveOpens}};
    for (const Field& f : fields) {
      WW_TRY(v, intKey<std::uint64_t>(k, f.name));
      e.kernel.*f.member = v;
    }
    e.kernel.valid = true;
  }
  return e;
}

std::uint32_t namespaceIndex(const Snapshot& s, const std::string& label) {
  for (std::size_t i = 0; i < s.namespaces.size(); ++i) {
    if (s.namespaces[i].ref.label() == label) return static_cast<std::uint32_t>(i);
  }
  return kNoIndex;
}

Result<void> readProcess(const Node& n, SnapshotDocument& doc) {
  Snapshot& s = doc.snapshot;
  ProcessEntry p;
  WW_TRY(pid, intKey<std::int32_t>(n, "pid"));
  p.info.key.pid = pid;
  if (n.has("start_time")) {
    WW_TRY(start, intKey<std::uint64_t>(n, "start_time"));
    p.info.key.startTime = start;
  }
  WW_TRY(comm, stringKey(n, "comm"));
  p.info.comm = comm;
  WW_TRY(user, stringKey(n, "user"));
  p.info.user = user;
  if (n.has("uid")) {
    WW_TRY(uid, intKey<std::uint32_t>(n, "uid"));
    p.info.uid = uid;
  }
  WW_TRY(unit, stringKey(n, "unit"));
  p.info.unit = unit;
  WW_TRY(container, stringKey(n, "container"));
  WW_TRY(runtime, optionalString(n, "container_runtime"));
  WW_TRY(containerId, optionalString(n, "container_id"));
  WW_TRY(pod, optionalString(n, "pod"));
  // An older writer with only the short name "docker:0123456789ab".
  if (runtime.empty() && !container.empty()) {
    const auto colon = container.find(':');
    runtime = container.substr(0, colon);
    if (containerId.empty() && colon != std::string::npos)
      containerId = container.substr(colon + 1);
  }
  p.info.container = ContainerInfo{runtime, containerId, pod};
  // Names, from a daemon that found them in the runtime's files.
  WW_TRY(containerName, optionalString(n, "container_name"));
  WW_TRY(podName, optionalString(n, "pod_name"));
  WW_TRY(podNamespace, optionalString(n, "pod_namespace"));
  p.info.container.name = containerName;
  p.info.container.podName = podName;
  p.info.container.podNamespace = podNamespace;
  WW_TRY(composeProject, optionalString(n, "compose_project"));
  WW_TRY(composeService, optionalString(n, "compose_service"));
  p.info.container.composeProject = composeProject;
  p.info.container.composeService = composeService;
  WW_TRY(cmdline, optionalString(n, "cmdline"));
  p.info.cmdline = cmdline;
  WW_TRY(exe, optionalString(n, "exe"));
  p.info.exe = exe;
  WW_TRY(netns, stringKey(n, "netns"));
  p.netns = namespaceIndex(s, netns);
  if (p.netns == kNoIndex) {
    return Error{EBADMSG, n.path() + ".netns: \"" + netns + "\" is not one of \"namespaces\""};
  }
  WW_TRY(statesNode, n.key("states"));
  WW_TRY(states, readStates(statesNode));
  p.states = states;
  // A daemon from before the kinds does not write them: left unknown (zero), not an error.
  if (n.has("close_wait_kinds")) {
    WW_TRY(kindsNode, n.key("close_wait_kinds"));
    WW_TRY(kinds, readCloseWaitKinds(kindsNode, states[TcpState::CloseWait]));
    p.closeWaitKinds = kinds;
  }
  if (n.has("listen_ports")) {
    WW_TRY(ports, n.key("listen_ports"));
    WW_TRY(items, ports.items());
    for (const Node& item : items) {
      WW_TRY(port, item.integer<std::uint16_t>());
      p.listenPorts.push_back(port);
    }
  }
  SocketAge age;
  if (n.has("close_wait_oldest_age_seconds")) {
    WW_TRY(ageNode, n.key("close_wait_oldest_age_seconds"));
    WW_TRY(secs, ageNode.number());
    if (secs < 0) return ageNode.fail("a negative age");
    age.age = Duration(std::llround(secs * 1000));
    if (n.has("close_wait_oldest_age_is_lower_bound")) {
      WW_TRY(lb, n.key("close_wait_oldest_age_is_lower_bound"));
      WW_TRY(lower, lb.boolean());
      age.lowerBound = lower;
    }
    doc.hasAges = true;
  }
  if (n.has("open_fds")) {
    WW_TRY(open, intKey<std::uint64_t>(n, "open_fds"));
    p.openFds = open;
  }
  if (n.has("max_fds")) {
    WW_TRY(max, intKey<std::uint64_t>(n, "max_fds"));
    p.maxFds = max;
  }
  if (n.has("fd_exhaustion_seconds")) {
    WW_TRY(exhaustionNode, n.key("fd_exhaustion_seconds"));
    WW_TRY(secs, exhaustionNode.number());
    if (!(secs >= 0 && secs < 1e12)) return exhaustionNode.fail("not a number of seconds >= 0");
    WW_TRY(growthNode, n.key("fd_growth_per_minute"));
    WW_TRY(growth, growthNode.number());
    if (!(growth >= 0 && growth < 1e15)) return growthNode.fail("not a growth >= 0");
    p.fdForecast = FdForecast{growth, Duration(std::llround(secs * 1000))};
  }
  s.processes.push_back(std::move(p));
  doc.closeWaitOldest.push_back(age);
  return {};
}

Result<void> readTimeWait(const Node& n, Snapshot& s) {
  TimeWaitGroup g;
  WW_TRY(netns, stringKey(n, "netns"));
  g.netns = namespaceIndex(s, netns);
  if (g.netns == kNoIndex) {
    return Error{EBADMSG, n.path() + ".netns: \"" + netns + "\" is not one of \"namespaces\""};
  }
  WW_TRY(side, stringKey(n, "side"));
  if (side != "server" && side != "client") {
    return Error{EBADMSG, n.path() + ".side: \"" + side + "\" is neither server nor client"};
  }
  g.serverSide = side == "server";
  WW_TRY(tw, intKey<std::uint32_t>(n, "time_wait"));
  g.timeWait = tw;
  WW_TRY(live, intKey<std::uint32_t>(n, "live"));
  g.live = live;
  if (n.has("created")) {
    WW_TRY(created, intKey<std::uint32_t>(n, "created"));
    g.created = created;
  }
  if (g.serverSide) {
    WW_TRY(local, n.key("local"));
    WW_TRY(endpoint, readEndpoint(local));
    g.destination = endpoint;
    if (n.has("listener")) {
      WW_TRY(l, n.key("listener"));
      WW_TRY(pid, intKey<std::int32_t>(l, "pid"));
      for (std::size_t i = 0; i < s.processes.size(); ++i) {
        if (s.processes[i].info.key.pid == pid && s.processes[i].netns == g.netns) {
          g.listener = static_cast<std::uint32_t>(i);
          break;
        }
      }
    }
  } else {
    WW_TRY(sourceNode, n.key("source"));
    WW_TRY(sourceText, sourceNode.string());
    WW_TRY(source, readAddress(sourceNode, sourceText));
    g.source = source;
    WW_TRY(dest, n.key("destination"));
    WW_TRY(endpoint, readEndpoint(dest));
    g.destination = endpoint;
    WW_TRY(ratioNode, n.key("port_usage_ratio"));
    WW_TRY(ratio, ratioNode.number());
    g.portUsageRatio = ratio;
    if (n.has("close_wait")) {
      WW_TRY(closeWait, intKey<std::uint32_t>(n, "close_wait"));
      g.closeWait = closeWait;
    }
    if (n.has("port_exhaustion_seconds")) {
      WW_TRY(node, n.key("port_exhaustion_seconds"));
      WW_TRY(left, node.number());
      if (!(left >= 0 && left < 1e12)) return node.fail("not a number of seconds >= 0");
      g.portExhaustion = FdForecast{0.0, Duration(std::llround(left * 1000))};
    }
  }
  const auto group = static_cast<std::uint32_t>(s.timeWait.size());
  s.timeWait.push_back(g);
  if (n.has("closers")) {
    WW_TRY(closers, n.key("closers"));
    WW_TRY(items, closers.items());
    for (const Node& item : items) {
      ProcessInfo p;
      WW_TRY(pid, intKey<std::int32_t>(item, "pid"));
      WW_TRY(start, intKey<std::uint64_t>(item, "start_time"));
      p.key = ProcessKey{pid, start};
      WW_TRY(comm, stringKey(item, "comm"));
      p.comm = comm;
      WW_TRY(user, optionalString(item, "user"));
      p.user = user;
      if (item.has("uid")) {
        WW_TRY(uid, intKey<std::uint32_t>(item, "uid"));
        p.uid = uid;
      }
      WW_TRY(unit, optionalString(item, "unit"));
      p.unit = unit;
      WW_TRY(container, optionalString(item, "container"));
      if (!container.empty()) {
        const auto colon = container.find(':');
        p.container.runtime = container.substr(0, colon);
        if (colon != std::string::npos) p.container.id = container.substr(colon + 1);
      }
      WW_TRY(count, intKey<std::uint32_t>(item, "time_wait"));
      WW_TRY(created, intKey<std::uint32_t>(item, "created"));
      if (created > count) return item.fail("more created than in TIME_WAIT");
      const auto closer = static_cast<std::uint32_t>(s.closers.size());
      s.closers.push_back(std::move(p));
      s.timeWaitByCloser.push_back(TimeWaitByCloser{group, closer, count, created});
    }
  }
  if (n.has("closer_unknown")) {
    WW_TRY(unknown, intKey<std::uint32_t>(n, "closer_unknown"));
    if (unknown > 0) s.timeWaitByCloser.push_back(TimeWaitByCloser{group, kNoIndex, unknown, 0});
  }
  return {};
}

Result<SnapshotDocument> readDocument(const Node& root) {
  if (!root.value().is_object()) return root.fail("expected a JSON object");
  SnapshotDocument doc;
  Snapshot& s = doc.snapshot;
  WW_TRY(version, optionalString(root, "version"));
  doc.version = version;
  if (root.has("time_unix_seconds")) {
    WW_TRY(t, root.key("time_unix_seconds"));
    WW_TRY(secs, t.number());
    doc.timeUnixSeconds = secs;
  }
  if (root.has("poll_interval_seconds")) {
    WW_TRY(t, root.key("poll_interval_seconds"));
    WW_TRY(secs, t.number());
    if (secs < 0) return t.fail("a negative interval");
    s.pollInterval = Duration(std::llround(secs * 1000));
  }
  WW_TRY(namespaces, root.key("namespaces"));
  WW_TRY(nsItems, namespaces.items());
  for (const Node& item : nsItems) {
    WW_TRY(ns, readNamespace(item));
    s.namespaces.push_back(std::move(ns));
  }
  WW_TRY(processes, root.key("processes"));
  WW_TRY(procItems, processes.items());
  for (const Node& item : procItems) {
    if (auto r = readProcess(item, doc); !r) return r.error();
  }
  if (root.has("time_wait")) {
    WW_TRY(groups, root.key("time_wait"));
    WW_TRY(groupItems, groups.items());
    for (const Node& item : groupItems) {
      if (auto r = readTimeWait(item, s); !r) return r.error();
    }
  }
  if (root.has("closer_source")) {
    WW_TRY(sourceNode, root.key("closer_source"));
    WW_TRY(sourceText, sourceNode.string());
    const auto source = parseCloserSource(sourceText);
    if (!source) return sourceNode.fail("\"" + sourceText + "\" is not a closer source");
    s.closerSource = *source;
  }
  if (root.has("closes_lost")) {
    WW_TRY(lost, intKey<std::uint64_t>(root, "closes_lost"));
    s.closesLost = lost;
  }
  if (root.has("unattributed")) {
    WW_TRY(u, root.key("unattributed"));
    WW_TRY(noPermission, intKey<std::uint64_t>(u, "no_permission"));
    WW_TRY(vanished, intKey<std::uint64_t>(u, "vanished"));
    s.unattributedNoPermission = noPermission;
    s.unattributedVanished = vanished;
  }
  // The totals must be what the namespaces add up to: a document that disagrees with itself
  // is not shown as if it were right.
  WW_TRY(statesNode, root.key("states"));
  WW_TRY(states, readStates(statesNode));
  if (states != s.totals()) return statesNode.fail("the totals differ from the namespaces' sum");
  return doc;
}

#undef WW_TRY

}  // namespace

json closeWaitKindsJson(const CloseWaitKinds& kinds) {
  json j = json::object();
  for (CloseWaitKind k : kCloseWaitKinds)
    j[std::string(closeWaitKindName(k))] = kinds[k];
  return j;
}

json stateCountsJson(const StateCounts& counts) {
  json j = json::object();
  for (TcpState s : kAllTcpStates)
    j[std::string(stateName(s))] = counts[s];
  return j;
}

json snapshotToJson(const Snapshot& s, const SnapshotJsonOptions& o) {
  json j = json::object();
  if (o.header != nullptr && o.header->is_object()) {
    for (const auto& [k, v] : o.header->items())
      j[k] = v;
  }
  if (s.pollInterval.count() > 0) j["poll_interval_seconds"] = seconds(s.pollInterval);
  j["states"] = stateCountsJson(s.totals());

  json namespaces = json::array();
  for (std::size_t i = 0; i < s.namespaces.size(); ++i) {
    const NetnsEntry& ns = s.namespaces[i];
    json n{{"inode", ns.ref.inode},
           {"name", ns.ref.name.empty() ? json(nullptr) : json(ns.ref.name)},
           {"label", ns.ref.label()},
           {"states", stateCountsJson(ns.states)},
           {"time_wait_created", ns.timeWaitCreated},
           {"max_time_wait_buckets", ns.maxTimeWaitBuckets},
           {"ephemeral_ports",
            {{"low", ns.ephemeral.low()},
             {"high", ns.ephemeral.high()},
             {"usable", ns.ephemeral.usableCount()}}}};
    if (ns.timeWaitWindow.count() > 0) n["time_wait_window_seconds"] = seconds(ns.timeWaitWindow);
    if (ns.tcpHash) {
      n["tcp_hash"] = {{"buckets", ns.tcpHash->buckets},
                       {"shared_with_host", ns.tcpHash->sharedWithHost}};
    }
    if (i < o.timeWaitCreatedTotal.size()) n["time_wait_created_total"] = o.timeWaitCreatedTotal[i];
    if (ns.kernel.valid) {
      n["kernel"] = {{"TCPTimeWaitOverflow", ns.kernel.timeWaitOverflow},
                     {"TW", ns.kernel.timeWaitEntered},
                     {"TCPAbortOnClose", ns.kernel.abortOnClose},
                     {"TCPAbortOnTimeout", ns.kernel.abortOnTimeout},
                     {"ListenOverflows", ns.kernel.listenOverflows},
                     {"ListenDrops", ns.kernel.listenDrops},
                     {"ActiveOpens", ns.kernel.activeOpens},
                     {"PassiveOpens", ns.kernel.passiveOpens}};
    }
    namespaces.push_back(std::move(n));
  }
  j["namespaces"] = std::move(namespaces);

  json processes = json::array();
  for (std::size_t i = 0; i < s.processes.size(); ++i)
    processes.push_back(processJson(s, i, o));
  j["processes"] = std::move(processes);

  json timeWait = json::array();
  std::size_t closerAt = 0;
  for (std::uint32_t i = 0; i < s.timeWait.size(); ++i) {
    json item = timeWaitJson(s, s.timeWait[i]);
    if (s.closerSource != CloserSource::None) closersJson(s, i, closerAt, item);
    timeWait.push_back(std::move(item));
  }
  // Where each group's "closers" come from; "none" (a one-shot run): no closers are known.
  j["closer_source"] = closerSourceName(s.closerSource);
  if (s.closerSource == CloserSource::KernelProbe) j["closes_lost"] = s.closesLost;
  j["time_wait"] = std::move(timeWait);
  j["unattributed"] = {{"no_permission", s.unattributedNoPermission},
                       {"vanished", s.unattributedVanished}};
  if (o.trailer != nullptr && o.trailer->is_object()) {
    for (const auto& [k, v] : o.trailer->items())
      j[k] = v;
  }
  return j;
}

Result<SnapshotDocument> snapshotFromJson(const nlohmann::json& value) {
  return readDocument(Node(value, ""));
}

}  // namespace waitwatch::api
