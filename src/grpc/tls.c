#include "grpc/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

static X509 *first_cert(const char *pem) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  return cert;
}

static EVP_PKEY *private_key(const char *pem) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  return key;
}

static af_tls_part fail(af_tls_part part, char *why, size_t whysz, const char *what) {
  snprintf(why, whysz, "%s", what);
  ERR_clear_error(); /* OpenSSL's queue would otherwise surface in gRPC's own errors later */
  return part;
}

af_tls_part af_tls_check(const char *cert_chain, const char *key, const char *client_ca, char *why,
                         size_t whysz) {
  X509 *cert = first_cert(cert_chain);
  if (cert == NULL)
    return fail(AF_TLS_CERT, why, whysz, "holds no PEM certificate");
  EVP_PKEY *pkey = private_key(key);
  af_tls_part rc = AF_TLS_OK;
  if (pkey == NULL)
    rc = fail(AF_TLS_KEY, why, whysz, "holds no PEM private key (or it is encrypted)");
  else if (X509_check_private_key(cert, pkey) != 1)
    rc = fail(AF_TLS_KEY, why, whysz, "is not the key of the certificate in --tls-cert");
  EVP_PKEY_free(pkey);
  X509_free(cert);
  if (rc == AF_TLS_OK && client_ca != NULL) {
    X509 *ca = first_cert(client_ca);
    if (ca == NULL)
      rc = fail(AF_TLS_CLIENT_CA, why, whysz, "holds no PEM certificate");
    X509_free(ca);
  }
  return rc;
}
