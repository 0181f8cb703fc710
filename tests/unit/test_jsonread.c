/* src/bridge/jsonread.c: the AWS door's JSON reader. It must accept exactly what jansson
 * accepted with JSON_REJECT_DUPLICATES | JSON_DECODE_ANY (less \u0000), give the same tree, and
 * say where and what the fault is otherwise. */
#include "bridge/jsonread.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static af_arena arena;
static af_arena in_place; /* the same texts read in place, from an arena of their own */

static void setup(void) {
  af_arena_init(&arena);
  af_arena_init(&in_place);
}

static void teardown(void) {
  af_arena_destroy(&arena);
  af_arena_destroy(&in_place);
}

TestSuite(jsonread, .init = setup, .fini = teardown);

/* A copy of text[0..len) for af_json_read_in_place to rewrite; the caller frees it. */
static char *scratch(const char *text, size_t len) {
  char *copy = malloc(len + 1);
  cr_assert_not_null(copy);
  memcpy(copy, text, len);
  return copy;
}

static bool same_jv(const af_jv *a, const af_jv *b) {
  if (a->type != b->type || (a->key == NULL) != (b->key == NULL) ||
      (a->key != NULL && strcmp(a->key, b->key) != 0))
    return false;
  switch (a->type) {
  case AF_JV_STRING:
    return a->u.string.len == b->u.string.len &&
           memcmp(a->u.string.s, b->u.string.s, a->u.string.len + 1) == 0;
  case AF_JV_INTEGER:
    return a->u.integer == b->u.integer;
  case AF_JV_REAL:
    return memcmp(&a->u.real, &b->u.real, sizeof a->u.real) == 0;
  case AF_JV_ARRAY:
  case AF_JV_OBJECT:
    if (a->u.kids.n != b->u.kids.n)
      return false;
    for (const af_jv *x = a->u.kids.first, *y = b->u.kids.first; x != NULL;
         x = x->next, y = y->next)
      if (y == NULL || !same_jv(x, y))
        return false;
    return true;
  case AF_JV_NULL:
  case AF_JV_FALSE:
  case AF_JV_TRUE:
    break;
  }
  return true;
}

/* Every text read here is read in place too (on a copy), which must give the same tree. */
static const af_jv *read_ok(const char *text) {
  af_json_error err;
  size_t len = strlen(text);
  const af_jv *v = af_json_read(text, len, &arena, &err);
  cr_assert_not_null(v, "%s: %s at %d:%d", text, err.text, err.line, err.column);
  char *own = scratch(text, len);
  const af_jv *w = af_json_read_in_place(own, len, &in_place, &err);
  cr_assert_not_null(w, "in place, %s: %s at %d:%d", text, err.text, err.line, err.column);
  cr_assert(same_jv(v, w), "%s reads differently in place", text);
  free(own);
  af_arena_reset(&in_place);
  return v;
}

/* ... and every fault is the same fault, at the same place, read in place. */
static af_json_error read_bad(const char *text, size_t len) {
  af_json_error err, again;
  cr_assert_null(af_json_read(text, len, &arena, &err), "%s was read", text);
  char *own = scratch(text, len);
  cr_assert_null(af_json_read_in_place(own, len, &in_place, &again), "%s was read in place", text);
  free(own);
  af_arena_reset(&in_place);
  cr_expect_str_eq(again.text, err.text, "%s in place", text);
  cr_expect(again.line == err.line && again.column == err.column,
            "%s: in place at %d:%d, else at %d:%d", text, again.line, again.column, err.line,
            err.column);
  return err;
}

#define BAD(lit) read_bad(lit, sizeof lit - 1)

/* ---- the tree ---- */

Test(jsonread, every_kind_of_value) {
  const af_jv *o = read_ok(" {\"s\": \"x\", \"i\": -42, \"r\": 1.5e2, \"t\": true, \"f\": false, "
                           "\"n\": null, \"a\": [1, [], {}], \"o\": {\"k\": \"v\"}} ");
  cr_assert_eq(o->type, AF_JV_OBJECT);
  cr_expect_eq(o->u.kids.n, 8);
  cr_expect_str_eq(af_jv_get(o, "s")->u.string.s, "x");
  cr_expect_eq(af_jv_get(o, "i")->u.integer, -42);
  cr_expect_eq(af_jv_get(o, "r")->type, AF_JV_REAL);
  cr_expect_eq(af_jv_get(o, "r")->u.real, 150.0);
  cr_expect_eq(af_jv_get(o, "t")->type, AF_JV_TRUE);
  cr_expect_eq(af_jv_get(o, "f")->type, AF_JV_FALSE);
  cr_expect_eq(af_jv_get(o, "n")->type, AF_JV_NULL);
  const af_jv *a = af_jv_get(o, "a");
  cr_assert_eq(a->u.kids.n, 3);
  cr_expect_eq(a->u.kids.first->u.integer, 1);
  cr_expect_eq(a->u.kids.first->next->type, AF_JV_ARRAY);
  cr_expect_eq(a->u.kids.first->next->next->type, AF_JV_OBJECT);
  cr_expect_null(a->u.kids.first->next->next->next);
  cr_expect_str_eq(af_jv_get(af_jv_get(o, "o"), "k")->u.string.s, "v");
  cr_expect_null(af_jv_get(o, "missing"));
  cr_expect_null(af_jv_get(a, "s"), "an array has no members");
}

Test(jsonread, members_keep_the_texts_order) {
  const af_jv *o = read_ok("{\"b\":1,\"a\":2,\"c\":3}");
  const char *want[] = {"b", "a", "c"};
  size_t i = 0;
  for (const af_jv *m = o->u.kids.first; m != NULL; m = m->next)
    cr_expect_str_eq(m->key, want[i++]);
  cr_expect_eq(i, 3);
}

Test(jsonread, escapes_become_utf8) {
  const af_jv *s = read_ok("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t \\u00e9 \\u20AC \\ud83d\\ude00\"");
  cr_expect_str_eq(s->u.string.s, "a\"b\\c/d\b\f\n\r\t \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  cr_expect_eq(s->u.string.len, strlen(s->u.string.s));
  const af_jv *raw = read_ok("\"caf\xc3\xa9\"");
  cr_expect_str_eq(raw->u.string.s, "caf\xc3\xa9");
}

/* Read in place, a string without escapes is where it was in the text, its closing quote now
 * its NUL; one with escapes is unescaped elsewhere, so a "\\n" does not become a line break
 * that would move the line a later fault is reported at. */
Test(jsonread, in_place_strings_stay_in_the_text) {
  static const char text[] =
      "{\"plain\": \"value\", \"esc\\u0061ped\": \"a\\nb\", \"x\": [1,\n2,]}";
  af_json_error err = read_bad(text, sizeof text - 1);
  cr_expect_eq(err.line, 2, "the fault is on line %d", err.line);
  const char ok[] = "{\"plain\": \"value\", \"esc\\u0061ped\": \"a\\nb\"}";
  char *own = scratch(ok, sizeof ok - 1);
  const af_jv *o = af_json_read_in_place(own, sizeof ok - 1, &arena, &err);
  cr_assert_not_null(o, "%s", err.text);
  const af_jv *plain = af_jv_get(o, "plain"), *esc = af_jv_get(o, "escaped");
  cr_assert(plain != NULL && esc != NULL);
  cr_expect(plain->u.string.s == own + 11 && plain->key == own + 2, "read where they were");
  cr_expect_str_eq(plain->u.string.s, "value");
  cr_expect(esc->key < own || esc->key >= own + sizeof ok, "an escaped key is a copy");
  cr_expect_str_eq(esc->u.string.s, "a\nb");
  cr_expect(esc->u.string.s < own || esc->u.string.s >= own + sizeof ok);
  free(own);
}

Test(jsonread, the_text_need_not_end_in_nul) {
  const char text[] = "{\"a\":12}345";
  af_json_error err;
  const af_jv *o = af_json_read(text, 8, &arena, &err);
  cr_assert_not_null(o);
  cr_expect_eq(af_jv_get(o, "a")->u.integer, 12);
  const af_jv *n = af_json_read("12345", 2, &arena, &err);
  cr_assert_not_null(n);
  cr_expect_eq(n->u.integer, 12);
}

/* A value read where it starts takes its own bytes and leaves the rest; nesting past the depth
 * given is a fault, at the depth given. */
Test(jsonread, a_prefix_is_read_up_to_its_end) {
  static const char text[] = "{\"a\": [1, {\"b\": \"}\"}]} , {\"c\": 2}";
  af_json_error err;
  size_t used = 0;
  const af_jv *o = af_json_read_prefix(text, sizeof text - 1, 8, &arena, &err, &used);
  cr_assert_not_null(o, "%s", err.text);
  cr_expect_eq(used, strlen("{\"a\": [1, {\"b\": \"}\"}]}"));
  cr_expect_str_eq(af_jv_get(af_jv_get(o, "a")->u.kids.first->next, "b")->u.string.s, "}");
  cr_expect_null(af_json_read_prefix(text, sizeof text - 1, 2, &arena, &err, &used),
                 "three levels deep, two allowed");
  cr_expect_str_eq(err.text, "maximum parsing depth reached");
  cr_expect_null(af_json_read_prefix(text, 12, 8, &arena, &err, &used), "cut short");
}

Test(jsonread, integers_span_long_long_and_reals_anything_finite) {
  cr_expect_eq(read_ok("9223372036854775807")->u.integer, 9223372036854775807LL);
  cr_expect_eq(read_ok("-9223372036854775808")->u.integer, -9223372036854775807LL - 1);
  cr_expect_eq(read_ok("1e-400")->type, AF_JV_REAL, "an underflow is a real, as in jansson");
  /* longer than the reader's number buffer */
  cr_expect_eq(
      read_ok("0.00000000000000000000000000000000000000000000000000000000000000000001")->u.real,
      1e-68);
}

/* ---- faults ---- */

Test(jsonread, faults_say_what_and_where) {
  struct {
    const char *text, *what;
    int line, column;
  } cases[] = {
      {"{", "string or '}' expected", 1, 2},
      {"{\"a\" 1}", "':' expected", 1, 6},
      {"{\"a\":1 \"b\":2}", "'}' expected", 1, 8},
      {"{\"a\":1,}", "string expected", 1, 8},
      {"{1:2}", "string or '}' expected", 1, 2},
      {"[1 2]", "']' expected", 1, 4},
      {"[1,]", "invalid token", 1, 4},
      {"{\n  \"a\": tru\n}", "invalid token", 2, 8},
      {"{\"a\": 'b'}", "invalid token", 1, 7},
      {"{} {}", "end of file expected", 1, 4},
      {"-", "invalid token", 1, 1},
      {"1.", "invalid token", 1, 1},
      {"1e+", "invalid token", 1, 1},
      {"\"ab", "premature end of input", 1, 4},
      {"\"a\tb\"", "control character 0x9", 1, 3},
      {"\"\\x\"", "invalid escape", 1, 2},
      {"\"\\u12g4\"", "invalid escape", 1, 2},
      {"\"\\ud83d\"", "invalid Unicode '\\uD83D'", 1, 2},
      {"\"\\ude00\"", "invalid Unicode '\\uDE00'", 1, 2},
      {"\"\\ud83dx\"", "invalid Unicode '\\uD83D'", 1, 2},
      {"\"a\\u0000\"", "a string holds \\u0000, which appflowd does not accept", 1, 3},
      {"\"\xc3\xa9\xff\"", "unable to decode byte 0xff", 1, 3},
      {"\"\xc0\xaf\"", "unable to decode byte 0xc0", 1, 2},
      {"\"\xed\xa0\x80\"", "unable to decode byte 0xed", 1, 2},
      {"9223372036854775808", "too big integer", 1, 1},
      {"-9223372036854775809", "too big negative integer", 1, 1},
      {"1e999", "real number overflow", 1, 1},
      {"{\"a\":1,\"b\":2,\"a\":3}", "duplicate object key 'a'", 1, 1},
      {"", "premature end of input", 1, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    af_json_error err = read_bad(cases[i].text, strlen(cases[i].text));
    cr_expect_str_eq(err.text, cases[i].what, "%s: %s", cases[i].text, err.text);
    cr_expect_eq(err.line, cases[i].line, "%s: line %d", cases[i].text, err.line);
    cr_expect_eq(err.column, cases[i].column, "%s: column %d", cases[i].text, err.column);
    cr_expect_eq(err.out_of_memory, 0);
  }
}

Test(jsonread, a_nul_byte_in_the_text_is_a_fault) {
  af_json_error err = BAD("\"a\0b\"");
  cr_expect_str_eq(err.text, "control character 0x0");
  err = BAD("{}\0");
  cr_expect_str_eq(err.text, "end of file expected");
}

/* {"k0":0,...,"k<n-1>":n-1}, with key dup (if any) again at the end. */
static char *object_of(size_t n, long dup) {
  size_t cap = n * 24 + 64, len = 0;
  char *s = malloc(cap);
  cr_assert_not_null(s);
  len += (size_t)snprintf(s + len, cap - len, "{");
  for (size_t i = 0; i < n; i++)
    len += (size_t)snprintf(s + len, cap - len, "%s\"k%zu\":%zu", i ? "," : "", i, i);
  if (dup >= 0)
    len += (size_t)snprintf(s + len, cap - len, ",\"k%ld\":0", dup);
  snprintf(s + len, cap - len, "}");
  return s;
}

Test(jsonread, duplicate_keys_are_found_in_large_objects_too) {
  size_t sizes[] = {2, 16, 17, 5000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *ok = object_of(sizes[i], -1), *dup = object_of(sizes[i], (long)sizes[i] / 2);
    cr_expect_eq(read_ok(ok)->u.kids.n, sizes[i]);
    af_json_error err = read_bad(dup, strlen(dup));
    char want[64];
    snprintf(want, sizeof want, "duplicate object key 'k%zu'", sizes[i] / 2);
    cr_expect_str_eq(err.text, want);
    free(ok);
    free(dup);
  }
}

static char *nested(size_t depth) {
  char *s = malloc(2 * depth + 1);
  cr_assert_not_null(s);
  memset(s, '[', depth);
  memset(s + depth, ']', depth);
  s[2 * depth] = '\0';
  return s;
}

Test(jsonread, nesting_stops_at_jansson_depth) {
  char *deep = nested(AF_JSON_MAX_DEPTH), *deeper = nested(AF_JSON_MAX_DEPTH + 1);
  read_ok(deep);
  af_json_error err = read_bad(deeper, strlen(deeper));
  cr_expect_str_eq(err.text, "maximum parsing depth reached");
  free(deep);
  free(deeper);
}

Test(jsonread, a_tree_too_big_for_the_arena_is_out_of_memory) {
  size_t n = AF_ARENA_LIMIT / 32; /* each element's node alone takes more than 32 bytes */
  char *s = malloc(2 * n + 2);
  cr_assert_not_null(s);
  s[0] = '[';
  for (size_t i = 0; i < n; i++)
    memcpy(s + 1 + 2 * i, i + 1 < n ? "0," : "0]", 2);
  af_json_error err = read_bad(s, 2 * n + 1);
  cr_expect_eq(err.out_of_memory, 1);
  free(s);
}

/* ---- the same as jansson ---- */

static int same_tree(const af_jv *v, json_t *j);

static int same_kids(const af_jv *v, json_t *j) {
  if (v->u.kids.n != (json_is_array(j) ? json_array_size(j) : json_object_size(j)))
    return 0;
  size_t i = 0;
  for (const af_jv *k = v->u.kids.first; k != NULL; k = k->next, i++) {
    json_t *kj = json_is_array(j) ? json_array_get(j, i) : json_object_get(j, k->key);
    if (kj == NULL || !same_tree(k, kj))
      return 0;
  }
  return 1;
}

static int same_tree(const af_jv *v, json_t *j) {
  switch (v->type) {
  case AF_JV_OBJECT:
    return json_is_object(j) && same_kids(v, j);
  case AF_JV_ARRAY:
    return json_is_array(j) && same_kids(v, j);
  case AF_JV_STRING:
    return json_is_string(j) && json_string_length(j) == v->u.string.len &&
           memcmp(json_string_value(j), v->u.string.s, v->u.string.len) == 0;
  case AF_JV_INTEGER:
    return json_is_integer(j) && json_integer_value(j) == v->u.integer;
  case AF_JV_REAL:
    return json_is_real(j) && json_real_value(j) == v->u.real;
  case AF_JV_TRUE:
    return json_is_true(j);
  case AF_JV_FALSE:
    return json_is_false(j);
  case AF_JV_NULL:
    return json_is_null(j);
  }
  return 0;
}

Test(jsonread, accepts_what_jansson_accepts_and_reads_the_same) {
  const char *texts[] = {
      "{}", "[]", "0", "-0", "-0.0", "1E5", "1e-5", "2.5E+3", "\"\"", "true", "null",
      " \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } } \n", "{\"a\":{\"a\":{\"a\":[[[\"deep\"]]]}}}",
      "\"\\u00e9\\ud83d\\ude00\\/\"", "[1.7976931348623157e308, 5e-324, 123456789012345678]",
      "{\"flowName\":\"f\",\"tags\":{\"team\":\"x\",\"env\":\"prod\"}}",
      /* refused by both */
      "01", "[01]", "+1", ".5", "1.e5", "[1,]", "{,}", "{\"a\"}", "[\"a\":1]", "tru", "nul", "True",
      "[1}", "{\"a\":1]", "\"\\'\"", "\"\\u00\"", "\"\\uDE00\"", "'a'", "[", "]", "}", "\"a\nb\"",
      "{\"a\":1,\"a\":1}", "1 2", "9223372036854775808", "1e400", "\"\xf5\x80\x80\x80\"",
      "\"\xe0\x80\x80\"", "\"\xf4\x90\x80\x80\"", "[-]", "[--1]", "[1e]", "NaN", "Infinity", "[,1]",
      "{\"a\":1,,\"b\":2}"};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    const char *t = texts[i];
    af_json_error err;
    json_error_t je;
    const af_jv *v = af_json_read(t, strlen(t), &arena, &err);
    json_t *j = json_loadb(t, strlen(t), JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    cr_expect_eq(v != NULL, j != NULL, "%s: reader %s, jansson %s", t, v ? "ok" : err.text,
                 j ? "ok" : je.text);
    if (v != NULL && j != NULL)
      cr_expect(same_tree(v, j), "%s: the trees differ", t);
    json_decref(j);
  }
}

/* The string scan steps 8 bytes at a time and then to the first byte that needs a look: each
 * kind of such byte, at every offset around and across those steps, must read as jansson does
 * (the same string, or the same fault at the bad byte). */
Test(jsonread, strings_read_the_same_wherever_their_special_bytes_fall) {
  const char *specials[] = {"\\\"",         "\\\\", "\\n",  "\\u00e9", "\xc3\xa9",
                            "\xe2\x82\xac", "\x01", "\x1f", "\x7f",    "\xff",
                            "\xc3",         " ",    "~"};
  char text[64], padded[64];
  for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
    for (size_t before = 0; before <= 17; before++) {
      for (size_t after = 0; after <= 9; after++) {
        size_t n = 0;
        text[n++] = '"';
        memset(text + n, 'a', before);
        n += before;
        memcpy(text + n, specials[k], strlen(specials[k]));
        n += strlen(specials[k]);
        memset(text + n, 'b', after);
        n += after;
        text[n++] = '"';
        memcpy(padded, text, n); /* bytes after the end must not be read as the string's */
        memset(padded + n, '"', sizeof padded - n);
        af_json_error err;
        json_error_t je;
        const af_jv *v = af_json_read(padded, n, &arena, &err);
        json_t *j = json_loadb(text, n, JSON_DECODE_ANY, &je);
        cr_assert_eq(v != NULL, j != NULL, "%zu/%zu/%zu: reader %s, jansson %s", k, before, after,
                     v ? "ok" : err.text, j ? "ok" : je.text);
        if (v != NULL)
          cr_expect(same_tree(v, j), "%zu/%zu/%zu: the strings differ", k, before, after);
        else /* jansson's text, at the bad byte's own column (after the quote and the a's) */
          cr_expect(
              strncmp(je.text, err.text, strlen(err.text)) == 0 && err.column == (int)before + 2,
              "%zu/%zu/%zu: %s at %d, jansson %s", k, before, after, err.text, err.column, je.text);
        json_decref(j);
      }
    }
  }
}
