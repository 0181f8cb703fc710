/* SigV4 as AWS's services check it and as botocore (auth.py, SigV4Auth) signs it: the canonical
 * request is hashed as it is written, so checking a request allocates only for the query. */
#include "bridge/sigv4.h"

#include "common/file.h"
#include "common/hex.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
#define TERMINATOR "aws4_request"
#define KEY_ID_MAX 128
#define SECRET_MAX 128
#define PRINCIPAL_MAX 2048
#define LINE_MAX_LEN 1023
#define FILE_MAX (4u << 20)
#define DATE_LEN 16 /* 20150830T123600Z */
#define MSG_MISSING_TOKEN "Missing Authentication Token"
#define MSG_UNRECOGNIZED "The security token included in the request is invalid."
#define MSG_MISMATCH                                                                               \
  "The request signature we calculated does not match the signature you provided. Check your "     \
  "AWS Secret Access Key and signing method. Consult the service documentation for details."
#define MSG_PAYLOAD "The provided 'x-amz-content-sha256' header does not match what was computed."

/* ---- the credentials store ---- */

typedef struct key {
  char *id;
  char *secret;
  char *account;   /* NULL when the file gave none */
  char *principal; /* aws_principal_arn; NULL when the file gave none */
} key;

struct af_sigv4_creds {
  key *keys; /* sorted by id, for bsearch */
  size_t n;
  char *region;   /* NULL: any */
  EVP_MD *sha256; /* fetched once: EVP_sha256() makes OpenSSL look SHA-256 up for every use */
};

static void wipe_free(char *s) {
  if (s == NULL)
    return;
  OPENSSL_cleanse(s, strlen(s));
  free(s);
}

void af_sigv4_creds_free(af_sigv4_creds *c) {
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n; i++) {
    free(c->keys[i].id);
    wipe_free(c->keys[i].secret);
    free(c->keys[i].account);
    free(c->keys[i].principal);
  }
  free(c->keys);
  free(c->region);
  EVP_MD_free(c->sha256);
  free(c);
}

size_t af_sigv4_creds_count(const af_sigv4_creds *c) { return c->n; }

int af_sigv4_creds_set_region(af_sigv4_creds *c, const char *region) {
  char *r = region ? strdup(region) : NULL;
  if (region != NULL && r == NULL)
    return -1;
  free(c->region);
  c->region = r;
  return 0;
}

/* One section being read: where it began and what it has said so far. */
typedef struct section {
  char name[64];
  int line;
  key k;
} section;

typedef struct parser {
  const char *file;
  af_sigv4_creds *c;
  size_t cap;
  section cur;
  bool in_section;
  af_error *err;
} parser;

static af_err bad(parser *p, int line, const char *what, const char *detail) {
  return af_error_set(p->err, AF_ERR_VALIDATION, "%s:%d: %s%s", p->file, line, what, detail);
}

static bool all_of(const char *s, int (*pred)(int)) {
  for (; *s; s++) {
    if (!pred((unsigned char)*s))
      return false;
  }
  return true;
}

static int is_key_id_char(int ch) { return isalnum(ch) || ch == '_'; }
static int is_secret_char(int ch) { return ch > ' ' && ch < 0x7f; }
static int is_digit(int ch) { return ch >= '0' && ch <= '9'; }

static af_err check_value(parser *p, int line, const char *name, const char *v) {
  size_t n = strlen(v);
  if (strcmp(name, "aws_access_key_id") == 0 &&
      (n == 0 || n > KEY_ID_MAX || !all_of(v, is_key_id_char)))
    return bad(p, line, "aws_access_key_id must be 1 to 128 letters, digits or '_'", "");
  if (strcmp(name, "aws_secret_access_key") == 0 &&
      (n == 0 || n > SECRET_MAX || !all_of(v, is_secret_char)))
    return bad(p, line, "aws_secret_access_key must be 1 to 128 printable ASCII characters",
               " without spaces");
  if (strcmp(name, "aws_account_id") == 0 && (n != 12 || !all_of(v, is_digit)))
    return bad(p, line, "aws_account_id must be 12 digits", "");
  if (strcmp(name, "aws_principal_arn") == 0 &&
      (strncmp(v, "arn:aws:", 8) != 0 || n > PRINCIPAL_MAX || !all_of(v, is_secret_char)))
    return bad(p, line, "aws_principal_arn must be an ARN (arn:aws:...) of at most 2048",
               " printable characters");
  return AF_OK;
}

static char **field(section *s, const char *name) {
  if (strcmp(name, "aws_access_key_id") == 0)
    return &s->k.id;
  if (strcmp(name, "aws_secret_access_key") == 0)
    return &s->k.secret;
  if (strcmp(name, "aws_account_id") == 0)
    return &s->k.account;
  if (strcmp(name, "aws_principal_arn") == 0)
    return &s->k.principal;
  return NULL;
}

static void section_clear(section *s) {
  free(s->k.id);
  wipe_free(s->k.secret);
  free(s->k.account);
  free(s->k.principal);
  s->k = (key){NULL, NULL, NULL, NULL};
}

/* Ends the current section: complete, it joins the store. */
static af_err section_end(parser *p) {
  if (!p->in_section)
    return AF_OK;
  section *s = &p->cur;
  const char *missing = !s->k.id       ? "aws_access_key_id"
                        : !s->k.secret ? "aws_secret_access_key"
                                       : NULL;
  if (missing != NULL)
    return af_error_set(p->err, AF_ERR_VALIDATION, "%s:%d: section [%s] has no %s", p->file,
                        s->line, s->name, missing);
  if (p->c->n == AF_SIGV4_MAX_KEYS)
    return bad(p, s->line, "too many keys (at most 10000)", "");
  if (p->c->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 8;
    key *k = realloc(p->c->keys, cap * sizeof *k);
    if (k == NULL)
      return af_error_set(p->err, AF_ERR_INTERNAL_SERVER, "out of memory");
    p->c->keys = k;
    p->cap = cap;
  }
  p->c->keys[p->c->n++] = s->k;
  s->k = (key){NULL, NULL, NULL, NULL};
  p->in_section = false;
  return AF_OK;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    s[--n] = '\0';
  return s;
}

static af_err section_start(parser *p, int line, char *s) {
  af_err rc = section_end(p);
  if (rc != AF_OK)
    return rc;
  size_t n = strlen(s);
  if (s[n - 1] != ']')
    return bad(p, line, "a section line is [name]", "");
  s[n - 1] = '\0';
  char *name = trim(s + 1);
  if (*name == '\0' || strlen(name) >= sizeof p->cur.name)
    return bad(p, line, "a section name is 1 to 63 characters", "");
  snprintf(p->cur.name, sizeof p->cur.name, "%s", name);
  p->cur.line = line;
  p->in_section = true;
  return AF_OK;
}

static af_err assignment(parser *p, int line, char *s) {
  char *eq = strchr(s, '=');
  if (eq == NULL)
    return bad(p, line, "expected [section], name = value, or a # comment", "");
  *eq = '\0';
  char *name = trim(s), *value = trim(eq + 1);
  if (!p->in_section)
    return bad(p, line, "name = value before any [section]", "");
  char **slot = field(&p->cur, name);
  if (slot == NULL) {
    char esc[128];
    af_error_set(p->err, AF_ERR_VALIDATION,
                 "%s:%d: unknown key '%s' (expected aws_access_key_id, aws_secret_access_key, "
                 "aws_account_id or aws_principal_arn; session tokens are not supported)",
                 p->file, line, af_escape(esc, sizeof esc, name, strlen(name)));
    return AF_ERR_VALIDATION;
  }
  if (*slot != NULL)
    return af_error_set(p->err, AF_ERR_VALIDATION, "%s:%d: %s given twice in [%s]", p->file, line,
                        name, p->cur.name);
  af_err rc = check_value(p, line, name, value);
  if (rc != AF_OK)
    return rc;
  if ((*slot = strdup(value)) == NULL)
    return af_error_set(p->err, AF_ERR_INTERNAL_SERVER, "out of memory");
  return AF_OK;
}

static af_err parse_line(parser *p, int line, char *s) {
  s = trim(s);
  if (*s == '\0' || *s == '#' || *s == ';')
    return AF_OK;
  if (*s == '[')
    return section_start(p, line, s);
  return assignment(p, line, s);
}

static int key_cmp(const void *a, const void *b) {
  return strcmp(((const key *)a)->id, ((const key *)b)->id);
}

static af_err finish(parser *p) {
  af_err rc = section_end(p);
  if (rc != AF_OK)
    return rc;
  if (p->c->n == 0)
    return af_error_set(p->err, AF_ERR_VALIDATION,
                        "%s: no keys (expected [name] sections with "
                        "aws_access_key_id and aws_secret_access_key)",
                        p->file);
  qsort(p->c->keys, p->c->n, sizeof *p->c->keys, key_cmp);
  for (size_t i = 1; i < p->c->n; i++) {
    if (strcmp(p->c->keys[i - 1].id, p->c->keys[i].id) == 0)
      return af_error_set(p->err, AF_ERR_VALIDATION, "%s: aws_access_key_id %s is given twice",
                          p->file, p->c->keys[i].id);
  }
  return AF_OK;
}

af_sigv4_creds *af_sigv4_creds_parse(const char *name, const char *text, size_t len,
                                     af_error *err) {
  parser p = {.file = name, .c = calloc(1, sizeof(af_sigv4_creds)), .err = err};
  if (p.c == NULL) {
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return NULL;
  }
  af_err rc = AF_OK;
  char buf[LINE_MAX_LEN + 2];
  size_t pos = 0;
  for (int line = 1; rc == AF_OK && pos < len; line++) {
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
    if (n > LINE_MAX_LEN || memchr(text + pos, '\0', n) != NULL)
      rc = bad(&p, line, n > LINE_MAX_LEN ? "line too long" : "NUL byte in line", "");
    if (rc == AF_OK) {
      memcpy(buf, text + pos, n);
      buf[n] = '\0';
      rc = parse_line(&p, line, buf);
      OPENSSL_cleanse(buf, n);
    }
    pos += n + 1;
  }
  if (rc == AF_OK)
    rc = finish(&p);
  if (rc == AF_OK && (p.c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
    rc = af_error_set(err, AF_ERR_INTERNAL_SERVER, "%s: OpenSSL has no SHA-256", name);
  section_clear(&p.cur);
  if (rc == AF_OK)
    return p.c;
  af_sigv4_creds_free(p.c);
  return NULL;
}

af_sigv4_creds *af_sigv4_creds_load(const char *path, af_error *err) {
  char *buf;
  size_t n;
  int e = af_read_file(path, FILE_MAX, &buf, &n, NULL);
  if (e == ENOMEM) {
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return NULL;
  }
  if (e != 0) {
    af_error_set(err, AF_ERR_VALIDATION, "%s: %s", path,
                 e == EFBIG ? "over 4 MiB: not a credentials file" : strerror(e));
    return NULL;
  }
  af_sigv4_creds *c = af_sigv4_creds_parse(path, buf, n, err);
  OPENSSL_cleanse(buf, n); /* the file holds secrets */
  free(buf);
  return c;
}

static const key *find_key(const af_sigv4_creds *c, const char *id) {
  key probe = {(char *)id, NULL, NULL};
  return bsearch(&probe, c->keys, c->n, sizeof *c->keys, key_cmp);
}

/* ---- the canonical request: written to a buffer (for tests) or straight into a hash ---- */

typedef struct sink {
  const EVP_MD *digest; /* SHA-256, for the body's hash when the caller gives none */
  EVP_MD_CTX *md;       /* when hashing */
  char *buf;            /* when writing */
  size_t cap, len;
  bool failed;
} sink;

static void put(sink *s, const char *p, size_t n) {
  if (s->md != NULL) {
    if (EVP_DigestUpdate(s->md, p, n) != 1)
      s->failed = true;
  } else if (n >= s->cap - s->len) {
    s->failed = true;
  } else {
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
  }
}

static void puts_(sink *s, const char *p) { put(s, p, strlen(p)); }
static void putc_(sink *s, char ch) { put(s, &ch, 1); }

static bool unreserved(unsigned char ch) {
  return isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~';
}

/* SigV4's URI encoding: unreserved bytes as they are, every other byte %XX (upper case). */
static void put_encoded(sink *s, const char *p, size_t n, bool keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)p[i];
    if (unreserved(ch) || (keep_slash && ch == '/')) {
      putc_(s, (char)ch);
    } else {
      char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
      put(s, e, 3);
    }
  }
}

/* The path as botocore signs it for every service but S3: dot segments and empty segments
 * removed (RFC 3986 5.2.4, plus AWS's "//" rule), then the path AS SENT URI-encoded once more,
 * so an escape such as %20 in the request line is signed as %2520. */
static void put_canonical_uri(sink *s, const char *path) {
  size_t n = strlen(path);
  /* Segments kept so far, each as (start, length) into path; at most n/2 + 1 of them. */
  size_t *seg = n ? malloc((n / 2 + 1) * 2 * sizeof *seg) : NULL;
  size_t nseg = 0;
  if (n && seg == NULL) {
    s->failed = true;
    return;
  }
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && path[j] != '/')
      j++;
    size_t len = j - i;
    if (len == 2 && path[i] == '.' && path[i + 1] == '.') {
      nseg -= nseg > 0;
    } else if (len > 0 && !(len == 1 && path[i] == '.')) {
      seg[2 * nseg] = i;
      seg[2 * nseg + 1] = len;
      nseg++;
    }
    i = j + 1;
  }
  if (n == 0 || path[0] == '/' || nseg == 0)
    putc_(s, '/');
  for (size_t k = 0; k < nseg; k++) {
    if (k > 0)
      putc_(s, '/');
    put_encoded(s, path + seg[2 * k], seg[2 * k + 1], false);
  }
  if (nseg > 0 && n > 0 && path[n - 1] == '/')
    putc_(s, '/');
  free(seg);
}

/* Decodes %XX escapes of p[0..n) into out (room for n bytes); returns the decoded length. */
static size_t decode(const char *p, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int hi, lo;
    if (p[i] == '%' && i + 2 < n && (hi = af_hex_value((unsigned char)p[i + 1])) >= 0 &&
        (lo = af_hex_value((unsigned char)p[i + 2])) >= 0) {
      out[o++] = (char)(hi << 4 | lo);
      i += 2;
    } else {
      out[o++] = p[i];
    }
  }
  return o;
}

typedef struct param {
  char *key, *value; /* SigV4-encoded, NUL-terminated, in one block */
} param;

static int param_cmp(const void *a, const void *b) {
  const param *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  return c ? c : strcmp(x->value, y->value);
}

/* p[0..n) decoded then encoded the SigV4 way, into out (room for 3n + 1). */
static char *reencode(const char *p, size_t n, char *tmp, char *out) {
  size_t d = decode(p, n, tmp);
  sink s = {.buf = out, .cap = 3 * n + 1};
  out[0] = '\0';
  put_encoded(&s, tmp, d, false);
  return out;
}

/* Query parameters sorted by encoded name, then value; "a" and "a=" both sign as "a=". */
static af_err put_canonical_query(sink *s, const char *q, af_error *err) {
  size_t n = q ? strlen(q) : 0;
  if (n == 0)
    return AF_OK;
  param *ps = calloc(AF_SIGV4_MAX_QUERY_PARAMS, sizeof *ps);
  char *pool = malloc(4 * n + 2 * AF_SIGV4_MAX_QUERY_PARAMS + n + 1);
  af_err rc = AF_OK;
  size_t np = 0, used = 0;
  if (ps == NULL || pool == NULL)
    rc = af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
  char *tmp = pool ? pool + 4 * n + 2 * AF_SIGV4_MAX_QUERY_PARAMS : NULL;
  for (size_t i = 0; rc == AF_OK && i <= n;) {
    size_t j = i;
    while (j < n && q[j] != '&')
      j++;
    if (j > i && np == AF_SIGV4_MAX_QUERY_PARAMS)
      rc = af_error_set(err, AF_ERR_INCOMPLETE_SIGNATURE,
                        "The query string has more than %d parameters.", AF_SIGV4_MAX_QUERY_PARAMS);
    if (j > i && rc == AF_OK) {
      const char *eq = memchr(q + i, '=', j - i);
      size_t klen = eq ? (size_t)(eq - (q + i)) : j - i;
      size_t vlen = eq ? j - i - klen - 1 : 0;
      ps[np].key = reencode(q + i, klen, tmp, pool + used);
      used += strlen(pool + used) + 1;
      ps[np].value = reencode(eq ? eq + 1 : "", vlen, tmp, pool + used);
      used += strlen(pool + used) + 1;
      np++;
    }
    i = j + 1;
  }
  if (rc == AF_OK) {
    qsort(ps, np, sizeof *ps, param_cmp);
    for (size_t k = 0; k < np; k++) {
      if (k > 0)
        putc_(s, '&');
      puts_(s, ps[k].key);
      putc_(s, '=');
      puts_(s, ps[k].value);
    }
  }
  free(ps);
  free(pool);
  return rc;
}

/* Trimall: the value without leading or trailing whitespace, each run of whitespace inside it
 * one space (botocore: ' '.join(value.split())). */
static void put_trimmed(sink *s, const char *v) {
  bool started = false, space = false;
  for (; *v; v++) {
    if (isspace((unsigned char)*v)) {
      space = started;
      continue;
    }
    if (space)
      putc_(s, ' ');
    putc_(s, *v);
    started = true;
    space = false;
  }
}

/* One canonical header line: the name, then every value received under it (any case), in
 * order, joined by ','. */
static void put_canonical_header(sink *s, const af_sigv4_request *req, const char *name,
                                 size_t len) {
  for (size_t i = 0; i < len; i++)
    putc_(s, (char)tolower((unsigned char)name[i]));
  putc_(s, ':');
  bool first = true;
  for (size_t i = 0; i < req->nheaders; i++) {
    const char *h = req->headers[i].name;
    if (strlen(h) != len || strncasecmp(h, name, len) != 0)
      continue;
    if (!first)
      putc_(s, ',');
    put_trimmed(s, req->headers[i].value);
    first = false;
  }
  putc_(s, '\n');
}

static int is_token_char(int ch) {
  return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~:", ch) != NULL);
}

/* SignedHeaders: 1 to AF_SIGV4_MAX_SIGNED_HEADERS names separated by ';'. */
static af_err check_signed_headers(const char *sh, af_error *err) {
  size_t count = 0;
  for (const char *p = sh;; p++) {
    size_t n = strcspn(p, ";");
    for (size_t i = 0; i < n; i++) {
      if (!is_token_char((unsigned char)p[i]))
        n = 0;
    }
    if (n == 0 || ++count > AF_SIGV4_MAX_SIGNED_HEADERS) {
      char esc[300];
      return af_error_set(err, AF_ERR_INCOMPLETE_SIGNATURE,
                          "Invalid SignedHeaders list in the Authorization header: '%s'",
                          af_escape(esc, sizeof esc, sh, strlen(sh)));
    }
    p += n;
    if (*p == '\0')
      return AF_OK;
  }
}

static void put_canonical_headers(sink *s, const af_sigv4_request *req, const char *sh) {
  for (const char *p = sh;; p++) {
    size_t n = strcspn(p, ";");
    put_canonical_header(s, req, p, n);
    p += n;
    if (*p == '\0')
      break;
  }
  putc_(s, '\n');
  puts_(s, sh);
  putc_(s, '\n');
}

static void hex(const unsigned char *b, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[b[i] >> 4];
    out[2 * i + 1] = digits[b[i] & 15];
  }
  out[2 * n] = '\0';
}

static bool sha256_hex(const EVP_MD *digest, const void *p, size_t n, char out[65]) {
  unsigned char md[32];
  unsigned int len = 0;
  if (EVP_Digest(p ? p : "", n, md, &len, digest, NULL) != 1 || len != 32)
    return false;
  hex(md, 32, out);
  return true;
}

static af_err write_canonical(sink *s, const af_sigv4_request *req, const char *sh,
                              const char *payload_hash, af_error *err) {
  af_err rc = check_signed_headers(sh, err);
  if (rc != AF_OK)
    return rc;
  char body_hash[65];
  if (payload_hash == NULL) {
    if (!sha256_hex(s->digest, req->body, req->body_len, body_hash))
      return af_error_set(err, AF_ERR_INTERNAL_SERVER, "SHA-256 failed");
    payload_hash = body_hash;
  }
  puts_(s, req->method);
  putc_(s, '\n');
  put_canonical_uri(s, req->path ? req->path : "/");
  putc_(s, '\n');
  if ((rc = put_canonical_query(s, req->query, err)) != AF_OK)
    return rc;
  putc_(s, '\n');
  put_canonical_headers(s, req, sh);
  puts_(s, payload_hash);
  return AF_OK;
}

af_err af_sigv4_canonical_request(const af_sigv4_request *req, const char *signed_headers,
                                  const char *payload_hash, char *out, size_t cap, size_t *len_out,
                                  af_error *err) {
  if (cap == 0)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "no room for the canonical request");
  sink s = {.digest = EVP_sha256(), .buf = out, .cap = cap};
  out[0] = '\0';
  af_err rc = write_canonical(&s, req, signed_headers, payload_hash, err);
  if (rc == AF_OK && s.failed)
    rc = af_error_set(err, AF_ERR_INTERNAL_SERVER, "the canonical request is over %zu bytes",
                      cap - 1);
  if (len_out != NULL)
    *len_out = s.len;
  return rc;
}

/* ---- signing ---- */

/* The hashes of one signature, made with one context and a digest fetched once (the store's;
 * EVP_sha256() for af_sigv4_sign, which has none). OpenSSL's one-shot HMAC() fetches HMAC and
 * SHA-256 by name and makes and frees its contexts for every call: the five a signature takes
 * (four to derive the signing key, one to sign) were two thirds of a signed request's cost. */
typedef struct hasher {
  const EVP_MD *md;
  EVP_MD_CTX *ctx;
} hasher;

static bool hasher_open(hasher *h, const EVP_MD *md) {
  h->md = md;
  h->ctx = EVP_MD_CTX_new();
  return h->ctx != NULL;
}

static void hasher_close(hasher *h) { EVP_MD_CTX_free(h->ctx); }

/* SHA-256 of a[0..an) then b[0..bn). */
static bool digest2(hasher *h, const void *a, size_t an, const void *b, size_t bn,
                    unsigned char out[32]) {
  unsigned int len = 0;
  return EVP_DigestInit_ex2(h->ctx, h->md, NULL) == 1 && EVP_DigestUpdate(h->ctx, a, an) == 1 &&
         (bn == 0 || EVP_DigestUpdate(h->ctx, b, bn) == 1) &&
         EVP_DigestFinal_ex(h->ctx, out, &len) == 1 && len == 32;
}

/* HMAC-SHA256 (RFC 2104): H((K ^ opad) || H((K ^ ipad) || msg)), K first hashed when it is
 * longer than SHA-256's 64-byte block (AWS4 and a long secret can be). */
static bool hmac(hasher *h, const void *secret, size_t klen, const char *msg,
                 unsigned char out[32]) {
  unsigned char pad[64], kh[32], inner[32];
  const unsigned char *k = secret;
  bool ok = true;
  if (klen > sizeof pad) {
    ok = digest2(h, secret, klen, NULL, 0, kh);
    k = kh;
    klen = sizeof kh;
  }
  memset(pad, 0x36, sizeof pad);
  for (size_t i = 0; i < klen; i++)
    pad[i] ^= k[i];
  ok = ok && digest2(h, pad, sizeof pad, msg, strlen(msg), inner);
  for (size_t i = 0; i < sizeof pad; i++)
    pad[i] ^= 0x36 ^ 0x5c; /* ipad's block becomes opad's */
  ok = ok && digest2(h, pad, sizeof pad, inner, sizeof inner, out);
  OPENSSL_cleanse(pad, sizeof pad);
  OPENSSL_cleanse(kh, sizeof kh);
  OPENSSL_cleanse(inner, sizeof inner);
  return ok;
}

static bool signing_key(hasher *h, const char *secret, const char *date8, const char *region,
                        const char *service, unsigned char out[32]) {
  char k[4 + SECRET_MAX + 1];
  int n = snprintf(k, sizeof k, "AWS4%s", secret);
  unsigned char a[32], b[32];
  bool ok = n > 0 && (size_t)n < sizeof k && hmac(h, k, (size_t)n, date8, a) &&
            hmac(h, a, 32, region, b) && hmac(h, b, 32, service, a) &&
            hmac(h, a, 32, TERMINATOR, out);
  OPENSSL_cleanse(k, sizeof k);
  OPENSSL_cleanse(a, sizeof a);
  OPENSSL_cleanse(b, sizeof b);
  return ok;
}

af_err af_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                            const char *service, unsigned char out[32], af_error *err) {
  hasher h;
  bool ok = hasher_open(&h, EVP_sha256()) && signing_key(&h, secret, date8, region, service, out);
  hasher_close(&h);
  return ok ? AF_OK : af_error_set(err, AF_ERR_INTERNAL_SERVER, "HMAC-SHA256 failed");
}

/* SHA-256 of the canonical request, in hex, written without building it in memory. */
static af_err hash_canonical(hasher *h, const af_sigv4_request *req, const char *sh,
                             const char *payload_hash, char out[65], af_error *err) {
  sink s = {.digest = h->md, .md = h->ctx};
  if (EVP_DigestInit_ex2(s.md, h->md, NULL) != 1)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "SHA-256 failed");
  af_err rc = write_canonical(&s, req, sh, payload_hash, err);
  unsigned char md[32];
  unsigned int len = 0;
  if (rc == AF_OK && (s.failed || EVP_DigestFinal_ex(s.md, md, &len) != 1 || len != 32))
    rc = af_error_set(err, AF_ERR_INTERNAL_SERVER, "SHA-256 failed");
  if (rc == AF_OK)
    hex(md, 32, out);
  return rc;
}

af_err af_sigv4_sign(const af_sigv4_request *req, const char *signed_headers, const char *secret,
                     const char *amz_date, const char *region, const char *service, char out[65],
                     af_error *err) {
  char creq_hash[65], date8[9], sts[512];
  hasher h;
  if (!hasher_open(&h, EVP_sha256())) {
    hasher_close(&h);
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
  }
  af_err rc = hash_canonical(&h, req, signed_headers, NULL, creq_hash, err);
  snprintf(date8, sizeof date8, "%.8s", amz_date);
  int n = rc == AF_OK ? snprintf(sts, sizeof sts, ALGORITHM "\n%s\n%s/%s/%s/" TERMINATOR "\n%s",
                                 amz_date, date8, region, service, creq_hash)
                      : 0;
  if (rc == AF_OK && (n < 0 || (size_t)n >= sizeof sts))
    rc = af_error_set(err, AF_ERR_INTERNAL_SERVER, "string to sign too long");
  unsigned char k[32], sig[32];
  if (rc == AF_OK &&
      (!signing_key(&h, secret, date8, region, service, k) || !hmac(&h, k, 32, sts, sig)))
    rc = af_error_set(err, AF_ERR_INTERNAL_SERVER, "HMAC-SHA256 failed");
  OPENSSL_cleanse(k, sizeof k);
  hasher_close(&h);
  if (rc == AF_OK)
    hex(sig, 32, out);
  return rc;
}

/* ---- verification ---- */

typedef struct span {
  const char *p;
  size_t n;
} span;

/* The parts of "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...". */
typedef struct auth {
  span credential, signed_headers, signature;
  char key_id[KEY_ID_MAX + 1], date8[9], region[64], service[64], terminator[32];
  char sh[1024];
} auth;

static const char *header(const af_sigv4_request *req, const char *name) {
  for (size_t i = 0; i < req->nheaders; i++) {
    if (strcasecmp(req->headers[i].name, name) == 0)
      return req->headers[i].value;
  }
  return NULL;
}

static span trim_span(const char *p, size_t n) {
  while (n > 0 && isspace((unsigned char)*p))
    p++, n--;
  while (n > 0 && isspace((unsigned char)p[n - 1]))
    n--;
  return (span){p, n};
}

static void take_param(auth *a, span kv) {
  const char *eq = memchr(kv.p, '=', kv.n);
  if (eq == NULL)
    return;
  span k = trim_span(kv.p, (size_t)(eq - kv.p));
  span v = trim_span(eq + 1, kv.n - k.n - 1 - (size_t)(k.p - kv.p));
  if (k.n == 10 && memcmp(k.p, "Credential", 10) == 0)
    a->credential = v;
  else if (k.n == 13 && memcmp(k.p, "SignedHeaders", 13) == 0)
    a->signed_headers = v;
  else if (k.n == 9 && memcmp(k.p, "Signature", 9) == 0)
    a->signature = v;
}

/* AWS's wording for an Authorization header it cannot use: one sentence per missing part. */
static af_err incomplete(const char *value, const auth *a, bool have_date, af_error *err) {
  char esc[600];
  af_escape(esc, sizeof esc, value, strlen(value));
  return af_error_set(
      err, AF_ERR_INCOMPLETE_SIGNATURE, "%s%s%s%sAuthorization=%s",
      a->credential.n ? "" : "Authorization header requires 'Credential' parameter. ",
      a->signature.n ? "" : "Authorization header requires 'Signature' parameter. ",
      a->signed_headers.n ? "" : "Authorization header requires 'SignedHeaders' parameter. ",
      have_date ? ""
                : "Authorization header requires existence of either a 'X-Amz-Date' or a "
                  "'Date' header. ",
      esc);
}

static af_err parse_authorization(const char *value, bool have_date, auth *a, af_error *err) {
  /* each field set, not `= (auth){...}`, which would zero all 1.3 KiB of texts */
  a->credential = a->signed_headers = a->signature = (span){NULL, 0};
  a->key_id[0] = a->date8[0] = a->region[0] = a->service[0] = a->terminator[0] = a->sh[0] = '\0';
  size_t alg = strcspn(value, " \t");
  if (alg != strlen(ALGORITHM) || strncmp(value, ALGORITHM, alg) != 0) {
    char esc[200];
    return af_error_set(err, AF_ERR_INCOMPLETE_SIGNATURE, "Unsupported AWS 'algorithm': '%s'",
                        af_escape(esc, sizeof esc, value, alg));
  }
  for (const char *p = value + alg; *p;) {
    size_t n = strcspn(p, ",");
    take_param(a, (span){p, n});
    p += n + (p[n] == ',');
  }
  if (!a->credential.n || !a->signature.n || !a->signed_headers.n || !have_date)
    return incomplete(value, a, have_date, err);
  if (a->signed_headers.n >= sizeof a->sh)
    return af_error_set(err, AF_ERR_INCOMPLETE_SIGNATURE,
                        "The SignedHeaders list is over %zu characters.", sizeof a->sh - 1);
  memcpy(a->sh, a->signed_headers.p, a->signed_headers.n);
  a->sh[a->signed_headers.n] = '\0';
  return AF_OK;
}

/* Copies the next '/'-delimited part of the credential; false when it does not fit. */
static bool next_part(const char **p, const char *end, char *out, size_t cap) {
  const char *q = memchr(*p, '/', (size_t)(end - *p));
  size_t n = q ? (size_t)(q - *p) : (size_t)(end - *p);
  if (n >= cap)
    return false;
  memcpy(out, *p, n);
  out[n] = '\0';
  *p = q ? q + 1 : end;
  return true;
}

static af_err parse_credential(auth *a, af_error *err) {
  const char *p = a->credential.p, *end = p + a->credential.n;
  size_t slashes = 0;
  for (const char *q = p; q < end; q++)
    slashes += *q == '/';
  bool ok = slashes == 4 && next_part(&p, end, a->key_id, sizeof a->key_id) &&
            next_part(&p, end, a->date8, sizeof a->date8) &&
            next_part(&p, end, a->region, sizeof a->region) &&
            next_part(&p, end, a->service, sizeof a->service) &&
            next_part(&p, end, a->terminator, sizeof a->terminator);
  if (ok)
    return AF_OK;
  char esc[400];
  af_escape(esc, sizeof esc, a->credential.p, a->credential.n);
  if (slashes != 4)
    return af_error_set(err, AF_ERR_INCOMPLETE_SIGNATURE,
                        "Credential must have exactly 5 slash-delimited elements, e.g. "
                        "keyid/date/region/service/term, got '%s'",
                        esc);
  if (a->key_id[0] == '\0') /* the key id did not fit: no such key can exist */
    return af_error_set(err, AF_ERR_UNRECOGNIZED_CLIENT, MSG_UNRECOGNIZED);
  return af_error_set(err, AF_ERR_INVALID_SIGNATURE,
                      "Credential should be scoped to a valid "
                      "date, region, service and terminator, not '%s'. ",
                      esc);
}

/* "20150830T123600Z" as seconds since the epoch; -1 when it is not that format. */
static time_t parse_amz_date(const char *s) {
  if (strlen(s) != DATE_LEN || s[8] != 'T' || s[15] != 'Z')
    return -1;
  for (int i = 0; i < 15; i++) {
    if (i != 8 && !isdigit((unsigned char)s[i]))
      return -1;
  }
  struct tm tm = {0};
  if (sscanf(s, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
             &tm.tm_min, &tm.tm_sec) != 6)
    return -1;
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return timegm(&tm);
}

/* An HTTP Date (RFC 7231 IMF-fixdate, "Sun, 30 Aug 2015 12:36:00 GMT") as seconds; -1 when it
 * is not one. */
static time_t parse_http_date(const char *s) {
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  char wday[4], mon[4], gmt[4];
  struct tm tm = {0};
  int used = 0;
  if (strlen(s) != 29 ||
      sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3[A-Z]%n", wday, &tm.tm_mday, mon,
             &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, gmt, &used) != 8 ||
      used != 29 || strcmp(gmt, "GMT") != 0)
    return -1;
  const char *m = strstr(months, mon);
  if (m == NULL || strlen(mon) != 3 || (m - months) % 3 != 0 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
      tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
    return -1;
  tm.tm_mon = (int)(m - months) / 3;
  tm.tm_year -= 1900;
  return timegm(&tm);
}

static void format_amz_date(time_t t, char out[DATE_LEN + 1]) {
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

/* The request's time from X-Amz-Date, else Date, into amz_date; the header's name into used. */
static af_err request_time(const af_sigv4_request *req, char amz_date[DATE_LEN + 1], time_t *t,
                           const char **used, af_error *err) {
  const char *v = header(req, "x-amz-date");
  *used = "x-amz-date";
  if (v != NULL) {
    *t = parse_amz_date(v);
  } else {
    v = header(req, "date");
    *used = "date";
    *t = v ? parse_http_date(v) : -1;
  }
  if (*t == -1) {
    char esc[200];
    return af_error_set(err, AF_ERR_INCOMPLETE_SIGNATURE,
                        "Date must be in ISO-8601 'basic format'. Got '%s'. See "
                        "http://en.wikipedia.org/wiki/ISO_8601",
                        af_escape(esc, sizeof esc, v ? v : "", v ? strlen(v) : 0));
  }
  if (strcmp(*used, "x-amz-date") == 0)
    memcpy(amz_date, v, DATE_LEN + 1); /* signed as sent */
  else
    format_amz_date(*t, amz_date);
  return AF_OK;
}

static af_err check_scope(const af_sigv4_creds *c, const auth *a, const char *amz_date,
                          af_error *err) {
  char esc[200];
  if (strcmp(a->terminator, TERMINATOR) != 0)
    return af_error_set(err, AF_ERR_INVALID_SIGNATURE,
                        "Credential should be scoped with a valid terminator: 'aws4_request', "
                        "not '%s'. ",
                        af_escape(esc, sizeof esc, a->terminator, strlen(a->terminator)));
  if (strcmp(a->service, AF_SIGV4_SERVICE) != 0)
    return af_error_set(err, AF_ERR_INVALID_SIGNATURE,
                        "Credential should be scoped to correct service: '" AF_SIGV4_SERVICE "'. ");
  if (c->region != NULL && strcmp(a->region, c->region) != 0)
    return af_error_set(err, AF_ERR_INVALID_SIGNATURE,
                        "Credential should be scoped to a valid region, not '%s'. ",
                        af_escape(esc, sizeof esc, a->region, strlen(a->region)));
  if (strncmp(a->date8, amz_date, 8) != 0)
    return af_error_set(err, AF_ERR_INVALID_SIGNATURE,
                        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
                        "of date from HTTP: '%s' != '%.8s', from '%s'.",
                        af_escape(esc, sizeof esc, a->date8, strlen(a->date8)), amz_date, amz_date);
  return AF_OK;
}

static af_err check_clock(time_t t, time_t now, const char *amz_date, af_error *err) {
  char now_s[DATE_LEN + 1], edge[DATE_LEN + 1];
  format_amz_date(now, now_s);
  if (t < now - AF_SIGV4_MAX_SKEW_SECONDS) {
    format_amz_date(now - AF_SIGV4_MAX_SKEW_SECONDS, edge);
    return af_error_set(err, AF_ERR_INVALID_SIGNATURE,
                        "Signature expired: %s is now earlier than %s (%s - 15 min.)", amz_date,
                        edge, now_s);
  }
  if (t > now + AF_SIGV4_MAX_SKEW_SECONDS) {
    format_amz_date(now + AF_SIGV4_MAX_SKEW_SECONDS, edge);
    return af_error_set(err, AF_ERR_INVALID_SIGNATURE,
                        "Signature not yet current: %s is still later than %s (%s + 15 min.)",
                        amz_date, edge, now_s);
  }
  return AF_OK;
}

static bool signs(const char *sh, const char *name) {
  size_t n = strlen(name);
  for (const char *p = sh;; p++) {
    size_t len = strcspn(p, ";");
    if (len == n && strncasecmp(p, name, n) == 0)
      return true;
    p += len;
    if (*p == '\0')
      return false;
  }
}

static af_err check_signed_set(const auth *a, const char *date_header, af_error *err) {
  if (!signs(a->sh, "host"))
    return af_error_set(err, AF_ERR_INVALID_SIGNATURE,
                        "'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                        "Authorization.");
  if (!signs(a->sh, date_header))
    return af_error_set(err, AF_ERR_INVALID_SIGNATURE,
                        "'%s' must be a 'SignedHeader' in the AWS Authorization.",
                        strcmp(date_header, "date") == 0 ? "Date" : "X-Amz-Date");
  return AF_OK;
}

static af_err check_payload(hasher *h, const af_sigv4_request *req, char body_hash[65],
                            af_error *err) {
  if (!sha256_hex(h->md, req->body, req->body_len, body_hash))
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "SHA-256 failed");
  const char *claimed = header(req, "x-amz-content-sha256");
  if (claimed != NULL && strcmp(claimed, body_hash) != 0)
    return af_error_set(err, AF_ERR_INVALID_SIGNATURE, MSG_PAYLOAD);
  return AF_OK;
}

static af_err check_signature(hasher *h, const af_sigv4_request *req, const auth *a, const key *k,
                              const char *amz_date, const char *body_hash, af_error *err) {
  char creq_hash[65], sts[512], want[65];
  af_err rc = hash_canonical(h, req, a->sh, body_hash, creq_hash, err);
  if (rc != AF_OK)
    return rc;
  snprintf(sts, sizeof sts, ALGORITHM "\n%s\n%s/%s/%s/" TERMINATOR "\n%s", amz_date, a->date8,
           a->region, a->service, creq_hash);
  unsigned char sk[32], sig[32];
  if (!signing_key(h, k->secret, a->date8, a->region, a->service, sk) || !hmac(h, sk, 32, sts, sig))
    rc = af_error_set(err, AF_ERR_INTERNAL_SERVER, "HMAC-SHA256 failed");
  OPENSSL_cleanse(sk, sizeof sk);
  if (rc != AF_OK)
    return rc;
  hex(sig, 32, want);
  if (a->signature.n != 64 || CRYPTO_memcmp(want, a->signature.p, 64) != 0)
    return af_error_set(err, AF_ERR_INVALID_SIGNATURE, MSG_MISMATCH);
  return AF_OK;
}

af_err af_sigv4_verify(const af_sigv4_creds *c, const af_sigv4_request *req, time_t now,
                       af_sigv4_caller *who, af_error *err) {
  const char *value = header(req, "authorization");
  if (value == NULL)
    return af_error_set(err, AF_ERR_MISSING_AUTHENTICATION_TOKEN, MSG_MISSING_TOKEN);
  bool have_date = header(req, "x-amz-date") != NULL || header(req, "date") != NULL;
  auth a;
  char amz_date[DATE_LEN + 1], body_hash[65];
  const char *date_header;
  time_t t;
  af_err rc = parse_authorization(value, have_date, &a, err);
  if (rc == AF_OK)
    rc = parse_credential(&a, err);
  if (rc == AF_OK)
    rc = request_time(req, amz_date, &t, &date_header, err);
  if (rc == AF_OK)
    rc = check_scope(c, &a, amz_date, err);
  if (rc == AF_OK)
    rc = check_clock(t, now, amz_date, err);
  const key *k = rc == AF_OK ? find_key(c, a.key_id) : NULL;
  if (rc == AF_OK && k == NULL)
    rc = af_error_set(err, AF_ERR_UNRECOGNIZED_CLIENT, MSG_UNRECOGNIZED);
  if (rc == AF_OK)
    rc = check_signed_set(&a, date_header, err);
  if (rc == AF_OK)
    rc = check_signed_headers(a.sh, err);
  hasher h = {c->sha256, NULL};
  if (rc == AF_OK && !hasher_open(&h, c->sha256))
    rc = af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
  if (rc == AF_OK)
    rc = check_payload(&h, req, body_hash, err);
  if (rc == AF_OK)
    rc = check_signature(&h, req, &a, k, amz_date, body_hash, err);
  hasher_close(&h);
  if (rc == AF_OK && who != NULL) {
    *who = (af_sigv4_caller){k->account, k->principal, "", ""};
    snprintf(who->key_id, sizeof who->key_id, "%s", a.key_id);
    snprintf(who->region, sizeof who->region, "%s", a.region);
  }
  return rc;
}

bool af_sigv4_scope_of(const char *value, af_sigv4_caller *who) {
  *who = (af_sigv4_caller){NULL, NULL, "", ""};
  auth a;
  af_error err;
  if (value == NULL || parse_authorization(value, true, &a, &err) != AF_OK ||
      parse_credential(&a, &err) != AF_OK)
    return false;
  snprintf(who->key_id, sizeof who->key_id, "%s", a.key_id);
  snprintf(who->region, sizeof who->region, "%s", a.region);
  return true;
}
