#include "bridge/route.h"

#include "bridge/transcode.h"
#include "common/hex.h"
#include "common/latch.h"
#include "common/utf8.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* At most this many operations share one path template (AppFlow: 3 on /tags/{resourceArn}). */
#define MAX_METHODS 8

/* ---- percent-decoding ---- */

/* The byte the %XX at s[i] (i < n, s[i] == '%') stands for; -1 when it is no escape. */
static int escape_at(const char *s, size_t n, size_t i) {
  int hi = i + 2 < n ? af_hex_value((unsigned char)s[i + 1]) : -1;
  int lo = hi >= 0 ? af_hex_value((unsigned char)s[i + 2]) : -1;
  return lo >= 0 ? hi * 16 + lo : -1;
}

/* True when the raw s[0..n) decodes to lit exactly ('+' a space when plus_space). Nearly every
 * segment and name comes unescaped, and then only a compare of the two tells: each request
 * tries the segment against every template's until one fits, a byte at a time on the path
 * below. */
static bool decodes_to(const char *s, size_t n, bool plus_space, const char *lit, size_t lit_len) {
  if (memchr(s, '%', n) == NULL && !(plus_space && memchr(s, '+', n) != NULL))
    return n == lit_len && memcmp(s, lit, n) == 0;
  size_t k = 0;
  for (size_t i = 0; i < n; k++) {
    int c = (unsigned char)s[i];
    if (c == '%' && (c = escape_at(s, n, i)) < 0)
      return false;
    if (s[i] == '+' && plus_space)
      c = ' ';
    i += s[i] == '%' ? 3 : 1;
    if (k >= lit_len || (unsigned char)lit[k] != c)
      return false;
  }
  return k == lit_len;
}

af_err af_bridge_percent_decode(const char *s, size_t n, bool plus_space, const char *what,
                                af_arena *arena, const char **out, af_error *err) {
  char *d = af_arena_alloc(arena, n + 1), esc[64];
  size_t k = 0;
  if (d == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
  for (size_t i = 0; i < n; k++) {
    int c = (unsigned char)s[i];
    if (c == '%' && (c = escape_at(s, n, i)) < 0)
      return af_error_set(err, AF_ERR_SERIALIZATION,
                          "the %s has '%s', which is no percent-escape: '%%' must be followed by "
                          "two hex digits",
                          what, af_escape(esc, sizeof esc, s + i, n - i < 3 ? n - i : 3));
    if (c == '\0')
      return af_error_set(err, AF_ERR_SERIALIZATION,
                          "the %s holds %%00 (a NUL byte), which appflowd does not accept", what);
    d[k] = s[i] == '+' && plus_space ? ' ' : (char)c;
    i += s[i] == '%' ? 3 : 1;
  }
  d[k] = '\0';
  if (!af_utf8_valid(d, k))
    return af_error_set(err, AF_ERR_SERIALIZATION, "the %s is not UTF-8 once percent-decoded",
                        what);
  *out = d;
  return AF_OK;
}

/* ---- matching ---- */

/* A raw (still encoded) piece of the target. */
typedef struct span {
  const char *p;
  size_t n;
} span;

/* The segment of s[0..n) that starts at i (after a '/'), up to the next '/' or the end. */
static span segment(const char *s, size_t n, size_t i) {
  const char *slash = memchr(s + i, '/', n - i);
  return (span){s + i, slash ? (size_t)(slash - (s + i)) : n - i};
}

/* A template whose first segment is a literal starting with another byte than the path's
 * (unescaped) first one cannot fit: most templates are told apart by this alone, before fits
 * scans them. */
static bool first_byte_differs(const char *tmpl, span path) {
  return tmpl[0] == '/' && tmpl[1] != '{' && path.n > 1 && path.p[1] != '%' && path.p[1] != tmpl[1];
}

/* True when path fits the template; the raw segment of each label goes to labels[]. */
static bool fits(const char *tmpl, span path, span labels[AF_BRIDGE_MAX_LABELS], size_t *nlabels) {
  size_t ti = 0, pi = 0, tn;
  *nlabels = 0;
  if (path.n == 0 || path.p[0] != '/' || first_byte_differs(tmpl, path))
    return false;
  tn = strlen(tmpl);
  while (ti < tn && pi < path.n) { /* both at a '/' */
    span t = segment(tmpl, tn, ti + 1), p = segment(path.p, path.n, pi + 1);
    if (t.n > 0 && t.p[0] == '{') {
      if (p.n == 0 || *nlabels == AF_BRIDGE_MAX_LABELS)
        return false;
      labels[(*nlabels)++] = p;
    } else if (!decodes_to(p.p, p.n, false, t.p, t.n)) {
      return false;
    }
    ti += 1 + t.n;
    pi += 1 + p.n;
  }
  return ti == tn && pi == path.n;
}

/* Sorts the methods (a few) for a stable Allow header. */
static void sort_methods(const char **m, size_t n) {
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && strcmp(m[j - 1], m[j]) > 0; j--) {
      const char *t = m[j];
      m[j] = m[j - 1];
      m[j - 1] = t;
    }
}

/* "DELETE, GET, POST" in the arena; NULL when out of memory. */
static const char *join_methods(const char **m, size_t n, af_arena *arena) {
  size_t len = 1;
  for (size_t i = 0; i < n; i++)
    len += strlen(m[i]) + 2;
  char *out = af_arena_alloc(arena, len), *o = out;
  for (size_t i = 0; out != NULL && i < n; i++)
    o += snprintf(o, len - (size_t)(o - out), "%s%s", i ? ", " : "", m[i]);
  return out;
}

/* "POST", "GET or POST", "DELETE, GET or POST": for the 405's message. */
static void say_methods(const char **m, size_t n, char *dst, size_t dstsz) {
  size_t o = 0;
  dst[0] = '\0';
  for (size_t i = 0; i < n && o < dstsz; i++) {
    const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
    int w = snprintf(dst + o, dstsz - o, "%s%s", sep, m[i]);
    o += w > 0 ? (size_t)w : 0;
  }
}

static af_err unknown_operation(span path, af_error *err) {
  char esc[256];
  return af_error_set(err, AF_ERR_UNKNOWN_OPERATION,
                      "no operation at %s: appflowd serves AppFlow's REST-JSON routes, such as "
                      "POST /create-flow, POST /stop-flow and GET /tags/{resourceArn}",
                      af_escape(esc, sizeof esc, path.p, path.n));
}

static af_err method_not_allowed(const char *tmpl, const char **methods, size_t n, af_arena *arena,
                                 af_bridge_match *m, af_error *err) {
  char list[128];
  sort_methods(methods, n);
  say_methods(methods, n, list, sizeof list);
  m->allow = join_methods(methods, n, arena);
  if (m->allow == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
  return af_error_set(err, AF_ERR_METHOD_NOT_ALLOWED, "%s takes %s only", tmpl, list);
}

/* Whether methods[0..n) holds method already. */
static bool listed(const char **methods, size_t n, const char *method) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(methods[i], method) == 0)
      return true;
  return false;
}

/* The operation of method at path, or an error naming why there is none. */
static af_err find_route(const char *method, span path, af_arena *arena, af_bridge_match *m,
                         span labels[AF_BRIDGE_MAX_LABELS], size_t *nlabels, af_error *err) {
  const char *methods[MAX_METHODS];
  const char *tmpl = NULL;
  size_t n = 0;
  for (size_t i = 0; i < af_model_operation_count; i++) {
    const af_model_operation *op = &af_model_operations[i];
    if (!fits(op->uri, path, labels, nlabels))
      continue;
    if (strcmp(op->method, method) == 0) {
      m->op = op;
      return AF_OK;
    }
    tmpl = tmpl ? tmpl : op->uri;
    if (n < MAX_METHODS && !listed(methods, n, op->method))
      methods[n++] = op->method;
  }
  if (n == 0)
    return unknown_operation(path, err);
  return method_not_allowed(tmpl, methods, n, arena, m, err);
}

static af_err too_many(const af_bridge_match *m, const char *what, af_error *err) {
  return af_error_set(err, AF_ERR_INTERNAL_SERVER,
                      "%s binds more %s than the AWS door holds (route.h's limits)", m->op->name,
                      what);
}

/* Each label of the route's template (in order) bound to the member it names. */
static af_err bind_labels(af_bridge_match *m, const span *labels, size_t nlabels, af_arena *arena,
                          af_error *err) {
  const char *t = m->op->uri;
  for (size_t i = 0; i < nlabels; i++) {
    const char *open = strchr(t, '{'), *close = open ? strchr(open, '}') : NULL;
    size_t len = close ? (size_t)(close - open - 1) : 0;
    if (len > 0 && open[len] == '+') /* a greedy label {key+}: its name lacks the '+' */
      len--;
    char *member = close ? af_arena_strndup(arena, open + 1, len) : NULL;
    const char **value = af_arena_alloc(arena, sizeof *value);
    char what[96];
    if (member == NULL || value == NULL)
      return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    snprintf(what, sizeof what, "path's label {%s}", member);
    af_err rc = af_bridge_percent_decode(labels[i].p, labels[i].n, false, what, arena, value, err);
    if (rc != AF_OK)
      return rc;
    if (m->nbindings == AF_BRIDGE_MAX_BINDINGS)
      return too_many(m, "labels", err);
    m->bindings[m->nbindings++] = (af_bridge_binding){AF_MODEL_URI, member, value, 1};
    t = close + 1;
  }
  return AF_OK;
}

/* The name=value pair of the query starting at *i, which moves past it and its '&'. A pair
 * without '=' has an empty value. */
static void next_pair(span query, size_t *i, span *name, span *value) {
  span pair = {query.p + *i, 0};
  const char *amp = memchr(pair.p, '&', query.n - *i);
  pair.n = amp ? (size_t)(amp - pair.p) : query.n - *i;
  const char *eq = memchr(pair.p, '=', pair.n);
  *name = (span){pair.p, eq ? (size_t)(eq - pair.p) : pair.n};
  *value = eq ? (span){eq + 1, pair.n - name->n - 1} : (span){pair.p + pair.n, 0};
  *i += pair.n + 1;
}

static bool is_param(span name, const char *param) {
  return decodes_to(name.p, name.n, true, param, strlen(param));
}

/* Every value of the query parameter param, decoded, bound to its member (none: no values). A
 * parameter's name is compared decoded, so tag%4Beys is tagKeys. */
static af_err bind_query(af_bridge_match *m, const char *param, span query, af_arena *arena,
                         af_error *err) {
  span name, value;
  size_t count = 0, k = 0;
  for (size_t i = 0; i < query.n;) {
    next_pair(query, &i, &name, &value);
    count += is_param(name, param);
  }
  const char **values = count ? af_arena_alloc(arena, count * sizeof *values) : NULL;
  char what[96];
  if (count > 0 && values == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
  snprintf(what, sizeof what, "query parameter %s", param);
  for (size_t i = 0; i < query.n;) {
    next_pair(query, &i, &name, &value);
    af_err rc = is_param(name, param) ? af_bridge_percent_decode(value.p, value.n, true, what,
                                                                 arena, &values[k++], err)
                                      : AF_OK;
    if (rc != AF_OK)
      return rc;
  }
  if (m->nbindings == AF_BRIDGE_MAX_BINDINGS - AF_BRIDGE_MAX_HEADERS)
    return too_many(m, "query parameters", err);
  m->bindings[m->nbindings++] = (af_bridge_binding){AF_MODEL_QUERY, param, values, count};
  return AF_OK;
}

/* Every query parameter the operation's input binds. */
static af_err bind_queries(af_bridge_match *m, span query, af_arena *arena, af_error *err) {
  const af_model_struct *in = m->op->input;
  af_err rc = AF_OK;
  for (size_t i = 0; rc == AF_OK && i < in->n_members; i++)
    if (in->members[i].location == AF_MODEL_QUERY && in->members[i].location_name != NULL)
      rc = bind_query(m, in->members[i].location_name, query, arena, err);
  return rc;
}

af_err af_bridge_match_route(const char *method, const char *target, af_arena *arena,
                             af_bridge_match *m, af_error *err) {
  *m = (af_bridge_match){0};
  target = target != NULL ? target : "";
  size_t len = strlen(target), path_len = strcspn(target, "?");
  span path = {target, path_len}, labels[AF_BRIDGE_MAX_LABELS];
  span query = path_len < len ? (span){target + path_len + 1, len - path_len - 1} : (span){"", 0};
  size_t nlabels = 0;
  af_err rc = find_route(method != NULL ? method : "", path, arena, m, labels, &nlabels, err);
  if (rc == AF_OK)
    rc = bind_labels(m, labels, nlabels, arena, err);
  if (rc == AF_OK)
    rc = bind_queries(m, query, arena, err);
  return rc;
}

/* {"message":"..."}: what botocore and the AWS SDK for JavaScript read an error's message
 * from. Messages are ASCII (untrusted bytes are escaped when quoted), so jansson takes them. */
void af_bridge_error_reply(const af_error *err, af_arena *arena, af_bridge_reply *out) {
  static const char fallback[] = "{\"message\":\"internal error\"}";
  out->status = af_err_http_status(err->code);
  out->error_type = af_err_type(err->code);
  out->allow = NULL;
  out->close = false;
  out->op = NULL;
  out->code = err->code;
  out->body = fallback;
  out->body_len = sizeof fallback - 1;
  json_t *o = json_pack("{s:s}", "message", err->message);
  size_t n = o ? json_dumpb(o, NULL, 0, JSON_COMPACT) : 0;
  char *buf = n ? af_arena_alloc(arena, n) : NULL;
  if (buf != NULL && json_dumpb(o, buf, n, JSON_COMPACT) == n) {
    out->body = buf;
    out->body_len = n;
  }
  json_decref(o);
}

/* One request in the service's hands; made in the request's arena. */
typedef struct bridge_call {
  const af_rpc *rpc;
  const af_model_operation *op;
  ProtobufCMessage *resp;
  af_arena *arena;
  af_bridge_reply *out;
  af_bridge_done done;
  void *ctx;
  af_error err;
  const char *principal;        /* the caller's (borrowed from the context), NULL: the root */
  const char *account, *region; /* the caller's (borrowed), NULL: the service's */
  int64_t deadline_ms;          /* the context's; 0: none */
  af_pbc_ready ready;           /* the response's messages whose JSON is kept (ListFlows's) */
} bridge_call;

static void finish(bridge_call *c, af_err rc) {
  char *json;
  size_t json_len;
  if (rc == AF_OK)
    rc = af_bridge_message_to_json_kept(c->op->output, c->resp, &c->ready, c->arena, &json,
                                        &json_len, &c->err);
  if (rc == AF_OK)
    *c->out = (af_bridge_reply){200, NULL, NULL, json, json_len, false, NULL, AF_OK};
  else
    af_bridge_error_reply(&c->err, c->arena, c->out);
  c->out->op = c->op;
  c->done(c->ctx);
}

static void rpc_done(void *ctx, af_err rc) { finish(ctx, rc); }

/* Each header member of the operation's input, bound to the request's header of its name (no
 * values when the request lacks it, or no headers were given). */
static af_err bind_headers(af_bridge_match *m, const af_bridge_context *h, af_arena *arena,
                           af_error *err) {
  const af_model_struct *in = m->op->input;
  for (size_t i = 0; i < in->n_members; i++) {
    const char *name = in->members[i].location_name;
    if (in->members[i].location != AF_MODEL_HEADER || name == NULL)
      continue;
    const char *v = h != NULL && h->get != NULL ? h->get(h->ctx, name) : NULL;
    const char **values = v != NULL ? af_arena_alloc(arena, sizeof *values) : NULL;
    if (v != NULL && values == NULL)
      return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    if (v != NULL && !af_utf8_valid(v, strlen(v)))
      return af_error_set(err, AF_ERR_SERIALIZATION, "the header %s is not UTF-8", name);
    if (values != NULL)
      values[0] = v;
    if (m->nbindings == AF_BRIDGE_MAX_BINDINGS)
      return too_many(m, "headers", err);
    m->bindings[m->nbindings++] = (af_bridge_binding){AF_MODEL_HEADER, name, values, v ? 1 : 0};
  }
  return AF_OK;
}

static void call_rpc(af_flows *svc, bridge_call *c, const af_bridge_match *m, char *body,
                     size_t len) {
  const ProtobufCMessageDescriptor *output = c->op->output->descriptor;
  ProtobufCMessage *req;
  af_err rc = (c->resp = af_arena_alloc(c->arena, output->sizeof_message)) != NULL
                  ? AF_OK
                  : af_error_set(&c->err, AF_ERR_INTERNAL_SERVER, "out of memory");
  if (rc == AF_OK)
    rc = af_bridge_json_to_message_in_place(c->op->input, body, len, c->arena, &req, &c->err);
  if (rc == AF_OK)
    rc = af_bridge_bind_members(c->op->input, req, m->bindings, m->nbindings, c->arena, &c->err);
  if (rc != AF_OK) {
    finish(c, rc);
    return;
  }
  protobuf_c_message_init(output, c->resp);
  af_reply_to to = {.arena = c->arena,
                    .err = &c->err,
                    .deadline_ms = c->deadline_ms,
                    .done = rpc_done,
                    .ctx = c,
                    .principal = c->principal,
                    .account = c->account,
                    .region = c->region,
                    .ready = &c->ready};
  af_flows_call(svc, c->rpc, req, c->resp, &to);
}

/* The service's RPC for the operation (its messages are the model's: af_flows_new checked), or
 * NULL with err set: 501 when the service has none. An RPC without a handler is called all the
 * same: the service checks the request against the model, then answers 501. */
static const af_rpc *rpc_of(af_flows *svc, const af_model_operation *op, af_error *err) {
  const af_rpc *rpc = af_flows_rpc_of(svc, op);
  if (rpc == NULL)
    af_error_set(err, AF_ERR_NOT_IMPLEMENTED, "appflowd does not implement %s yet", op->name);
  return rpc;
}

void af_bridge_handle(af_flows *svc, const char *method, const char *target,
                      const af_bridge_context *headers, char *body, size_t body_len,
                      af_arena *arena, af_bridge_reply *out, af_bridge_done done, void *ctx) {
  af_error err;
  af_error_start(&err, AF_OK);
  af_bridge_match m;
  const af_rpc *rpc = NULL;
  bridge_call *c = NULL;
  bool routed = af_bridge_match_route(method, target, arena, &m, &err) == AF_OK &&
                bind_headers(&m, headers, arena, &err) == AF_OK;
  if (routed && (rpc = rpc_of(svc, m.op, &err)) != NULL &&
      (c = af_arena_alloc(arena, sizeof *c)) == NULL)
    af_error_set(&err, AF_ERR_INTERNAL_SERVER, "out of memory");
  if (c == NULL) { /* answered without the service: err says why */
    af_bridge_error_reply(&err, arena, out);
    out->allow = err.code == AF_ERR_METHOD_NOT_ALLOWED ? m.allow : NULL;
    out->op = m.op; /* its route matched, whatever failed after */
    done(ctx);
    return;
  }
  /* Field by field, as err above: a compound literal would zero the error's message. */
  c->rpc = rpc;
  c->op = m.op;
  c->resp = NULL;
  c->arena = arena;
  c->out = out;
  c->done = done;
  c->ctx = ctx;
  af_error_start(&c->err, AF_OK);
  c->principal = headers != NULL ? headers->principal : NULL;
  c->account = headers != NULL ? headers->account : NULL;
  c->region = headers != NULL ? headers->region : NULL;
  c->ready = (af_pbc_ready){0, NULL};
  c->deadline_ms = headers != NULL ? headers->deadline_ms : 0;
  call_rpc(svc, c, &m, body, body_len);
}

/* ---- waiting for a reply (tests, fuzzers) ---- */

static void wake(void *ctx) { af_latch_open(ctx); }

void af_bridge_handle_sync(af_flows *svc, const char *method, const char *target,
                           const af_bridge_context *headers, const char *body, size_t body_len,
                           af_arena *arena, af_bridge_reply *out) {
  char *scratch = body_len > 0 ? af_arena_strndup(arena, body, body_len) : NULL;
  if (scratch == NULL && body_len > 0) {
    af_error err;
    af_error_start(&err, AF_OK);
    af_error_set(&err, AF_ERR_INTERNAL_SERVER, "out of memory");
    af_bridge_error_reply(&err, arena, out);
    return;
  }
  af_latch latch;
  af_latch_init(&latch);
  af_bridge_handle(svc, method, target, headers, scratch, body_len, arena, out, wake, &latch);
  af_latch_wait(&latch);
}
