/* A recursive-descent reader over the whole text at once. Strings are read twice: once to find
 * their end and check them, once to copy them into the arena (unescaped when they hold
 * escapes), so each gets one block of the right size. Error texts follow jansson's where
 * jansson has one, so a client sees the same words it saw before this reader. */
#include "bridge/jsonread.h"

#include "common/hex.h"
#include "common/utf8.h"
#include "flows/error.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAIRWISE_MAX 16 /* objects up to this size are checked for duplicate keys pair by pair */
#define NUMBER_BUF 64   /* a number this long or longer is copied to the arena to be converted */
#define KEY_QUOTE 64    /* bytes of a duplicate key named in its error */

typedef struct reader {
  const char *start, *p, *end;
  char *own; /* the text itself when the caller lets it be rewritten (af_json_read_in_place) */
  af_arena *arena;
  int depth, max_depth;
  af_json_error *err;
} reader;

/* ---- errors ---- */

static void locate(const reader *r, const char *at, af_json_error *err) {
  int line = 1, column = 1;
  for (const char *s = r->start; s < at && s < r->end; s++) {
    if (*s == '\n') {
      line++;
      column = 1;
    } else if (((unsigned char)*s & 0xC0) != 0x80) {
      column++;
    }
  }
  err->line = line;
  err->column = column;
}

__attribute__((format(printf, 3, 4))) static void *fail_at(reader *r, const char *at,
                                                           const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err->text, sizeof r->err->text, fmt, ap);
  va_end(ap);
  locate(r, at, r->err);
  return NULL;
}

static void *no_room(reader *r) {
  r->err->out_of_memory = 1;
  return fail_at(r, r->p, "out of memory");
}

/* ---- scanning ---- */

/* The spaces at p, and any more after them. */
static void skip_spaces(reader *r, const char *p) {
  while (p < r->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  r->p = p;
}

/* Most tokens have no space before them, or the one a writer puts after ':' and ',': those
 * are stepped over here, inline; longer runs (indented text) in skip_spaces. */
static inline void skip_space(reader *r) {
  const char *p = r->p;
  if (p < r->end && *p == ' ')
    p++;
  if (p < r->end && (unsigned char)*p <= ' ')
    skip_spaces(r, p);
  else
    r->p = p;
}

static int peek(const reader *r) { return r->p < r->end ? (unsigned char)*r->p : -1; }

static int is_digit(const char *p, const char *end) { return p < end && *p >= '0' && *p <= '9'; }

static af_jv *new_node(reader *r, af_jv_type type) {
  af_jv *v = af_arena_alloc(r->arena, sizeof *v);
  if (v == NULL)
    return no_room(r);
  v->type = type;
  v->key = NULL;
  v->next = NULL;
  return v;
}

/* ---- strings ---- */

/* The four hex digits at p as a number; -1 when they are not four hex digits. */
static long hex4(const char *p, const char *end) {
  long v = 0;
  if (end - p < 4)
    return -1;
  for (int i = 0; i < 4; i++) {
    int h = af_hex_value((unsigned char)p[i]);
    if (h < 0)
      return -1;
    v = v * 16 + h;
  }
  return v;
}

static int simple_escape(char c) {
  switch (c) {
  case '"':
  case '\\':
  case '/':
    return c;
  case 'b':
    return '\b';
  case 'f':
    return '\f';
  case 'n':
    return '\n';
  case 'r':
    return '\r';
  case 't':
    return '\t';
  }
  return -1;
}

/* The code point of the escape at p (*p == '\\'), a surrogate pair read whole; *next is the
 * text after it. -1 with the error set when it is not a valid escape. */
static long read_escape(reader *r, const char *p, const char **next) {
  int c = p + 1 < r->end ? simple_escape(p[1]) : -1;
  if (c >= 0) {
    *next = p + 2;
    return c;
  }
  long hi = p + 1 < r->end && p[1] == 'u' ? hex4(p + 2, r->end) : -1;
  if (hi <= 0) {
    fail_at(r, p,
            hi < 0 ? "invalid escape" : "a string holds \\u0000, which appflowd does not accept");
    return -1;
  }
  *next = p + 6;
  if (hi < 0xD800 || hi > 0xDFFF)
    return hi;
  const char *q = p + 6;
  long lo =
      hi <= 0xDBFF && r->end - q >= 2 && q[0] == '\\' && q[1] == 'u' ? hex4(q + 2, r->end) : -1;
  if (lo < 0xDC00 || lo > 0xDFFF) {
    fail_at(r, p, "invalid Unicode '\\u%04lX'", hi);
    return -1;
  }
  *next = q + 6;
  return 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Nonzero when one of the 8 bytes at p is below 0x20, from 0x80 up, '"' or '\\': the bytes a
 * string's scan must look at one by one (a byte of x is 0 when (x - ONES) & ~x & HIGHS has its
 * high bit; below 0x20 likewise with 0x20 for 1). Most of a body's strings are plain ASCII, and
 * this steps over them 8 bytes at a time. A borrow can flag a byte above a special one, never
 * one below it: the lowest flag, read little-endian, is the first special byte. */
static uint64_t special8(const char *p) {
  uint64_t v, q, b;
  memcpy(&v, p, sizeof v);
  q = v ^ (ONES * '"');
  b = v ^ (ONES * '\\');
  return (v | ((v - ONES * 0x20) & ~v) | ((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS;
}

/* The closing quote of the string whose text starts at p, every escape and character of it
 * checked; *escapes tells whether it holds any. NULL with the error set. Out of line: the few
 * strings plain_end leaves are read here. */
__attribute__((noinline)) static const char *string_end(reader *r, const char *p, int *escapes) {
  for (;;) {
    uint64_t m = 0;
    while (r->end - p >= 8 && (m = special8(p)) == 0)
      p += 8;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (m != 0) /* straight to the first byte that needs a look (the lowest flag is exact) */
      p += __builtin_ctzll(m) / 8;
#endif
    if (p >= r->end)
      break;
    unsigned char c = (unsigned char)*p;
    if (c == '"')
      return p;
    if (c == '\\') {
      *escapes = 1;
      if (read_escape(r, p, &p) < 0)
        return NULL;
    } else if (c < 0x20) {
      return fail_at(r, p, "control character 0x%x", c);
    } else if (c < 0x80) {
      p++;
    } else {
      int n = af_utf8_seq_len(p, r->end);
      if (n <= 0)
        return fail_at(r, p, "unable to decode byte 0x%x", c);
      p += n;
    }
  }
  return fail_at(r, p, "premature end of input");
}

/* The closing quote of a string of plain ASCII (no escape, control character or byte from
 * 0x80) whose text starts at p; NULL when it holds a byte that needs a look, and string_end
 * reads it. Small and inline: nearly every string of a request is plain. */
static inline const char *plain_end(const reader *r, const char *p) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  for (; r->end - p >= 8; p += 8) {
    uint64_t m = special8(p);
    if (m != 0) {
      p += __builtin_ctzll(m) / 8; /* the first special byte (the lowest flag is exact) */
      return *p == '"' ? p : NULL;
    }
  }
#endif
  for (; p < r->end; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"')
      return p;
    if (c < 0x20 || c == '\\' || c >= 0x80)
      return NULL;
  }
  return NULL;
}

static size_t put_utf8(char *o, unsigned long cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* p[0..close), already checked, unescaped into out: no escape is shorter as UTF-8 than as
 * text, so out needs no more room than the text. */
static size_t unescape(reader *r, const char *p, const char *close, char *out) {
  char *o = out;
  while (p < close) {
    const char *next = p + 1;
    if (*p == '\\')
      o += put_utf8(o, (unsigned long)read_escape(r, p, &next));
    else
      *o++ = *p;
    p = next;
  }
  return (size_t)(o - out);
}

/* The string at r->p (its opening quote), NUL-terminated in the arena; or, in text the reader
 * may rewrite, where it is, NUL-terminated over its closing quote (unless it holds escapes:
 * unescaped in place, a "\n" would become a line break that moves later errors' lines). */
static const char *read_string(reader *r, size_t *len) {
  int escapes = 0;
  const char *open = r->p + 1, *close = plain_end(r, open);
  if (close == NULL && (close = string_end(r, open, &escapes)) == NULL)
    return NULL;
  size_t raw = (size_t)(close - open);
  if (r->own != NULL && !escapes) {
    char *s = r->own + (open - r->start);
    s[raw] = '\0'; /* the closing quote, read already */
    *len = raw;
    r->p = close + 1;
    return s;
  }
  char *out = af_arena_alloc(r->arena, raw + 1);
  if (out == NULL)
    return no_room(r);
  if (escapes) {
    *len = unescape(r, open, close, out);
  } else {
    memcpy(out, open, raw);
    *len = raw;
  }
  out[*len] = '\0';
  r->p = close + 1;
  return out;
}

/* ---- numbers and words ---- */

/* The end of the number at p, as RFC 8259 spells one; NULL when it is not one. */
static const char *number_end(const char *p, const char *end, int *real) {
  if (p < end && *p == '-')
    p++;
  if (p < end && *p == '0')
    p++;
  else if (is_digit(p, end))
    while (is_digit(p, end))
      p++;
  else
    return NULL;
  if (p < end && *p == '.') {
    if (!is_digit(++p, end))
      return NULL;
    while (is_digit(p, end))
      p++;
    *real = 1;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      p++;
    if (!is_digit(p, end))
      return NULL;
    while (is_digit(p, end))
      p++;
    *real = 1;
  }
  return p;
}

static af_jv *convert_number(reader *r, const char *start, const char *text, int real) {
  af_jv *v = new_node(r, real ? AF_JV_REAL : AF_JV_INTEGER);
  if (v == NULL)
    return NULL;
  errno = 0;
  if (!real) {
    v->u.integer = strtoll(text, NULL, 10);
    if (errno == ERANGE)
      return fail_at(r, start, v->u.integer < 0 ? "too big negative integer" : "too big integer");
    return v;
  }
  v->u.real = strtod(text, NULL);
  if (errno == ERANGE && (v->u.real == HUGE_VAL || v->u.real == -HUGE_VAL))
    return fail_at(r, start, "real number overflow");
  return v;
}

static af_jv *read_number(reader *r) {
  int real = 0;
  const char *start = r->p, *end = number_end(start, r->end, &real);
  if (end == NULL)
    return fail_at(r, start, "invalid token");
  size_t n = (size_t)(end - start);
  char buf[NUMBER_BUF];
  char *text = n < sizeof buf ? buf : af_arena_alloc(r->arena, n + 1);
  if (text == NULL)
    return no_room(r);
  memcpy(text, start, n);
  text[n] = '\0';
  r->p = end;
  return convert_number(r, start, text, real);
}

static af_jv *read_word(reader *r) {
  static const struct {
    const char *word;
    size_t len;
    af_jv_type type;
  } words[] = {{"true", 4, AF_JV_TRUE}, {"false", 5, AF_JV_FALSE}, {"null", 4, AF_JV_NULL}};
  const char *p = r->p;
  while (p < r->end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
    p++;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if ((size_t)(p - r->p) == words[i].len && memcmp(r->p, words[i].word, words[i].len) == 0) {
      r->p = p;
      return new_node(r, words[i].type);
    }
  return fail_at(r, r->p, "invalid token");
}

/* ---- arrays and objects ---- */

static af_jv *read_value(reader *r);

/* The array or object opening at r->p; *empty when it closes at once (then stepped over). */
static af_jv *open_container(reader *r, af_jv_type type, int close, int *empty) {
  af_jv *v = new_node(r, type);
  if (v == NULL)
    return NULL;
  v->u.kids.first = NULL;
  v->u.kids.n = 0;
  r->p++;
  skip_space(r);
  *empty = peek(r) == close;
  r->p += *empty;
  return v;
}

static void append(af_jv *v, af_jv ***tail, af_jv *kid) {
  **tail = kid;
  *tail = &kid->next;
  v->u.kids.n++;
}

/* After a kid: 1 at ',', 0 at close (either stepped over), -1 at anything else. */
static int after_kid(reader *r, int close) {
  skip_space(r);
  int c = peek(r);
  if (c != ',' && c != close)
    return -1;
  r->p++;
  return c == ',';
}

static af_jv *read_array(reader *r) {
  int empty = 0;
  af_jv *a = open_container(r, AF_JV_ARRAY, ']', &empty);
  if (a == NULL || empty)
    return a;
  af_jv **tail = &a->u.kids.first;
  for (;;) {
    af_jv *v = read_value(r);
    if (v == NULL)
      return NULL;
    append(a, &tail, v);
    int more = after_kid(r, ']');
    if (more <= 0)
      return more == 0 ? a : fail_at(r, r->p, "']' expected");
  }
}

static int by_key(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A key that o holds twice; NULL when there is none (or, with the error set, no memory). Small
 * objects (nearly all) compare pair by pair; larger ones sort their keys. */
static const char *duplicate_key(reader *r, const af_jv *o, int *oom) {
  const af_jv *first = o->u.kids.first;
  size_t n = o->u.kids.n;
  if (n <= PAIRWISE_MAX) {
    for (const af_jv *a = first; a != NULL; a = a->next)
      for (const af_jv *b = a->next; b != NULL; b = b->next)
        if (a->key[0] == b->key[0] && strcmp(a->key, b->key) == 0)
          return a->key;
    return NULL;
  }
  const char **keys = af_arena_alloc(r->arena, n * sizeof *keys);
  if (keys == NULL) {
    *oom = 1;
    return no_room(r);
  }
  size_t i = 0;
  for (const af_jv *a = first; a != NULL; a = a->next)
    keys[i++] = a->key;
  qsort(keys, n, sizeof *keys, by_key);
  for (i = 1; i < n; i++)
    if (strcmp(keys[i - 1], keys[i]) == 0)
      return keys[i];
  return NULL;
}

/* The member at r->p (its key's opening quote, checked): its value, which holds its key. */
static af_jv *read_member(reader *r) {
  size_t len;
  const char *key = read_string(r, &len);
  if (key == NULL)
    return NULL;
  skip_space(r);
  if (peek(r) != ':')
    return fail_at(r, r->p, "':' expected");
  r->p++;
  af_jv *v = read_value(r);
  if (v != NULL)
    v->key = key;
  return v;
}

static af_jv *close_object(reader *r, af_jv *o, const char *open) {
  int oom = 0;
  const char *dup = duplicate_key(r, o, &oom);
  if (dup == NULL)
    return oom ? NULL : o;
  char quoted[4 * KEY_QUOTE + 1];
  af_escape(quoted, sizeof quoted, dup, strnlen(dup, KEY_QUOTE));
  return fail_at(r, open, "duplicate object key '%s'", quoted);
}

static af_jv *read_object(reader *r) {
  const char *open = r->p;
  int empty = 0;
  af_jv *o = open_container(r, AF_JV_OBJECT, '}', &empty);
  if (o == NULL || empty)
    return o;
  af_jv **tail = &o->u.kids.first;
  for (;;) {
    skip_space(r);
    if (peek(r) != '"')
      return fail_at(r, r->p, o->u.kids.n == 0 ? "string or '}' expected" : "string expected");
    af_jv *v = read_member(r);
    if (v == NULL)
      return NULL;
    append(o, &tail, v);
    int more = after_kid(r, '}');
    if (more <= 0)
      return more == 0 ? close_object(r, o, open) : fail_at(r, r->p, "'}' expected");
  }
}

static af_jv *read_nested(reader *r, af_jv *(*read)(reader *)) {
  if (++r->depth > r->max_depth)
    return fail_at(r, r->p, "maximum parsing depth reached");
  af_jv *v = read(r);
  r->depth--;
  return v;
}

static af_jv *read_value(reader *r) {
  skip_space(r);
  int c = peek(r);
  if (c == '{')
    return read_nested(r, read_object);
  if (c == '[')
    return read_nested(r, read_array);
  if (c == '"') {
    af_jv *v = new_node(r, AF_JV_STRING);
    if (v != NULL && (v->u.string.s = read_string(r, &v->u.string.len)) == NULL)
      return NULL;
    return v;
  }
  if (c == '-' || (c >= '0' && c <= '9'))
    return read_number(r);
  if (c < 0)
    return fail_at(r, r->p, "premature end of input");
  return read_word(r);
}

/* The value r's text holds; with used, the value at its start, whatever follows (*used: the
 * bytes it took). */
static af_jv *read_text(reader r, size_t *used) {
  r.err->line = r.err->column = 0;
  r.err->out_of_memory = 0;
  r.err->text[0] = '\0';
  af_jv *v = read_value(&r);
  if (v == NULL)
    return NULL;
  if (used != NULL) {
    *used = (size_t)(r.p - r.start);
    return v;
  }
  skip_space(&r);
  if (r.p < r.end)
    return fail_at(&r, r.p, "end of file expected");
  return v;
}

static reader reader_of(const char *text, size_t len, af_arena *arena, af_json_error *err) {
  return (reader){.start = text,
                  .p = text,
                  .end = text + len,
                  .arena = arena,
                  .max_depth = AF_JSON_MAX_DEPTH,
                  .err = err};
}

af_jv *af_json_read(const char *text, size_t len, af_arena *arena, af_json_error *err) {
  return read_text(reader_of(text, len, arena, err), NULL);
}

af_jv *af_json_read_in_place(char *text, size_t len, af_arena *arena, af_json_error *err) {
  reader r = reader_of(text, len, arena, err);
  r.own = text;
  return read_text(r, NULL);
}

af_jv *af_json_read_prefix(const char *text, size_t len, int max_depth, af_arena *arena,
                           af_json_error *err, size_t *used) {
  reader r = reader_of(text, len, arena, err);
  r.max_depth = max_depth < AF_JSON_MAX_DEPTH ? max_depth : AF_JSON_MAX_DEPTH;
  return read_text(r, used);
}

/* ---- reading a tree ---- */

const af_jv *af_jv_get(const af_jv *o, const char *key) {
  if (o == NULL || o->type != AF_JV_OBJECT)
    return NULL;
  for (const af_jv *v = o->u.kids.first; v != NULL; v = v->next)
    if (v->key[0] == key[0] && strcmp(v->key, key) == 0)
      return v;
  return NULL;
}

const char *af_jv_kind(const af_jv *v) {
  switch (v->type) {
  case AF_JV_OBJECT:
    return "an object";
  case AF_JV_ARRAY:
    return "an array";
  case AF_JV_STRING:
    return "a string";
  case AF_JV_INTEGER:
  case AF_JV_REAL:
    return "a number";
  case AF_JV_TRUE:
  case AF_JV_FALSE:
    return "a boolean";
  case AF_JV_NULL:
    return "null";
  }
  return "a value";
}
