// SPDX-License-Identifier: Apache-2.0
#include "service/options.hpp"

#include <sys/stat.h>

#include <cerrno>

#include "sys/file.hpp"

namespace waitwatch {
namespace {

Error usageError(std::string message) {
  return Error{0, std::move(message)};
}

}  // namespace

std::string daemonUsage() {
  return "Usage: waitwatchd [--config FILE] [--listen ADDR:PORT] [--verify-sampler]\n"
         "       waitwatchd --check-config [FILE]\n"
         "       waitwatchd --version | --help\n"
         "\n"
         "Polls the kernel's TCP sockets, attributes them to processes, units and containers,\n"
         "exports Prometheus metrics on /metrics (and JSON on /api/v1/snapshot, /api/v1/alerts)\n"
         "and writes alerts about CLOSE_WAIT leaks and TIME_WAIT storms to the journal.\n"
         "\n"
         "  -c, --config FILE    configuration (default " +
         std::string(kDefaultConfigPath) +
         "; embedded defaults\n"
         "                       when that file does not exist)\n"
         "  -l, --listen ADDR:PORT  metrics and API address, overrides the config's `listen`\n"
         "                       (default " +
         std::string(kDefaultListen) +
         ")\n"
         "  --verify-sampler     read every namespace both ways at each poll (the kernel's\n"
         "                       walk between two netlink dumps) and log any socket the two\n"
         "                       report differently (waitwatch_sampler_check_faults_total)\n"
         "  --check-config [FILE]  compile the configuration, print a summary or the error,\n"
         "                       exit 0 or 1\n"
         "  -V, --version        print the version\n"
         "  -h, --help           print this help\n"
         "\n"
         "Signals: SIGHUP reloads the configuration; SIGTERM and SIGINT stop the daemon.\n"
         "\n"
         "TIME_WAIT sockets are charged to the process that closed them, recorded in the\n"
         "kernel by a BPF program loaded at start-up (needs CAP_BPF and CAP_PERFMON);\n"
         "WAITWATCH_NO_BPF=1 in the environment loads none, and closers then come from\n"
         "socket ownership at each poll. The sockets themselves are read by the kernel's own\n"
         "walk (a BPF iter/tcp program) where it loads, else by a netlink (inet_diag) dump;\n"
         "the start-up log and waitwatch_sampler_info say which.\n";
}

Result<DaemonArgs> parseDaemonArgs(std::span<const std::string_view> args) {
  DaemonArgs out;
  bool checkConfig = false;
  bool version = false;
  bool help = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    std::optional<std::string_view> inlineValue;
    if (arg.starts_with("--")) {
      if (const auto eq = arg.find('='); eq != std::string_view::npos) {
        inlineValue = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
      }
    }
    // The value of an option that needs one: "--opt=VALUE" or "--opt VALUE".
    auto value = [&](std::string_view name) -> Result<std::string> {
      if (inlineValue) {
        if (inlineValue->empty()) return usageError(std::string(name) + ": empty value");
        return std::string(*inlineValue);
      }
      if (i + 1 >= args.size() || args[i + 1].starts_with("-")) {
        return usageError(std::string(name) + ": missing value");
      }
      // An empty value ("--config \"$UNSET\"") must not quietly mean "the default".
      if (args[i + 1].empty()) return usageError(std::string(name) + ": empty value");
      return std::string(args[++i]);
    };
    if (arg == "--config" || arg == "-c") {
      if (out.configPath) return usageError("--config: given twice");
      auto v = value("--config");
      if (!v) return v.error();
      out.configPath = *v;
    } else if (arg == "--listen" || arg == "-l") {
      if (out.listen) return usageError("--listen: given twice");
      auto v = value("--listen");
      if (!v) return v.error();
      if (!parseListenAddress(*v)) {
        return usageError("--listen: \"" + *v +
                          "\" is not ADDR:PORT (e.g. 127.0.0.1:9929 or [::1]:9929)");
      }
      out.listen = *v;
    } else if (arg == "--check-config") {
      if (checkConfig) return usageError("--check-config: given twice");
      checkConfig = true;
      // The FILE is optional: take the next argument when it is not an option.
      if (inlineValue) {
        if (inlineValue->empty()) return usageError("--check-config: empty value");
        if (out.configPath) return usageError("--check-config FILE and --config: name one file");
        out.configPath = std::string(*inlineValue);
      } else if (i + 1 < args.size() && !args[i + 1].starts_with("-")) {
        if (args[i + 1].empty()) return usageError("--check-config: empty value");
        if (out.configPath) return usageError("--check-config FILE and --config: name one file");
        out.configPath = std::string(args[++i]);
      }
    } else if (arg == "--verify-sampler") {
      if (inlineValue) return usageError("--verify-sampler: takes no value");
      out.verifySampler = true;
    } else if (arg == "--version" || arg == "-V") {
      if (inlineValue) return usageError("--version: takes no value");
      version = true;
    } else if (arg == "--help" || arg == "-h") {
      if (inlineValue) return usageError("--help: takes no value");
      help = true;
    } else if (arg.starts_with("-")) {
      return usageError("unknown option \"" + std::string(args[i]) + "\" (see --help)");
    } else {
      return usageError("unexpected argument \"" + std::string(arg) + "\" (see --help)");
    }
  }
  if (help) {
    out.mode = DaemonArgs::Mode::Help;
  } else if (version) {
    out.mode = DaemonArgs::Mode::Version;
  } else if (checkConfig) {
    out.mode = DaemonArgs::Mode::CheckConfig;
  }
  return out;
}

ConfigSource chooseConfigSource(const DaemonArgs& args, std::string_view defaultPath) {
  if (args.configPath) return ConfigSource{*args.configPath};
  struct stat st {};
  const std::string path(defaultPath);
  if (::stat(path.c_str(), &st) == 0) return ConfigSource{path};
  return ConfigSource{};
}

Result<ServiceConfig> loadConfig(const ConfigSource& source, const DaemonArgs& args,
                                 std::optional<TlsCredentials>* tls) {
  Result<ServiceConfig> config = Error{};
  if (source.embedded()) {
    config = defaultServiceConfig();
  } else {
    // readFile stops at its limit: read one byte more to tell a file that is too large from
    // one that fits, rather than compile the first 16 MiB of it.
    constexpr std::size_t kMaxConfigBytes = 16 << 20;
    auto text = readRegularFile(source.path, kMaxConfigBytes + 1);
    if (!text) return text.error();  // already names the file
    if (text->size() > kMaxConfigBytes) {
      return Error{EFBIG, source.path + ": larger than 16 MiB, not a waitwatch configuration"};
    }
    config = compileServiceConfig(*text, source.path);
    if (!config) return config.error();
  }
  if (args.listen) config->listen = *args.listen;
  std::optional<TlsCredentials> credentials;
  if (config->web.tls) {
    auto read = loadTlsCredentials(*config->web.tls, source.describe());
    if (!read) return read.error();
    credentials = std::move(*read);
  }
  if (tls != nullptr) *tls = std::move(credentials);
  return config;
}

}  // namespace waitwatch
