#include "bridge/route.h"

#include "bridge/transcode.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* AWS's HTTP route of each operation (the google.api.http option in the proto, and the
 * requestUri in AppFlow's AWS model). */
typedef struct route {
  const char *method;
  const char *path;
  const char *rpc; /* af_rpc name */
} route;

static const route routes[] = {
    {"POST", "/stop-flow", "StopFlow"},
};

static const af_rpc *find_rpc(const char *name) {
  for (size_t i = 0; i < af_flows_rpc_count; i++) {
    if (strcmp(af_flows_rpcs[i].name, name) == 0)
      return &af_flows_rpcs[i];
  }
  return NULL;
}

/* The route for path; NULL when no operation lives there. */
static const route *find_route(const char *path) {
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    if (strcmp(routes[i].path, path) == 0)
      return &routes[i];
  }
  return NULL;
}

/* {"message":"..."}: what botocore and the AWS SDK for JavaScript read an error's message
 * from. Messages are ASCII (untrusted bytes are escaped when quoted), so jansson takes them. */
void af_bridge_error_reply(const af_error *err, af_arena *arena, af_bridge_reply *out) {
  static const char fallback[] = "{\"message\":\"internal error\"}";
  out->status = af_err_http_status(err->code);
  out->error_type = af_err_type(err->code);
  out->allow = NULL;
  out->close = false;
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

static void call_rpc(af_flows *svc, const af_rpc *rpc, const char *body, size_t len,
                     af_arena *arena, af_bridge_reply *out) {
  af_error err = {AF_OK, ""};
  ProtobufCMessage *req, *resp = af_arena_alloc(arena, rpc->output->sizeof_message);
  char *json;
  size_t json_len;
  af_err rc = resp ? AF_OK : af_error_set(&err, AF_ERR_INTERNAL_SERVER, "out of memory");
  if (rc == AF_OK)
    rc = af_bridge_json_to_message(rpc->input, body, len, arena, &req, &err);
  if (rc == AF_OK) {
    protobuf_c_message_init(rpc->output, resp);
    rc = rpc->handler(svc, req, resp, arena, &err);
  }
  if (rc == AF_OK)
    rc = af_bridge_message_to_json(resp, arena, &json, &json_len, &err);
  if (rc != AF_OK) {
    af_bridge_error_reply(&err, arena, out);
    return;
  }
  *out = (af_bridge_reply){200, NULL, NULL, json, json_len, false};
}

void af_bridge_handle(af_flows *svc, const char *method, const char *path, const char *body,
                      size_t body_len, af_arena *arena, af_bridge_reply *out) {
  af_error err;
  const route *r = find_route(path);
  if (r == NULL) {
    char esc[256];
    af_error_set(&err, AF_ERR_UNKNOWN_OPERATION,
                 "no operation at %s: appflowd serves AppFlow's REST-JSON routes, such as POST "
                 "/stop-flow",
                 af_escape(esc, sizeof esc, path, strlen(path)));
    af_bridge_error_reply(&err, arena, out);
    return;
  }
  if (strcmp(method, r->method) != 0) {
    af_error_set(&err, AF_ERR_METHOD_NOT_ALLOWED, "%s takes %s only", r->path, r->method);
    af_bridge_error_reply(&err, arena, out);
    out->allow = r->method;
    return;
  }
  const af_rpc *rpc = find_rpc(r->rpc);
  if (rpc == NULL) { /* a route table naming an RPC the service lacks: a build mistake */
    af_error_set(&err, AF_ERR_INTERNAL_SERVER, "route to unknown operation %s", r->rpc);
    af_bridge_error_reply(&err, arena, out);
    return;
  }
  call_rpc(svc, rpc, body, body_len, arena, out);
}

void af_bridge_ids_init(af_bridge_ids *g) {
  if (getrandom(g->s, sizeof g->s, 0) != (ssize_t)sizeof g->s) {
    /* Only before the kernel's pool is ready; ids must be unique, not secret. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    g->s[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)g;
    g->s[1] = (uint64_t)ts.tv_sec * 0xbf58476d1ce4e5b9ull ^ 0x94d049bb133111ebull;
  }
  if ((g->s[0] | g->s[1]) == 0)
    g->s[0] = 1; /* xorshift's one stuck state */
}

/* xorshift128+: fast, and 128 bits of state seeded from the kernel make ids unique enough. */
static uint64_t next(af_bridge_ids *g) {
  uint64_t a = g->s[0], b = g->s[1];
  g->s[0] = b;
  a ^= a << 23;
  g->s[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
  return g->s[1] + b;
}

void af_bridge_request_id(af_bridge_ids *g, char out[37]) {
  static const char hex[] = "0123456789abcdef";
  uint64_t hi = next(g), lo = next(g);
  hi = (hi & ~0xf000ull) | 0x4000ull;           /* version 4 */
  lo = (lo & ~(0xcull << 60)) | (0x8ull << 60); /* RFC 4122 variant */
  size_t o = 0;
  for (int i = 0; i < 32; i++) {
    if (i == 8 || i == 12 || i == 16 || i == 20)
      out[o++] = '-';
    uint64_t word = i < 16 ? hi : lo;
    out[o++] = hex[(word >> (60 - 4 * (i % 16))) & 15];
  }
  out[o] = '\0';
}
