/* The seed reader: a streaming reader over the caller's buffer that finds each flow's object,
 * and the AWS door's own decoding for the flow itself.
 *
 * Not a jansson tree of the whole file: a tree for a million flows costs several times the file
 * in memory and seconds to build. This reader finds one flow's text at a time, decodes it as
 * CreateFlow's request (src/bridge/transcode.h) into a scratch arena, checks it as CreateFlow
 * does (af_flows_check_create), stores it and moves on, so a load costs the file plus the store.
 *
 * Positions are not tracked while scanning, which would cost something on every byte: an error
 * finds its line and column by rescanning the buffer up to the offending byte, once. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "bridge/seed.h"

#include "appflow_model.h"
#include "bridge/catalog_load.h"
#include "bridge/jsonread.h"
#include "bridge/transcode.h"
#include "common/file.h"
#include "common/hash.h"
#include "common/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define STOP 1       /* find mode reached the flow it looks for, or a first part its end */
#define NOT_A_FLOW 2 /* the entry was a profile or a registration, handled already */
/* Objects and arrays nested deeper than this in one flow are refused while scanning (the
 * decoder's own limit is lower). */
#define DEPTH_MAX 128

/* The flow being read: decoded into the parser's arena, which the next flow reuses. */
typedef struct flow_buf {
  const char *open;    /* the flow's '{': where its errors are reported */
  const char *name_at; /* the flow's object, for "first defined at" */
  const char *name;
  size_t name_len;
  int status;
  const char *status_message;   /* in the arena; NULL for none */
  const char *account, *region; /* the entry's accountId and region (arena); NULL: the service's */
  Appflow__V1__CreateFlowRequest *req;
  af_tag *tags;
  size_t ntags;
} flow_buf;

typedef struct parser {
  const char *start; /* the buffer after any byte order mark: line 1, column 1 */
  const char *p, *end;
  af_flows_seeder *seeder; /* NULL in find mode, which only looks for a flow's first definition */
  uint64_t *seen;          /* hashes of the names stored so far (0: an empty slot) */
  size_t seen_n, seen_cap; /* seen_cap is a power of two */
  bool remember;           /* whether names are remembered (seen) to catch duplicates */
  af_hash_key seen_key;    /* for seen */
  const char *kept;        /* a mapped file: bytes from here on are still resident; else NULL */
  const char *find;        /* find mode: the name looked for, and where it was first defined */
  size_t find_len;
  const char *found;
  flow_buf *f;
  af_flows *svc;
  af_arena arena; /* the current flow's decoding */
  size_t count;
  af_seed_error *err;
  bool entities_only; /* a reload: only profiles' entities are read (and nothing stored) */
  size_t profiles, profiles_added, connectors, connectors_added;
  /* Reading one of two parts side by side (see load_split): */
  bool split;        /* what a part cannot do apart from the rest ends it (-1) */
  const char *stop;  /* the first part's end: where the second part's first flow begins */
  atomic_bool *quit; /* set by a part that ended early, so the other stops too */
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

static bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static void skip_ws(parser *ps) {
  const char *p = ps->p;
  while (p < ps->end && is_ws(*p))
    p++;
  ps->p = p;
}

static int peek(const parser *ps) { return ps->p < ps->end ? (unsigned char)*ps->p : -1; }

/* Eight bytes at a time, the (0x80) flags of those equal to c: the lowest flag is exact, a higher
 * one may be a borrow's echo; a flag at all means some byte of w is c. */
static uint64_t bytes_equal(uint64_t w, unsigned char c) {
  const uint64_t ones = UINT64_C(0x0101010101010101);
  uint64_t y = w ^ (ones * c);
  return (y - ones) & ~y & UINT64_C(0x8080808080808080);
}

static bool is_mark(char c, bool in_string) {
  if (in_string)
    return c == '"' || c == '\\';
  return c == '"' || c == '{' || c == '}' || c == '[' || c == ']';
}

/* The first byte in [p, end) that skipping a value looks at (in a string: '"' or '\\';
 * between strings: '"' or a bracket), or end. Words with none are passed eight bytes at a
 * time: the scan of a value's extent was a seventh of a large seed's start-up byte by byte. */
static const char *next_mark(const char *p, const char *end, bool in_string) {
  const uint64_t lower = UINT64_C(0x2020202020202020); /* '[' -> '{', ']' -> '}' */
  for (uint64_t w; p < end && (size_t)(end - p) >= sizeof w; p += sizeof w) {
    memcpy(&w, p, sizeof w); /* unaligned; which byte is flagged is found below, either end */
    uint64_t hit =
        in_string ? bytes_equal(w, '"') | bytes_equal(w, '\\')
                  : bytes_equal(w, '"') | bytes_equal(w | lower, '{') | bytes_equal(w | lower, '}');
    if (hit != 0)
      break;
  }
  while (p < end && !is_mark(*p, in_string))
    p++;
  return p < end ? p : end;
}

/* Skips one JSON value at ps->p, an object or array (its '{' or '['), keeping count of
 * nesting; strings' escapes are stepped over, not decoded. What it holds is left to the
 * decoder, which reports any error inside the value. */
static int skip_value(parser *ps) {
  const char *p = ps->p, *end = ps->end;
  int depth = 0;
  for (;;) {
    if ((p = next_mark(p, end, false)) == end) {
      ps->p = end;
      return fail(ps, end, "the file ends inside a flow");
    }
    if (*p == '"') {
      const char *open = p++;
      while ((p = next_mark(p, end, true)) < end && *p == '\\')
        p += 2; /* the backslash and the byte it escapes */
      if (p >= end) {
        ps->p = open;
        return fail(ps, open, "unterminated string: the file ends inside it");
      }
    } else if (*p == '{' || *p == '[') {
      if (++depth > DEPTH_MAX) {
        ps->p = p;
        return fail(ps, p, "a flow nests objects and arrays deeper than %d", DEPTH_MAX);
      }
    } else if (--depth == 0) {
      ps->p = p + 1;
      return 0;
    }
    p++;
  }
}

/* flowStatusMessage, a string of at most AF_STATUS_MESSAGE_MAX characters (or absent, null). */
static int read_status_message(parser *ps, const char *open, const af_jv *o) {
  const af_jv *m = af_jv_get(o, "flowStatusMessage");
  ps->f->status_message = NULL;
  if (m == NULL || m->type == AF_JV_NULL)
    return 0;
  if (m->type != AF_JV_STRING || m->u.string.len > AF_STATUS_MESSAGE_MAX)
    return fail(ps, open, "flowStatusMessage must be a string of at most %d bytes",
                AF_STATUS_MESSAGE_MAX);
  ps->f->status_message = m->u.string.s; /* the arena's, as the flow's other strings */
  return 0;
}

/* flowStatus (and flowStatusMessage) of the flow object o, whose text starts at open. */
static int read_status(parser *ps, const char *open, const af_jv *o, int *status) {
  const af_jv *v = af_jv_get(o, "flowStatus");
  if (v != NULL && v->type == AF_JV_NULL) /* null is absent, as everywhere in AWS JSON */
    v = NULL;
  const af_model_shape *shape =
      af_model_member_named(&af_model_CreateFlowResponse, "flowStatus")->shape;
  *status = 0;
  if (v != NULL && v->type == AF_JV_STRING)
    *status = af_model_enum_value(shape, v->u.string.s, v->u.string.len);
  bool bad = v != NULL && *status == 0;
  int rc = bad ? 0 : read_status_message(ps, open, o);
  if (bad)
    return fail(ps, open,
                "flowStatus must be one of Active, Deprecated, Deleted, Draft, Errored "
                "or Suspended");
  return rc;
}

/* The flow's tags as the seeder takes them; a key given twice keeps its last value. */
static bool tags_of(parser *ps) {
  flow_buf *f = ps->f;
  const Appflow__V1__CreateFlowRequest *req = f->req;
  f->ntags = 0;
  f->tags = af_arena_alloc(&ps->arena, (req->n_tags ? req->n_tags : 1) * sizeof *f->tags);
  for (size_t i = 0; f->tags != NULL && i < req->n_tags; i++) {
    size_t j = 0;
    while (j < f->ntags && strcmp(f->tags[j].key, req->tags[i]->key) != 0)
      j++;
    f->tags[j] = (af_tag){req->tags[i]->key, req->tags[i]->value ? req->tags[i]->value : ""};
    f->ntags += j == f->ntags;
  }
  return f->tags != NULL;
}

/* A flow the decoder could not read (e): a syntax error is reported where jansson found it in
 * the file, not at the flow's start with a line and column counted from the flow's own text;
 * anything else (a member of the wrong type) at the flow's start, in the decoder's words. */
static int fail_json(parser *ps, const char *open, size_t len, const af_error *e) {
  json_error_t je;
  json_t *o = json_loadb(open, len, JSON_REJECT_DUPLICATES, &je);
  if (o != NULL) {
    json_decref(o);
    return fail(ps, open, "%s: %s", af_err_type(e->code), e->message);
  }
  const char *at = open + (je.position > 0 && (size_t)je.position <= len ? je.position - 1 : 0);
  while (at > open && ((unsigned char)*at & 0xC0) == 0x80)
    at--; /* the character's first byte: its column */
  if (json_error_code(&je) == json_error_null_character)
    return fail(ps, at, "not valid JSON: a string holds \\u0000, which appflowd does not accept");
  char text[4 * JSON_ERROR_TEXT_LENGTH];
  af_escape(text, sizeof text, je.text, strnlen(je.text, sizeof je.text - 1));
  return fail(ps, at, "not valid JSON: %s", text);
}

/* ---- profiles and registrations ---- */

/* A create operation run on req as a door would (the model's checks included): 1 when it made
 * something, 0 when there was one already (a durable store keeps what it has), or -1 with e. */
static int create_entry(parser *ps, const char *op, ProtobufCMessage *req, af_error *e) {
  const af_rpc *rpc = af_flows_rpc_named(ps->svc, op);
  ProtobufCMessage *resp = af_arena_alloc(&ps->arena, rpc->output->sizeof_message);
  if (resp == NULL) {
    af_error_set(e, AF_ERR_INTERNAL_SERVER, "out of memory");
    return -1;
  }
  protobuf_c_message_init(rpc->output, resp);
  af_err rc =
      af_flows_seed_call_in(ps->svc, ps->f->account, ps->f->region, rpc, req, resp, &ps->arena, e);
  if (rc == AF_ERR_NAME_TAKEN) /* the store has it: kept */
    return 0;
  return rc == AF_OK ? 1 : -1;
}

/* An optional string member of an entry (absent or null: NULL), copied into the arena. */
static int read_string(parser *ps, const char *open, const af_jv *o, const char *member,
                       const char **out) {
  const af_jv *v = af_jv_get(o, member);
  *out = NULL;
  if (v == NULL || v->type == AF_JV_NULL)
    return 0;
  if (v->type != AF_JV_STRING)
    return fail(ps, open, "%s must be a string (%s)", member,
                strcmp(member, "accountId") == 0 ? "12 digits, like 000000000000"
                                                 : "an AWS region name, like us-east-1");
  *out = v->u.string.s; /* the arena's, and never holding NUL */
  return 0;
}

/* The entry's accountId and region: where it is made (absent: the service's own). The core
 * checks them as it checks a call's. */
static int read_scope(parser *ps, const char *open, const af_jv *o) {
  if (o->type != AF_JV_OBJECT)
    return 0; /* the decoder says what is wrong */
  if (read_string(ps, open, o, "accountId", &ps->f->account) != 0)
    return -1;
  return read_string(ps, open, o, "region", &ps->f->region);
}

/* o without its member `drop` (a seed's own member, not the request's); NULL when out of
 * memory. The caller frees it. */
static json_t *without(const json_t *o, const char *drop) {
  json_t *c = json_copy((json_t *)o);
  if (c != NULL)
    json_object_del(c, drop);
  return c;
}

/* A connector profile entry: CreateConnectorProfile's request plus an optional "entities"
 * (what the profile's connector contains, as data/entities.json gives a type's). */
static int parse_profile(parser *ps, const char *open, json_t *o) {
  json_t *entities = json_object_get(o, "entities");
  json_t *req_json = entities != NULL ? without(o, "entities") : json_incref(o);
  ProtobufCMessage *m = NULL;
  af_error e;
  af_error_start(&e, AF_ERR_SERIALIZATION);
  char q[1100];
  af_err rc = req_json != NULL
                  ? af_bridge_json_tree_to_message(&af_model_CreateConnectorProfileRequest,
                                                   req_json, &ps->arena, &m, &e)
                  : af_error_set(&e, AF_ERR_INTERNAL_SERVER, "out of memory");
  json_decref(req_json);
  if (rc != AF_OK)
    return fail(ps, open, "connector profile: %s: %s", af_err_type(e.code), e.message);
  Appflow__V1__CreateConnectorProfileRequest *req = (Appflow__V1__CreateConnectorProfileRequest *)m;
  const char *name = req->connector_profile_name;
  af_escape(q, sizeof q, name, strlen(name));
  int made = ps->entities_only ? 0 : create_entry(ps, "CreateConnectorProfile", m, &e);
  if (made < 0)
    return fail(ps, open, "connector profile '%s': %s: %s", q, af_err_type(e.code), e.message);
  ps->profiles++;
  ps->profiles_added += (size_t)made;
  char why[1024];
  if (entities != NULL &&
      af_catalog_set_entities_json(af_flows_catalog(ps->svc), (int)req->connector_type, name,
                                   entities, "entities", why, sizeof why) != 0)
    return fail(ps, open, "connector profile '%s': %s", q, why);
  return NOT_A_FLOW;
}

/* A custom connector entry: RegisterConnector's request. */
static int parse_registration(parser *ps, const char *open, json_t *o) {
  ProtobufCMessage *m = NULL;
  af_error e;
  af_error_start(&e, AF_ERR_SERIALIZATION);
  if (af_bridge_json_tree_to_message(&af_model_RegisterConnectorRequest, o, &ps->arena, &m, &e) !=
      AF_OK)
    return fail(ps, open, "connector registration: %s: %s", af_err_type(e.code), e.message);
  int made = ps->entities_only ? 0 : create_entry(ps, "RegisterConnector", m, &e);
  if (made < 0)
    return fail(ps, open, "connector registration: %s: %s", af_err_type(e.code), e.message);
  ps->connectors++;
  ps->connectors_added += (size_t)made;
  return NOT_A_FLOW;
}

/* A profile or registration entry at open[0..len), read by jansson (read once already, so only
 * memory can fail): the catalog takes a profile's entities as jansson's tree. */
static int parse_connector(parser *ps, const char *open, size_t len, bool profile) {
  json_error_t je;
  json_t *o = json_loadb(open, len, JSON_REJECT_DUPLICATES, &je);
  if (o == NULL)
    return fail(ps, open, "out of memory reading the seed");
  int rc = profile ? parse_profile(ps, open, o) : parse_registration(ps, open, o);
  json_decref(o);
  return rc;
}

/* One flow object at ps->p, decoded into ps->f: CreateFlow's request plus flowStatus, checked
 * as CreateFlow checks it. In find mode only its name is wanted. */
static int parse_flow(parser *ps) {
  flow_buf *f = ps->f;
  if (peek(ps) != '{')
    return fail_type(ps, "expected '{' to start a flow");
  f->open = f->name_at = ps->p;
  af_arena_reset(&ps->arena);
  af_error e;
  af_error_start(&e, AF_ERR_SERIALIZATION);
  ProtobufCMessage *m = NULL;
  /* read once: the request's members for the transcoder, flowStatus for the reader. A flow is
   * read where it starts, which finds its end too; one that is not JSON is measured first and
   * read again whole, so its fault is told as before (a second scan of every flow was an
   * eighth of reading a large seed). */
  af_json_error je;
  size_t len;
  const af_jv *o =
      af_json_read_prefix(f->open, (size_t)(ps->end - f->open), DEPTH_MAX, &ps->arena, &je, &len);
  if (o != NULL) {
    ps->p = f->open + len;
  } else {
    if (skip_value(ps) != 0)
      return -1;
    len = (size_t)(ps->p - f->open);
    af_arena_reset(&ps->arena);
    o = af_json_read(f->open, len, &ps->arena, &je);
  }
  if (o == NULL)
    return je.out_of_memory ? fail(ps, f->open, "out of memory reading the seed")
                            : fail_json(ps, f->open, len, &e);
  if (read_scope(ps, f->open, o) != 0)
    return -1;
  bool profile = af_jv_get(o, "connectorProfileName") != NULL;
  if (o->type == AF_JV_OBJECT && af_jv_get(o, "flowName") == NULL &&
      (profile || af_jv_get(o, "connectorLabel") != NULL)) {
    if (ps->split) /* flows may name it: read in order */
      return -1;
    /* not a flow: a profile, or a custom connector (looked for again only to find a flow) */
    return ps->seeder == NULL && !ps->entities_only ? NOT_A_FLOW
                                                    : parse_connector(ps, f->open, len, profile);
  }
  if (ps->entities_only)
    return NOT_A_FLOW;
  af_err rc = af_bridge_jv_to_message(&af_model_CreateFlowRequest, o, &ps->arena, &m, &e);
  int status_rc = rc == AF_OK && ps->seeder != NULL ? read_status(ps, f->open, o, &f->status) : 0;
  if (rc != AF_OK)
    return e.code == AF_ERR_SERIALIZATION
               ? fail_json(ps, f->open, len, &e)
               : fail(ps, f->open, "%s: %s", af_err_type(e.code), e.message);
  f->req = (Appflow__V1__CreateFlowRequest *)m;
  if (f->req->flow_name == NULL)
    return fail(ps, f->open, "missing required member \"flowName\"");
  f->name = f->req->flow_name;
  f->name_len = strlen(f->name);
  if (ps->seeder == NULL) /* find mode */
    return 0;
  if (status_rc != 0)
    return -1;
  char q[1100];
  if (af_flows_check_create(ps->svc, f->req, &e) != AF_OK)
    return fail(ps, f->open, "flow '%s': %s", af_escape(q, sizeof q, f->name, f->name_len),
                e.message);
  af_flow_spec scope = {.account = f->account, .region = f->region};
  if (af_flows_seed_check_profiles(ps->seeder, &scope, f->req, &e) != AF_OK)
    return fail(ps, f->open, "flow '%s': %s: %s", af_escape(q, sizeof q, f->name, f->name_len),
                af_err_type(e.code), e.message);
  if (!tags_of(ps))
    return fail(ps, f->open, "out of memory reading the seed");
  return 0;
}

/* ---- storing ---- */

static int parse_array(parser *ps);

/* The longest "ACCOUNT/REGION/NAME" a flow is told apart by: two flows may share a name in two
 * accounts or regions. */
#define SCOPED_MAX (2 * AF_STORE_SCOPE_MAX + AF_FLOW_NAME_MAX * 4 + 3)

/* The flow's name with its account and region (the service's when the entry names none), in
 * buf (SCOPED_MAX + 1 bytes); its length. */
static size_t scoped_name(const parser *ps, char *buf) {
  const flow_buf *f = ps->f;
  const char *account = f->account ? f->account : af_flows_account(ps->svc);
  const char *region = f->region ? f->region : af_flows_region(ps->svc);
  int n = snprintf(buf, SCOPED_MAX + 1, "%.*s/%.*s/%.*s", AF_STORE_SCOPE_MAX, account,
                   AF_STORE_SCOPE_MAX, region, (int)f->name_len, f->name);
  return n < 0 ? 0 : ((size_t)n > SCOPED_MAX ? SCOPED_MAX : (size_t)n);
}

/* A name read before in this buffer (its hash was seen): find its first definition by parsing
 * again up to it. That costs a second pass on this one error, where remembering every name's
 * line would cost memory on every load. Returns 0 when no earlier flow has the name (two names
 * shared a hash), else the error. */
static int fail_duplicate(parser *ps) {
  flow_buf *f = ps->f;
  char name[SCOPED_MAX + 1], q[1100]; /* the name was checked: 256 characters */
  const char *at = f->name_at, *open = f->open;
  size_t len = scoped_name(ps, name);
  af_escape(q, sizeof q, f->name, f->name_len);
  af_seed_error ignored;
  parser finder = {.start = ps->start,
                   .p = ps->start,
                   .end = ps->end,
                   .find = name,
                   .find_len = len,
                   .f = f,
                   .svc = ps->svc,
                   .err = &ignored};
  af_arena_init(&finder.arena);
  int rc = parse_array(&finder);
  af_arena_destroy(&finder.arena);
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

/* Where the hash h is in ps->seen, or the empty slot where it would go. */
static size_t seen_slot(const parser *ps, uint64_t h) {
  size_t j = (size_t)h & (ps->seen_cap - 1);
  while (ps->seen[j] != 0 && ps->seen[j] != h)
    j = (j + 1) & (ps->seen_cap - 1);
  return j;
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
  uint64_t h = af_hash64(&ps->seen_key, name, len);
  h += h == 0;
  size_t j = seen_slot(ps, h);
  if (ps->seen[j] == h)
    return true;
  ps->seen[j] = h;
  ps->seen_n++;
  return false;
}

/* Whether a name one part remembered the other part remembered too (both with one key). */
static bool seen_by_both(const parser *a, const parser *b) {
  for (size_t i = 0; b->seen_n > 0 && i < a->seen_cap; i++)
    if (a->seen[i] != 0 && b->seen[seen_slot(b, a->seen[i])] == a->seen[i])
      return true;
  return false;
}

/* Find mode: stops at the first flow of the name looked for. */
static int find_step(parser *ps) {
  flow_buf *f = ps->f;
  char scoped[SCOPED_MAX + 1];
  size_t len = scoped_name(ps, scoped);
  if (len != ps->find_len || memcmp(scoped, ps->find, len) != 0)
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
 * the store answers at once and was empty: its own insert then says a name is taken, and only
 * this file can have taken it - a million names' hashes spared. A store that answers later
 * says so too late to stop at the second definition, so reading in order it remembers. */
static bool remembers_names(af_flows *svc, bool empty) {
  return !empty || !af_flows_store(svc)->answers_at_once;
}

static int store(parser *ps) {
  flow_buf *f = ps->f;
  if (ps->seeder == NULL)
    return find_step(ps);
  char scoped[SCOPED_MAX + 1];
  if (ps->remember && seen_before(ps, scoped, scoped_name(ps, scoped))) {
    if (ps->split) /* which came first, and whether at all, is for the whole */
      return -1;
    int rc = fail_duplicate(ps);
    if (rc != 0)
      return rc;
  }
  af_flow_spec spec = {.name = f->name,
                       .name_len = f->name_len,
                       .trigger = f->req->trigger_config->trigger_type,
                       .status = (Appflow__V1__FlowStatus)f->status, /* 0: as CreateFlow makes it */
                       .tags = f->tags,
                       .ntags = f->ntags,
                       .definition = f->req,
                       .status_message = f->status_message,
                       .account = f->account,
                       .region = f->region};
  af_error e;
  int added = af_flows_seed_add(ps->seeder, &spec, &e);
  if (added == 1 && !ps->remember) /* the store was empty: only this file put it there */
    return ps->split ? -1 : fail_duplicate(ps); /* a part: which came first is for the whole */
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

static int parse_items(parser *ps);

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
  return parse_items(ps);
}

/* The array's flows from the one at ps->p to the closing ']' and the end of the text; a first
 * part (ps->stop) ends with STOP exactly where the second part begins, else -1. */
static int parse_items(parser *ps) {
  for (;;) {
    if (ps->stop != NULL && ps->p >= ps->stop)
      return ps->p == ps->stop ? STOP : -1;
    if (ps->split && atomic_load_explicit(ps->quit, memory_order_relaxed))
      return -1;
    int rc = parse_flow(ps);
    if (rc == 0)
      rc = store(ps);
    if (rc == NOT_A_FLOW)
      rc = 0;
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
  if (ps->entities_only)
    return rc;
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
    *res = (af_seed_result){
        ps->count,           added, kept, ps->profiles, ps->profiles_added, ps->connectors,
        ps->connectors_added};
  return rc;
}

/* ---- two parts side by side ---- */

/* A seed this large, loaded by a caller that has the service to itself (start-up), is read in
 * two parts on two threads. */
#define SPLIT_MIN ((size_t)4 << 20)

/* A guess at where the second part begins is given up past this many bytes of it, and after
 * this many guesses: a guess inside a string may scan far before it fails. */
#define PROBE_MAX ((size_t)1 << 20)
#define GUESSES_MAX 256

/* Whether the value at `at` is a flow object: one with a string flowName at its top, within
 * PROBE_MAX bytes. */
static bool is_flow_at(const parser *ps, const char *at) {
  af_seed_error ignored;
  size_t room = (size_t)(ps->end - at);
  /* start: an error's position is counted from there, not from the file's start */
  parser probe = {
      .start = at, .p = at, .end = at + (room < PROBE_MAX ? room : PROBE_MAX), .err = &ignored};
  if (skip_value(&probe) != 0)
    return false;
  af_arena arena;
  af_arena_init(&arena);
  af_json_error je;
  const af_jv *o = af_json_read(at, (size_t)(probe.p - at), &arena, &je);
  const af_jv *name = af_jv_get(o, "flowName");
  bool flow = name != NULL && name->type == AF_JV_STRING;
  af_arena_destroy(&arena);
  return flow;
}

/* Where the second part may begin: the first flow past the middle of the text that follows a
 * "}," between white space. Only a guess (a flow's own members hold "}, {" too): the first
 * part checks it by arriving exactly there. NULL when there is none before three quarters. */
static const char *split_point(const parser *ps) {
  size_t len = (size_t)(ps->end - ps->start);
  const char *p = ps->start + len / 2, *limit = ps->start + len / 4 * 3;
  int guesses = 0;
  while (p < limit && guesses < GUESSES_MAX && (p = memchr(p, ',', (size_t)(limit - p))) != NULL) {
    const char *back = p, *q = p + 1;
    while (back > ps->start && is_ws(back[-1]))
      back--;
    while (q < ps->end && is_ws(*q))
      q++;
    if (back > ps->start && back[-1] == '}' && q < ps->end && *q == '{') {
      if (is_flow_at(ps, q))
        return q;
      guesses++;
    }
    p++;
  }
  return NULL;
}

typedef struct part {
  parser ps;
  flow_buf f;
  af_seed_error err; /* not reported: the whole file is read again in order to say it */
  int rc;
} part;

static void *second_part(void *arg) {
  part *pt = arg;
  pt->rc = parse_items(&pt->ps);
  if (pt->rc != 0)
    atomic_store(pt->ps.quit, true);
  return NULL;
}

/* A part reading from `from` (to the text's end) into its own seeder. */
static void part_init(part *pt, const parser *whole, const char *from, af_flows_seeder *sd,
                      atomic_bool *quit) {
  pt->ps = (parser){.start = whole->start,
                    .p = from,
                    .end = whole->end,
                    .seeder = sd,
                    .kept = whole->kept != NULL ? from : NULL,
                    .f = &pt->f,
                    .svc = whole->svc,
                    .err = &pt->err,
                    .remember = whole->remember,
                    .seen_key = whole->seen_key,
                    .split = true,
                    .quit = quit};
  af_arena_init(&pt->ps.arena);
}

/* Both parts' seeders ended; whether each stored what it read. */
static bool parts_end(part pt[2], af_seed_result *res) {
  size_t added[2] = {0, 0}, kept[2] = {0, 0};
  af_error e;
  bool ok = true;
  for (int i = 0; i < 2; i++) {
    if (pt[i].ps.seeder != NULL)
      ok &= af_flows_seed_end(pt[i].ps.seeder, &added[i], &kept[i], &e) == 0;
    else
      ok = false;
    af_arena_destroy(&pt[i].ps.arena);
  }
  /* a name both parts read is given twice (or two names' hashes met): read again in order */
  ok &= !seen_by_both(&pt[0].ps, &pt[1].ps);
  for (int i = 0; i < 2; i++)
    free(pt[i].ps.seen);
  if (res != NULL)
    *res = (af_seed_result){.flows = pt[0].ps.count + pt[1].ps.count,
                            .added = added[0] + added[1],
                            .kept = kept[0] + kept[1]};
  return ok;
}

/* What marks a profile (its configuration) or a registration (its label): a text with neither
 * holds only flows. Each is shorter than MARK_MAX. */
static const char *const entry_marks[] = {"\"connectorProfileConfig\"", "\"connectorLabel\""};
#define MARK_MAX 32

static bool marked(const char *text, size_t len) {
  for (size_t i = 0; i < sizeof entry_marks / sizeof *entry_marks; i++)
    if (memmem(text, len, entry_marks[i], strlen(entry_marks[i])) != NULL)
      return true;
  return false;
}

/* Sets *found when a mark begins in map[from..to) of the mapped file map[0..len), read a step at a
 * time, each step's pages let go once scanned (MADV_DONTNEED: the file's pages stay in the page
 * cache, only this process's mapping of them goes), so the scan leaves none of the file
 * resident. Through the mapping, not read() into a buffer: copying 475 MB out of the page cache
 * was a tenth of a million-flow start-up. Stops early once *found (another share found one). */
static void range_marked(const char *map, size_t len, size_t from, size_t to, atomic_bool *found) {
  enum { STEP = 4 << 20 };
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const char *released = (const char *)((uintptr_t)(map + from) & ~(page - 1));
  for (size_t at = from; at < to && !atomic_load_explicit(found, memory_order_relaxed);
       at += STEP) {
    size_t end = to - at < STEP ? to : at + STEP; /* marks that begin before it */
    size_t past = len - end < MARK_MAX - 1 ? len : end + MARK_MAX - 1; /* ... end before this */
    if (marked(map + at, past - at)) {
      atomic_store(found, true);
      return;
    }
    const char *upto = (const char *)((uintptr_t)(map + end) & ~(page - 1));
    if (upto > released) {
      madvise((void *)released, (size_t)(upto - released), MADV_DONTNEED);
      released = upto;
    }
  }
}

typedef struct mark_share {
  const char *map;
  size_t len, from, to;
  atomic_bool *found;
} mark_share;

static void *scan_share(void *arg) {
  mark_share *m = arg;
  range_marked(m->map, m->len, m->from, m->to, m->found);
  return NULL;
}

/* Whether the mapped file map[0..len) marks a profile or a registration anywhere: its halves
 * scanned side by side (one thread scanned a million-flow file in about a third of a second,
 * before either part of the load could begin). */
static bool file_marked(const char *map, size_t len) {
  atomic_bool found;
  atomic_init(&found, false);
  mark_share second = {map, len, len / 2, len, &found};
  pthread_t t;
  bool two = pthread_create(&t, NULL, scan_share, &second) == 0;
  range_marked(map, len, 0, two ? len / 2 : len, &found);
  if (two)
    pthread_join(t, NULL);
  return atomic_load(&found);
}

/* Reads the array in two parts at once: the caller's thread from its start to split_point, a
 * second thread from there to its end. Only a file every flow of which is stored as it is
 * read, with no profile or registration (which later flows may name) and no name given twice,
 * loads this way: anything else ends both parts, and 1 says to read the file again in order,
 * which reports the first error where it is. A store that was empty is emptied first; one
 * that held flows keeps what the parts added, which the read in order then finds there (*added
 * says how many). 0 when loaded (*res set), 1, or -1 with err set when the store could not be
 * emptied. */
static int load_split(parser *whole, af_seed_result *res, size_t *added) {
  const char *at = split_point(whole);
  if (at == NULL)
    return 1;
  atomic_bool quit;
  atomic_init(&quit, false);
  part pt[2];
  af_flows_seeder *first = af_flows_seed_begin(whole->svc);
  part_init(&pt[0], whole, whole->p, first, &quit);
  part_init(&pt[1], whole, at,
            first ? af_flows_seed_begin_at(whole->svc, af_flows_seed_time(first)) : NULL, &quit);
  pt[0].ps.stop = at;
  pthread_t second;
  bool started = pt[0].ps.seeder != NULL && pt[1].ps.seeder != NULL &&
                 pthread_create(&second, NULL, second_part, &pt[1]) == 0;
  if (started) {
    pt[0].rc = parse_array(&pt[0].ps);
    if (pt[0].rc != STOP)
      atomic_store(&quit, true);
    pthread_join(second, NULL);
  }
  af_seed_result got;
  bool stored = parts_end(pt, &got);
  /* In a store that was empty, a flow kept rather than added was named twice in the file: a
   * store that answers later says so only here. */
  if (started && stored && pt[0].rc == STOP && pt[1].rc == 0 &&
      (whole->remember || got.kept == 0)) {
    if (res != NULL)
      *res = got;
    return 0;
  }
  if (whole->remember) { /* not emptied: it held flows before */
    *added = got.added;
    return 1;
  }
  af_error e;
  if (af_flows_reset(whole->svc, NULL, &e) == AF_OK)
    return 1;
  whole->err->line = whole->err->column = 0;
  snprintf(whole->err->message, sizeof whole->err->message,
           "cannot empty the store to read the seed again in order: %.400s", e.message);
  return -1;
}

/* How load reads. */
enum {
  LOAD_MAPPED = 1,
  LOAD_ENTITIES = 2,
  LOAD_ALONE = 4,
  LOAD_UNMARKED = 8 /* the file holds no mark of a profile or registration (file_marked) */
};

static int load(af_flows *svc, const char *buf, size_t len, unsigned how, af_seed_result *res,
                af_seed_error *err) {
  bool mapped = how & LOAD_MAPPED, entities_only = how & LOAD_ENTITIES;
  af_seed_error ignored;
  if (err == NULL)
    err = &ignored;
  *err = (af_seed_error){0};
  if (res != NULL)
    *res = (af_seed_result){0};
  if (buf == NULL) {
    buf = "";
    len = 0;
  }
  /* A UTF-8 byte order mark is allowed (RFC 8259 section 8.1) and is not a column. */
  size_t skip = len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
  /* A store others may write (PostgreSQL's replicas) is never taken for empty: another
   * replica's flows could be in it by the time the parts end, to be counted as names given
   * twice and emptied away. */
  bool empty = !entities_only && !af_flows_store(svc)->shared && af_flows_store_empty(svc);
  bool remember = !entities_only && remembers_names(svc, empty);
  /* A mapped file was scanned for marks through its descriptor; a buffer is here already. */
  size_t split_added = 0; /* what two parts added before a read in order */
  if ((how & LOAD_ALONE) && !entities_only && len - skip >= SPLIT_MIN &&
      sysconf(_SC_NPROCESSORS_ONLN) > 1 &&
      (mapped ? (how & LOAD_UNMARKED) != 0 : !marked(buf, len))) {
    parser whole = {.start = buf + skip,
                    .p = buf + skip,
                    .end = buf + len,
                    .kept = mapped ? buf : NULL,
                    .svc = svc,
                    .remember = !empty, /* else the store's own kept flows say it */
                    .seen_key = af_hash_key_random(),
                    .err = err};
    int rc = load_split(&whole, res, &split_added);
    if (rc <= 0)
      return rc;
  }
  parser ps = {.start = buf + skip,
               .p = buf + skip,
               .end = buf + len,
               .seeder = entities_only ? NULL : af_flows_seed_begin(svc),
               .remember = remember,
               .seen_key = af_hash_key_random(),
               .entities_only = entities_only,
               .kept = mapped ? buf : NULL,
               .svc = svc,
               .err = err};
  af_arena_init(&ps.arena);
  ps.f = malloc(sizeof *ps.f);
  if (ps.f == NULL || (ps.seeder == NULL && !entities_only)) {
    free(ps.f);
    if (ps.seeder != NULL) /* only to free it: it seeded nothing, and this load fails anyway */
      AF_IGNORE(af_flows_seed_end(ps.seeder, NULL, NULL, &(af_error){0}));
    snprintf(err->message, sizeof err->message, "out of memory reading the seed");
    af_arena_destroy(&ps.arena);
    return -1;
  }
  int rc = run(&ps, res);
  if (rc == 0 && res != NULL) { /* the parts' flows, kept by the read in order */
    res->added += split_added;
    res->kept -= split_added;
  }
  af_arena_destroy(&ps.arena);
  free(ps.f);
  free(ps.seen);
  return rc == 0 ? 0 : -1;
}

int af_seed_load_buffer(af_flows *svc, const char *buf, size_t len, af_seed_result *res,
                        af_seed_error *err) {
  return load(svc, buf, len, 0, res, err);
}

int af_seed_load_buffer_alone(af_flows *svc, const char *buf, size_t len, af_seed_result *res,
                              af_seed_error *err) {
  return load(svc, buf, len, LOAD_ALONE, res, err);
}

int af_seed_reload_entities(af_flows *svc, const char *path, char *msg, size_t msgsz) {
  char *buf = NULL;
  size_t len = 0;
  bool opened;
  int e = af_read_file(path, SIZE_MAX / 4, &buf, &len, &opened);
  if (e != 0) {
    snprintf(msg, msgsz, "cannot read the seed file: %s", strerror(e));
    return -1;
  }
  af_seed_error err;
  af_catalog_clear_profile_entities(af_flows_catalog(svc));
  int rc = load(svc, buf, len, LOAD_ENTITIES, NULL, &err);
  free(buf);
  if (rc != 0)
    snprintf(msg, msgsz, "the seed file, line %d, column %d: %.900s", err.line, err.column,
             err.message);
  return rc;
}

/* ---- files ---- */

/* The whole stream into a malloc'd buffer. 0, or an errno value. */
static int fail_io(af_seed_error *err, const char *what, int e) {
  err->line = 0;
  err->column = 0;
  snprintf(err->message, sizeof err->message, "%s: %s", what, strerror(e));
  return -1;
}

static int load_file(af_flows *svc, const char *path, unsigned how, af_seed_result *res,
                     af_seed_error *err) {
  af_seed_error ignored;
  if (err == NULL)
    err = &ignored;
  if (res != NULL)
    *res = (af_seed_result){0};
  /* Mapped, so the parsed text can be dropped as it loads (see release_parsed). A file cut
   * short while it loads would fault (SIGBUS): the seed is the operator's own file, read
   * once at start-up, so that is left as the one way a seed can stop appflowd abruptly. */
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map != MAP_FAILED) {
      if ((how & LOAD_ALONE) && (size_t)st.st_size >= SPLIT_MIN &&
          !file_marked(map, (size_t)st.st_size))
        how |= LOAD_UNMARKED;
      int rc = load(svc, map, (size_t)st.st_size, how | LOAD_MAPPED, res, err);
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
  int rc = load(svc, buf, len, how, res, err);
  free(buf);
  return rc;
}

int af_seed_load_file(af_flows *svc, const char *path, af_seed_result *res, af_seed_error *err) {
  return load_file(svc, path, 0, res, err);
}

int af_seed_load_file_alone(af_flows *svc, const char *path, af_seed_result *res,
                            af_seed_error *err) {
  return load_file(svc, path, LOAD_ALONE, res, err);
}
