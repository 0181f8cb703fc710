/* Checks TLS material before gRPC gets it: gRPC takes any text and only fails each handshake
 * later, which a person would see as a server nobody can reach.
 * Thread-safety: reentrant (OpenSSL 3 needs no set-up). */
#ifndef AF_GRPC_TLS_H
#define AF_GRPC_TLS_H

#include "common/compiler.h"

#include <stddef.h>

typedef enum af_tls_part { AF_TLS_OK, AF_TLS_CERT, AF_TLS_KEY, AF_TLS_CLIENT_CA } af_tls_part;

/* Checks that cert_chain holds a certificate, key a private key that matches it, and
 * client_ca (may be NULL) at least one certificate. Returns AF_TLS_OK, or the part that is
 * wrong with a reason in why. */
af_tls_part af_tls_check(const char *cert_chain, const char *key, const char *client_ca, char *why,
                         size_t whysz) AF_MUST_USE;

#endif
