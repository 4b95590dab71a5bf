#include "service/http_server.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace waitwatch {

struct HttpServer::Impl {
  HttpHandler handler;
  MHD_Daemon* daemon = nullptr;
};

namespace {

// A marker for the first call of the access handler on a request (MHD calls it again once the
// body, if any, has arrived).
char gRequestSeen;

std::string errnoText(int e) {
  return std::strerror(e);
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
    // GET and HEAD carry no body: answer once the headers are in. Anything else is answered
    // at once too (405), without reading a body we do not want.
    const std::string_view m = method;
    if (m == "GET" || m == "HEAD") return MHD_YES;
  }
  // A body on a GET: ignore it (answered below; MHD drops the connection afterwards).
  if (hasBody) *uploadDataSize = 0;
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
  if (!fd) return Error{errno, where + ": socket: " + errnoText(errno)};
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    const int e = errno;
    return Error{e, where + ": " + errnoText(e)};
  }
  if (::listen(fd.get(), backlog) != 0) {
    const int e = errno;
    return Error{e, where + ": listen: " + errnoText(e)};
  }
  return fd;
}

Result<Endpoint> localEndpoint(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return Error{errno, std::string("getsockname: ") + errnoText(errno)};
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
  // ITC: stopping wakes the epoll threads at once instead of after their poll timeout.
  const unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC;
  impl->daemon = MHD_start_daemon(
      flags, 0, nullptr, nullptr, &onRequest, impl.get(),                                      //
      MHD_OPTION_LISTEN_SOCKET, listener.get(),                                                //
      MHD_OPTION_THREAD_POOL_SIZE, static_cast<unsigned>(options.threads),                     //
      MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned>(options.maxConnections),              //
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, static_cast<unsigned>(options.maxConnectionsPerIp),  //
      MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned>(options.idleTimeoutSeconds),        //
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, options.connectionMemoryLimit,                       //
      MHD_OPTION_STRICT_FOR_CLIENT, 1,                                                         //
      MHD_OPTION_END);
  if (impl->daemon == nullptr) {
    return Error{0, "cannot start the HTTP server on the bound socket (libmicrohttpd refused)"};
  }
  listener.release();  // MHD closes it when it stops
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  if (impl_ && impl_->daemon) MHD_stop_daemon(impl_->daemon);
}

}  // namespace waitwatch
