// SPDX-License-Identifier: Apache-2.0
// Protected endpoints ("web" in the configuration): the real waitwatchd serving HTTPS
// with basic auth in a private network namespace, talked to with curl and `waitwatch --from`
// as an operator and a Prometheus would. The CA, the server certificate and the bcrypt hashes
// are made here, in the test's scratch directory, with the openssl CLI and libxcrypt.
#include <crypt.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "daemon_harness.hpp"
#include "netns_fixture.hpp"

namespace waitwatch::testing {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kUrl = "https://127.0.0.1:9929";

// A bcrypt hash of `password` as htpasswd -nBC makes it (libxcrypt: "$2b$").
std::string bcrypt(const std::string& password, unsigned long cost) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  EXPECT_NE(crypt_gensalt_rn("$2b$", cost, nullptr, 0, setting, sizeof setting), nullptr);
  crypt_data data{};
  const char* hash = crypt_rn(password.c_str(), setting, &data, sizeof data);
  EXPECT_NE(hash, nullptr);
  return hash == nullptr ? std::string() : std::string(hash);
}

// A throwaway CA and a server certificate for 127.0.0.1 signed by it; a second, unrelated key.
class Pki {
 public:
  explicit Pki(const fs::path& dir) : dir_(dir) {
    fs::create_directories(dir);
    const std::string d = dir.string();
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + d +
        "/ca.key -out " + d + "/ca.crt -days 2 -subj '/CN=waitwatch test CA'");
    renewServer();
  }
  // A new key and certificate for 127.0.0.1, signed by the CA, in server.key and server.crt.
  void renewServer() {
    const std::string d = dir_.string();
    for (const std::string& script : {
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + d +
                 "/server.key -out " + d + "/server.csr -subj '/CN=127.0.0.1'",
             "printf 'subjectAltName=IP:127.0.0.1\\n' > " + d +
                 "/ext.cnf && openssl x509 -req -in " + d + "/server.csr -CA " + d +
                 "/ca.crt -CAkey " + d + "/ca.key -CAcreateserial " + "-out " + d +
                 "/server.crt -days 2 -extfile " + d + "/ext.cnf",
         }) {
      run(script);
    }
  }
  // "sha256 Fingerprint=..." of a PEM certificate file.
  static std::string fingerprint(const std::string& file) {
    return runCommand({"openssl", "x509", "-in", file, "-noout", "-fingerprint", "-sha256"}, 10s)
        .out;
  }
  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  void run(const std::string& script) {
    const CommandResult r = runCommand({"sh", "-c", script}, 30s);
    ok_ = ok_ && r.exitCode == 0;
    if (r.exitCode != 0) error_ += r.describe();
  }

  fs::path dir_;
  bool ok_ = true;
  std::string error_;
};

struct Reply {
  int curlExit = -1;
  int status = 0;  // 0 when no HTTP answer came
  std::string headers;
  std::string body;
  std::chrono::milliseconds took{0};
};

class WebSecurityTest : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    if (::testing::Test::IsSkipped() || HasFatalFailure()) return;
    if (runCommand({"sh", "-c", "command -v openssl"}, 5s).exitCode != 0) {
      GTEST_SKIP() << "the openssl CLI is not installed";
    }
    dir_ = scratchDir("web");
    pki_.emplace(dir_ / "pki");
    ASSERT_TRUE(pki_->ok()) << pki_->error();
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  std::string webConfig(const std::string& users, const std::string& minVersion = "TLS12") {
    return R"({"poll_interval": "500ms", "web": {"tls_server_config": {"cert_file": ")" +
           pki_->path("server.crt") + R"(", "key_file": ")" + pki_->path("server.key") +
           R"(", "min_version": ")" + minVersion + R"("}, "basic_auth_users": {)" + users + "}}}";
  }

  // curl inside the namespace. `extra`: curl options (credentials, --cacert, --http1.1 ...).
  Reply curl(const std::string& url, const std::vector<std::string>& extra) {
    std::vector<std::string> argv = netns().execPrefix();
    for (const char* a :
         {"curl", "-sS", "--max-time", "5", "-D", "-", "-o", "-", "-w", "\n@@%{http_code}"})
      argv.emplace_back(a);
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url);
    const auto start = std::chrono::steady_clock::now();
    const CommandResult r = runCommand(argv, 10s);
    Reply reply;
    reply.took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    reply.curlExit = r.exitCode;
    const auto mark = r.out.rfind("\n@@");
    if (mark != std::string::npos) reply.status = std::stoi(r.out.substr(mark + 3));
    const std::string all = r.out.substr(0, mark == std::string::npos ? r.out.size() : mark);
    const auto split = all.find("\r\n\r\n");
    reply.headers = all.substr(0, split);
    reply.body = split == std::string::npos ? "" : all.substr(split + 4);
    return reply;
  }
  Reply get(const std::string& path, const std::string& userPassword) {
    std::vector<std::string> extra = {"--cacert", pki_->path("ca.crt")};
    if (!userPassword.empty()) {
      extra.emplace_back("-u");
      extra.push_back(userPassword);
    }
    return curl(kUrl + path, extra);
  }

  // The fingerprint of the certificate the daemon serves to a new connection.
  std::string servedFingerprint() {
    std::vector<std::string> argv = netns().execPrefix();
    argv.insert(argv.end(), {"sh", "-c",
                             "openssl s_client -connect 127.0.0.1:9929 </dev/null 2>/dev/null | "
                             "openssl x509 -noout -fingerprint -sha256"});
    return runCommand(argv, 10s).out;
  }

  // `waitwatch ARGS` inside the namespace with `env` ("NAME=value") set.
  CommandResult waitwatch(const std::vector<std::string>& env,
                          const std::vector<std::string>& args) {
    std::vector<std::string> argv = netns().execPrefix();
    argv.emplace_back("env");
    argv.insert(argv.end(), env.begin(), env.end());
    argv.emplace_back(WAITWATCH_CLI_PATH);
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, 20s);
  }

  fs::path dir_;
  std::optional<Pki> pki_;
};

TEST_F(WebSecurityTest, TlsAndBasicAuthProtectEveryEndpoint) {
  const std::string hash = bcrypt("s3cret pass", 10);
  auto run = DaemonRun::start(netns(), webConfig(R"("prometheus": ")" + hash + R"(")"));
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_TRUE(run->waitNotification("READY=1", 15s)) << run->process().stderrText();
  EXPECT_NE(run->process().stderrText().find("metrics on https://127.0.0.1:9929/metrics"),
            std::string::npos)
      << run->process().stderrText();

  // The right password: real metrics and the JSON API.
  const Reply metrics = get("/metrics", "prometheus:s3cret pass");
  ASSERT_EQ(metrics.status, 200) << metrics.headers;
  EXPECT_NE(metrics.body.find("\nwaitwatch_sockets{"), std::string::npos);
  EXPECT_NE(metrics.body.find("waitwatch_polls_total"), std::string::npos);
  for (const char* path : {"/api/v1/snapshot", "/api/v1/alerts"}) {
    const Reply api = get(path, "prometheus:s3cret pass");
    EXPECT_EQ(api.status, 200) << path;
    EXPECT_FALSE(nlohmann::json::parse(api.body, nullptr, false).is_discarded()) << api.body;
  }
  // Wrong password, unknown user, no credentials: 401 with the Basic challenge, on every path
  // (404s too: as in exporter-toolkit, nothing is answered before authentication).
  for (const auto& [path, credentials] :
       std::vector<std::pair<std::string, std::string>>{{"/metrics", "prometheus:wrong"},
                                                        {"/metrics", "mallory:s3cret pass"},
                                                        {"/metrics", ""},
                                                        {"/api/v1/snapshot", ""},
                                                        {"/api/v1/alerts", "prometheus:"},
                                                        {"/no-such-page", ""}}) {
    SCOPED_TRACE(path + " as '" + credentials + "'");
    const Reply r = get(path, credentials);
    EXPECT_EQ(r.status, 401);
    EXPECT_NE(r.headers.find("WWW-Authenticate: Basic realm=\"waitwatch\""), std::string::npos)
        << r.headers;
    EXPECT_EQ(r.body.find("waitwatch_"), std::string::npos);
  }
  EXPECT_EQ(get("/no-such-page", "prometheus:s3cret pass").status, 404);

  // Plain HTTP to the TLS port gets nothing, and the daemon keeps serving others.
  const Reply plain = curl("http://127.0.0.1:9929/metrics", {"-u", "prometheus:s3cret pass"});
  EXPECT_NE(plain.curlExit, 0);
  EXPECT_EQ(plain.status, 0);
  EXPECT_EQ(plain.body.find("waitwatch_"), std::string::npos);
  // A client that does not trust the CA, and one limited to TLS 1.1: no connection.
  EXPECT_NE(curl(kUrl + "/metrics", {"-u", "prometheus:s3cret pass"}).curlExit, 0);
  EXPECT_NE(curl(kUrl + "/metrics", {"--cacert", pki_->path("ca.crt"), "--tls-max", "1.1", "-u",
                                     "prometheus:s3cret pass"})
                .curlExit,
            0);
  EXPECT_EQ(get("/metrics", "prometheus:s3cret pass").status, 200);

  // waitwatch --from: the CA file, the user in the URL or --user, the password from the
  // environment or a file; never from an argument.
  const CommandResult viaEnv = waitwatch(
      {"WAITWATCH_PASSWORD=s3cret pass"},
      {"--from", "https://prometheus@127.0.0.1:9929", "--cacert", pki_->path("ca.crt"), "--json"});
  ASSERT_EQ(viaEnv.exitCode, 0) << viaEnv.describe();
  const auto doc = nlohmann::json::parse(viaEnv.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << viaEnv.out;
  EXPECT_EQ(doc.value("source", ""), kUrl);
  EXPECT_TRUE(doc.contains("states"));
  std::ofstream(dir_ / "password") << "s3cret pass\n";
  const CommandResult viaFile =
      waitwatch({}, {"--from", kUrl, "--user", "prometheus", "--password-file",
                     (dir_ / "password").string(), "--cacert", pki_->path("ca.crt")});
  EXPECT_EQ(viaFile.exitCode, 0) << viaFile.describe();
  EXPECT_NE(viaFile.out.find("waitwatchd "), std::string::npos) << viaFile.out;
  const CommandResult wrong =
      waitwatch({"WAITWATCH_PASSWORD=nope"},
                {"--from", "https://prometheus@127.0.0.1:9929", "--cacert", pki_->path("ca.crt")});
  EXPECT_EQ(wrong.exitCode, 1);
  EXPECT_EQ(wrong.err,
            "waitwatch: " + kUrl + "/api/v1/snapshot: HTTP 401: wrong user or password\n");
  const CommandResult untrusted = waitwatch({"WAITWATCH_PASSWORD=s3cret pass"},
                                            {"--from", "https://prometheus@127.0.0.1:9929"});
  EXPECT_EQ(untrusted.exitCode, 1);
  EXPECT_NE(untrusted.err.find("--cacert FILE"), std::string::npos) << untrusted.err;

  EXPECT_EQ(run->stop(), 0) << run->process().stderrText();
}

// The convention operators know, end to end: a real Prometheus with `scheme: https`,
// `tls_config.ca_file` and `basic_auth` scrapes the daemon (up == 1, a waitwatch series
// stored); the same job with a wrong password is down.
TEST_F(WebSecurityTest, PrometheusScrapesOverHttpsWithBasicAuth) {
  if (runCommand({"sh", "-c", "command -v prometheus"}, 5s).exitCode != 0) {
    GTEST_SKIP() << "prometheus is not installed";
  }
  auto run =
      DaemonRun::start(netns(), webConfig(R"("prometheus": ")" + bcrypt("scrape-pw", 10) + R"(")"));
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_TRUE(run->waitNotification("READY=1", 15s)) << run->process().stderrText();

  const fs::path dir = dir_ / "prometheus";
  fs::create_directories(dir / "data");
  std::ofstream(dir / "right.pw") << "scrape-pw\n";
  std::ofstream(dir / "wrong.pw") << "not-it\n";
  std::string yml = "global:\n  scrape_interval: 1s\nscrape_configs:\n";
  for (const char* job : {"right", "wrong"}) {
    yml += std::string("  - job_name: ") + job +
           "\n    scheme: https\n    tls_config:\n      ca_file: " + pki_->path("ca.crt") +
           "\n    basic_auth:\n      username: prometheus\n      password_file: " +
           (dir / (std::string(job) + ".pw")).string() +
           "\n    static_configs:\n      - targets: ['127.0.0.1:9929']\n";
  }
  std::ofstream(dir / "prometheus.yml") << yml;
  auto prometheus = spawnPrometheus(netns(), dir);
  ASSERT_TRUE(prometheus.ok()) << prometheus.error().message;

  auto query = [&](const std::string& promql) -> nlohmann::json {
    std::vector<std::string> q = netns().execPrefix();
    q.insert(q.end(), {"curl", "-sS", "--max-time", "3", "-G", "http://127.0.0.1:9090/api/v1/query",
                       "--data-urlencode", "query=" + promql});
    const CommandResult r = runCommand(q, 5s);
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") return nlohmann::json::array();
    return j["data"]["result"];
  };
  nlohmann::json up;
  const bool scraped = eventually(
      [&] {
        up = query("up");
        const auto stored = query(R"(count(waitwatch_sockets{job="right"}))");
        return up.size() == 2 && !stored.empty();
      },
      30s);
  ASSERT_TRUE(scraped) << up.dump() << "\n" << prometheus->stderrText().substr(0, 2000);
  for (const auto& series : up) {
    const std::string job = series["metric"].value("job", "");
    EXPECT_EQ(series["value"][1], job == "right" ? "1" : "0") << series.dump();
  }
  EXPECT_TRUE(query(R"(count(waitwatch_sockets{job="wrong"}))").empty());
}

// bcrypt is slow on purpose: a flood of wrong passwords must neither stall a scraper whose
// login is cached nor pile up work without bound.
TEST_F(WebSecurityTest, WrongPasswordFloodDoesNotStallACachedScraper) {
  auto run =
      DaemonRun::start(netns(), webConfig(R"("prometheus": ")" + bcrypt("right", 10) + R"(")"));
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_TRUE(run->waitNotification("READY=1", 15s)) << run->process().stderrText();
  ASSERT_EQ(get("/metrics", "prometheus:right").status, 200);  // the login is now cached

  std::atomic<bool> done{false};
  std::mutex mutex;
  std::map<int, int> floodStatuses;
  std::vector<std::thread> attackers;
  for (int t = 0; t < 2; ++t) {
    attackers.emplace_back([&, t] {
      for (int round = 0; !done; ++round) {
        // One curl process, 60 transfers, 30 at a time, each with another guess (none is
        // answered from the cache of failures).
        std::vector<std::string> argv = netns().execPrefix();
        for (const char* a :
             {"curl", "-sS", "--max-time", "10", "--parallel", "--parallel-max", "30"})
          argv.emplace_back(a);
        for (int i = 0; i < 60; ++i) {
          if (i > 0) argv.emplace_back("--next");
          for (const std::string& a :
               {std::string("--cacert"), pki_->path("ca.crt"), std::string("-o"),
                std::string("/dev/null"), std::string("-w"), std::string("%{http_code}\n"),
                std::string("-u"),
                "prometheus:guess-" + std::to_string(t) + "-" + std::to_string(round) + "-" +
                    std::to_string(i),
                kUrl + "/metrics"})
            argv.push_back(a);
        }
        const CommandResult r = runCommand(argv, 60s);
        std::istringstream lines(r.out);
        std::lock_guard lock(mutex);
        for (std::string line; std::getline(lines, line);)
          ++floodStatuses[std::atoi(line.c_str())];
      }
    });
  }
  std::this_thread::sleep_for(1s);
  std::vector<std::chrono::milliseconds> scrapes;
  for (int i = 0; i < 10; ++i) {
    const Reply r = get("/metrics", "prometheus:right");
    EXPECT_EQ(r.status, 200);
    scrapes.push_back(r.took);
    std::this_thread::sleep_for(200ms);
  }
  done = true;
  for (auto& t : attackers)
    t.join();
  // Each scrape is a fresh curl process with a TLS handshake, on a loaded 2-core machine: the
  // bound is loose, but far below what waiting behind the flood's bcrypt queue would cost.
  std::sort(scrapes.begin(), scrapes.end());
  std::cout << "scrapes during the flood: median " << scrapes[scrapes.size() / 2].count()
            << " ms, max " << scrapes.back().count() << " ms\n";
  EXPECT_LT(scrapes[scrapes.size() / 2], 1000ms);
  EXPECT_LT(scrapes.back(), 3000ms);
  // The flood only ever got "wrong password" or "too many logins at once".
  int total = 0;
  for (const auto& [status, count] : floodStatuses) {
    EXPECT_TRUE(status == 401 || status == 429) << "status " << status << " x" << count;
    total += count;
  }
  EXPECT_GE(total, 120);
  // More guesses at once than the verifier's queue holds: the rest were turned away at once.
  EXPECT_GT(floodStatuses[429], 0);
  EXPECT_EQ(run->stop(), 0) << run->process().stderrText();
}

// Users change on SIGHUP, and so does a renewed certificate (served to new connections); turning
// TLS on or off or another min_version waits for a restart (said in the log); a reload with a
// certificate that does not match its key is rejected and the old configuration keeps serving.
TEST_F(WebSecurityTest, ReloadSwapsUsersAndCertificatesAndRejectsBrokenFiles) {
  auto run = DaemonRun::start(netns(), webConfig(R"("alice": ")" + bcrypt("a-pass", 4) + R"(")"));
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_TRUE(run->waitNotification("READY=1", 15s)) << run->process().stderrText();
  ASSERT_EQ(get("/metrics", "alice:a-pass").status, 200);

  auto reload = [&](const std::string& config) {
    std::ofstream(run->configPath()) << config;
    const auto before = run->notifications().size();
    run->process().signal(SIGHUP);
    return eventually(
        [&] {
          const auto notes = run->notifications();
          for (auto i = before; i < notes.size(); ++i) {
            if (notes[i].find("STATUS=configuration reloaded") != std::string::npos) return true;
          }
          return false;
        },
        10s);
  };
  const std::string bob = R"("bob": ")" + bcrypt("b-pass", 4) + R"(")";
  ASSERT_TRUE(reload(webConfig(bob, "TLS13")));
  EXPECT_EQ(get("/metrics", "alice:a-pass").status, 401);
  EXPECT_EQ(get("/metrics", "bob:b-pass").status, 200);
  EXPECT_NE(run->process().stderrText().find("TLS changes (web.tls_server_config: on, off or "
                                             "min_version) take effect on restart"),
            std::string::npos)
      << run->process().stderrText();
  // Still TLS 1.2 until a restart.
  EXPECT_EQ(curl(kUrl + "/metrics",
                 {"--cacert", pki_->path("ca.crt"), "--tls-max", "1.2", "-u", "bob:b-pass"})
                .status,
            200);

  // certbot-style renewal: new files at the same paths, then a reload.
  const std::string before = servedFingerprint();
  ASSERT_EQ(before, Pki::fingerprint(pki_->path("server.crt")));
  pki_->renewServer();
  ASSERT_TRUE(pki_->ok()) << pki_->error();
  ASSERT_NE(Pki::fingerprint(pki_->path("server.crt")), before);
  ASSERT_TRUE(reload(webConfig(bob)));
  EXPECT_EQ(servedFingerprint(), Pki::fingerprint(pki_->path("server.crt")));
  EXPECT_NE(run->process().stderrText().find("serving the certificate of " +
                                             pki_->path("server.crt") + " to new connections"),
            std::string::npos)
      << run->process().stderrText();
  EXPECT_EQ(get("/metrics", "bob:b-pass").status, 200);

  std::string mismatched = webConfig(R"("carol": ")" + bcrypt("c-pass", 4) + R"(")");
  mismatched.replace(mismatched.find("server.key"), 10, "ca.key");
  ASSERT_TRUE(reload(mismatched));
  EXPECT_NE(run->process().stderrText().find(
                "rejected, still running on the previous one: " + run->configPath().string() +
                ": web.tls_server_config: the key in " + pki_->path("ca.key") +
                " does not belong to the certificate in " + pki_->path("server.crt")),
            std::string::npos)
      << run->process().stderrText();
  EXPECT_EQ(get("/metrics", "bob:b-pass").status, 200);
  EXPECT_EQ(get("/metrics", "carol:c-pass").status, 401);
  EXPECT_EQ(run->stop(), 0) << run->process().stderrText();
}

// A web section the server cannot serve stops the start-up with one line: nothing bound, no
// readiness.
TEST_F(WebSecurityTest, BadTlsFilesStopTheStartUpCleanly) {
  std::string config = webConfig(R"("alice": ")" + bcrypt("a", 4) + R"(")");
  config.replace(config.find("server.crt"), 10, "missing.crt");
  auto run = DaemonRun::start(netns(), config);
  ASSERT_TRUE(run.ok()) << run.error().message;
  const auto status = run->process().wait(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 1);
  EXPECT_EQ(run->process().stderrText(),
            "waitwatchd: " + run->configPath().string() + ": web.tls_server_config.cert_file: " +
                pki_->path("missing.crt") + ": No such file or directory\n");
  EXPECT_TRUE(run->notifications().empty());
  EXPECT_NE(curl(kUrl + "/metrics", {"--cacert", pki_->path("ca.crt")}).curlExit, 0);
}

}  // namespace
}  // namespace waitwatch::testing
