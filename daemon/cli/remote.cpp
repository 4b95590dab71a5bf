// SPDX-License-Identifier: Apache-2.0
#include "cli/remote.hpp"

#include <cerrno>
#include <cstdlib>
#include <memory>

#include "cli/curl_library.hpp"
#include "proc/proc_text.hpp"
#include "sys/file.hpp"

namespace waitwatch::cli {
namespace {

// A daemon's snapshot at a million sockets with ten thousand processes is a few MB (an item is
// ~0.5 KB a process and ~220 bytes a TIME_WAIT destination group). The groups are what could
// grow past it: a namespace holds at most net.ipv4.tcp_max_tw_buckets TIME_WAIT sockets
// (262,144 on the largest default), ~55 MiB if every one had its own destination. 64 MiB holds
// that; a server sending more is cut off there rather than buffered, and the error says what
// the limit means.
constexpr std::size_t kMaxBody = 64u << 20;

struct Body {
  std::string text;
  bool tooLarge = false;
};

std::size_t onData(char* data, std::size_t size, std::size_t count, void* user) {
  auto* body = static_cast<Body*>(user);
  const std::size_t n = size * count;
  if (body->text.size() + n > kMaxBody) {
    body->tooLarge = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  body->text.append(data, n);
  return n;
}

struct CurlDeleter {
  const CurlLibrary* curl;
  void operator()(CURL* c) const { curl->easyCleanup(c); }
};

// The first line of a body, for an error message.
std::string firstLine(const std::string& body) {
  const std::string line = body.substr(0, body.find('\n'));
  return printable(line, 200);
}

Result<nlohmann::json> getJson(const std::string& url, Duration timeout,
                               const RemoteAccess& access) {
  auto body = httpGet(url, timeout, access);
  if (!body) return body.error();
  auto j = nlohmann::json::parse(*body, nullptr, false);
  if (j.is_discarded()) {
    return Error{EBADMSG, url + ": the answer is not JSON (" + std::to_string(body->size()) +
                              " bytes, starting \"" + printable(body->substr(0, 40), 60) + "\")"};
  }
  return j;
}

}  // namespace

Result<RemoteAccess> remoteAccess(const CliOptions& o) {
  RemoteAccess access{.cacert = o.cacert, .user = o.user, .password = {}};
  if (!o.passwordFile.empty()) {
    auto text = readFile(o.passwordFile, 4096);
    if (!text) return Error{text.error().errnum, "--password-file: " + text.error().message};
    access.password = text->substr(0, text->find('\n'));
    if (!access.password.empty() && access.password.back() == '\r') access.password.pop_back();
    if (access.password.empty()) {
      return Error{EINVAL, "--password-file: " + o.passwordFile + ": the first line is empty"};
    }
  } else if (const char* env = std::getenv("WAITWATCH_PASSWORD"); env != nullptr) {
    access.password = env;
  }
  if (!access.user.empty() && access.password.empty()) {
    return Error{EINVAL, "user " + printable(access.user, 64) +
                             " needs a password: set WAITWATCH_PASSWORD or give --password-file "
                             "FILE"};
  }
  if (access.user.empty()) access.password.clear();  // a stray WAITWATCH_PASSWORD is not sent
  return access;
}

Result<std::string> httpGet(const std::string& url, Duration timeout, const RemoteAccess& access) {
  auto library = curlLibrary();
  if (!library) return library.error().wrap(url);
  const CurlLibrary& lib = **library;
  std::unique_ptr<CURL, CurlDeleter> curl(lib.easyInit(), CurlDeleter{&lib});
  if (!curl) return Error{ENOMEM, url + ": could not start an HTTP client"};
  char message[CURL_ERROR_SIZE] = {};
  Body body;
  CURL* c = curl.get();
  lib.easySetopt(c, CURLOPT_URL, url.c_str());
  // No redirect is followed and the URL was checked already: a second fence, which a libcurl
  // older than 7.85 cannot put up.
  if (lib.easySetopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
    return Error{ELIBACC, url +
                              ": this libcurl cannot be limited to HTTP and HTTPS (it needs "
                              "7.85 or later)"};
  }
  lib.easySetopt(c, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for name-lookup timeouts
  lib.easySetopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  lib.easySetopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  lib.easySetopt(c, CURLOPT_ERRORBUFFER, message);
  lib.easySetopt(c, CURLOPT_WRITEFUNCTION, onData);
  lib.easySetopt(c, CURLOPT_WRITEDATA, &body);
  lib.easySetopt(c, CURLOPT_ACCEPT_ENCODING, "");  // whatever the daemon can compress with
  lib.easySetopt(c, CURLOPT_USERAGENT, "waitwatch");
  if (!access.cacert.empty()) lib.easySetopt(c, CURLOPT_CAINFO, access.cacert.c_str());
  if (!access.user.empty()) {
    lib.easySetopt(c, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    lib.easySetopt(c, CURLOPT_USERNAME, access.user.c_str());
    lib.easySetopt(c, CURLOPT_PASSWORD, access.password.c_str());
  }
  const CURLcode rc = lib.easyPerform(c);
  if (body.tooLarge) {
    return Error{EFBIG, url + ": the answer is larger than " + std::to_string(kMaxBody >> 20) +
                            " MiB, more than a waitwatchd snapshot of fewer than ~300,000 "
                            "TIME_WAIT destinations: not a waitwatchd?"};
  }
  if (rc != CURLE_OK) {
    std::string why = message[0] != '\0' ? message : lib.easyStrerror(rc);
    if (rc == CURLE_COULDNT_CONNECT) why += " (is waitwatchd running and listening there?)";
    if (rc == CURLE_PEER_FAILED_VERIFICATION) {
      why += " (--cacert FILE names the CA that signed the daemon's certificate)";
    }
    if (rc == CURLE_GOT_NOTHING && url.starts_with("http://")) {
      why += " (does the daemon serve https://?)";
    }
    return Error{ECONNREFUSED, url + ": " + why};
  }
  long status = 0;
  lib.easyGetinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    std::string error = url + ": HTTP " + std::to_string(status);
    if (!body.text.empty()) error += ": " + firstLine(body.text);
    if (status == 401 && access.user.empty()) {
      error += " (give --user NAME and the password in WAITWATCH_PASSWORD)";
    }
    return Error{EPROTO, error};
  }
  return std::move(body.text);
}

Result<DaemonView> fetchDaemonView(const CliOptions& options, Duration timeout) {
  auto access = remoteAccess(options);
  if (!access) return access.error();
  return fetchDaemonView(options.from, timeout, *access);
}

Result<DaemonView> fetchDaemonView(const std::string& baseUrl, Duration timeout,
                                   const RemoteAccess& access) {
  DaemonView view;
  const std::string snapshotUrl = baseUrl + "/api/v1/snapshot";
  auto snapshot = getJson(snapshotUrl, timeout, access);
  if (!snapshot) return snapshot.error();
  auto doc = api::snapshotFromJson(*snapshot);
  if (!doc) return doc.error().wrap(snapshotUrl);
  view.snapshot = std::move(*doc);

  const std::string alertsUrl = baseUrl + "/api/v1/alerts";
  auto alerts = getJson(alertsUrl, timeout, access);
  if (!alerts) return alerts.error();
  auto parsed = api::alertsFromJson(*alerts);
  if (!parsed) return parsed.error().wrap(alertsUrl);
  view.alerts = std::move(*parsed);
  return view;
}

}  // namespace waitwatch::cli
