// SPDX-License-Identifier: Apache-2.0
#include "service/tls.hpp"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <cerrno>
#include <memory>

#include "sys/file.hpp"

namespace waitwatch {
namespace {

// A certificate chain or key is a few KB; anything far larger is not one.
constexpr std::size_t kMaxPemBytes = 1 << 20;

struct CredentialsDeleter {
  void operator()(gnutls_certificate_credentials_t c) const {
    gnutls_certificate_free_credentials(c);
  }
};
struct PrivkeyDeleter {
  void operator()(gnutls_x509_privkey_t k) const { gnutls_x509_privkey_deinit(k); }
};

// GnuTLS's reason without its final full stop, to sit inside parentheses.
std::string reason(int rc) {
  std::string r = gnutls_strerror(rc);
  if (!r.empty() && r.back() == '.') r.pop_back();
  return r;
}

gnutls_datum_t datum(const std::string& s) {
  return gnutls_datum_t{reinterpret_cast<unsigned char*>(const_cast<char*>(s.data())),
                        static_cast<unsigned>(s.size())};
}

}  // namespace

std::string tlsPriorities(TlsVersion minVersion) {
  return minVersion == TlsVersion::Tls13 ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
                                         : "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
}

Result<TlsCredentials> loadTlsCredentials(const TlsServerConfig& config, std::string_view origin) {
  const std::string prefix =
      (origin.empty() ? std::string() : std::string(origin) + ": ") + "web.tls_server_config";
  auto read = [&](const std::string& path, const char* key) -> Result<std::string> {
    auto text = readRegularFile(path, kMaxPemBytes + 1);
    if (!text) return Error{text.error().errnum, prefix + "." + key + ": " + text.error().message};
    if (text->size() > kMaxPemBytes) {
      return Error{EFBIG, prefix + "." + key + ": " + path + ": larger than 1 MiB, not PEM"};
    }
    return text;
  };
  TlsCredentials out{.certPem = {}, .keyPem = {}, .minVersion = config.minVersion};
  auto cert = read(config.certFile, "cert_file");
  if (!cert) return cert.error();
  auto key = read(config.keyFile, "key_file");
  if (!key) return key.error();
  out.certPem = std::move(*cert);
  out.keyPem = std::move(*key);

  // Each file on its own first, so that the error names the one that is wrong.
  const gnutls_datum_t certData = datum(out.certPem);
  gnutls_x509_crt_t* certs = nullptr;
  unsigned count = 0;
  int rc = gnutls_x509_crt_list_import2(&certs, &count, &certData, GNUTLS_X509_FMT_PEM, 0);
  for (unsigned i = 0; i < count; ++i)
    gnutls_x509_crt_deinit(certs[i]);
  gnutls_free(certs);
  if (rc < 0 || count == 0) {
    return Error{EINVAL, prefix + ".cert_file: " + config.certFile + ": not a PEM certificate (" +
                             reason(rc) + ")"};
  }
  gnutls_x509_privkey_t rawKey = nullptr;
  if (gnutls_x509_privkey_init(&rawKey) < 0) return Error{ENOMEM, prefix + ": out of memory"};
  const std::unique_ptr<gnutls_x509_privkey_int, PrivkeyDeleter> privateKey(rawKey);
  const gnutls_datum_t keyData = datum(out.keyPem);
  rc = gnutls_x509_privkey_import2(rawKey, &keyData, GNUTLS_X509_FMT_PEM, nullptr, 0);
  if (rc == GNUTLS_E_DECRYPTION_FAILED) {
    return Error{EINVAL, prefix + ".key_file: " + config.keyFile +
                             ": an encrypted key (waitwatchd cannot ask for a passphrase; "
                             "decrypt it with `openssl pkey`)"};
  }
  if (rc < 0) {
    return Error{EINVAL, prefix + ".key_file: " + config.keyFile + ": not a PEM private key (" +
                             reason(rc) + ")"};
  }
  // The pair, as libmicrohttpd will load it: GnuTLS checks that the key belongs to the
  // certificate.
  gnutls_certificate_credentials_t rawCredentials = nullptr;
  if (gnutls_certificate_allocate_credentials(&rawCredentials) < 0) {
    return Error{ENOMEM, prefix + ": out of memory"};
  }
  const std::unique_ptr<gnutls_certificate_credentials_st, CredentialsDeleter> credentials(
      rawCredentials);
  rc = gnutls_certificate_set_x509_key_mem2(rawCredentials, &certData, &keyData,
                                            GNUTLS_X509_FMT_PEM, nullptr, 0);
  if (rc == GNUTLS_E_CERTIFICATE_KEY_MISMATCH) {
    return Error{EINVAL, prefix + ": the key in " + config.keyFile +
                             " does not belong to the certificate in " + config.certFile};
  }
  if (rc < 0) {
    return Error{EINVAL, prefix + ": " + config.certFile + " and " + config.keyFile +
                             " cannot be used together (" + reason(rc) + ")"};
  }
  return out;
}

}  // namespace waitwatch
