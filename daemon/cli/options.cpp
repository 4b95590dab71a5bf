#include "cli/options.hpp"

#include <cerrno>

namespace waitwatch::cli {
namespace {

Error bad(const std::string& what) {
  return Error{EINVAL, what};
}

Result<void> applyNetns(std::string_view value, CliOptions& o) {
  if (value.empty()) return bad("--netns needs a value: 'all' or a namespace name");
  if (value == "all") {
    o.netns = NetnsSelection::All;
    o.netnsName.clear();
  } else {
    o.netns = NetnsSelection::Named;
    o.netnsName = std::string(value);
  }
  return {};
}

}  // namespace

Result<CliOptions> parseArguments(std::span<const std::string_view> args) {
  CliOptions o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--json") {
      o.json = true;
    } else if (a == "--help" || a == "-h") {
      o.help = true;
    } else if (a == "--version") {
      o.version = true;
    } else if (a == "--netns") {
      if (i + 1 >= args.size()) return bad("--netns needs a value: 'all' or a namespace name");
      if (auto r = applyNetns(args[++i], o); !r) return r.error();
    } else if (a.starts_with("--netns=")) {
      if (auto r = applyNetns(a.substr(8), o); !r) return r.error();
    } else if (a.starts_with("-")) {
      return bad("unknown option '" + std::string(a) + "'");
    } else {
      return bad("unexpected argument '" + std::string(a) + "'");
    }
  }
  return o;
}

std::string usage() {
  return "Usage: waitwatch [--netns all|NAME] [--json]\n"
         "\n"
         "Counts TCP sockets per state (as `ss -tan` names them) from the kernel's own socket\n"
         "table (NETLINK_SOCK_DIAG), per network namespace.\n"
         "\n"
         "Options:\n"
         "  --netns all|NAME  every network namespace on the host (found through /proc/*/ns/net\n"
         "                    and /run/netns), or the `ip netns` namespace NAME; default: the\n"
         "                    namespace waitwatch runs in\n"
         "  --json            one JSON object: \"states\" (totals, by state name) and\n"
         "                    \"namespaces\" (each with \"inode\", \"name\" and \"states\")\n"
         "  -h, --help        this text\n"
         "  --version         the version\n"
         "\n"
         "Exit status: 0 on success, 1 when no namespace could be read, 2 on bad arguments.\n";
}

}  // namespace waitwatch::cli
