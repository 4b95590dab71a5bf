// SPDX-License-Identifier: Apache-2.0
#include "service/http_server.hpp"

#include <arpa/inet.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "service/login_verifier.hpp"
#include "service/request_deadlines.hpp"
#include "service/served_certificate.hpp"

namespace waitwatch {

struct HttpServer::Impl {
  HttpHandler handler;
  std::shared_ptr<BasicAuth> auth;
  std::unique_ptr<LoginVerifier> verifier;
  std::optional<TlsCredentials> tls;
  std::string tlsPriorities;
  // libmicrohttpd's messages while it starts (why it refused); later ones (a client's failed
  // TLS handshake) are dropped: a client must not be able to fill the journal.
  std::atomic<bool> starting{false};
  std::mutex startMutex;  // MHD's threads may log while it starts
  std::string startMessages;
  std::unique_ptr<RequestDeadlines> deadlines;
  // Logins suspended for bcrypt whose request has not completed: a stop lets the resumed ones
  // be answered (503, or 401 when verified first) before it closes their connections.
  std::mutex loginsMutex;
  std::condition_variable loginsDone;
  unsigned logins = 0;
  MHD_Daemon* daemon = nullptr;
};

namespace {

// A marker for the first call of the access handler on a request (MHD calls it again once the
// body, if any, has arrived). A request suspended for bcrypt has a PendingLogin instead.
char gRequestSeen;

void onMhdMessage(void* cls, const char* format, va_list args) {
  auto* impl = static_cast<HttpServer::Impl*>(cls);
  if (!impl->starting) return;
  char line[512];
  std::vsnprintf(line, sizeof line, format, args);
  std::string text = line;
  while (!text.empty() && (text.back() == '\n' || text.back() == '.'))
    text.pop_back();
  std::lock_guard lock(impl->startMutex);
  if (!impl->startMessages.empty()) impl->startMessages += "; ";
  impl->startMessages += text;
}

void onConnection(void* cls, MHD_Connection* connection, void** /*socketContext*/,
                  MHD_ConnectionNotificationCode what) {
  auto* impl = static_cast<HttpServer::Impl*>(cls);
  if (what == MHD_CONNECTION_NOTIFY_STARTED) {
    impl->deadlines->opened(connection);
  } else {
    impl->deadlines->closed(connection);
  }
}

void onCompleted(void* cls, MHD_Connection* connection, void** state,
                 MHD_RequestTerminationCode /*code*/) {
  auto* impl = static_cast<HttpServer::Impl*>(cls);
  impl->deadlines->requestDone(connection);
  if (*state != nullptr && *state != &gRequestSeen) {
    delete static_cast<PendingLogin*>(*state);
    std::lock_guard lock(impl->loginsMutex);
    --impl->logins;
    impl->loginsDone.notify_all();
  }
  *state = nullptr;
}

MHD_Result queueText(MHD_Connection* connection, unsigned status, std::string_view body,
                     bool challenge) {
  MHD_Response* response = MHD_create_response_from_buffer(
      body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_PERSISTENT);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
  MHD_Result result = MHD_NO;
  if (challenge) {
    // 401 with `WWW-Authenticate: Basic realm="waitwatch"`.
    result = MHD_queue_basic_auth_fail_response(connection, "waitwatch", response);
  } else {
    if (status == MHD_HTTP_TOO_MANY_REQUESTS) {
      MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    }
    result = MHD_queue_response(connection, status, response);
  }
  MHD_destroy_response(response);
  return result;
}

struct MhdFree {
  void operator()(char* p) const {
    if (p != nullptr) {
      explicit_bzero(p, std::strlen(p));
      MHD_free(p);
    }
  }
};

// Basic auth for one request: nullopt lets it through; otherwise the request was answered
// (401, 429) or suspended for bcrypt.
std::optional<MHD_Result> authenticate(HttpServer::Impl& impl, MHD_Connection* connection,
                                       void** state) {
  if (*state != &gRequestSeen) {  // resumed after the verifier's bcrypt
    switch (static_cast<PendingLogin*>(*state)->outcome.load()) {
      case PendingLogin::Outcome::Allowed:
        return std::nullopt;
      case PendingLogin::Outcome::Denied:
        return queueText(connection, MHD_HTTP_UNAUTHORIZED, "wrong user or password\n", true);
      default:
        return queueText(connection, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down\n", false);
    }
  }
  char* rawPassword = nullptr;
  const std::unique_ptr<char, MhdFree> user(
      MHD_basic_auth_get_username_password(connection, &rawPassword));
  const std::unique_ptr<char, MhdFree> password(rawPassword);
  if (!user || !password) {
    return queueText(connection, MHD_HTTP_UNAUTHORIZED, "authentication required\n", true);
  }
  switch (impl.auth->lookup(user.get(), password.get())) {
    case BasicAuth::Verdict::Allowed:
      return std::nullopt;
    case BasicAuth::Verdict::Denied:
      return queueText(connection, MHD_HTTP_UNAUTHORIZED, "wrong user or password\n", true);
    case BasicAuth::Verdict::NeedsBcrypt:
      break;
  }
  if (!impl.verifier->reserve()) {
    return queueText(connection, MHD_HTTP_TOO_MANY_REQUESTS,
                     "too many logins at once, retry in a second\n", false);
  }
  auto* login = new PendingLogin;
  {
    std::lock_guard lock(impl.loginsMutex);
    ++impl.logins;
  }
  login->connection = connection;
  login->user = user.get();
  login->password = password.get();
  *state = login;  // freed by onCompleted
  MHD_suspend_connection(connection);
  impl.verifier->submit(login);
  return MHD_YES;
}

MHD_Result queue(MHD_Connection* connection, const HttpResponse& r) {
  MHD_Response* response = MHD_create_response_from_buffer(
      r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  if (!r.contentType.empty()) {
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, r.contentType.c_str());
  }
  if (!r.allow.empty()) MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, r.allow.c_str());
  const MHD_Result result = MHD_queue_response(connection, r.status, response);
  MHD_destroy_response(response);
  return result;
}

MHD_Result onRequest(void* cls, MHD_Connection* connection, const char* url, const char* method,
                     const char* /*version*/, const char* /*uploadData*/, size_t* uploadDataSize,
                     void** state) {
  auto* impl = static_cast<HttpServer::Impl*>(cls);
  const bool hasBody = *uploadDataSize > 0;
  if (*state == nullptr) {
    *state = &gRequestSeen;
    impl->deadlines->requestArrived(connection);
    // GET and HEAD carry no body: answer once the headers are in. Anything else is answered
    // at once too (405), without reading a body we do not want.
    const std::string_view m = method;
    if (m == "GET" || m == "HEAD") return MHD_YES;
  }
  // A body on a GET: ignore it (answered below; MHD drops the connection afterwards).
  if (hasBody) *uploadDataSize = 0;
  // Every path needs a user when users are configured (as exporter-toolkit does), 404s too.
  if (impl->auth && impl->auth->enabled()) {
    if (auto answered = authenticate(*impl, connection, state)) return *answered;
  }
  HttpResponse response;
  try {
    response = impl->handler(HttpRequest{.method = method, .path = url});
  } catch (const std::exception& e) {
    response = HttpResponse{.status = 500,
                            .contentType = "text/plain; charset=utf-8",
                            .body = std::string("internal error: ") + e.what() + "\n",
                            .allow = {}};
  }
  return queue(connection, response);
}

}  // namespace

Result<UniqueFd> bindListener(const Endpoint& address, int backlog) {
  const std::string where = "cannot listen on " + address.toString();
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;
  if (address.address.family == AddressFamily::V4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(address.port);
    std::memcpy(&sin->sin_addr, address.address.bytes.data(), 4);
    length = sizeof(sockaddr_in);
  } else if (address.address.family == AddressFamily::V6) {
    family = AF_INET6;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(address.port);
    std::memcpy(&sin6->sin6_addr, address.address.bytes.data(), 16);
    length = sizeof(sockaddr_in6);
  } else {
    return Error{EINVAL, where + ": no address family"};
  }
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) {
    const int e = errno;
    return osError(e, where + ": socket");
  }
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    const int e = errno;
    return osError(e, where);
  }
  if (::listen(fd.get(), backlog) != 0) {
    const int e = errno;
    return osError(e, where + ": listen");
  }
  return fd;
}

Result<Endpoint> localEndpoint(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return osError(errno, "getsockname");
  }
  Endpoint e;
  if (storage.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&storage);
    std::array<std::uint8_t, 4> b{};
    std::memcpy(b.data(), &sin->sin_addr, 4);
    e.address = IpAddress::v4(b);
    e.port = ntohs(sin->sin_port);
  } else if (storage.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    std::array<std::uint8_t, 16> b{};
    std::memcpy(b.data(), &sin6->sin6_addr, 16);
    e.address = IpAddress::v6(b);
    e.port = ntohs(sin6->sin6_port);
  } else {
    return Error{EAFNOSUPPORT, "getsockname: not an IP socket"};
  }
  return e;
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(UniqueFd listener, HttpHandler handler,
                                                      const HttpServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  impl->auth = options.auth;
  // ITC: stopping wakes the epoll threads at once instead of after their poll timeout.
  // Suspend/resume: requests wait for bcrypt off the epoll threads (see the header).
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                   MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  auto option = [](MHD_OPTION o, std::intptr_t value, void* pointer = nullptr) {
    return MHD_OptionItem{o, value, pointer};
  };
  std::vector<MHD_OptionItem> items = {
      option(MHD_OPTION_LISTEN_SOCKET, listener.get()),
      option(MHD_OPTION_THREAD_POOL_SIZE, options.threads),
      option(MHD_OPTION_CONNECTION_LIMIT, options.maxConnections),
      option(MHD_OPTION_PER_IP_CONNECTION_LIMIT, options.maxConnectionsPerIp),
      option(MHD_OPTION_CONNECTION_TIMEOUT, options.idleTimeoutSeconds),
      option(MHD_OPTION_CONNECTION_MEMORY_LIMIT,
             static_cast<std::intptr_t>(options.connectionMemoryLimit)),
      option(MHD_OPTION_STRICT_FOR_CLIENT, 1),
      option(MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<std::intptr_t>(&onCompleted),
             impl.get()),
      option(MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<std::intptr_t>(&onConnection),
             impl.get()),
      option(MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<std::intptr_t>(&onMhdMessage),
             impl.get()),
  };
  if (options.tls) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      return Error{ENOTSUP,
                   "web.tls_server_config: this libmicrohttpd was built without TLS support"};
    }
    if (MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES) {
      return Error{ENOTSUP,
                   "web.tls_server_config: this libmicrohttpd cannot take certificates from a "
                   "callback"};
    }
    if (auto taken = takeCertificateSlot(*options.tls); !taken) return taken.error();
    impl->tls = options.tls;
    impl->tlsPriorities = tlsPriorities(options.tls->minVersion);
    flags |= MHD_USE_TLS;
    // The certificate comes from the callback at each handshake, so that a reload can renew
    // it (reloadCertificate); the priority string (the TLS versions) is fixed at start.
    items.push_back(
        option(MHD_OPTION_HTTPS_CERT_CALLBACK, 0, reinterpret_cast<void*>(&retrieveCertificate)));
    items.push_back(option(MHD_OPTION_HTTPS_PRIORITIES, 0, impl->tlsPriorities.data()));
  }
  items.push_back(option(MHD_OPTION_END, 0));
  if (impl->auth) {
    impl->verifier = std::make_unique<LoginVerifier>(impl->auth, options.maxPendingLogins);
  }
  impl->deadlines = std::make_unique<RequestDeadlines>(options.requestDeadlineSeconds,
                                                       options.idleTimeoutSeconds);
  impl->starting = true;
  impl->daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &onRequest, impl.get(),
                                  MHD_OPTION_ARRAY, items.data(), MHD_OPTION_END);
  impl->starting = false;
  if (impl->daemon == nullptr) {
    if (impl->tls) releaseCertificate();
    std::lock_guard lock(impl->startMutex);
    std::string error = "cannot start the HTTP server on the bound socket";
    error += impl->startMessages.empty() ? " (libmicrohttpd refused)" : ": " + impl->startMessages;
    return Error{0, error};
  }
  listener.release();  // MHD closes it when it stops
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  if (!impl_) return;
  // First the verifier: it resumes every suspended connection, which MHD_stop_daemon requires.
  // MHD then answers them (503) on its threads; closing at once would drop some unanswered.
  // No new connection is accepted meanwhile, and the wait is bounded (3 s: a loaded machine).
  // The listening socket quiesce hands back is ours to close, after MHD_stop_daemon.
  UniqueFd quiesced;
  if (impl_->verifier) {
    if (impl_->daemon) {
      const MHD_socket fd = MHD_quiesce_daemon(impl_->daemon);
      if (fd != MHD_INVALID_SOCKET) quiesced.reset(fd);
    }
    impl_->verifier->stop();
    std::unique_lock lock(impl_->loginsMutex);
    impl_->loginsDone.wait_for(lock, std::chrono::seconds(3),
                               [this] { return impl_->logins == 0; });
  }
  if (impl_->daemon) MHD_stop_daemon(impl_->daemon);
  quiesced.reset();
  impl_->deadlines.reset();  // after MHD: its threads call into it until they stop
  if (impl_->tls) releaseCertificate();
}

void HttpServer::releaseCertificate() {
  releaseCertificateSlot();
}

Result<void> HttpServer::reloadCertificate(const TlsCredentials& tls) {
  if (!impl_->tls) return Error{EINVAL, "the server does not serve TLS"};
  if (tls.minVersion != impl_->tls->minVersion) {
    return Error{EINVAL, "min_version changes take effect on restart"};
  }
  if (auto renewed = renewServedCertificate(tls); !renewed) return renewed.error();
  impl_->tls = tls;
  return {};
}

}  // namespace waitwatch
