/* Generic validation from the model tables (flows/check.h has the contract).
 *
 * Wording and order follow AWS's Coral validator as real AWS messages show it:
 *  - "N validation errors detected: X; Y", "Value null at 'p' ... Member must not be null",
 *    pattern error before length error for one member: e.g. DynamoDB's "2 validation errors
 *    detected: Value '' at 'tableName' failed to satisfy constraint: Member must satisfy regular
 *    expression pattern: [a-zA-Z0-9_.-]+; Value '' at 'tableName' failed to satisfy constraint:
 *    Member must have length greater than or equal to 3" (reproduced by mhart/dynalite,
 *    validations/index.js, and quoted in many client test suites);
 *  - "Map keys must satisfy constraint: [max, min, pattern]" once per map with the map quoted as
 *    Java prints it, '{k=v, k2=v2}': a real EventBridge message "Value '{de onde?=..., ...}' at
 *    'targets.1.member.inputTransformer.inputPathsMap' failed to satisfy constraint: Map keys must
 *    satisfy constraint: [Member must have length less than or equal to 256, Member must have
 *    length greater than or equal to 1, Member must satisfy regular expression pattern:
 *    [A-Za-z0-9\_\-]+]"; enum-keyed maps "Map keys must satisfy constraint: [Member must satisfy
 *    enum value set: [...]]" (getmoto/moto, moto/resiliencehub/responses.py); "Map value must
 *    satisfy constraint: [...]" (DynamoDB requestItems, mhart/dynalite);
 *  - a list of scalars: "Member must satisfy constraint: [...]" at the list (e.g. IoT's
 *    "Value '[GetConnection]' at '...includeSocketInformation' failed to satisfy constraint:
 *    Member must satisfy constraint: [Member must satisfy enum value set: [...]]");
 *  - list elements "<list>.1.member.<field>" (DynamoDB "attributeDefinitions.1.member.
 *    attributeType"), map values "<map>.<key>.member" (DynamoDB "requestItems.<table>.member.
 *    keys", getmoto/moto, moto/dynamodb/responses.py);
 *  - sensitive members are printed without their value: Cognito's "1 validation error detected:
 *    Value at 'password' failed to satisfy constraint: Member must have length greater than or
 *    equal to 6".
 * Coral sometimes appends "Member must not be null" inside a bracketed list; proto elements and
 * keys cannot be null, so it is left out. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "flows/check.h"

#include "appflow_model.h"
#include "common/pbc.h"
#include "common/utf8.h"

#include <inttypes.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a pattern that is a few character classes in a row, the last one maybe repeated
 * ("\\S+", ".*", "[\\w/-]+", flow names' "[a-zA-Z0-9][\\w!@#.-]+": most of the model's), does on
 * ASCII text, each class learnt from pcre2 itself one character at a time: such a value matches
 * when its first bytes are each in their own class and the rest in the last class (with, for
 * '+', one at least), with no call to pcre2, whose set-up was most of a check's cost for the
 * short values of a request. Each class but the last takes exactly one byte, so there is no
 * choice to go back on. */
#define CLASSES_MAX 4

typedef struct ascii_set {
  bool in[128]; /* a byte per byte: one load a byte, which is what a value's scan costs */
} ascii_set;

typedef struct ascii_class {
  bool known;    /* the pattern has that shape */
  bool repeated; /* the last class takes any number of bytes ('*' or '+') */
  bool plus;     /* '+': the last class takes one byte at least */
  uint8_t n;     /* classes, in order */
  ascii_set sets[CLASSES_MAX];
} ascii_class;

struct af_checker {
  size_t n;
  pcre2_code **codes;
  ascii_class *classes; /* one per pattern */
};

/* The length of the character class at text (0 when it is not one): '.', an escape like \S or
 * \w, or a bracket expression with nothing but escapes, ranges and characters inside. */
static size_t class_len(const char *text) {
  if (text[0] == '.')
    return 1;
  if (text[0] == '\\')
    return text[1] != '\0' && strchr("SswWdD", text[1]) != NULL ? 2 : 0;
  if (text[0] != '[' || text[1] == '^')
    return 0;
  for (size_t i = 1; text[i] != '\0'; i++) {
    if (text[i] == '\\' && text[i + 1] != '\0')
      i++;
    else if (text[i] == '[')
      return 0;
    else if (text[i] == ']')
      return i > 1 ? i + 1 : 0;
  }
  return 0;
}

/* Which bytes from 1 to 127 the class text[0..len) takes, asked of pcre2. */
static bool learn_set(ascii_set *set, const char *text, size_t len, pcre2_compile_context *cc) {
  int code;
  PCRE2_SIZE at;
  pcre2_code *atom = pcre2_compile((PCRE2_SPTR)text, len,
                                   PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED, &code, &at, cc);
  pcre2_match_data *md = atom != NULL ? pcre2_match_data_create(1, NULL) : NULL;
  bool ok = md != NULL;
  set->in[0] = false; /* values are C strings: never met */
  for (int c = 1; ok && c < 128; c++) {
    char one = (char)c;
    set->in[c] = pcre2_match(atom, (PCRE2_SPTR)&one, 1, 0, 0, md, NULL) >= 0;
  }
  pcre2_match_data_free(md);
  pcre2_code_free(atom);
  return ok;
}

static void learn_class(ascii_class *k, const char *text, pcre2_compile_context *cc) {
  *k = (ascii_class){.known = false};
  for (size_t i = 0; text[i] != '\0';) {
    size_t len = class_len(text + i);
    if (len == 0 || k->n == CLASSES_MAX || k->repeated)
      return; /* not that shape: a repeated class that is not the last, an anchor, a group */
    if (!learn_set(&k->sets[k->n++], text + i, len, cc))
      return;
    i += len;
    if (text[i] == '*' || text[i] == '+') {
      k->repeated = true;
      k->plus = text[i] == '+';
      i++;
    }
  }
  k->known = k->n > 0;
}

/* 1 or 0 when the classes decide an ASCII value, -1 when pcre2 must (a byte from 0x80 up). A
 * value shorter than the classes that take one byte each has fewer characters than they need,
 * whatever its bytes. */
static int class_match(const ascii_class *k, const char *s, size_t len) {
  size_t fixed = k->repeated ? k->n - 1u : k->n;
  if (!k->known)
    return -1;
  if (len < fixed)
    return 0;
  size_t i = 0;
  for (; i < fixed; i++) {
    unsigned char b = (unsigned char)s[i];
    if (b >= 128)
      return -1;
    if (!k->sets[i].in[b])
      return 0;
  }
  const ascii_set *last = k->repeated ? &k->sets[fixed] : NULL;
  for (; i < len; i++) { /* past the classes with no repeated one: too long, if ASCII */
    unsigned char b = (unsigned char)s[i];
    if (b >= 128)
      return -1;
    if (last == NULL || !last->in[b])
      return 0;
  }
  return len > fixed || !k->plus;
}

af_checker *af_checker_new(af_error *err) {
  af_checker *c = calloc(1, sizeof *c);
  pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
  if (c == NULL || cc == NULL ||
      (c->codes = calloc(af_model_pattern_count + 1, sizeof *c->codes)) == NULL ||
      (c->classes = calloc(af_model_pattern_count + 1, sizeof *c->classes)) == NULL) {
    pcre2_compile_context_free(cc);
    af_checker_free(c);
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory compiling the model's patterns");
    return NULL;
  }
  /* Java's '.' stops at \n and \r (and U+0085, U+2028, U+2029, which PCRE2 cannot exclude
   * without also excluding \v and \f); ANYCRLF is the nearest newline convention. */
  pcre2_set_newline(cc, PCRE2_NEWLINE_ANYCRLF);
  for (size_t i = 0; i < af_model_pattern_count; i++) {
    int code;
    PCRE2_SIZE at;
    /* ANCHORED + ENDANCHORED: the whole value must match, as Java's matches(); no UCP, so \w \s
     * \d stay ASCII as Java's. Malformed UTF-8 does not match: pcre2_match checks the value and
     * returns an error, which is no match. Not PCRE2_MATCH_INVALID_UTF: with it the JIT of
     * PCRE2 10.42 (Debian 12's) fails to match valid multibyte characters against \S, \D, \W
     * (PCRE2Project/pcre2 issue #224), so "é" failed "\S+". */
    c->codes[i] = pcre2_compile((PCRE2_SPTR)af_model_pattern_pcre2[i], PCRE2_ZERO_TERMINATED,
                                PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED, &code, &at, cc);
    c->n = i + 1;
    if (c->codes[i] == NULL) {
      PCRE2_UCHAR why[160];
      pcre2_get_error_message(code, why, sizeof why);
      af_error_set(err, AF_ERR_INTERNAL_SERVER,
                   "model pattern %zu (%s) does not compile at %zu: %s", i,
                   af_model_pattern_pcre2[i], (size_t)at, (const char *)why);
      pcre2_compile_context_free(cc);
      af_checker_free(c);
      return NULL;
    }
    (void)pcre2_jit_compile(c->codes[i], PCRE2_JIT_COMPLETE); /* else the interpreter runs it */
    learn_class(&c->classes[i], af_model_pattern_pcre2[i], cc);
  }
  pcre2_compile_context_free(cc);
  return c;
}

void af_checker_free(af_checker *c) {
  if (c == NULL)
    return;
  for (size_t i = 0; c->codes != NULL && i < c->n; i++)
    pcre2_code_free(c->codes[i]);
  free(c->codes);
  free(c->classes);
  free(c);
}

/* 1 when s matches the pattern, 0 when not, -1 when pcre2 had to run and there was no memory
 * for its match data: *md is made the first time pcre2 must run (most values never need it). */
static int match_with(const af_checker *c, pcre2_match_data **md, int pattern, const char *s,
                      size_t len) {
  if (pattern < 0 || (size_t)pattern >= c->n)
    return 1;
  int known = class_match(&c->classes[pattern], s, len);
  if (known >= 0)
    return known;
  if (*md == NULL && (*md = pcre2_match_data_create(1, NULL)) == NULL)
    return -1;
  return pcre2_match(c->codes[pattern], (PCRE2_SPTR)s, len, 0, 0, *md, NULL) >= 0;
}

bool af_checker_knows_ascii(const af_checker *c, int pattern) {
  return pattern >= 0 && (size_t)pattern < c->n && c->classes[pattern].known;
}

bool af_checker_match(const af_checker *c, int pattern, const char *s, size_t len) {
  pcre2_match_data *md = NULL;
  int ok = match_with(c, &md, pattern, s, len);
  pcre2_match_data_free(md);
  return ok == 1;
}

/* ---- one walk ---- */

#define PATH_MAX_LEN 1024
#define QUOTE_MAX 257  /* escaped value text quoted in a message, NUL included */
#define RAW_MAX 512    /* a collection's text before escaping */
#define HEADER_ROOM 48 /* "NNNNNNNNNN validation errors detected: " */
#define ONE_ERROR_MAX 2048

/* One step of the path to the member being checked: a member name, a map entry's key (printed
 * "<key>.member") or a list element's 1-based index ("<i>.member"). The path is kept as these
 * steps and printed only for an error: most requests have none, and appending every member's
 * name to a string was a tenth of the checks' cost. */
typedef struct step {
  const char *name; /* NULL for a list element */
  uint32_t index;
  bool entry;
} step;

/* Every step adds at least one character ('.') to the printed path, so steps past this many
 * cannot show in PATH_MAX_LEN - 1 characters: deeper ones are counted, not kept. */
#define STEPS_MAX PATH_MAX_LEN

typedef struct walk {
  const af_checker *c;
  pcre2_match_data *md;
  bool oom;
  int hidden; /* > 0 under a sensitive shape */
  size_t count;
  size_t depth; /* steps in the path, kept or not */
  size_t blen;
  bool full;
  step steps[STEPS_MAX];
  char buf[AF_ERROR_MESSAGE_MAX - HEADER_ROOM];
} walk;

static bool matches(walk *w, int pattern, const char *s, size_t len) {
  int ok = match_with(w->c, &w->md, pattern, s, len);
  if (ok < 0)
    w->oom = true; /* reported as out of memory, not as this value's fault */
  return ok != 0;
}

static size_t push(walk *w, step s) {
  size_t was = w->depth;
  if (w->depth < STEPS_MAX)
    w->steps[w->depth] = s;
  w->depth++;
  return was;
}

static size_t path_member(walk *w, const char *name) { return push(w, (step){name, 0, false}); }

static void path_pop(walk *w, size_t was) { w->depth = was; }

/* Appends ".name" (or "name" at the root) to path, cut at its size. */
static void print_name(char *path, size_t size, size_t *len, const char *name) {
  size_t was = *len, room = size - 1 - was, n = strlen(name);
  char *p = path + was;
  if (was > 0 && room > 0) {
    *p++ = '.';
    room--;
  }
  n = n < room ? n : room;
  memcpy(p, name, n);
  p[n] = '\0';
  *len = (size_t)(p + n - path);
}

/* The path as AWS prints it: "a.b", "list.1.member.c", "map.key.member". */
static const char *print_path(const walk *w, char *path, size_t size) {
  size_t len = 0, n = w->depth < STEPS_MAX ? w->depth : STEPS_MAX;
  path[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    const step *s = &w->steps[i];
    char digits[16];
    const char *name = s->name;
    if (name == NULL) {
      char *p = digits + sizeof digits - 1;
      uint32_t v = s->index;
      *p = '\0';
      do
        *--p = (char)('0' + v % 10);
      while ((v /= 10) > 0);
      name = p;
    }
    print_name(path, size, &len, name);
    if (s->entry)
      print_name(path, size, &len, "member");
  }
  return path;
}

/* Records one violation at the current path. value: the raw value text, or NULL for none
 * ("Value at"); AF_NULL_VALUE for "Value null at". */
static const char AF_NULL_VALUE[] = "null";
static void violation(walk *w, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void violation(walk *w, const char *value, const char *fmt, ...) {
  char one[ONE_ERROR_MAX], quoted[QUOTE_MAX], path[PATH_MAX_LEN];
  int n;
  print_path(w, path, sizeof path);
  if (value == AF_NULL_VALUE)
    n = snprintf(one, sizeof one, "Value null at '%s' failed to satisfy constraint: ", path);
  else if (value == NULL || w->hidden > 0)
    n = snprintf(one, sizeof one, "Value at '%s' failed to satisfy constraint: ", path);
  else
    n = snprintf(one, sizeof one, "Value '%s' at '%s' failed to satisfy constraint: ",
                 af_escape(quoted, sizeof quoted, value, strlen(value)), path);
  if (n < 0 || (size_t)n >= sizeof one)
    n = (int)strlen(one);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(one + n, sizeof one - (size_t)n, fmt, ap);
  va_end(ap);
  w->count++;
  if (w->full)
    return;
  size_t len = strlen(one), sep = w->blen ? 2 : 0;
  if (w->blen + sep + len + 1 > sizeof w->buf) {
    w->full = true; /* cut at a whole error; later ones are only counted */
    return;
  }
  if (sep)
    memcpy(w->buf + w->blen, "; ", 2);
  memcpy(w->buf + w->blen + sep, one, len + 1);
  w->blen += sep + len;
}

/* ---- reading protobuf-c fields ---- */

static bool is_int(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return true;
  case PROTOBUF_C_TYPE_ENUM:
  case PROTOBUF_C_TYPE_DOUBLE:
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_BOOL:
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_MESSAGE:
  case PROTOBUF_C_TYPE_BYTES:
    return false;
  }
  return false;
}

/* Integers as a signed 64-bit value (uint64 above INT64_MAX saturates: no bound is that big). */
static int64_t read_int(ProtobufCType t, const void *p) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_ENUM:
    return *(const int32_t *)p;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return *(const uint32_t *)p;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    return *(const int64_t *)p;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: {
    uint64_t u = *(const uint64_t *)p;
    return u > INT64_MAX ? INT64_MAX : (int64_t)u;
  }
  case PROTOBUF_C_TYPE_BOOL:
    return *(const protobuf_c_boolean *)p;
  case PROTOBUF_C_TYPE_DOUBLE:
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_MESSAGE:
  case PROTOBUF_C_TYPE_BYTES:
    return 0;
  }
  return 0;
}

static double read_double(ProtobufCType t, const void *p) {
  return t == PROTOBUF_C_TYPE_FLOAT ? *(const float *)p : *(const double *)p;
}

/* A singular field's presence (check.h, "Presence rules"). */
static bool present(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *msg) {
  const char *base = (const char *)msg;
  const void *p = base + f->offset;
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_MESSAGE:
    return *(void *const *)p != NULL;
  case PROTOBUF_C_TYPE_ENUM:
    if (*(const int32_t *)p == 0)
      return false;
    break;
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_BOOL:
  case PROTOBUF_C_TYPE_BYTES:
    break;
  }
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
  if (f->quantifier_offset != 0)
    return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
  return true;
}

/* ---- scalar constraints ---- */

static size_t code_points(const char *s, size_t len) {
  size_t n = 0;
  for (const char *p = s, *end = s + len; p < end; n++) {
    if ((unsigned char)*p < 0x80) { /* most names are ASCII: no call per character */
      p++;
      continue;
    }
    int k = af_utf8_seq_len(p, end);
    p += k > 0 ? k : 1;
  }
  return n;
}

static const char *enum_name(const af_model_shape *sh, int64_t v) {
  if (sh->enum_values == NULL || v <= 0 || (uint64_t)v >= sh->n_enum)
    return NULL;
  return sh->enum_values[v];
}

static bool enum_has(const af_model_shape *sh, const char *s) {
  for (size_t i = 1; s != NULL && i < sh->n_enum; i++) {
    if (sh->enum_values[i] != NULL && sh->enum_values[i][0] == s[0] &&
        strcmp(sh->enum_values[i], s) == 0)
      return true;
  }
  return false;
}

/* "[a, b, c]" */
static void enum_set(char *dst, size_t sz, const af_model_shape *sh) {
  size_t o = 0;
  o += (size_t)snprintf(dst, sz, "[");
  for (size_t i = 1, k = 0; i < sh->n_enum && o < sz; i++) {
    if (sh->enum_values[i] != NULL)
      o += (size_t)snprintf(dst + o, sz - o, "%s%s", k++ ? ", " : "", sh->enum_values[i]);
  }
  if (o < sz)
    snprintf(dst + o, sz - o, "]");
}

/* Every constraint of a scalar shape, as Coral lists them in brackets: max, min, pattern. */
#if defined(__GNUC__) && !defined(__clang__) /* clang has no -Wformat-truncation */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation" /* cut short on purpose */
#endif
static void constraint_list(char *dst, size_t sz, const af_model_shape *sh) {
  size_t o = 0;
  const char *what =
      sh->type == AF_MODEL_INTEGER || sh->type == AF_MODEL_LONG || sh->type == AF_MODEL_DOUBLE
          ? "value"
          : "length";
#define ADD(...)                                                                                   \
  do {                                                                                             \
    if (o < sz)                                                                                    \
      o += (size_t)snprintf(dst + o, sz - o, __VA_ARGS__);                                         \
  } while (0)
  dst[0] = '\0';
  if (sh->has_max)
    ADD("%sMember must have %s less than or equal to %" PRId64, o ? ", " : "", what, sh->max);
  if (sh->has_min)
    ADD("%sMember must have %s greater than or equal to %" PRId64, o ? ", " : "", what, sh->min);
  if (sh->pattern >= 0)
    ADD("%sMember must satisfy regular expression pattern: %s", o ? ", " : "",
        af_model_pattern_java[sh->pattern]);
  if (sh->type == AF_MODEL_ENUM && sh->enum_values != NULL) {
    char set[1024];
    enum_set(set, sizeof set, sh);
    ADD("%sMember must satisfy enum value set: %s", o ? ", " : "", set);
  }
#undef ADD
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/* The raw text of one scalar element at p (a field's storage), for a quoted value. */
static void scalar_text(char *dst, size_t sz, const af_model_shape *sh, ProtobufCType t,
                        const void *p) {
  dst[0] = '\0';
  if (t == PROTOBUF_C_TYPE_STRING) {
    const char *s = *(const char *const *)p;
    snprintf(dst, sz, "%s", s ? s : "null");
  } else if (t == PROTOBUF_C_TYPE_ENUM) {
    int64_t v = read_int(t, p);
    const char *name = enum_name(sh, v);
    if (name != NULL)
      snprintf(dst, sz, "%s", name);
    else
      snprintf(dst, sz, "%" PRId64, v);
  } else if (is_int(t)) {
    snprintf(dst, sz, "%" PRId64, read_int(t, p));
  } else if (t == PROTOBUF_C_TYPE_DOUBLE || t == PROTOBUF_C_TYPE_FLOAT) {
    snprintf(dst, sz, "%g", read_double(t, p));
  } else if (t == PROTOBUF_C_TYPE_BOOL) {
    snprintf(dst, sz, "%s", *(const protobuf_c_boolean *)p ? "true" : "false");
  }
}

/* Does one scalar (a string, enum or number at p) satisfy every constraint of sh? */
static bool scalar_ok(walk *w, const af_model_shape *sh, ProtobufCType t, const void *p) {
  if (t == PROTOBUF_C_TYPE_STRING) {
    const char *s = *(const char *const *)p;
    if (s == NULL)
      return true;
    size_t len = strlen(s), n = code_points(s, len);
    if (sh->type == AF_MODEL_ENUM && sh->enum_values != NULL && !enum_has(sh, s))
      return false;
    return matches(w, sh->pattern, s, len) && !(sh->has_min && (int64_t)n < sh->min) &&
           !(sh->has_max && (int64_t)n > sh->max);
  }
  if (t == PROTOBUF_C_TYPE_ENUM)
    return enum_name(sh, read_int(t, p)) != NULL;
  if (is_int(t)) {
    int64_t v = read_int(t, p);
    return !(sh->has_min && v < sh->min) && !(sh->has_max && v > sh->max);
  }
  if (t == PROTOBUF_C_TYPE_DOUBLE || t == PROTOBUF_C_TYPE_FLOAT) {
    double v = read_double(t, p);
    return !(sh->has_min && v < (double)sh->min) && !(sh->has_max && v > (double)sh->max);
  }
  return true;
}

/* One scalar member at the current path: each failing constraint is its own error. */
static void check_scalar(walk *w, const af_model_shape *sh, ProtobufCType t, const void *p) {
  if (scalar_ok(w, sh, t, p)) /* the usual case: no error, so no value text to print */
    return;
  char text[RAW_MAX];
  scalar_text(text, sizeof text, sh, t, p);
  if (t == PROTOBUF_C_TYPE_STRING) {
    const char *s = *(const char *const *)p;
    if (s == NULL)
      return;
    size_t len = strlen(s), n = code_points(s, len);
    if (sh->type == AF_MODEL_ENUM && sh->enum_values != NULL && !enum_has(sh, s)) {
      char set[1024];
      enum_set(set, sizeof set, sh);
      violation(w, text, "Member must satisfy enum value set: %s", set);
    }
    if (!matches(w, sh->pattern, s, len))
      violation(w, text, "Member must satisfy regular expression pattern: %s",
                af_model_pattern_java[sh->pattern]);
    if (sh->has_min && (int64_t)n < sh->min)
      violation(w, text, "Member must have length greater than or equal to %" PRId64, sh->min);
    if (sh->has_max && (int64_t)n > sh->max)
      violation(w, text, "Member must have length less than or equal to %" PRId64, sh->max);
    return;
  }
  if (t == PROTOBUF_C_TYPE_ENUM) {
    if (enum_name(sh, read_int(t, p)) == NULL) {
      char set[1024];
      enum_set(set, sizeof set, sh);
      violation(w, text, "Member must satisfy enum value set: %s", set);
    }
    return;
  }
  if (is_int(t) || t == PROTOBUF_C_TYPE_DOUBLE || t == PROTOBUF_C_TYPE_FLOAT) {
    bool dbl = !is_int(t);
    int64_t v = dbl ? 0 : read_int(t, p);
    double d = dbl ? read_double(t, p) : 0;
    if (sh->has_min && (dbl ? d < (double)sh->min : v < sh->min))
      violation(w, text, "Member must have value greater than or equal to %" PRId64, sh->min);
    if (sh->has_max && (dbl ? d > (double)sh->max : v > sh->max))
      violation(w, text, "Member must have value less than or equal to %" PRId64, sh->max);
  }
}

/* ---- collections ---- */

static void check_struct(walk *w, const af_model_struct *st, const ProtobufCMessage *msg);

static bool is_scalar_shape(const af_model_shape *sh) {
  return sh->type != AF_MODEL_STRUCTURE && sh->type != AF_MODEL_LIST && sh->type != AF_MODEL_MAP &&
         sh->type != AF_MODEL_TIMESTAMP;
}

static void append(char *dst, size_t sz, size_t *o, const char *s) {
  size_t n = strlen(s);
  if (*o + n >= sz)
    n = *o < sz - 1 ? sz - 1 - *o : 0;
  memcpy(dst + *o, s, n);
  *o += n;
  dst[*o] = '\0';
}

/* "[a, b]" for a list of scalars; NULL (no value printed) for anything else. */
static const char *list_text(char *dst, size_t sz, const af_model_shape *el, ProtobufCType t,
                             const char *arr, size_t n) {
  if (!is_scalar_shape(el))
    return NULL;
  size_t o = 0;
  dst[0] = '\0';
  append(dst, sz, &o, "[");
  for (size_t i = 0; i < n && o < sz - 1; i++) {
    char one[RAW_MAX];
    scalar_text(one, sizeof one, el, t, arr + i * af_pbc_element_size(t));
    if (i)
      append(dst, sz, &o, ", ");
    append(dst, sz, &o, one);
  }
  append(dst, sz, &o, "]");
  return dst;
}

/* Entry count of a list or map at the current path. */
static void check_count(walk *w, const af_model_shape *sh, size_t n, const char *text) {
  if (sh->has_max && (int64_t)n > sh->max)
    violation(w, text, "Member must have length less than or equal to %" PRId64, sh->max);
  if (sh->has_min && (int64_t)n < sh->min)
    violation(w, text, "Member must have length greater than or equal to %" PRId64, sh->min);
}

/* Is a list's or map's entry count outside sh's bounds? */
static bool count_bad(const af_model_shape *sh, size_t n) {
  return (sh->has_max && (int64_t)n > sh->max) || (sh->has_min && (int64_t)n < sh->min);
}

/* Appends ".<key>.member" (a map entry; key must outlive the step) or ".<i>.member" (a list
 * element) to the path. */
static size_t path_entry(walk *w, const char *key) { return push(w, (step){key, 0, true}); }

static size_t path_index(walk *w, size_t i) {
  return push(w, (step){NULL, i > UINT32_MAX ? UINT32_MAX : (uint32_t)i, true});
}

/* A list at the current path: n elements of type t at arr. The value text printed in an error
 * is built only once an error is certain: most requests have none, and printing every list of
 * every request was a tenth of a CreateFlow's cost. */
static void check_list(walk *w, const af_model_shape *sh, ProtobufCType t, const char *arr,
                       size_t n) {
  if (n == 0)
    return;
  const af_model_shape *el = sh->member;
  bool scalars = el != NULL && is_scalar_shape(el);
  bool bad_element = false;
  for (size_t i = 0; scalars && !bad_element && i < n; i++)
    bad_element = !scalar_ok(w, el, t, arr + i * af_pbc_element_size(t));
  if (count_bad(sh, n) || bad_element) {
    char text[RAW_MAX];
    const char *value = el != NULL ? list_text(text, sizeof text, el, t, arr, n) : NULL;
    check_count(w, sh, n, value);
    if (bad_element) {
      char list[ONE_ERROR_MAX / 2];
      constraint_list(list, sizeof list, el);
      violation(w, value, "Member must satisfy constraint: [%s]", list);
    }
  }
  if (el == NULL || scalars)
    return;
  if (el->type == AF_MODEL_STRUCTURE && el->structure != NULL && t == PROTOBUF_C_TYPE_MESSAGE) {
    for (size_t i = 0; i < n; i++) {
      size_t was = path_index(w, i + 1);
      check_struct(w, el->structure, ((const ProtobufCMessage *const *)(const void *)arr)[i]);
      path_pop(w, was);
    }
  }
}

/* A list-wrapper message (a list used as a map value) at the current path. */
static void check_wrapped_list(walk *w, const af_model_shape *sh, const ProtobufCMessage *m) {
  if (m == NULL || sh->structure == NULL || sh->structure->n_members == 0)
    return;
  const ProtobufCFieldDescriptor *f = &m->descriptor->fields[0];
  const char *base = (const char *)m;
  size_t n = *(const size_t *)(const void *)(base + f->quantifier_offset);
  check_list(w, sh, f->type, *(const char *const *)(const void *)(base + f->offset), n);
}

/* "{k=v, ...}" for a map of scalar values, as AWS prints one in an error. */
static const char *map_text(char *text, size_t sz, const af_model_shape *vs,
                            const ProtobufCFieldDescriptor *kf, const ProtobufCFieldDescriptor *vf,
                            const ProtobufCMessage *const *entries, size_t n) {
  size_t o = 0;
  text[0] = '\0';
  append(text, sz, &o, "{");
  for (size_t i = 0; i < n && o < sz - 1; i++) {
    const char *e = (const char *)entries[i];
    char v[RAW_MAX];
    const char *k = *(const char *const *)(const void *)(e + kf->offset);
    scalar_text(v, sizeof v, vs, vf->type, e + vf->offset);
    if (i)
      append(text, sz, &o, ", ");
    append(text, sz, &o, k ? k : "null");
    append(text, sz, &o, "=");
    append(text, sz, &o, v);
  }
  append(text, sz, &o, "}");
  return text;
}

/* A map at the current path: n entry messages. As for lists, the value text is printed only
 * when there is an error to print it in. */
static void check_map(walk *w, const af_model_shape *sh, const ProtobufCFieldDescriptor *f,
                      const ProtobufCMessage *const *entries, size_t n) {
  if (n == 0 || f->descriptor == NULL)
    return;
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  if (ed->n_fields < 2)
    return;
  const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
  const af_model_shape *ks = sh->key, *vs = sh->member;
  bool scalar_values = vs != NULL && is_scalar_shape(vs);

  bool bad_key = false, bad_value = false;
  for (size_t i = 0; ks != NULL && !bad_key && i < n; i++)
    bad_key = !scalar_ok(w, ks, kf->type, (const char *)entries[i] + kf->offset);
  for (size_t i = 0; scalar_values && !bad_value && i < n; i++)
    bad_value = present(vf, entries[i]) &&
                !scalar_ok(w, vs, vf->type, (const char *)entries[i] + vf->offset);
  if (count_bad(sh, n) || bad_key || bad_value) {
    char text[RAW_MAX], list[ONE_ERROR_MAX / 2];
    const char *value = scalar_values ? map_text(text, sizeof text, vs, kf, vf, entries, n) : NULL;
    check_count(w, sh, n, value);
    if (bad_key) {
      constraint_list(list, sizeof list, ks);
      violation(w, value, "Map keys must satisfy constraint: [%s]", list);
    }
    if (bad_value) {
      constraint_list(list, sizeof list, vs);
      violation(w, value, "Map value must satisfy constraint: [%s]", list);
    }
  }
  if (vs == NULL || scalar_values)
    return;
  for (size_t i = 0; i < n; i++) {
    const char *e = (const char *)entries[i];
    const char *k = *(const char *const *)(const void *)(e + kf->offset);
    char key[160];
    af_escape(key, sizeof key, k ? k : "", k ? strlen(k) : 0);
    size_t was = path_entry(w, key);
    const ProtobufCMessage *v = *(const ProtobufCMessage *const *)(const void *)(e + vf->offset);
    if (vs->type == AF_MODEL_STRUCTURE && vs->structure != NULL && v != NULL)
      check_struct(w, vs->structure, v);
    else if (vs->type == AF_MODEL_LIST && v != NULL)
      check_wrapped_list(w, vs, v);
    path_pop(w, was);
  }
}

/* ---- structures ---- */

/* Is there nothing to check in member f of msg: absent and optional, or an empty collection?
 * Most members of a big structure are absent; they skip the path push and pop. */
static bool nothing_to_check(const af_model_member *m, const ProtobufCFieldDescriptor *f,
                             const ProtobufCMessage *msg) {
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return *(const size_t *)(const void *)((const char *)msg + f->quantifier_offset) == 0;
  return !m->required && !present(f, msg);
}

static void check_member(walk *w, const af_model_member *m, const ProtobufCFieldDescriptor *f,
                         const ProtobufCMessage *msg) {
  if (nothing_to_check(m, f, msg))
    return;
  const af_model_shape *sh = m->shape;
  const char *base = (const char *)msg;
  size_t was = path_member(w, m->name);
  int hidden = w->hidden;
  if (sh->sensitive)
    w->hidden++;
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    size_t n = *(const size_t *)(const void *)(base + f->quantifier_offset);
    const char *arr = *(const char *const *)(const void *)(base + f->offset);
    if (sh->type == AF_MODEL_MAP)
      check_map(w, sh, f, (const ProtobufCMessage *const *)(const void *)arr, n);
    else
      check_list(w, sh, f->type, arr, n);
  } else if (!present(f, msg)) {
    if (m->required)
      violation(w, AF_NULL_VALUE, "Member must not be null");
  } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
    const ProtobufCMessage *sub =
        *(const ProtobufCMessage *const *)(const void *)(base + f->offset);
    if (sh->type == AF_MODEL_STRUCTURE && sh->structure != NULL)
      check_struct(w, sh->structure, sub);
    else if (sh->type == AF_MODEL_LIST)
      check_wrapped_list(w, sh, sub);
  } else {
    check_scalar(w, sh, f->type, base + f->offset);
  }
  w->hidden = hidden;
  path_pop(w, was);
}

static void check_struct(walk *w, const af_model_struct *st, const ProtobufCMessage *msg) {
  if (msg == NULL || msg->descriptor != st->descriptor)
    return;
  for (size_t i = 0; i < st->n_members && i < st->descriptor->n_fields; i++)
    check_member(w, &st->members[i], &st->descriptor->fields[i], msg);
}

af_err af_check_message(const af_checker *c, const af_model_struct *shape,
                        const ProtobufCMessage *msg, af_error *err) {
  if (c == NULL || shape == NULL || msg == NULL || msg->descriptor != shape->descriptor)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "request does not fit the model shape %s",
                        shape != NULL ? shape->name : "(none)");
  /* Not calloc: the path's steps and the message text (most of the walk's 20 KiB) are written
   * before they are read, and zeroing even 5 KiB of them was a fifth of a small request's work. */
  walk *w = malloc(sizeof *w);
  if (w == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory checking %s", shape->name);
  w->c = c;
  w->md = NULL;
  w->oom = w->full = false;
  w->hidden = 0;
  w->count = w->depth = w->blen = 0;
  w->buf[0] = '\0';
  check_struct(w, shape, msg);
  af_err rc = AF_OK;
  if (w->oom)
    rc = af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory checking %s", shape->name);
  else if (w->count > 0)
    rc = af_error_set(err, AF_ERR_VALIDATION, "%zu validation error%s detected: %s", w->count,
                      w->count == 1 ? "" : "s", w->buf);
  pcre2_match_data_free(w->md);
  free(w);
  return rc;
}
