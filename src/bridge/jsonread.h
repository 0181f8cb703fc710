/* The AWS door's JSON reader: request bodies parsed into a tree carved from the request's
 * arena, so reading a body costs no malloc, no free and no hash table (jansson's tree cost the
 * CreateFlow path more than everything else a request does). It accepts what jansson accepts
 * with JSON_REJECT_DUPLICATES | JSON_DECODE_ANY: RFC 8259 JSON, any value at the top, well-formed
 * UTF-8 only, integers that fit a long long, at most AF_JSON_MAX_DEPTH levels; and, as appflowd
 * always has, no \u0000 in a string.
 *
 * Ownership: every node and string belongs to the arena given to af_json_read (or, read in
 * place, a string may be the caller's text).
 * Errors: af_json_read returns NULL and describes the first fault in *err.
 * Thread-safety: pure; a tree is read-only once made. */
#ifndef AF_BRIDGE_JSONREAD_H
#define AF_BRIDGE_JSONREAD_H

#include "common/compiler.h"
#include "flows/arena.h"

#include <stddef.h>

#define AF_JSON_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

typedef enum af_jv_type {
  AF_JV_NULL,
  AF_JV_FALSE,
  AF_JV_TRUE,
  AF_JV_INTEGER,
  AF_JV_REAL,
  AF_JV_STRING,
  AF_JV_ARRAY,
  AF_JV_OBJECT
} af_jv_type;

typedef struct af_jv af_jv;
struct af_jv {
  af_jv_type type;
  const char *key; /* an object member's key, NUL-terminated (no NUL inside); else NULL */
  af_jv *next;     /* the next element or member of the array or object holding this one */
  union {
    long long integer;
    double real;
    struct {
      const char *s; /* NUL-terminated; a string never holds NUL */
      size_t len;
    } string;
    struct {
      af_jv *first; /* an array's elements or an object's members, in the text's order */
      size_t n;
    } kids;
  } u;
};

typedef struct af_json_error {
  int line, column;  /* where the fault is, from 1; the column counts characters */
  int out_of_memory; /* the fault is the arena's: it had no room */
  char text[320];    /* what it is, for a person: "'}' expected", "invalid escape"...; what it
                        quotes of the text is escaped as af_escape does */
} af_json_error;

/* The value text[0..len) holds (text need not be NUL-terminated); NULL with *err set when it is
 * not JSON, or the arena has no room ("out of memory"). */
af_jv *af_json_read(const char *text, size_t len, af_arena *arena, af_json_error *err) AF_MUST_USE;
/* af_json_read over text the caller lets the reader rewrite: a string without escapes is left
 * where it is, NUL-terminated over its closing quote, and the tree points at it (nearly every
 * string of a request: no block or copy each). text must then live as long as the tree; the
 * same values and errors as af_json_read. */
af_jv *af_json_read_in_place(char *text, size_t len, af_arena *arena,
                             af_json_error *err) AF_MUST_USE;

/* The value at the start of text[0..len), read as af_json_read reads a whole text, leaving what
 * follows it unread: *used is the bytes it took (a reader of one value among many). Values
 * nested deeper than max_depth (at most AF_JSON_MAX_DEPTH) are a fault. */
af_jv *af_json_read_prefix(const char *text, size_t len, int max_depth, af_arena *arena,
                           af_json_error *err, size_t *used) AF_MUST_USE;

/* The member of object o named key; NULL when there is none or o is not an object. */
const af_jv *af_jv_get(const af_jv *o, const char *key);

/* What kind of value v is, for messages: "an object", "a string", "a number", "null"... */
const char *af_jv_kind(const af_jv *v);

static inline int af_jv_is_number(const af_jv *v) {
  return v->type == AF_JV_INTEGER || v->type == AF_JV_REAL;
}

/* A number's value as a double (an integer converted). */
static inline double af_jv_number(const af_jv *v) {
  return v->type == AF_JV_INTEGER ? (double)v->u.integer : v->u.real;
}

#endif
