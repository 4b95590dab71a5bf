// SPDX-License-Identifier: Apache-2.0
#include "service/served_certificate.hpp"

#include <array>
#include <cerrno>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

namespace waitwatch {
namespace {

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

}  // namespace

int retrieveCertificate(gnutls_session_t, const gnutls_datum_t*, int, const gnutls_pk_algorithm_t*,
                        int, gnutls_pcert_st** chain, unsigned* count, gnutls_privkey_t* key) {
  std::lock_guard lock(gCertificate.mutex);
  if (!gCertificate.current) return -1;
  *chain = gCertificate.current->chain();
  *count = gCertificate.current->count();
  *key = gCertificate.current->key();
  return 0;
}

Result<void> takeCertificateSlot(const TlsCredentials& tls) {
  auto served = ServedCertificate::make(tls);
  if (!served) return served.error().wrap("web.tls_server_config");
  std::lock_guard lock(gCertificate.mutex);
  if (gCertificate.taken) return Error{EBUSY, "a TLS server is already running here"};
  gCertificate.taken = true;
  gCertificate.current = std::move(*served);
  return {};
}

Result<void> renewServedCertificate(const TlsCredentials& tls) {
  auto served = ServedCertificate::make(tls);
  if (!served) return served.error();
  std::lock_guard lock(gCertificate.mutex);
  gCertificate.retired.push_back(std::move(gCertificate.current));
  if (gCertificate.retired.size() > 64) gCertificate.retired.pop_front();
  gCertificate.current = std::move(*served);
  return {};
}

void releaseCertificateSlot() {
  std::lock_guard lock(gCertificate.mutex);
  gCertificate.taken = false;
  gCertificate.current.reset();
  gCertificate.retired.clear();
}

}  // namespace waitwatch
