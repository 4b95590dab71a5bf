// SPDX-License-Identifier: Apache-2.0
// Bad command lines and bad configuration files, given to the built binaries as an operator
// would: each must end with one clear line on stderr naming what is wrong and where, and exit
// status 1 (bad configuration, unreadable file, missing namespace) or 2 (bad arguments); never
// a crash, a hang, output on stdout, or a silent fall-back to the defaults.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "netns_fixture.hpp"

namespace waitwatch::testing {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kWaitwatch = std::string(WAITWATCH_BINARY_DIR) + "/daemon/waitwatch/waitwatch";
const std::string kWaitwatchd = std::string(WAITWATCH_BINARY_DIR) + "/daemon/waitwatchd/waitwatchd";

struct Row {
  const char* name;
  std::vector<std::string> args;  // "{FILE}" stands for the row's configuration file
  int status;
  std::string stderrSubstring;  // "{FILE}" likewise
};

// A scratch directory with the configuration files the rows name.
class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("waitwatch-bad-input-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string write(const std::string& name, const std::string& content) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

  static std::string substitute(std::string s, const std::string& file) {
    for (auto at = s.find("{FILE}"); at != std::string::npos; at = s.find("{FILE}", at)) {
      s.replace(at, 6, file);
      at += file.size();
    }
    return s;
  }

  // Runs one row and checks everything an operator would see.
  void check(const std::string& binary, const Row& row, const std::string& file = "",
             const std::vector<std::string>& prefix = {}) {
    std::vector<std::string> argv = prefix;
    argv.push_back(binary);
    for (const auto& a : row.args)
      argv.push_back(substitute(a, file));
    const CommandResult r = runCommand(argv, 10s);
    const std::string expected = substitute(row.stderrSubstring, file);
    SCOPED_TRACE(std::string(row.name) + ": " + r.describe());
    EXPECT_FALSE(r.timedOut) << "still running after 10 s (a bad input must not start anything)";
    EXPECT_EQ(r.exitCode, row.status);
    EXPECT_EQ(r.out, "") << "nothing on stdout for a bad input";
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.back(), '\n');
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line, not several: " << r.err;
    EXPECT_NE(r.err.find(expected), std::string::npos)
        << "expected \"" << expected << "\" in: " << r.err;
    for (const char* crash : {"Sanitizer", "terminate called", "Segmentation", "Aborted"}) {
      EXPECT_EQ(r.err.find(crash), std::string::npos) << r.err;
    }
  }

  fs::path dir_;
};

TEST_F(BadInput, WaitwatchdCommandLines) {
  const Row rows[] = {
      {"unknown option", {"--bogus"}, 2, R"(waitwatchd: unknown option "--bogus" (see --help))"},
      {"unknown short option", {"-x"}, 2, R"(waitwatchd: unknown option "-x" (see --help))"},
      {"positional argument", {"extra"}, 2, R"(waitwatchd: unexpected argument "extra")"},
      {"listen without value", {"--listen"}, 2, "waitwatchd: --listen: missing value"},
      {"listen followed by an option",
       {"--listen", "--config", "x"},
       2,
       "waitwatchd: --listen: missing value"},
      {"listen without port",
       {"--listen", "127.0.0.1"},
       2,
       R"(waitwatchd: --listen: "127.0.0.1" is not ADDR:PORT (e.g. 127.0.0.1:9929 or [::1]:9929))"},
      {"listen port 0",
       {"--listen", "127.0.0.1:0"},
       2,
       R"(--listen: "127.0.0.1:0" is not ADDR:PORT)"},
      {"listen port too big",
       {"--listen=[::1]:70000"},
       2,
       R"(--listen: "[::1]:70000" is not ADDR:PORT)"},
      {"listen host name",
       {"--listen", "localhost:9929"},
       2,
       R"(--listen: "localhost:9929" is not ADDR:PORT)"},
      {"listen IPv6 without brackets",
       {"--listen", "::1:9929"},
       2,
       R"(--listen: "::1:9929" is not ADDR:PORT)"},
      {"listen twice",
       {"--listen", "127.0.0.1:1", "-l", "127.0.0.1:2"},
       2,
       "waitwatchd: --listen: given twice"},
      {"config empty value", {"--config="}, 2, "waitwatchd: --config: empty value"},
      {"config empty argument", {"--config", ""}, 2, "waitwatchd: --config: empty value"},
      {"check-config empty argument",
       {"--check-config", ""},
       2,
       "waitwatchd: --check-config: empty value"},
      {"config without value", {"--config"}, 2, "waitwatchd: --config: missing value"},
      {"config twice", {"--config", "a", "-c", "b"}, 2, "waitwatchd: --config: given twice"},
      {"check-config with two files",
       {"--check-config", "a", "b"},
       2,
       R"(waitwatchd: unexpected argument "b" (see --help))"},
      {"check-config twice",
       {"--check-config", "--check-config"},
       2,
       "waitwatchd: --check-config: given twice"},
      {"check-config and config",
       {"--config", "a", "--check-config", "b"},
       2,
       "waitwatchd: --check-config FILE and --config: name one file"},
      {"version with a value", {"--version=2"}, 2, "waitwatchd: --version: takes no value"},
      {"help with a value", {"--help=all"}, 2, "waitwatchd: --help: takes no value"},
  };
  for (const Row& row : rows)
    check(kWaitwatchd, row);
}

TEST_F(BadInput, WaitwatchCommandLines) {
  const Row rows[] = {
      {"unknown option",
       {"--bogus"},
       2,
       "waitwatch: unknown option '--bogus' (see waitwatch --help)"},
      {"positional argument",
       {"--json", "extra"},
       2,
       "waitwatch: unexpected argument 'extra' (see waitwatch --help)"},
      {"netns without value",
       {"--netns"},
       2,
       "waitwatch: --netns needs a value: 'all' or a namespace name (see waitwatch --help)"},
      {"netns empty value",
       {"--netns="},
       2,
       "waitwatch: --netns needs a value: 'all' or a namespace name"},
      {"netns that does not exist",
       {"--netns", "ww-no-such-namespace"},
       1,
       "waitwatch: no network namespace named 'ww-no-such-namespace' "
       "(/run/netns/ww-no-such-namespace)"},
      {"netns name with a path",
       {"--netns", "../../proc/1/ns/net"},
       1,
       "waitwatch: '../../proc/1/ns/net' is not a valid network namespace name"},
  };
  for (const Row& row : rows)
    check(kWaitwatch, row);
}

// Each bad file through `--check-config FILE` (the summary-or-error check, status 1) and through
// `--config FILE` (the daemon refuses to start, status 1, before binding or polling anything).
TEST_F(BadInput, ConfigurationFiles) {
  struct FileRow {
    const char* name;
    std::string content;
    std::string error;  // after "FILE: "
  };
  const std::string deep =
      "{\"rules\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  const FileRow rows[] = {
      {"empty file", "",
       "line 1, column 1: syntax error while parsing value - unexpected end of input; expected "
       "'[', '{', or a literal"},
      {"truncated", R"({"listen": "x")",
       "line 1, column 15: syntax error while parsing object - unexpected end of input; "
       "expected '}'"},
      {"not an object", R"("hello")",
       R"(expected a JSON object at the top level, got string "hello")"},
      {"bad duration", "{\n  \"poll_interval\": \"5 minutes\"\n}",
       R"(poll_interval: "5 minutes" is not a duration, expected e.g. "5m")"},
      {"poll interval zero", R"({"poll_interval": "0s"})",
       R"(poll_interval: "0s" is too short, expected at least "100ms")"},
      {"misspelt key", R"({"pol_interval": "5s"})",
       R"(pol_interval: unknown key, did you mean "poll_interval"?)"},
      {"bad listen", R"({"listen": "localhost:9929"})",
       R"(listen: "localhost:9929" is not an address and port)"},
      {"rules not an array", R"({"rules": {}})",
       "rules: expected an array of rules, got an object"},
      {"rule without a type", R"({"rules": [{"name": "a"}]})", R"(rules[0]: missing key "type")"},
      {"ratio above 1",
       R"({"rules": [{"name": "t", "type": "time_wait", "port_usage_ratio": 1.5}]})",
       "rules[0].port_usage_ratio: 1.5 is not a ratio, expected a number above 0 and at most 1"},
      {"negative count", R"({"rules": [{"name": "c", "type": "close_wait", "min_sockets": -1}]})",
       "rules[0].min_sockets: -1 is negative, expected a whole number of at least 1"},
      {"bad CIDR",
       R"({"rules": [{"name": "c", "type": "close_wait",
                      "match": {"include": {"destination": "10.0.0.0/33"}}}]})",
       R"(rules[0].match.include.destination: "10.0.0.0/33" is not an address or CIDR)"},
      {"duplicate key", R"({"listen": "0.0.0.0:1", "listen": "0.0.0.0:2"})",
       R"(duplicate key "listen")"},
      {"deeply nested", deep, "rules[0]: expected an object, got an array"},
      // Found while writing these tests: the parser read the text as a C string, so whatever
      // followed a NUL byte was ignored and "{}\0..." ran on the defaults.
      {"NUL byte", std::string("{}\0{\"poll_interval\": \"1s\"}", 26),
       "line 1, column 3: a NUL byte, expected JSON text"},
      {"NUL on line 2", std::string("{\n  \0", 5), "line 2, column 3: a NUL byte"},
      // Found by fuzz_config: the file's own bytes reached the one-line error unescaped.
      {"invalid UTF-8", "{\"listen\": \"\xff\xfe\"}",
       R"(line 1, column 13: syntax error while parsing value - invalid string: ill-formed UTF-8 byte; last read: '"\xff')"},
      {"line break in a key", R"({"poll\u000a_interval": "5s"})",
       R"(poll\u000a_interval: unknown key, did you mean "poll_interval"?)"},
  };
  for (const FileRow& f : rows) {
    const std::string file = write(std::string(f.name) + ".json", f.content);
    const std::string error = "{FILE}: " + f.error;
    check(kWaitwatchd, Row{f.name, {"--check-config", "{FILE}"}, 1, error}, file);
    check(kWaitwatchd, Row{f.name, {"--config", "{FILE}"}, 1, "waitwatchd: " + error}, file);
  }
}

// The web section (TLS and basic auth): names and forms are the config compiler's errors; the
// files are read by the daemon, whose errors name the JSON path and the file. Made here with the
// openssl CLI: a certificate, its key, an unrelated key, an encrypted key.
TEST_F(BadInput, WebConfigurationFiles) {
  if (runCommand({"sh", "-c", "command -v openssl"}, 5s).exitCode != 0) {
    GTEST_SKIP() << "the openssl CLI is not installed";
  }
  const std::string d = dir_.string();
  const CommandResult made = runCommand(
      {"sh", "-c",
       "set -e; cd " + d +
           "; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout good.key -out good.crt -days 1 -subj /CN=127.0.0.1 2>/dev/null; "
           "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out other.key; "
           "openssl pkey -in good.key -aes256 -passout pass:x -out encrypted.key"},
      30s);
  ASSERT_EQ(made.exitCode, 0) << made.describe();
  const std::string crt = d + "/good.crt";
  const std::string key = d + "/good.key";
  auto tls = [](const std::string& cert, const std::string& k) {
    return R"({"web": {"tls_server_config": {"cert_file": ")" + cert + R"(", "key_file": ")" + k +
           R"("}}})";
  };
  struct FileRow {
    const char* name;
    std::string content;
    std::string error;  // after "FILE: "
  };
  const FileRow rows[] = {
      {"cert without key", R"({"web": {"tls_server_config": {"cert_file": "/x.crt"}}})",
       "web.tls_server_config: cert_file and key_file go together: key_file missing"},
      {"relative cert path", tls("good.crt", key),
       R"(web.tls_server_config.cert_file: "good.crt" is not an absolute path)"},
      {"missing cert", tls(d + "/missing.crt", key),
       "web.tls_server_config.cert_file: " + d + "/missing.crt: No such file or directory"},
      {"key given as cert", tls(key, key),
       "web.tls_server_config.cert_file: " + key + ": not a PEM certificate"},
      {"cert given as key", tls(crt, crt),
       "web.tls_server_config.key_file: " + crt + ": not a PEM private key"},
      {"key of another certificate", tls(crt, d + "/other.key"),
       "web.tls_server_config: the key in " + d + "/other.key" +
           " does not belong to the certificate in " + crt},
      {"encrypted key", tls(crt, d + "/encrypted.key"),
       "web.tls_server_config.key_file: " + d + "/encrypted.key" +
           ": an encrypted key (waitwatchd cannot ask for a passphrase"},
      {"TLS 1.0", R"({"web": {"tls_server_config": {"cert_file": "/a", "key_file": "/b",
                                                     "min_version": "TLS10"}}})",
       R"(web.tls_server_config.min_version: "TLS10" is not offered)"},
      {"plain password for a hash", R"({"web": {"basic_auth_users": {"alice": "hunter2"}}})",
       "web.basic_auth_users.alice: not a bcrypt hash"},
      {"no users", R"({"web": {"basic_auth_users": {}}})",
       "web.basic_auth_users: no users: remove the key to serve without authentication"},
  };
  for (const FileRow& f : rows) {
    const std::string file = write(std::string(f.name) + ".json", f.content);
    const std::string error = "{FILE}: " + f.error;
    check(kWaitwatchd, Row{f.name, {"--check-config", "{FILE}"}, 1, error}, file);
    check(kWaitwatchd, Row{f.name, {"--config", "{FILE}"}, 1, "waitwatchd: " + error}, file);
  }
  // The password never reaches the error.
  const std::string file =
      write("password.json", R"({"web": {"basic_auth_users": {"a": "hunter2"}}})");
  const CommandResult r = runCommand({kWaitwatchd, "--check-config", file}, 10s);
  EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << r.err;
}

TEST_F(BadInput, ConfigurationFilesThatCannotBeRead) {
  check(kWaitwatchd,
        Row{"missing", {"--check-config", "{FILE}"}, 1, "{FILE}: No such file or directory"},
        (dir_ / "missing.json").string());
  check(kWaitwatchd,
        Row{"missing", {"--config", "{FILE}"}, 1, "waitwatchd: {FILE}: No such file or directory"},
        (dir_ / "missing.json").string());
  check(
      kWaitwatchd,
      Row{"directory", {"--check-config", "{FILE}"}, 1, "{FILE}: a directory, not a regular file"},
      dir_.string());
  // A FIFO would block the read until a writer came: refused at once, never read.
  const std::string fifo = (dir_ / "fifo.json").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  check(kWaitwatchd,
        Row{"FIFO", {"--check-config", "{FILE}"}, 1, "{FILE}: a FIFO, not a regular file"}, fifo);
  check(kWaitwatchd,
        Row{"FIFO", {"--config", "{FILE}"}, 1, "waitwatchd: {FILE}: a FIFO, not a regular file"},
        fifo);
  // Found while writing these tests: a file over the 16 MiB read limit was cut there and then
  // failed as "unexpected end of input" at an odd column.
  std::string big(16 << 20, ' ');
  big += "{}";
  const std::string bigFile = write("big.json", big);
  check(kWaitwatchd,
        Row{"too large",
            {"--check-config", "{FILE}"},
            1,
            "{FILE}: larger than 16 MiB, not a waitwatch configuration"},
        bigFile);
  check(kWaitwatchd,
        Row{"endless",
            {"--check-config", "{FILE}"},
            1,
            "{FILE}: a character device, not a regular file"},
        "/dev/zero");

  // Permission denied: as an unprivileged user (root reads everything, so drop to nobody).
  const std::string secret = write("secret.json", "{}");
  ::chmod(secret.c_str(), 0);
  ::chmod(dir_.c_str(), 0755);
  std::vector<std::string> prefix;
  if (::geteuid() == 0) {
    prefix = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};
  }
  check(kWaitwatchd,
        Row{"unreadable", {"--check-config", "{FILE}"}, 1, "{FILE}: Permission denied"}, secret,
        prefix);
  check(kWaitwatchd,
        Row{"unreadable", {"--config", "{FILE}"}, 1, "waitwatchd: {FILE}: Permission denied"},
        secret, prefix);
}

}  // namespace
}  // namespace waitwatch::testing
