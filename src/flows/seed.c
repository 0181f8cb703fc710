/* The seed reader: a hand-written streaming JSON parser over the caller's buffer.
 *
 * Not jansson: a tree for a million flows costs several times the file in memory and seconds
 * to build. This reader decodes one flow at a time into a fixed scratch area allocated once per
 * load, stores it and moves on, so a load costs the file plus the store.
 *
 * Positions are not tracked while parsing, which would cost something on every byte: an error
 * finds its line and column by rescanning the buffer up to the offending byte, once. */
#include "flows/seed.h"

#include "common/file.h"
#include "common/hash.h"
#include "common/hex.h"
#include "common/utf8.h"
#include "flows/validate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Limits of the AWS model (FlowDescription, TagMap, TagKey, TagValue), in characters. */
#define DESC_MAX 2048
#define TAGS_MAX 50
#define TAG_KEY_MAX 128
#define TAG_VALUE_MAX 256
/* Member names and enum values: anything longer is unknown, so decoding stops there. */
#define WORD_MAX 32
/* Bytes for max + 1 code points of UTF-8 and a NUL: decoding stops one past the limit, so a
 * too-long string is seen as such without reading (or storing) the rest of it. */
#define UTF8_CAP(max) (((max) + 1) * 4 + 1)

#define STOP 1 /* find mode reached the flow it looks for; not an error */

typedef enum member { M_NAME, M_TRIGGER, M_STATUS, M_DESCRIPTION, M_TAGS } member;
#define MEMBER_COUNT 5
#define REQUIRED_COUNT 3 /* the members before M_DESCRIPTION */
static const char *const member_names[MEMBER_COUNT] = {"flowName", "triggerType", "flowStatus",
                                                       "description", "tags"};
#define MEMBERS_EXPECTED                                                                           \
  "\"flowName\", \"triggerType\", \"flowStatus\", \"description\" or \"tags\""

typedef struct enum_name {
  const char *name;
  int value;
} enum_name;

static const enum_name trigger_names[] = {
    {"Scheduled", APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED},
    {"Event", APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_EVENT},
    {"OnDemand", APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND},
};
#define TRIGGERS_EXPECTED "\"Scheduled\", \"Event\" or \"OnDemand\""

static const enum_name status_names[] = {
    {"Active", APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_ACTIVE},
    {"Deprecated", APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DEPRECATED},
    {"Deleted", APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DELETED},
    {"Draft", APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DRAFT},
    {"Errored", APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_ERRORED},
    {"Suspended", APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_SUSPENDED},
};
#define STATUSES_EXPECTED                                                                          \
  "\"Active\", \"Deprecated\", \"Deleted\", \"Draft\", \"Errored\" or \"Suspended\""

/* The flow being read. Every string is decoded here, never allocated per flow; insert copies. */
typedef struct flow_buf {
  const char *open;    /* the flow's '{', where a missing member is reported */
  const char *name_at; /* its flowName value */
  unsigned seen;       /* bit per member, to reject one given twice */
  size_t name_len;
  int trigger, status;
  bool has_description;
  size_t ntags;
  af_tag tags[TAGS_MAX];
  size_t key_lens[TAGS_MAX];
  char name[UTF8_CAP(AF_FLOW_NAME_MAX)];
  char word[UTF8_CAP(WORD_MAX)]; /* member names and enum values */
  char description[UTF8_CAP(DESC_MAX)];
  char keys[TAGS_MAX][UTF8_CAP(TAG_KEY_MAX)];
  char values[TAGS_MAX][UTF8_CAP(TAG_VALUE_MAX)];
} flow_buf;

typedef struct parser {
  const char *start; /* the buffer after any byte order mark: line 1, column 1 */
  const char *p, *end;
  af_flows_seeder *seeder; /* NULL in find mode, which only looks for a flow's first definition */
  uint64_t *seen;          /* hashes of the names stored so far (0: an empty slot) */
  size_t seen_n, seen_cap; /* seen_cap is a power of two */
  uint64_t seen_key;
  const char *kept; /* a mapped file: bytes from here on are still resident; else NULL */
  const char *find; /* find mode: the name looked for, and where it was first defined */
  size_t find_len;
  const char *found;
  flow_buf *f;
  size_t count;
  af_seed_error *err;
} parser;

/* ---- errors and positions ---- */

/* Line and column of `at`, counting code points (UTF-8 lead bytes) from the line start. */
static void locate(const parser *ps, const char *at, int *line, int *column) {
  const char *line_start = ps->start, *nl;
  long n = 1, col = 1;
  while ((nl = memchr(line_start, '\n', (size_t)(at - line_start))) != NULL) {
    n++;
    line_start = nl + 1;
  }
  for (const char *q = line_start; q < at; q++)
    col += ((unsigned char)*q & 0xC0) != 0x80;
  *line = n > INT_MAX ? INT_MAX : (int)n;
  *column = col > INT_MAX ? INT_MAX : (int)col;
}

/* Fills the error at `at` and returns -1, so a parser can `return fail(...)`. */
__attribute__((format(printf, 3, 4))) static int fail(parser *ps, const char *at, const char *fmt,
                                                      ...) {
  locate(ps, at, &ps->err->line, &ps->err->column);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ps->err->message, sizeof ps->err->message, fmt, ap);
  va_end(ap);
  return -1;
}

/* The character at s[0..avail) quoted for a message: '\xNN' bytes outside printable ASCII. */
static const char *quote_char(char *dst, size_t size, const char *s, size_t avail) {
  size_t n = af_utf8_lead_len((unsigned char)*s);
  char esc[20];
  af_escape(esc, sizeof esc, s, n < avail ? n : avail);
  snprintf(dst, size, "'%s'", esc);
  return dst;
}

/* What is at `at`, for "expected X, found Y" after punctuation. */
static const char *found_char(const parser *ps, const char *at, char *dst, size_t size) {
  if (at >= ps->end)
    return "end of file";
  return quote_char(dst, size, at, (size_t)(ps->end - at));
}

static bool starts_with(const parser *ps, const char *at, const char *word) {
  size_t n = strlen(word);
  return (size_t)(ps->end - at) >= n && memcmp(at, word, n) == 0;
}

/* What kind of value is at `at`, for "must be a string, found null". */
static const char *found_value(const parser *ps, const char *at, char *dst, size_t size) {
  if (at >= ps->end)
    return "end of file";
  char c = *at;
  if (c == '-' || (c >= '0' && c <= '9'))
    return "a number";
  if (c == '"')
    return "a string";
  if (c == '{')
    return "an object";
  if (c == '[')
    return "an array";
  if (starts_with(ps, at, "true"))
    return "true";
  if (starts_with(ps, at, "false"))
    return "false";
  if (starts_with(ps, at, "null"))
    return "null";
  return found_char(ps, at, dst, size);
}

/* "expected X, found Y" at the current position. */
static int fail_expected(parser *ps, const char *what) {
  char found[32];
  return fail(ps, ps->p, "expected %s, found %s", what, found_char(ps, ps->p, found, sizeof found));
}

/* "M must be T, found K" for a value of the wrong JSON type at the current position. */
static int fail_type(parser *ps, const char *what) {
  char found[32];
  return fail(ps, ps->p, "%s, found %s", what, found_value(ps, ps->p, found, sizeof found));
}

/* ---- lexing ---- */

static void skip_ws(parser *ps) {
  const char *p = ps->p;
  while (p < ps->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  ps->p = p;
}

static int peek(const parser *ps) { return ps->p < ps->end ? (unsigned char)*ps->p : -1; }

static int fail_eof_in_string(parser *ps) {
  return fail(ps, ps->end, "unexpected end of file inside a string");
}

/* The four hex digits of the \uXXXX escape whose backslash is at p. */
static int read_hex4(parser *ps, const char *p, uint32_t *v) {
  *v = 0;
  for (int i = 2; i < 6; i++) {
    if (p + i >= ps->end)
      return fail_eof_in_string(ps);
    int h = af_hex_value((unsigned char)p[i]);
    if (h < 0)
      return fail(ps, p, "invalid \\u escape: expected 4 hex digits after \\u");
    *v = *v << 4 | (uint32_t)h;
  }
  return 0;
}

/* \uXXXX at *pp, with a UTF-16 surrogate pair read as one code point. A lone surrogate has
 * no UTF-8 form and NUL cannot be stored in the store's C strings, so both are errors. */
static int read_u_escape(parser *ps, const char **pp, uint32_t *cp) {
  const char *p = *pp, *q = p + 6;
  uint32_t hi, lo;
  if (read_hex4(ps, p, &hi) != 0)
    return -1;
  if (hi == 0)
    return fail(ps, p, "\\u0000 is not allowed in a string: a NUL character cannot be stored");
  if (hi >= 0xDC00 && hi <= 0xDFFF)
    return fail(ps, p,
                "lone surrogate \\u%.4s: a low surrogate must follow a high one (\\uD800-\\uDBFF)",
                p + 2);
  if (hi < 0xD800 || hi > 0xDBFF) {
    *cp = hi;
    *pp = q;
    return 0;
  }
  if (q >= ps->end || (q[0] == '\\' && q + 1 >= ps->end))
    return fail_eof_in_string(ps);
  if (q[0] != '\\' || q[1] != 'u')
    return fail(ps, p, "lone surrogate \\u%.4s: expected a low surrogate \\uDC00-\\uDFFF after it",
                p + 2);
  if (read_hex4(ps, q, &lo) != 0)
    return -1;
  if (lo < 0xDC00 || lo > 0xDFFF)
    return fail(ps, p, "lone surrogate \\u%.4s: expected a low surrogate \\uDC00-\\uDFFF after it",
                p + 2);
  *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
  *pp = q + 6;
  return 0;
}

/* The escape whose backslash is at *pp; leaves *pp after it. */
static int read_escape(parser *ps, const char **pp, uint32_t *cp) {
  const char *p = *pp;
  if (p + 1 >= ps->end)
    return fail_eof_in_string(ps);
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *hit = p[1] != '\0' ? strchr(from, p[1]) : NULL;
  if (hit != NULL) {
    *cp = (unsigned char)to[hit - from];
    *pp = p + 2;
    return 0;
  }
  if (p[1] == 'u')
    return read_u_escape(ps, pp, cp);
  size_t n = af_utf8_lead_len((unsigned char)p[1]), avail = (size_t)(ps->end - p - 1);
  char q[20];
  af_escape(q, sizeof q, p + 1, n < avail ? n : avail);
  return fail(ps, p,
              "invalid escape '\\%s' in a string: expected \\\" \\\\ \\/ \\b \\f \\n \\r \\t or "
              "\\uXXXX",
              q);
}

static size_t put_utf8(char *dst, uint32_t cp) {
  if (cp < 0x80) {
    dst[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    dst[0] = (char)(0xC0 | cp >> 6);
    dst[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    dst[0] = (char)(0xE0 | cp >> 12);
    dst[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    dst[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  dst[0] = (char)(0xF0 | cp >> 18);
  dst[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  dst[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  dst[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* One character of a string body at *pp (not the closing quote), appended to dst. */
static int read_char(parser *ps, const char **pp, char *dst, size_t *n) {
  const char *p = *pp;
  unsigned char c = (unsigned char)*p;
  if (c == '\\') {
    uint32_t cp = 0;
    if (read_escape(ps, pp, &cp) != 0)
      return -1;
    *n += put_utf8(dst + *n, cp);
    return 0;
  }
  if (c < 0x20)
    return fail(ps, p, "control character \\x%02x in a string: write it as an escape such as \\n",
                c);
  int k = af_utf8_seq_len(p, ps->end);
  if (k < 0)
    return fail_eof_in_string(ps);
  if (k == 0)
    return fail(ps, p, "invalid UTF-8 in a string (byte \\x%02x): the file must be UTF-8", c);
  memcpy(dst + *n, p, (size_t)k);
  *n += (size_t)k;
  *pp = p + k;
  return 0;
}

/* Decodes the string whose opening quote is at ps->p into dst (NUL-terminated, *len bytes)
 * and moves past its closing quote. Stops as soon as it holds more than `max` code points,
 * setting *too_long for the caller to report; dst must hold UTF8_CAP(max) bytes. */
static int read_string(parser *ps, char *dst, size_t max, size_t *len, bool *too_long) {
  const char *p = ps->p + 1;
  size_t n = 0, chars = 0;
  *too_long = false;
  for (;;) {
    if (p >= ps->end)
      return fail_eof_in_string(ps);
    if (*p == '"')
      break;
    if (read_char(ps, &p, dst, &n) != 0)
      return -1;
    if (++chars > max) {
      *too_long = true;
      break;
    }
  }
  dst[n] = '\0';
  *len = n;
  ps->p = p + 1;
  return 0;
}

/* ---- the AWS patterns, ASCII only as in the model's regex dialect ---- */

static bool is_word(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* \s: space, \t \n \v \f \r. */
static bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* [\w!@#\-.?,\s] */
static bool description_char(unsigned char c) {
  return is_word(c) || is_space(c) || c == '!' || c == '@' || c == '#' || c == '-' || c == '.' ||
         c == '?' || c == ',';
}

/* [a-zA-Z+-=._:/]: `+-=` is the range 0x2B..0x3D, so , - . / 0-9 : ; < = are in too. */
static bool tag_key_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '+' && c <= '=') || c == '.' ||
         c == '_' || c == ':' || c == '/';
}

/* [\s\w+-=\.:/@], again with the range 0x2B..0x3D. */
static bool tag_value_char(unsigned char c) {
  return is_space(c) || is_word(c) || (c >= '+' && c <= '=') || c == '.' || c == ':' || c == '/' ||
         c == '@';
}

/* Index of the first byte of s failing ok, or len. */
static size_t first_bad(const char *s, size_t len, bool (*ok)(unsigned char)) {
  size_t i = 0;
  while (i < len && ok((unsigned char)s[i]))
    i++;
  return i;
}

/* ---- members ---- */

/* Whether s[0..len) spells the literal: no strlen per member of every flow. s holds no NUL, so
 * strncmp stops at the literal's end. */
static bool equals(const char *literal, const char *s, size_t len) {
  return strncmp(literal, s, len) == 0 && literal[len] == '\0';
}

static int expect_string(parser *ps, const char *what) {
  return peek(ps) == '"' ? 0 : fail_type(ps, what);
}

static int parse_name(parser *ps) {
  flow_buf *f = ps->f;
  const char *at = ps->p;
  bool too_long;
  if (expect_string(ps, "flowName must be a string") != 0 ||
      read_string(ps, f->name, AF_FLOW_NAME_MAX, &f->name_len, &too_long) != 0)
    return -1;
  f->name_at = at;
  af_error e;
  /* A too-long name stopped at 257 code points, so its length already fails the check. */
  if (af_check_name("flowName", f->name, f->name_len, &e) != AF_OK)
    return fail(ps, at, "%s", e.message);
  return 0;
}

/* One of names[n] by its exact (case-sensitive) AWS spelling. */
static int parse_enum(parser *ps, const char *member_name, const enum_name *names, size_t n,
                      const char *expected, int *out) {
  const char *at = ps->p;
  char *w = ps->f->word;
  size_t len;
  bool too_long;
  if (peek(ps) != '"') {
    char what[160];
    snprintf(what, sizeof what, "%s must be a string (%s)", member_name, expected);
    return fail_type(ps, what);
  }
  if (read_string(ps, w, WORD_MAX, &len, &too_long) != 0)
    return -1;
  for (size_t i = 0; i < n && !too_long; i++) {
    if (equals(names[i].name, w, len)) {
      *out = names[i].value;
      return 0;
    }
  }
  char q[160];
  return fail(ps, at, "unknown %s \"%s%s\": expected %s", member_name,
              af_escape(q, sizeof q, w, len), too_long ? "..." : "", expected);
}

static int parse_description(parser *ps) {
  flow_buf *f = ps->f;
  const char *at = ps->p;
  size_t len;
  bool too_long;
  if (expect_string(ps, "description must be a string") != 0 ||
      read_string(ps, f->description, DESC_MAX, &len, &too_long) != 0)
    return -1;
  if (too_long)
    return fail(ps, at, "description is too long: at most %d characters", DESC_MAX);
  size_t bad = first_bad(f->description, len, description_char);
  char q[32];
  if (bad < len)
    return fail(ps, at,
                "description contains %s, which is not allowed: expected letters, digits, "
                "whitespace and _ ! @ # - . ? ,",
                quote_char(q, sizeof q, f->description + bad, len - bad));
  f->has_description = true;
  return 0;
}

/* Messages quote the key only on failure: escaping every key of every flow would cost. */
static int check_tag_key(parser *ps, const char *at, const char *key, size_t len, bool too_long) {
  char q[160], c[32];
  if (len == 0)
    return fail(ps, at, "tag key is empty: expected 1 to %d characters", TAG_KEY_MAX);
  if (too_long)
    return fail(ps, at, "tag key \"%s...\" is too long: at most %d characters",
                af_escape(q, sizeof q, key, len), TAG_KEY_MAX);
  if (len >= 4 && memcmp(key, "aws:", 4) == 0)
    return fail(ps, at, "tag key \"%s\" must not start with \"aws:\", which AWS reserves",
                af_escape(q, sizeof q, key, len));
  size_t bad = first_bad(key, len, tag_key_char);
  if (bad < len)
    return fail(ps, at,
                "tag key \"%s\" contains %s, which is not allowed: expected letters, digits and "
                "_ . : / + , - ; < =",
                af_escape(q, sizeof q, key, len), quote_char(c, sizeof c, key + bad, len - bad));
  for (size_t i = 0; i < ps->f->ntags; i++) {
    if (ps->f->key_lens[i] == len && memcmp(ps->f->keys[i], key, len) == 0)
      return fail(ps, at, "duplicate tag key \"%s\"", af_escape(q, sizeof q, key, len));
  }
  return 0;
}

static int check_tag_value(parser *ps, const char *at, const char *key, const char *value,
                           size_t len, bool too_long) {
  char q[160], c[32];
  if (too_long)
    return fail(ps, at, "value of tag \"%s\" is too long: at most %d characters",
                af_escape(q, sizeof q, key, strlen(key)), TAG_VALUE_MAX);
  size_t bad = first_bad(value, len, tag_value_char);
  if (bad < len)
    return fail(ps, at,
                "value of tag \"%s\" contains %s, which is not allowed: expected letters, digits, "
                "whitespace and _ . : / @ + , - ; < =",
                af_escape(q, sizeof q, key, strlen(key)),
                quote_char(c, sizeof c, value + bad, len - bad));
  return 0;
}

/* "key": "value" at ps->p, stored as the flow's next tag. */
static int parse_tag(parser *ps) {
  flow_buf *f = ps->f;
  const char *at = ps->p;
  size_t i = f->ntags, klen, vlen;
  bool too_long;
  if (peek(ps) != '"')
    return fail_expected(ps, "a tag key in double quotes");
  if (i == TAGS_MAX)
    return fail(ps, at, "too many tags: at most %d per flow", TAGS_MAX);
  if (read_string(ps, f->keys[i], TAG_KEY_MAX, &klen, &too_long) != 0 ||
      check_tag_key(ps, at, f->keys[i], klen, too_long) != 0)
    return -1;
  skip_ws(ps);
  if (peek(ps) != ':')
    return fail_expected(ps, "':' after a tag key");
  ps->p++;
  skip_ws(ps);
  at = ps->p;
  if (expect_string(ps, "a tag value must be a string") != 0 ||
      read_string(ps, f->values[i], TAG_VALUE_MAX, &vlen, &too_long) != 0 ||
      check_tag_value(ps, at, f->keys[i], f->values[i], vlen, too_long) != 0)
    return -1;
  f->key_lens[i] = klen;
  f->tags[i] = (af_tag){f->keys[i], f->values[i]};
  f->ntags++;
  return 0;
}

static int parse_tags(parser *ps) {
  if (peek(ps) != '{')
    return fail_type(ps, "tags must be an object of tag keys to string values");
  ps->p++;
  skip_ws(ps);
  if (peek(ps) == '}') {
    ps->p++;
    return 0;
  }
  for (;;) {
    if (parse_tag(ps) != 0)
      return -1;
    skip_ws(ps);
    if (peek(ps) == '}')
      break;
    if (peek(ps) != ',')
      return fail_expected(ps, "',' or '}' after a tag");
    ps->p++;
    skip_ws(ps);
  }
  ps->p++;
  return 0;
}

static int parse_value(parser *ps, member m) {
  flow_buf *f = ps->f;
  switch (m) {
  case M_NAME:
    return parse_name(ps);
  case M_TRIGGER:
    return parse_enum(ps, "triggerType", trigger_names,
                      sizeof trigger_names / sizeof trigger_names[0], TRIGGERS_EXPECTED,
                      &f->trigger);
  case M_STATUS:
    return parse_enum(ps, "flowStatus", status_names, sizeof status_names / sizeof status_names[0],
                      STATUSES_EXPECTED, &f->status);
  case M_DESCRIPTION:
    return parse_description(ps);
  case M_TAGS:
    return parse_tags(ps);
  }
  return fail(ps, ps->p, "internal error: member %d has no parser", (int)m);
}

/* The member name at ps->p, which must be one of member_names. */
static int read_member_name(parser *ps, member *m) {
  const char *at = ps->p;
  char *w = ps->f->word;
  size_t len;
  bool too_long;
  if (read_string(ps, w, WORD_MAX, &len, &too_long) != 0)
    return -1;
  for (int i = 0; i < MEMBER_COUNT && !too_long; i++) {
    if (equals(member_names[i], w, len)) {
      *m = (member)i;
      return 0;
    }
  }
  char q[160];
  return fail(ps, at, "unknown member \"%s%s\": expected " MEMBERS_EXPECTED,
              af_escape(q, sizeof q, w, len), too_long ? "..." : "");
}

static int parse_member(parser *ps) {
  const char *at = ps->p;
  member m = M_NAME;
  if (peek(ps) != '"')
    return fail_expected(ps, "a member name in double quotes");
  if (read_member_name(ps, &m) != 0)
    return -1;
  if (ps->f->seen & (1u << m))
    return fail(ps, at, "duplicate member \"%s\": a flow may give each member once",
                member_names[m]);
  ps->f->seen |= 1u << m;
  skip_ws(ps);
  if (peek(ps) != ':') {
    char what[64];
    snprintf(what, sizeof what, "':' after \"%s\"", member_names[m]);
    return fail_expected(ps, what);
  }
  ps->p++;
  skip_ws(ps);
  return parse_value(ps, m);
}

static int check_required(parser *ps) {
  for (int m = 0; m < REQUIRED_COUNT; m++) {
    if (!(ps->f->seen & (1u << m)))
      return fail(ps, ps->f->open, "missing required member \"%s\"", member_names[m]);
  }
  return 0;
}

/* One flow object at ps->p, decoded into ps->f. */
static int parse_flow(parser *ps) {
  flow_buf *f = ps->f;
  if (peek(ps) != '{')
    return fail_type(ps, "expected '{' to start a flow");
  f->open = ps->p++;
  f->seen = 0;
  f->ntags = 0;
  f->has_description = false;
  skip_ws(ps);
  if (peek(ps) == '}') {
    ps->p++;
    return check_required(ps);
  }
  for (;;) {
    if (parse_member(ps) != 0)
      return -1;
    skip_ws(ps);
    if (peek(ps) == '}')
      break;
    if (peek(ps) != ',')
      return fail_expected(ps, "',' or '}' after a member");
    ps->p++;
    skip_ws(ps);
  }
  ps->p++;
  return check_required(ps);
}

/* ---- storing ---- */

static int parse_array(parser *ps);

/* A name read before in this buffer (its hash was seen): find its first definition by parsing
 * again up to it. That costs a second pass on this one error, where remembering every name's
 * line would cost memory on every load. Returns 0 when no earlier flow has the name (two names
 * shared a hash), else the error. */
static int fail_duplicate(parser *ps) {
  flow_buf *f = ps->f;
  char name[UTF8_CAP(AF_FLOW_NAME_MAX)], q[1100];
  const char *at = f->name_at, *open = f->open;
  size_t len = f->name_len;
  memcpy(name, f->name, len);
  af_escape(q, sizeof q, name, len);
  af_seed_error ignored;
  parser finder = {.start = ps->start,
                   .p = ps->start,
                   .end = ps->end,
                   .find = name,
                   .find_len = len,
                   .f = f,
                   .err = &ignored};
  int rc = parse_array(&finder);
  /* The finder parsed into the same flow buffer: read this flow again before going on. */
  const char *resume = ps->p;
  ps->p = open;
  if (parse_flow(ps) != 0 || ps->p != resume)
    return fail(ps, at, "internal error re-reading flow '%s'", q);
  if (rc != STOP || finder.found == at)
    return 0;
  int line, column;
  locate(ps, finder.found, &line, &column);
  return fail(ps, at, "duplicate flowName '%s' (first defined at line %d)", q, line);
}

/* Whether the name's hash was seen before in this load (a possible duplicate), remembering it
 * if not. Keeping 8 bytes a name, not the names, holds a million in 16 MiB while loading. */
static bool seen_before(parser *ps, const char *name, size_t len) {
  if (ps->seen_n * 2 >= ps->seen_cap) {
    size_t cap = ps->seen_cap ? ps->seen_cap * 2 : 1024;
    uint64_t *t = calloc(cap, sizeof *t);
    if (t == NULL)
      return true; /* the exact check (a second pass) then decides */
    for (size_t i = 0; i < ps->seen_cap; i++) {
      uint64_t h = ps->seen[i];
      size_t j = (size_t)h & (cap - 1);
      while (h != 0 && t[j] != 0)
        j = (j + 1) & (cap - 1);
      if (h != 0)
        t[j] = h;
    }
    free(ps->seen);
    ps->seen = t;
    ps->seen_cap = cap;
  }
  uint64_t h = af_hash64(ps->seen_key, name, len);
  h += h == 0;
  size_t j = (size_t)h & (ps->seen_cap - 1);
  while (ps->seen[j] != 0 && ps->seen[j] != h)
    j = (j + 1) & (ps->seen_cap - 1);
  if (ps->seen[j] == h)
    return true;
  ps->seen[j] = h;
  ps->seen_n++;
  return false;
}

/* Find mode: stops at the first flow of the name looked for. */
static int find_step(parser *ps) {
  flow_buf *f = ps->f;
  if (f->name_len != ps->find_len || memcmp(f->name, ps->find, f->name_len) != 0)
    return 0;
  ps->found = f->name_at;
  return STOP;
}

/* Drop this much parsed text from memory at a time. */
#define RELEASE_STEP ((size_t)8 << 20)

/* With the seed file mapped, the text already parsed is dropped from memory as the store fills,
 * so loading peaks at the store's size, not the store's plus the file's. The mapping is
 * private and read-only, so a page dropped and touched again (an error's line and column are
 * counted from the start) is read back from the file unchanged. */
static void release_parsed(parser *ps) {
  if (ps->kept == NULL || (size_t)(ps->p - ps->kept) < RELEASE_STEP)
    return;
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t from = (uintptr_t)ps->kept & ~(page - 1), to = (uintptr_t)ps->p & ~(page - 1);
  if (to > from)
    madvise((void *)from, to - from, MADV_DONTNEED);
  ps->kept = (const char *)to;
}

/* Whether names given twice in the file are caught by remembering each name's hash. Not when
 * the store answers at once and is empty: its own insert then says a name is taken, and only
 * this file can have taken it - a million names' hashes spared. */
static bool remembers_names(af_flows *svc) {
  af_store *st = af_flows_store(svc);
  if (!st->answers_at_once)
    return true;
  return af_flows_count_upto(svc, 1) > 0;
}

static int store(parser *ps) {
  flow_buf *f = ps->f;
  if (ps->seeder == NULL)
    return find_step(ps);
  if (ps->seen_key != 0 && seen_before(ps, f->name, f->name_len)) {
    int rc = fail_duplicate(ps);
    if (rc != 0)
      return rc;
  }
  af_flow_spec spec = {.name = f->name,
                       .name_len = f->name_len,
                       .trigger = (Appflow__V1__TriggerType)f->trigger,
                       .status = (Appflow__V1__FlowStatus)f->status,
                       .description = f->has_description ? f->description : NULL,
                       .tags = f->tags,
                       .ntags = f->ntags};
  af_error e;
  int added = af_flows_seed_add(ps->seeder, &spec, &e);
  if (added == 1 && ps->seen_key == 0) /* the store was empty: only this file put it there */
    return fail_duplicate(ps);
  if (added >= 0) {
    ps->count++;
    release_parsed(ps);
    return 0;
  }
  char q[1100];
  return fail(ps, f->open, "cannot store flow '%s': %s",
              af_escape(q, sizeof q, f->name, f->name_len), e.message);
}

/* ---- the document ---- */

static int expect_end(parser *ps) {
  skip_ws(ps);
  if (ps->p == ps->end)
    return 0;
  char found[32];
  return fail(ps, ps->p, "unexpected %s after the closing ']': expected end of file",
              found_char(ps, ps->p, found, sizeof found));
}

/* The array of flows, storing each as it is read. 0, -1 on error, or STOP in find mode. */
static int parse_array(parser *ps) {
  skip_ws(ps);
  if (peek(ps) != '[')
    return fail_type(ps, "expected '[' to start the array of flows");
  ps->p++;
  skip_ws(ps);
  if (peek(ps) == ']') {
    ps->p++;
    return expect_end(ps);
  }
  for (;;) {
    int rc = parse_flow(ps);
    if (rc == 0)
      rc = store(ps);
    if (rc != 0)
      return rc;
    skip_ws(ps);
    if (peek(ps) == ']')
      break;
    if (peek(ps) != ',')
      return fail_expected(ps, "',' or ']' after a flow");
    ps->p++;
    skip_ws(ps);
    if (peek(ps) == ']')
      return fail(ps, ps->p, "expected another flow after ',', found ']' (trailing comma)");
  }
  ps->p++;
  return expect_end(ps);
}

/* Parses and stores; the seeder is ended (waiting for what is in flight) either way. */
static int run(parser *ps, af_seed_result *res) {
  int rc = parse_array(ps);
  af_error e;
  size_t added = 0, kept = 0;
  int end = af_flows_seed_end(ps->seeder, &added, &kept, &e);
  if (rc == 0 && end != 0) {
    ps->err->line = ps->err->column = 0;
    snprintf(ps->err->message, sizeof ps->err->message, "cannot store the seeded flows: %.400s",
             e.message);
    rc = -1;
  }
  if (res != NULL)
    *res = (af_seed_result){ps->count, added, kept};
  return rc;
}

static int load(af_flows *svc, const char *buf, size_t len, bool mapped, af_seed_result *res,
                af_seed_error *err) {
  af_seed_error ignored;
  if (err == NULL)
    err = &ignored;
  *err = (af_seed_error){0};
  if (res != NULL)
    *res = (af_seed_result){0, 0, 0};
  if (buf == NULL) {
    buf = "";
    len = 0;
  }
  /* A UTF-8 byte order mark is allowed (RFC 8259 section 8.1) and is not a column. */
  size_t skip = len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
  parser ps = {.start = buf + skip,
               .p = buf + skip,
               .end = buf + len,
               .seeder = af_flows_seed_begin(svc),
               .seen_key = remembers_names(svc) ? af_random64() | 1 : 0,
               .kept = mapped ? buf : NULL,
               .err = err};
  ps.f = malloc(sizeof *ps.f);
  if (ps.f == NULL || ps.seeder == NULL) {
    free(ps.f);
    if (ps.seeder != NULL)
      af_flows_seed_end(ps.seeder, NULL, NULL, &(af_error){0});
    snprintf(err->message, sizeof err->message, "out of memory reading the seed");
    return -1;
  }
  int rc = run(&ps, res);
  free(ps.f);
  free(ps.seen);
  return rc == 0 ? 0 : -1;
}

int af_seed_load_buffer(af_flows *svc, const char *buf, size_t len, af_seed_result *res,
                        af_seed_error *err) {
  return load(svc, buf, len, false, res, err);
}

/* ---- files ---- */

/* The whole stream into a malloc'd buffer. 0, or an errno value. */
static int fail_io(af_seed_error *err, const char *what, int e) {
  err->line = 0;
  err->column = 0;
  snprintf(err->message, sizeof err->message, "%s: %s", what, strerror(e));
  return -1;
}

int af_seed_load_file(af_flows *svc, const char *path, af_seed_result *res, af_seed_error *err) {
  af_seed_error ignored;
  if (err == NULL)
    err = &ignored;
  if (res != NULL)
    *res = (af_seed_result){0, 0, 0};
  /* Mapped, so the parsed text can be dropped as it loads (see release_parsed). A file cut
   * short while it loads would fault (SIGBUS): the seed is the operator's own file, read
   * once at start-up, so that is left as the one way a seed can stop appflowd abruptly. */
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map != MAP_FAILED) {
      int rc = load(svc, map, (size_t)st.st_size, true, res, err);
      munmap(map, (size_t)st.st_size);
      return rc;
    }
  } else if (fd >= 0) {
    close(fd);
  }
  /* Not a regular file (a pipe, /dev/stdin), empty, or not mappable: read it whole. */
  char *buf = NULL;
  size_t len = 0;
  bool opened;
  int e = af_read_file(path, SIZE_MAX / 4, &buf, &len, &opened);
  if (e != 0)
    return fail_io(err, opened ? "cannot read the seed file" : "cannot open the seed file", e);
  int rc = af_seed_load_buffer(svc, buf, len, res, err);
  free(buf);
  return rc;
}
