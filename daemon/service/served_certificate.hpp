// SPDX-License-Identifier: Apache-2.0
#pragma once
// The certificate and key a TLS listener serves, taken at each handshake from a callback so
// that a reload can renew them. GnuTLS's certificate callback has no user pointer, so the slot
// is process-wide: one TLS server per process (the daemon has one).
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "core/result.hpp"
#include "service/tls.hpp"

namespace waitwatch {

// Serves `tls` from now on; EBUSY when another server holds the slot.
Result<void> takeCertificateSlot(const TlsCredentials& tls);
// Serves `tls` to the next handshakes (the slot must be taken).
Result<void> renewServedCertificate(const TlsCredentials& tls);
// Frees the slot (the server stopped).
void releaseCertificateSlot();
// For MHD_OPTION_HTTPS_CERT_CALLBACK: the certificate being served.
int retrieveCertificate(gnutls_session_t, const gnutls_datum_t*, int, const gnutls_pk_algorithm_t*,
                        int, gnutls_pcert_st** chain, unsigned* count, gnutls_privkey_t* key);

}  // namespace waitwatch
