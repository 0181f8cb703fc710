/* AWS Signature Version 4 for the AWS REST-JSON door: a store of access keys and a verifier that
 * checks one request the way AWS does (canonical request, string to sign, AWS4-HMAC-SHA256 made
 * from OpenSSL's SHA-256, service "appflow"). Pure: bytes and a clock reading in, a verdict
 * out, no sockets and no globals, so tests feed it requests signed by botocore.
 *
 * The credentials file (--aws-credentials FILE) reads like ~/.aws/credentials: one [section] per
 * key, named as you like (the name is for people and error messages), with
 *
 *     # comment lines start with '#' or ';'
 *     [ci-robot]
 *     aws_access_key_id = AKIAIOSFODNN7EXAMPLE
 *     aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
 *     aws_account_id = 123456789012
 *     aws_principal_arn = arn:aws:iam::123456789012:user/ci-robot
 *
 * aws_access_key_id: 1 to 128 of [A-Za-z0-9_]; unique in the file. aws_secret_access_key: 1 to
 * 128 printable ASCII characters, no spaces. aws_account_id: optional, 12 digits.
 * aws_principal_arn: optional, the caller's ARN as AppFlow records it (DescribeFlow's createdBy and
 * lastUpdatedBy); without it the service uses the account's root, arn:aws:iam::ACCOUNT:root. Any
 * other key (aws_session_token included: temporary credentials are not supported) is refused, so a
 * typo cannot silently drop a key. Whitespace around '=' and at either end of a line is ignored;
 * values are not quoted. At most AF_SIGV4_MAX_KEYS keys, lines of at most 1023 characters.
 *
 * Trusted input: the credentials file. Untrusted: every part of the request (bounded here by
 * AF_SIGV4_MAX_SIGNED_HEADERS and AF_SIGV4_MAX_QUERY_PARAMS; the HTTP server bounds the rest).
 *
 * Supported: the Authorization header form of SigV4 (not presigned query-string URLs, not
 * SigV4a, not session tokens). Thread-safety: a loaded store is read-only, so any number of
 * threads may verify against it at once; load and free from one thread. */
#ifndef AF_BRIDGE_SIGV4_H
#define AF_BRIDGE_SIGV4_H

#include "common/compiler.h"
#include "flows/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define AF_SIGV4_SERVICE "appflow"
/* How far a request's date may be from the server's clock, either way (AWS's 15 minutes). */
#define AF_SIGV4_MAX_SKEW_SECONDS (15 * 60)
#define AF_SIGV4_MAX_KEYS 10000
#define AF_SIGV4_MAX_SIGNED_HEADERS 64
#define AF_SIGV4_MAX_QUERY_PARAMS 256

typedef struct af_sigv4_creds af_sigv4_creds;

/* Loads the credentials file at path. Returns the store (free with af_sigv4_creds_free), or
 * NULL with err set (AF_ERR_VALIDATION; message "PATH:LINE: what is wrong", or "PATH: why" when
 * the file cannot be read or holds no key) — the message names no secret. */
af_sigv4_creds *af_sigv4_creds_load(const char *path, af_error *err) AF_MUST_USE;
/* Parses a credentials file already in memory (text[0..len)); name is used in messages. */
af_sigv4_creds *af_sigv4_creds_parse(const char *name, const char *text, size_t len,
                                     af_error *err) AF_MUST_USE;
/* Number of keys in the store. */
size_t af_sigv4_creds_count(const af_sigv4_creds *c);
/* Requests must then be signed for this region (the server's --region), as AWS refuses a
 * request signed for another region; NULL (the default) accepts any region. region is copied.
 * Returns 0, or -1 when out of memory (the store is unchanged). */
int af_sigv4_creds_set_region(af_sigv4_creds *c, const char *region) AF_MUST_USE;
/* Frees the store (and wipes its secrets). NULL is fine. */
void af_sigv4_creds_free(af_sigv4_creds *c);

/* One header as received: name in any case, value as sent (NUL-terminated, both borrowed). */
typedef struct af_sigv4_header {
  const char *name;
  const char *value;
} af_sigv4_header;

/* One request as received; all pointers borrowed for the duration of the call. */
typedef struct af_sigv4_request {
  const char *method;             /* "POST" */
  const char *path;               /* raw, as sent (percent-encoding intact), without the query */
  const char *query;              /* raw, after the '?'; NULL or "" when there is none */
  const af_sigv4_header *headers; /* every header, in the order received */
  size_t nheaders;
  const void *body; /* may be NULL when body_len is 0 */
  size_t body_len;
} af_sigv4_request;

/* Who signed a request: the key's aws_account_id and aws_principal_arn, each NULL when the
 * file gave none (they live as long as the store), and the access key id and region of the
 * signature's credential scope (copies; "" when unknown). */
typedef struct af_sigv4_caller {
  const char *account;
  const char *principal;
  char key_id[129];
  char region[64];
} af_sigv4_caller;

/* The access key id and region of an Authorization header's credential scope
 * ("AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, ..."), not verified (for
 * a server that checks no signatures), into who (account and principal NULL). False when value
 * is NULL or not such a header. */
bool af_sigv4_scope_of(const char *value, af_sigv4_caller *who);

/* Verifies req's Authorization header against the store at time now (seconds since the epoch).
 * AF_OK when the signature is right: *who (when who is not NULL) is then the key's caller.
 * Otherwise err is set with AWS's error type and wording and the request must be refused:
 *   AF_ERR_MISSING_AUTHENTICATION_TOKEN  no Authorization header
 *   AF_ERR_INCOMPLETE_SIGNATURE          an Authorization header that cannot be parsed, or no
 *                                        X-Amz-Date/Date header
 *   AF_ERR_UNRECOGNIZED_CLIENT           an access key id the store does not hold
 *   AF_ERR_INVALID_SIGNATURE             wrong scope (service, region, date, terminator), date
 *                                        more than 15 minutes off, Host or the date header not
 *                                        signed, x-amz-content-sha256 not the body's hash, or a
 *                                        signature that does not match
 *   AF_ERR_INTERNAL_SERVER               OpenSSL or memory failed */
af_err af_sigv4_verify(const af_sigv4_creds *c, const af_sigv4_request *req, time_t now,
                       af_sigv4_caller *who, af_error *err) AF_MUST_USE;

/* The pieces of verification, public so tests can compare them with AWS's published test
 * suite. Each returns AF_OK, or an error as af_sigv4_verify would report it. */

/* Writes the canonical request for req, signing the headers listed in signed_headers (the
 * SignedHeaders value, e.g. "host;x-amz-date") with payload_hash (64 hex digits, or NULL for
 * the SHA-256 of the body), into out (size cap, NUL-terminated); *len_out is its length. */
af_err af_sigv4_canonical_request(const af_sigv4_request *req, const char *signed_headers,
                                  const char *payload_hash, char *out, size_t cap, size_t *len_out,
                                  af_error *err) AF_MUST_USE;
/* The signature (64 lower-case hex digits and a NUL) of req, signed at amz_date
 * ("20150830T123600Z") with secret for region and service. */
af_err af_sigv4_sign(const af_sigv4_request *req, const char *signed_headers, const char *secret,
                     const char *amz_date, const char *region, const char *service, char out[65],
                     af_error *err) AF_MUST_USE;
/* The signing key HMAC(HMAC(HMAC(HMAC("AWS4" secret, date8), region), service), "aws4_request"). */
af_err af_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                            const char *service, unsigned char out[32], af_error *err) AF_MUST_USE;

#endif
