// SPDX-License-Identifier: Apache-2.0
#pragma once
// waitwatchd's command line, parsed as a pure function (unit-tested without a daemon).
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "service/service_config.hpp"
#include "service/tls.hpp"

namespace waitwatch {

struct DaemonArgs {
  enum class Mode : std::uint8_t { Run, CheckConfig, Version, Help };
  Mode mode = Mode::Run;
  std::optional<std::string> configPath;  // --config FILE, or the FILE of --check-config FILE
  std::optional<std::string> listen;      // --listen ADDR:PORT (already validated)
  bool verifySampler = false;             // --verify-sampler
};

// `args` excludes argv[0]. Errors are one line naming the argument: "--listen: \"x\" is not
// ADDR:PORT (e.g. 127.0.0.1:9929 or [::1]:9929)".
Result<DaemonArgs> parseDaemonArgs(std::span<const std::string_view> args);
std::string daemonUsage();

// Which configuration the daemon runs on: the file named on the command line; else the default
// path when that file exists; else the embedded defaults.
struct ConfigSource {
  std::string path;  // empty for the embedded defaults
  [[nodiscard]] bool embedded() const { return path.empty(); }
  [[nodiscard]] std::string describe() const { return embedded() ? "embedded defaults" : path; }
};
ConfigSource chooseConfigSource(const DaemonArgs& args,
                                std::string_view defaultPath = kDefaultConfigPath);

// Reads and compiles the configuration (adapter: reads the file), then applies --listen. The
// certificate and key of web.tls_server_config are read and checked too, so that
// --check-config, start-up and reload all reject a configuration the server could not serve;
// `tls`, when given, receives them (nullopt: plain HTTP), read once with the configuration.
Result<ServiceConfig> loadConfig(const ConfigSource& source, const DaemonArgs& args,
                                 std::optional<TlsCredentials>* tls = nullptr);

}  // namespace waitwatch
