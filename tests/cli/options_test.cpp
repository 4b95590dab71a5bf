// SPDX-License-Identifier: Apache-2.0
#include "cli/options.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/source_files.hpp"

namespace waitwatch::cli {
namespace {

Result<CliOptions> parse(std::vector<std::string_view> args) {
  return parseArguments(args);
}

TEST(CliOptions, DefaultsToOwnNamespaceTable) {
  auto o = parse({});
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->json);
  EXPECT_EQ(o->netns, NamespaceSelection::Host);
  EXPECT_FALSE(o->help);
  EXPECT_FALSE(o->version);
  EXPECT_TRUE(o->filter.empty());
  EXPECT_FALSE(o->sockets);
  EXPECT_FALSE(o->udp);
  EXPECT_FALSE(o->watch.has_value());
  EXPECT_EQ(o->from, "");
}

TEST(CliOptions, NetnsJsonHelpVersion) {
  auto o = parse({"--json", "--netns", "all"});
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->json);
  EXPECT_EQ(o->netns, NamespaceSelection::All);

  o = parse({"--netns=blue", "--json"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->netns, NamespaceSelection::Named);
  EXPECT_EQ(o->netnsName, "blue");

  // A second, different --netns is refused, not silently preferred; the same one again is fine.
  o = parse({"--netns", "blue", "--netns", "all"});
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error().message,
            "--netns given twice (\"blue\" and \"all\"): give one namespace, or 'all'");
  o = parse({"--netns", "all", "--netns=red"});
  ASSERT_FALSE(o.ok());
  o = parse({"--netns", "blue", "--netns", "blue"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->netnsName, "blue");

  EXPECT_TRUE(parse({"--help"})->help);
  EXPECT_TRUE(parse({"-h"})->help);
  EXPECT_TRUE(parse({"--version"})->version);
}

TEST(CliOptions, StatesAccumulateFromListsAndRepeats) {
  auto o = parse({"--state", "close-wait", "--state=TIME_WAIT,estab", "--state", "fin-wait2"});
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->filter.states, stateBit(TcpState::CloseWait) | stateBit(TcpState::TimeWait) |
                                  stateBit(TcpState::Established) | stateBit(TcpState::FinWait2));
  EXPECT_FALSE(o->filter.selectsOwners());
}

TEST(CliOptions, PortsPidsUnits) {
  auto o = parse({"--port", "8080", "--port=:53,0", "--port", "65535", "--port", "8080", "--pid",
                  "1,42", "--pid=42", "--unit", "nginx.service", "--unit=docker:0123456789ab"});
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->filter.ports, (std::vector<std::uint16_t>{8080, 53, 0, 65535}));
  EXPECT_EQ(o->filter.pids, (std::vector<std::int32_t>{1, 42}));
  EXPECT_EQ(o->filter.units, (std::vector<std::string>{"nginx.service", "docker:0123456789ab"}));
  EXPECT_TRUE(o->filter.selectsOwners());
}

TEST(CliOptions, ContainersPodsAndKubernetesNamespaces) {
  auto o = parse({"--container", "api,shop-web-1", "--pod=checkout-7d9f-x2k4", "--namespace",
                  "payments", "--namespace", "payments"});
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->filter.containers, (std::vector<std::string>{"api", "shop-web-1"}));
  EXPECT_EQ(o->filter.pods, (std::vector<std::string>{"checkout-7d9f-x2k4"}));
  EXPECT_EQ(o->filter.podNamespaces, (std::vector<std::string>{"payments"}));
  EXPECT_TRUE(o->filter.selectsOwners());
  EXPECT_FALSE(o->filter.empty());
  EXPECT_EQ(o->netns, NamespaceSelection::Host);  // --namespace is not --netns
}

TEST(CliOptions, ViewsAndWatch) {
  auto o = parse({"--sockets", "--udp", "--watch", "2"});
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_TRUE(o->sockets);
  EXPECT_TRUE(o->udp);
  EXPECT_EQ(o->watch, Duration(2000));
  EXPECT_EQ(parse({"--watch", "0.5"})->watch, Duration(500));
  EXPECT_EQ(parse({"--watch=1m"})->watch, Duration(60000));
  EXPECT_EQ(parse({"--watch", "250ms"})->watch, Duration(250));
}

TEST(CliOptions, FromTakesADaemonAddress) {
  EXPECT_EQ(parse({"--from", "http://127.0.0.1:9977"})->from, "http://127.0.0.1:9977");
  EXPECT_EQ(parse({"--from=http://host.example:9977/"})->from, "http://host.example:9977");
  EXPECT_EQ(parse({"--from", "localhost:9977"})->from, "http://localhost:9977");
  EXPECT_EQ(parse({"--from", "https://[::1]:9977"})->from, "https://[::1]:9977");
  // The user of the URL moves to `user`; a password there is refused (ps shows arguments).
  auto withUser = parse({"--from", "https://alice@h:1", "--cacert", "/ca.pem"});
  ASSERT_TRUE(withUser.ok()) << withUser.error().message;
  EXPECT_EQ(withUser->from, "https://h:1");
  EXPECT_EQ(withUser->user, "alice");
  EXPECT_EQ(withUser->cacert, "/ca.pem");
  EXPECT_FALSE(parse({"--from", "http://user:secret@h:1"}).ok());
  EXPECT_FALSE(parse({"--from", "h:1", "--user", "a:b"}).ok());
  EXPECT_FALSE(parse({"--from", "http://h:1", "--cacert", "/ca.pem"}).ok());
  EXPECT_FALSE(parse({"--from", "h:1", "--password-file", "/pw"}).ok());
  EXPECT_FALSE(parse({"--user", "alice"}).ok());
  EXPECT_EQ(parse({"--from", "h:1", "--user", "bob", "--password-file", "/pw"})->passwordFile,
            "/pw");
  // Filters the daemon's counts can answer combine with it.
  auto o = parse({"--from", "h:1", "--state", "close-wait", "--pid", "7", "--unit", "x", "--json",
                  "--watch", "5"});
  ASSERT_TRUE(o.ok()) << o.error().message;
}

TEST(CliOptions, BadArgumentsNameTheArgument) {
  struct Case {
    std::vector<std::string_view> args;
    std::string error;
  };
  const Case cases[] = {
      {{"--jsn"}, "unknown option '--jsn'"},
      {{"-x"}, "unknown option '-x'"},
      {{"--json", "extra"}, "unexpected argument 'extra'"},
      {{"--netns"}, "--netns needs a value: 'all' or a namespace name"},
      {{"--netns="}, "--netns needs a value: 'all' or a namespace name"},
      {{"--netns", ""}, "--netns needs a value: 'all' or a namespace name"},
      {{"--json=yes"}, "unknown option '--json=yes'"},
      {{"--port", "80x"}, "--port: \"80x\" is not a port number (0-65535)"},
      {{"--port", "65536"}, "--port: \"65536\" is not a port number (0-65535)"},
      {{"--port", "-1"}, "--port: \"-1\" is not a port number (0-65535)"},
      {{"--port", "80,,81"}, "--port: \"\" is not a port number (0-65535)"},
      {{"--port"}, "--port needs a value: a port number"},
      {{"--pod"}, "--pod needs a value: a Kubernetes pod's name"},
      {{"--container", "api,"}, "--container: an empty name (expected a container's name or id)"},
      {{"--namespace="},
       "--namespace needs a value: a Kubernetes namespace (--netns is the network namespace)"},
      {{"--state", "closewaiting"},
       "--state: \"closewaiting\" is not a TCP state (e.g. close-wait, time-wait, established, "
       "listen)"},
      {{"--state"}, "--state needs a value: a TCP state such as close-wait"},
      {{"--pid", "0"}, "--pid: \"0\" is not a process id"},
      {{"--pid", "12a"}, "--pid: \"12a\" is not a process id"},
      {{"--pid", "99999999999"}, "--pid: \"99999999999\" is not a process id"},
      {{"--unit", "a,,b"},
       "--unit: an empty name (expected a unit such as nginx.service, or a container)"},
      {{"--watch", "0"},
       "--watch: \"0\" is not an interval in seconds between 0.1 and 86400 (e.g. 2, 0.5, 1m)"},
      {{"--watch", "-2"},
       "--watch: \"-2\" is not an interval in seconds between 0.1 and 86400 (e.g. 2, 0.5, 1m)"},
      {{"--watch", "soon"},
       "--watch: \"soon\" is not an interval in seconds between 0.1 and 86400 (e.g. 2, 0.5, 1m)"},
      {{"--watch", "nan"},
       "--watch: \"nan\" is not an interval in seconds between 0.1 and 86400 (e.g. 2, 0.5, 1m)"},
      {{"--watch"}, "--watch needs a value: the interval in seconds"},
      {{"--from"}, "--from needs a value: the daemon's address, http://HOST:PORT"},
      {{"--from", "ftp://h:1"}, "--from: \"ftp://h:1\" is not an http:// or https:// URL"},
      {{"--from", "http://h:1/api/v1/snapshot"},
       "--from: \"http://h:1/api/v1/snapshot\" has a path: give the daemon's address only "
       "(http://HOST:PORT)"},
      {{"--from", "http://h:99999"},
       "--from: \"http://h:99999\": \"99999\" is not a port number (1-65535)"},
      {{"--from", "http://:80"},
       "--from: \"http://:80\" is not a daemon address (expected http://HOST:PORT)"},
      {{"--from", "http://a b:80"},
       "--from: \"http://a b:80\" is not a daemon address (expected http://HOST:PORT)"},
      {{"--from", "h:1", "--port", "80"},
       "--port cannot be used with --from: the daemon's snapshot has no per-socket list (run "
       "waitwatch on that host instead)"},
      {{"--sockets", "--from", "h:1"},
       "--sockets cannot be used with --from: the daemon's snapshot has no per-socket list (run "
       "waitwatch on that host instead)"},
      {{"--from", "h:1", "--udp"}, "--udp cannot be used with --from: the daemon watches TCP only"},
      {{"--from", "h:1", "--netns", "all"},
       "--netns cannot be used with --from: the daemon's configuration chooses its namespaces"},
      {{"--port", "\x1b[2J"}, "--port: \"?[2J\" is not a port number (0-65535)"},
  };
  for (const auto& c : cases) {
    auto o = parse(c.args);
    ASSERT_FALSE(o.ok()) << c.error;
    EXPECT_EQ(o.error().message, c.error);
    EXPECT_EQ(o.error().message.find('\n'), std::string::npos);
  }
}

// --help and waitwatch(1) name the same options; -V is --version, as for waitwatchd.
TEST(CliOptions, HelpAndManPageNameTheSameOptions) {
  const auto help = testing::optionsIn(usage());
  const auto man = testing::manPageOptions(testing::readFile(testing::kManDir + "/waitwatch.1"));
  EXPECT_EQ(help, man);
  EXPECT_TRUE(parse({"-V"})->version);
}

}  // namespace
}  // namespace waitwatch::cli
