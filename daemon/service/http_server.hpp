// SPDX-License-Identifier: Apache-2.0
#pragma once
// The daemon's HTTP listener (libmicrohttpd): GET /metrics and the JSON API.
//
// Robustness: one epoll loop serves every connection, so a slow client (slow-loris)
// costs one fd and at most `connectionMemoryLimit` bytes, never a thread; headers larger than
// that are refused (431); idle connections time out; the number of connections is capped. The
// listening socket is bound by us first, so "address in use" is a clear error before anything
// else starts.
//
// Protection (as in exporter-toolkit's web configuration): TLS from `tls` (the certificate
// reaches each handshake through GnuTLS's certificate callback, so that reloadCertificate can
// renew it; one TLS server per process, as that callback has no user pointer), and HTTP basic
// auth on every path from `auth`. bcrypt is slow on purpose (~70 ms at cost 10), and an epoll
// loop that ran it would stall every connection it serves, so a request whose credentials are
// not in the cache is suspended (MHD_suspend_connection) and verified on one verifier thread of
// its own, from a queue of at most `maxPendingLogins`; past that, 429 at once. A flood of wrong
// passwords therefore costs one thread and never delays a request with cached credentials (a
// Prometheus that already logged in).
#include <sys/socket.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/address.hpp"
#include "core/result.hpp"
#include "service/basic_auth.hpp"
#include "service/tls.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch {

struct HttpRequest {
  std::string_view method;  // "GET", "HEAD", ...
  std::string_view path;    // without the query string
};

struct HttpResponse {
  unsigned status = 200;
  std::string contentType;
  std::string body;
  std::string allow;  // the Allow header, for 405
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  unsigned threads = 2;           // epoll loops (each serves many connections)
  unsigned maxConnections = 512;  // beyond: new connections are refused
  // Per client address: one host holding slow connections (slow-loris) cannot take every slot
  // and starve the scrapes of others (measured: 600 slow connections from one address stalled
  // every scrape for as long as they trickled bytes). Half the total, so that one busy client
  // (a load test with 200 connections) still fits.
  unsigned maxConnectionsPerIp = 256;
  unsigned idleTimeoutSeconds = 10;  // a connection silent this long is closed
  // A request's line and headers must be complete this long after the connection opened (or
  // the previous response went out), however steadily they trickle in. libmicrohttpd 0.9.75 has
  // only the idle timeout, which each byte resets: slow-loris clients from a few addresses
  // held all 512 slots for as long as they trickled. 0: no deadline.
  unsigned requestDeadlineSeconds = 5;
  std::size_t connectionMemoryLimit = 32 * 1024;  // request line + headers per connection
  unsigned maxPendingLogins = 8;                  // requests waiting for a bcrypt verification
  std::optional<TlsCredentials> tls{};            // set: HTTPS only
  std::shared_ptr<BasicAuth> auth{};              // set and enabled(): every request needs a user
};

// Binds and listens on `address` (close-on-exec, SO_REUSEADDR). The error names the address
// and the reason: "cannot listen on 0.0.0.0:9929: Address already in use".
//
// The backlog defaults to SOMAXCONN (4096; the kernel caps it at net.core.somaxconn). With 128,
// a burst of 600 connections overflowed the accept queue (ListenOverflows 236-330 per burst):
// the kernel dropped SYNs, and a scrape whose SYN fell in a drop waited the 1 s SYN
// retransmission (seen in CI). Queued connections cost the kernel a few hundred bytes each and
// the server's limits apply as soon as they are accepted.
Result<UniqueFd> bindListener(const Endpoint& address, int backlog = SOMAXCONN);

// The local endpoint a listening socket is bound to (to learn the port after binding port 0).
Result<Endpoint> localEndpoint(int fd);

class HttpServer {
 public:
  // Serves `listener` (taken over) with `handler`, which is called from the server's threads.
  static Result<std::unique_ptr<HttpServer>> start(UniqueFd listener, HttpHandler handler,
                                                   const HttpServerOptions& options);
  ~HttpServer();  // stops accepting, waits for the threads

  // A renewed certificate and key (same min_version), served from the next handshake on;
  // connections already established keep theirs. For a configuration reload.
  Result<void> reloadCertificate(const TlsCredentials& tls);
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  static void releaseCertificate();
  std::unique_ptr<Impl> impl_;
};

}  // namespace waitwatch
