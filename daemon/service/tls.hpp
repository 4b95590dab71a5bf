// SPDX-License-Identifier: Apache-2.0
#pragma once
// The certificate and key of `web.tls_server_config`, read and checked before the HTTP server
// uses them: the config compiler (pure) only checked the names, this adapter reads the files.
// A missing, unreadable, non-PEM, encrypted or mismatched file is a one-line error naming the
// JSON path and the file, at start-up (the daemon does not start) and at reload (the old
// configuration stays).
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "service/service_config.hpp"

namespace waitwatch {

struct TlsCredentials {
  std::string certPem;  // the certificate chain as read (PEM)
  std::string keyPem;   // its private key (PEM)
  TlsVersion minVersion = TlsVersion::Tls12;
  bool operator==(const TlsCredentials&) const = default;
};

// `origin` (the configuration file) prefixes every error, as compileConfig's do:
// "/etc/waitwatch/waitwatch.json: web.tls_server_config.key_file: /etc/waitwatch/tls.key:
// Permission denied".
Result<TlsCredentials> loadTlsCredentials(const TlsServerConfig& config, std::string_view origin);

// The GnuTLS priority string for libmicrohttpd: the library's defaults, TLS 1.2 and 1.3 or 1.3
// only.
std::string tlsPriorities(TlsVersion minVersion);

}  // namespace waitwatch
