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

namespace waitwatch {
namespace {

// A request whose credentials wait for bcrypt, its connection suspended meanwhile.
struct PendingLogin {
  enum class Outcome : std::uint8_t { Waiting, Allowed, Denied, Unavailable };
  MHD_Connection* connection = nullptr;
  std::string user;
  std::string password;
  std::atomic<Outcome> outcome{Outcome::Waiting};
};

// One thread that runs bcrypt for suspended requests, with a bounded queue.
class LoginVerifier {
 public:
  LoginVerifier(std::shared_ptr<BasicAuth> auth, unsigned capacity)
      : auth_(std::move(auth)), capacity_(capacity), thread_([this] { run(); }) {}
  LoginVerifier(const LoginVerifier&) = delete;
  LoginVerifier& operator=(const LoginVerifier&) = delete;
  ~LoginVerifier() { stop(); }

  // A place in the queue, taken before the connection is suspended; false when full.
  bool reserve() {
    std::lock_guard lock(mutex_);
    if (stopping_ || taken_ >= capacity_) return false;
    ++taken_;
    ++unsubmitted_;
    return true;
  }

  // After reserve() and MHD_suspend_connection(): the login is verified and its connection
  // resumed.
  void submit(PendingLogin* login) {
    std::unique_lock lock(mutex_);
    --unsubmitted_;
    if (stopping_) {
      lock.unlock();
      submitted_.notify_all();
      login->outcome = PendingLogin::Outcome::Unavailable;
      MHD_resume_connection(login->connection);
      return;
    }
    queue_.push_back(login);
    lock.unlock();
    work_.notify_one();
  }

  // Resumes every suspended connection (MHD_stop_daemon must not find one) and ends the thread.
  void stop() {
    std::deque<PendingLogin*> left;
    {
      std::unique_lock lock(mutex_);
      if (stopping_ && !thread_.joinable()) return;
      stopping_ = true;
      submitted_.wait(lock, [this] { return unsubmitted_ == 0; });
      left.swap(queue_);
    }
    work_.notify_all();
    for (PendingLogin* login : left) {
      login->outcome = PendingLogin::Outcome::Unavailable;
      MHD_resume_connection(login->connection);
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    for (;;) {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      PendingLogin* login = queue_.front();
      queue_.pop_front();
      lock.unlock();
      const bool ok = auth_->verify(login->user, login->password);
      std::fill(login->password.begin(), login->password.end(), '\0');
      login->outcome = ok ? PendingLogin::Outcome::Allowed : PendingLogin::Outcome::Denied;
      lock.lock();
      --taken_;
      lock.unlock();
      MHD_resume_connection(login->connection);
    }
  }

  std::shared_ptr<BasicAuth> auth_;
  const unsigned capacity_;
  std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable submitted_;
  std::deque<PendingLogin*> queue_;
  unsigned taken_ = 0;        // queued, being verified, or reserved
  unsigned unsubmitted_ = 0;  // reserved, not submitted yet
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is initialized
};

// The certificate and key handed to each TLS handshake (GnuTLS form), replaced on reload.
class ServedCertificate {
 public:
  static Result<std::shared_ptr<const ServedCertificate>> make(const TlsCredentials& tls) {
    auto c = std::shared_ptr<ServedCertificate>(new ServedCertificate);
    const gnutls_datum_t cert{
        reinterpret_cast<unsigned char*>(const_cast<char*>(tls.certPem.data())),
        static_cast<unsigned>(tls.certPem.size())};
    const gnutls_datum_t key{reinterpret_cast<unsigned char*>(const_cast<char*>(tls.keyPem.data())),
                             static_cast<unsigned>(tls.keyPem.size())};
    unsigned count = static_cast<unsigned>(c->chain_.size());
    int rc =
        gnutls_pcert_list_import_x509_raw(c->chain_.data(), &count, &cert, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0) return Error{EINVAL, std::string("certificate: ") + gnutls_strerror(rc)};
    c->count_ = count;
    if ((rc = gnutls_privkey_init(&c->key_)) >= 0) {
      rc = gnutls_privkey_import_x509_raw(c->key_, &key, GNUTLS_X509_FMT_PEM, nullptr, 0);
    }
    if (rc < 0) return Error{EINVAL, std::string("key: ") + gnutls_strerror(rc)};
    return std::shared_ptr<const ServedCertificate>(std::move(c));
  }
  ServedCertificate(const ServedCertificate&) = delete;
  ServedCertificate& operator=(const ServedCertificate&) = delete;
  ~ServedCertificate() {
    for (unsigned i = 0; i < count_; ++i)
      gnutls_pcert_deinit(&chain_[i]);
    if (key_ != nullptr) gnutls_privkey_deinit(key_);
  }

  gnutls_pcert_st* chain() const { return chain_.data(); }
  unsigned count() const { return count_; }
  gnutls_privkey_t key() const { return key_; }

 private:
  ServedCertificate() = default;
  mutable std::array<gnutls_pcert_st, 16> chain_{};  // a chain of up to 16 certificates
  unsigned count_ = 0;
  gnutls_privkey_t key_ = nullptr;
};

// GnuTLS's certificate callback has no user pointer, so the certificate being served is
// process-wide: one TLS server per process (the daemon has one). Replaced certificates are kept
// (the last 64) because a handshake in progress may still use the one it was given.
struct CertificateSlot {
  std::mutex mutex;
  bool taken = false;
  std::shared_ptr<const ServedCertificate> current;
  std::deque<std::shared_ptr<const ServedCertificate>> retired;
};
CertificateSlot gCertificate;

int retrieveCertificate(gnutls_session_t, const gnutls_datum_t*, int, const gnutls_pk_algorithm_t*,
                        int, gnutls_pcert_st** chain, unsigned* count, gnutls_privkey_t* key) {
  std::lock_guard lock(gCertificate.mutex);
  if (!gCertificate.current) return -1;
  *chain = gCertificate.current->chain();
  *count = gCertificate.current->count();
  *key = gCertificate.current->key();
  return 0;
}

// Enforces HttpServerOptions::requestDeadlineSeconds. libmicrohttpd tells each connection's
// start and end (MHD_OPTION_NOTIFY_CONNECTION); a request whose headers are complete reaches
// onRequest; its end reaches onCompleted. A connection with no complete request by its deadline
// is shut down (shutdown(2) on its socket): libmicrohttpd then reads EOF and closes it the usual
// way, so none of its state is touched from here. The socket number stays this connection's
// until its CLOSED notification (libmicrohttpd closes the socket after it), and that
// notification removes it from here under the same mutex, so a reused number is never hit.
class RequestDeadlines {
 public:
  using Clock = std::chrono::steady_clock;

  // `seconds` for the first request of a connection; `keepAliveSeconds` (not shorter) for the
  // next ones, so that a client reusing a kept-alive connection is not cut before the idle
  // timeout would have closed it anyway.
  RequestDeadlines(unsigned seconds, unsigned keepAliveSeconds)
      : limit_(std::chrono::seconds(seconds)),
        keepAliveLimit_(std::chrono::seconds(std::max(seconds, keepAliveSeconds))) {
    if (seconds > 0) reaper_ = std::thread([this] { reap(); });
  }
  ~RequestDeadlines() { stop(); }
  RequestDeadlines(const RequestDeadlines&) = delete;
  RequestDeadlines& operator=(const RequestDeadlines&) = delete;

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (reaper_.joinable()) reaper_.join();
  }

  void opened(MHD_Connection* c) {
    const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info == nullptr) return;
    bool wasIdle = false;
    {
      std::lock_guard lock(mutex_);
      wasIdle = open_.empty();
      open_[c] = Entry{.fd = info->connect_fd, .deadline = Clock::now() + limit_};
    }
    if (wasIdle) wake_.notify_all();  // the reaper sleeps while no connection is open
  }
  void closed(MHD_Connection* c) {
    std::lock_guard lock(mutex_);
    open_.erase(c);
  }
  // The request's headers are in: no deadline while it is served (bcrypt, a long response).
  void requestArrived(MHD_Connection* c) {
    std::lock_guard lock(mutex_);
    if (auto it = open_.find(c); it != open_.end()) it->second.serving = true;
  }
  // Answered: the next request on this connection gets a deadline of its own.
  void requestDone(MHD_Connection* c) {
    std::lock_guard lock(mutex_);
    if (auto it = open_.find(c); it != open_.end()) {
      it->second.serving = false;
      it->second.deadline = Clock::now() + keepAliveLimit_;
    }
  }
  [[nodiscard]] std::uint64_t shutDown() const { return shutDown_.load(); }

 private:
  struct Entry {
    int fd = -1;
    Clock::time_point deadline;
    bool serving = false;
    bool shut = false;
  };

  void reap() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      // No connection, nothing to cut: no periodic wake-up of an idle daemon.
      wake_.wait(lock, [this] { return stopping_ || !open_.empty(); });
      if (stopping_) break;
      wake_.wait_for(lock, std::chrono::milliseconds(250));
      const auto now = Clock::now();
      for (auto& [connection, e] : open_) {
        if (e.serving || e.shut || now < e.deadline) continue;
        ::shutdown(e.fd, SHUT_RDWR);
        e.shut = true;
        shutDown_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  const Clock::duration limit_;
  const Clock::duration keepAliveLimit_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::unordered_map<MHD_Connection*, Entry> open_;
  std::atomic<std::uint64_t> shutDown_{0};
  std::thread reaper_;
};

}  // namespace

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
    auto served = ServedCertificate::make(*options.tls);
    if (!served) return served.error().wrap("web.tls_server_config");
    {
      std::lock_guard lock(gCertificate.mutex);
      if (gCertificate.taken) return Error{EBUSY, "a TLS server is already running here"};
      gCertificate.taken = true;
      gCertificate.current = std::move(*served);
    }
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
  std::lock_guard lock(gCertificate.mutex);
  gCertificate.taken = false;
  gCertificate.current.reset();
  gCertificate.retired.clear();
}

Result<void> HttpServer::reloadCertificate(const TlsCredentials& tls) {
  if (!impl_->tls) return Error{EINVAL, "the server does not serve TLS"};
  if (tls.minVersion != impl_->tls->minVersion) {
    return Error{EINVAL, "min_version changes take effect on restart"};
  }
  auto served = ServedCertificate::make(tls);
  if (!served) return served.error();
  std::lock_guard lock(gCertificate.mutex);
  gCertificate.retired.push_back(std::move(gCertificate.current));
  if (gCertificate.retired.size() > 64) gCertificate.retired.pop_front();
  gCertificate.current = std::move(*served);
  impl_->tls = tls;
  return {};
}

}  // namespace waitwatch
