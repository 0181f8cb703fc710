/* The admin listener: libmicrohttpd, a thread per connection (control calls wait for the store),
 * JSON in and out. */
#include "admin/server.h"

#include "admin/control.h"
#include "admin/ops.h"
#include "admin/state.h"
#include "common/listen.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_BODY (1024 * 1024)
/* Connections at once: the control API is for a test suite, not for load. */
#define CONNECTIONS 64

struct af_admin_server {
  struct MHD_Daemon *daemon;
  af_flows *svc;
  size_t max_body;
  const af_log *log;
  const char *seed_path;
  int port;
  atomic_bool draining;
  af_admin_ops ops;
};

/* One request's body as it arrives. */
typedef struct request {
  char *body;
  size_t len;
  bool too_large;
} request;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *json) {
  static const char fallback[] =
      "{\"__type\":\"InternalServerException\",\"message\":\"out of memory\"}";
  if (json == NULL) {
    status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    json = fallback;
  }
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
  if (r == NULL)
    return MHD_NO;
  MHD_add_response_header(r, "Content-Type", "application/json");
  enum MHD_Result rc = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return rc;
}

/* /metrics, /healthz, /readyz. */
static enum MHD_Result reply_ops(af_admin_server *s, struct MHD_Connection *c, const char *method,
                                 const char *url) {
  af_admin_answer a;
  af_admin_ops_answer(&s->ops, method, url, &a);
  if (a.body == NULL)
    return reply(c, a.status, NULL);
  struct MHD_Response *r = MHD_create_response_from_buffer(a.len, a.body, MHD_RESPMEM_MUST_FREE);
  if (r == NULL) {
    free(a.body);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", a.content_type);
  if (a.allow != NULL)
    MHD_add_response_header(r, "Allow", a.allow);
  enum MHD_Result rc = MHD_queue_response(c, a.status, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, const af_error *err, af_arena *a) {
  return reply(c, (unsigned)af_err_http_status(err->code), af_control_error(err, a));
}

/* GET /state and POST /reset (admin/state.h). */
static enum MHD_Result answer_state(af_admin_server *s, struct MHD_Connection *c,
                                    const char *method, const char *url) {
  af_arena a;
  af_arena_init(&a);
  af_error err = {AF_OK, ""};
  char *json = NULL;
  af_err e = af_admin_state_answer(s->svc, s->seed_path, method, url, &a, &json, &err);
  enum MHD_Result rc = e == AF_OK ? reply(c, MHD_HTTP_OK, json) : reply_error(c, &err, &a);
  af_log_printf(s->log, AF_LOG_DEBUG, "admin: %s %s: %s", method, url, af_err_type(e));
  af_arena_destroy(&a);
  return rc;
}

/* Decodes, calls and answers one whole request. */
static enum MHD_Result answer(af_admin_server *s, struct MHD_Connection *c, const char *method,
                              const char *url, const request *r) {
  af_arena a;
  af_arena_init(&a);
  af_error err = {AF_OK, ""};
  const af_rpc *rpc = NULL;
  ProtobufCMessage *req = NULL;
  enum MHD_Result rc;
  af_err e =
      af_control_decode(s->svc, method, url, r->body ? r->body : "", r->len, &a, &rpc, &req, &err);
  ProtobufCMessage *resp = e == AF_OK ? af_arena_alloc(&a, rpc->output->sizeof_message) : NULL;
  if (e == AF_OK && resp == NULL)
    e = af_error_set(&err, AF_ERR_INTERNAL_SERVER, "out of memory");
  if (e == AF_OK) {
    protobuf_c_message_init(rpc->output, resp);
    /* the account and region the call acts in, as the gRPC door's metadata names them */
    e = af_flows_call_sync_in(
        s->svc, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-amz-account-id"),
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-amz-region"), rpc, req, resp, &a, &err);
  }
  if (e == AF_OK)
    rc = reply(c, MHD_HTTP_OK, af_control_encode(rpc, resp, &a));
  else
    rc = reply_error(c, &err, &a);
  af_log_printf(s->log, AF_LOG_DEBUG, "admin: %s %s: %s", method, rpc ? rpc->name : "-",
                e == AF_OK ? "OK" : af_err_type(e));
  af_arena_destroy(&a);
  return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)version;
  af_admin_server *s = cls;
  request *r = *con_cls;
  if (r == NULL) {
    if ((r = calloc(1, sizeof *r)) == NULL)
      return MHD_NO;
    *con_cls = r;
    return MHD_YES;
  }
  if (*upload_size > 0) {
    size_t n = *upload_size;
    *upload_size = 0;
    if (r->too_large || r->len + n > s->max_body) {
      r->too_large = true;
      return MHD_YES;
    }
    char *b = realloc(r->body, r->len + n + 1);
    if (b == NULL)
      return MHD_NO;
    memcpy(b + r->len, upload, n);
    r->body = b;
    r->len += n;
    r->body[r->len] = '\0';
    return MHD_YES;
  }
  if (r->too_large) {
    af_error err;
    af_arena a;
    af_arena_init(&a);
    af_error_set(&err, AF_ERR_REQUEST_TOO_LARGE, "the body is larger than %zu bytes", s->max_body);
    enum MHD_Result rc = reply_error(c, &err, &a);
    af_arena_destroy(&a);
    return rc;
  }
  if (af_admin_ops_path(url))
    return reply_ops(s, c, method, url);
  if (af_admin_state_route(url))
    return answer_state(s, c, method, url);
  return answer(s, c, method, url, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls, (void)c, (void)toe;
  request *r = *con_cls;
  if (r != NULL) {
    free(r->body);
    free(r);
  }
  *con_cls = NULL;
}

af_admin_server *af_admin_server_start(const af_admin_config *cfg, af_flows *svc, af_error *err) {
  struct sockaddr_storage ss;
  socklen_t len;
  char why[256];
  if (af_listen_resolve(cfg->listen, &ss, &len, why, sizeof why) != 0) {
    af_error_set(err, AF_ERR_VALIDATION, "--admin-listen %s: %s", cfg->listen, why);
    return NULL;
  }
  af_admin_server *s = calloc(1, sizeof *s);
  if (s == NULL) {
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return NULL;
  }
  s->svc = svc;
  s->log = cfg->log;
  s->seed_path = cfg->seed_path;
  s->max_body = cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
  atomic_init(&s->draining, false);
  s->ops = (af_admin_ops){svc, cfg->metrics, cfg->access_log, &s->draining, cfg->log};
  unsigned flags =
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ITC;
  if (ss.ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  /* clang-format off */
  s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                               MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&ss,
                               MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                               MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                               MHD_OPTION_END);
  /* clang-format on */
  if (s->daemon == NULL) {
    af_listen_explain(cfg->listen, why, sizeof why);
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "cannot listen for the admin API on %s: %s",
                 cfg->listen, why);
    free(s);
    return NULL;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info != NULL ? info->port : 0;
  return s;
}

int af_admin_server_port(const af_admin_server *s) { return s->port; }

void af_admin_server_drain(af_admin_server *s) {
  if (s != NULL)
    atomic_store(&s->draining, true);
}

void af_admin_server_stop(af_admin_server *s) {
  if (s == NULL)
    return;
  MHD_stop_daemon(s->daemon);
  free(s);
}
