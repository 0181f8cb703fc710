#include "bridge/http.h"

#include "bridge/epoll_drain.h"
#include "bridge/observe.h"
#include "bridge/route.h"
#include "bridge/sigv4.h"
#include "common/listen.h"
#include "common/uuid.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct af_bridge_server {
  struct MHD_Daemon *daemon;
  af_flows *svc;
  const af_log *log;
  size_t max_body;
  const af_sigv4_creds *creds; /* NULL: SigV4 is not checked */
  int port;
  atomic_bool draining; /* shutdown began: new connections closed, new requests get 503 */
  atomic_int in_flight; /* requests begun and not yet completed */
  atomic_int working;   /* requests the service has not answered yet (stop waits for them) */
  unsigned timeout;     /* seconds a request may take to arrive whole */
  unsigned max_conns;   /* connections served at once; past them, 503 and closed */
  long long request_timeout_ms; /* a request's deadline, from its headers' arrival */
  /* Every open connection, for the watchdog (see watchdog_main). */
  pthread_mutex_t conns_lock;
  struct conn *conns;
  unsigned served;       /* connections in conns within max_conns (under conns_lock) */
  unsigned long refused; /* connections over it since the last warning (under conns_lock) */
  long long warned_ms;   /* when that warning was last logged (the watchdog's own) */
  pthread_t watchdog;
  bool watchdog_running;
  atomic_bool watchdog_stop;
  af_bridge_observer *observer; /* NULL: no metrics and no access log */
};

/* A body past the limit is read to its end and dropped, so it can be answered 413 (a reply
 * cannot be queued mid-upload); past this many times the limit the connection is closed. */
#define DISCARD_FACTOR 16

/* Each connection's memory pool (request line, headers, read buffer). libmicrohttpd zeroes the
 * pool for every keep-alive request, which at its 32 KiB default was the door's largest cost
 * in perf; a signed AWS request's headers take under 2 KiB, so 8 KiB leaves room to spare. */
#define CONNECTION_MEMORY (8 * 1024)

/* Connections libmicrohttpd takes past --http-max-connections, to answer them 503 and close
 * them: at its own limit it stops accepting, and new clients would wait unanswered in the
 * listen queue. Each over the limit lives at most OVER_LIMIT_GRACE_MS, so this many absorb
 * bursts of about this many new connections a second. */
#define OVER_LIMIT_MARGIN(max) (64 + (max) / 16)
#define OVER_LIMIT_GRACE_MS 1000
/* The warning about refused connections is logged at most this often. */
#define REFUSED_WARNING_MS 10000

/* Where a request is while the service answers it. The service may answer on a store thread
 * while the door is still in on_request: whoever comes second acts (the door sends at once, or
 * the service resumes the suspended connection). */
enum work_state {
  WORK_NONE,       /* not handed to the service */
  WORK_RUNNING,    /* handed over, no answer yet */
  WORK_SUSPENDING, /* the door is suspending the connection */
  WORK_SUSPENDED,  /* suspended until the answer resumes it */
  WORK_ANSWERED    /* r->rep is the reply, not yet sent */
};

/* One request's state, from its first header to the end of its reply. */
typedef struct request {
  char *body;
  size_t len, cap;
  size_t discarded; /* bytes dropped after the body passed the limit */
  bool too_large;
  bool over;     /* its connection is over --http-max-connections: it gets 503 */
  bool answered; /* a reply is queued already, or the service has the request */
  bool pooled;   /* part of its connection, reused by the next request */
  char request_id[37];
  _Atomic int work; /* enum work_state */
  struct MHD_Connection *connection;
  struct af_bridge_server *server;
  const char *method, *url; /* for the debug line, valid until the request completes */
  const char *principal;    /* the SigV4 key's principal ARN, NULL: none (the root) */
  /* the account and region the request acts in, "" for the service's own (take_caller) */
  char account[16], region[64];
  int64_t deadline_ms; /* af_store_now_ms() by which it must be answered */
  int64_t start_ns;    /* when it arrived, when observed (bridge/observe.h) */
  af_bridge_reply rep;
  af_arena arena; /* the reply's body lives here until the request completes */
} request;

/* A connection's own state. HTTP/1.1 answers one request at a time per connection, so each
 * connection keeps one request (its buffers reused across keep-alive requests): the common
 * path allocates nothing per request. */
typedef struct conn {
  bool busy; /* req is in use */
  request req;
  char *uri; /* the current request-target as sent (for SigV4), reused across requests */
  size_t uri_cap;
  int fd;
  /* When the connection's next request must have arrived whole and been answered (monotonic
   * ms): set when the connection opens and again after each reply. libmicrohttpd's own timeout
   * counts silence only, so a client trickling a byte a second would hold it for ever. */
  atomic_llong deadline_ms;
  bool cut;  /* the watchdog has shut the socket down */
  bool over; /* opened past --http-max-connections: its request gets 503, then it closes */
  struct conn *prev, *next;
} conn;

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void request_init(request *r, bool pooled) {
  r->len = r->discarded = 0;
  r->too_large = r->over = r->answered = false;
  r->pooled = pooled;
  r->principal = NULL;
  r->account[0] = r->region[0] = '\0';
  atomic_init(&r->work, WORK_NONE);
  af_uuid_random(r->request_id);
  af_arena_init(&r->arena);
}

/* The connection's own state; NULL when it could not be made (no memory). */
static conn *conn_of(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return info ? info->socket_context : NULL;
}

/* The connection's request, or (should libmicrohttpd ever overlap requests on one connection)
 * a request of its own. */
static request *request_start(struct MHD_Connection *c) {
  conn *k = conn_of(c);
  request *r = NULL;
  if (k != NULL && !k->busy) {
    k->busy = true;
    r = &k->req;
    request_init(r, true);
  } else if ((r = malloc(sizeof *r)) != NULL) {
    r->body = NULL;
    r->cap = 0;
    request_init(r, false);
  }
  if (r != NULL)
    r->over = k != NULL && k->over;
  return r;
}

static void request_end(request *r, long long rearm_ms) {
  if (r == NULL)
    return;
  af_arena_destroy(&r->arena);
  if (r->pooled) { /* keep the body buffer for the connection's next request */
    conn *k = (conn *)(void *)((char *)r - offsetof(conn, req));
    k->busy = false;
    atomic_store(&k->deadline_ms, now_ms() + rearm_ms);
    return;
  }
  free(r->body);
  free(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  af_bridge_server *s = cls;
  (void)c;
  (void)toe;
  if (*con_cls != NULL)
    atomic_fetch_sub(&s->in_flight, 1);
  request_end(*con_cls, (long long)s->timeout * 1000);
  *con_cls = NULL;
}

/* Adds a new connection to s->conns and decides, in the same step, whether it is within
 * --http-max-connections: the count changes only with the list, so it cannot drift. */
static void conn_add(af_bridge_server *s, conn *k) {
  pthread_mutex_lock(&s->conns_lock);
  k->over = s->served >= s->max_conns;
  if (k->over)
    s->refused++;
  else
    s->served++;
  long long grace = k->over ? OVER_LIMIT_GRACE_MS : (long long)s->timeout * 1000;
  atomic_init(&k->deadline_ms, now_ms() + grace);
  k->next = s->conns;
  if (s->conns != NULL)
    s->conns->prev = k;
  s->conns = k;
  pthread_mutex_unlock(&s->conns_lock);
}

static void conn_remove(af_bridge_server *s, conn *k) {
  pthread_mutex_lock(&s->conns_lock);
  if (!k->over)
    s->served--;
  if (k->prev != NULL)
    k->prev->next = k->next;
  else
    s->conns = k->next;
  if (k->next != NULL)
    k->next->prev = k->prev;
  pthread_mutex_unlock(&s->conns_lock);
}

/* libmicrohttpd reports every request's completion before its connection's close, and a
 * connection's close before it closes the socket: so a connection in s->conns always has its
 * socket open, and the watchdog never touches a descriptor number reused by someone else. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  af_bridge_server *s = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    conn *k = calloc(1, sizeof *k);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (k != NULL && info != NULL) {
      k->fd = info->connect_fd;
      conn_add(s, k);
    } else {
      free(k);
      k = NULL;
    }
    *socket_context = k; /* NULL: its requests allocate their own state */
    return;
  }
  conn *k = *socket_context;
  if (k != NULL) {
    conn_remove(s, k);
    free(k->req.body);
    free(k->uri);
    free(k);
  }
  *socket_context = NULL;
}

/* How many connections were refused since the last warning, once REFUSED_WARNING_MS has
 * passed since it (0: nothing to say yet). Under conns_lock. */
static unsigned long refusals_to_report(af_bridge_server *s, long long now) {
  if (s->refused == 0 || now - s->warned_ms < REFUSED_WARNING_MS)
    return 0;
  unsigned long n = s->refused;
  s->refused = 0;
  s->warned_ms = now;
  return n;
}

/* Shuts down the socket of every connection whose request has not arrived whole by its
 * deadline (or, over --http-max-connections, has not come within OVER_LIMIT_GRACE_MS);
 * libmicrohttpd then sees the connection fail and closes it itself. Also says, at most every
 * REFUSED_WARNING_MS, how many connections the limit refused. */
static void *watchdog_main(void *arg) {
  af_bridge_server *s = arg;
  while (!atomic_load(&s->watchdog_stop)) {
    long long now = now_ms();
    pthread_mutex_lock(&s->conns_lock);
    for (conn *k = s->conns; k != NULL; k = k->next) {
      long long d = atomic_load(&k->deadline_ms);
      if (d != 0 && now > d && !k->cut) {
        shutdown(k->fd, SHUT_RDWR);
        k->cut = true;
      }
    }
    unsigned long refused = refusals_to_report(s, now);
    pthread_mutex_unlock(&s->conns_lock);
    if (refused > 0)
      af_log_printf(s->log, AF_LOG_WARN,
                    "http: %lu new connection%s refused (503 ServiceUnavailableException, then "
                    "closed): %u were open, the limit (--http-max-connections)",
                    refused, refused == 1 ? "" : "s", s->max_conns);
    nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
  }
  return NULL;
}

static const char *raw_uri(struct MHD_Connection *c);

/* Counts and logs the reply about to be queued (so a client that has its reply finds it
 * counted). */
static void observe(request *r, const af_bridge_reply *rep) {
  af_bridge_server *s = r->server;
  if (s->observer == NULL)
    return;
  af_bridge_call_view v = {rep,
                           r->request_id,
                           r->start_ns,
                           r->len + r->discarded,
                           r->method,
                           raw_uri(r->connection),
                           r->connection,
                           r->account[0] ? r->account : NULL,
                           r->region[0] ? r->region : NULL};
  af_bridge_observe(s->observer, &v);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, request *r,
                                  const af_bridge_reply *rep) {
  observe(r, rep);
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(rep->body_len, (void *)rep->body, MHD_RESPMEM_PERSISTENT);
  if (resp == NULL)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  MHD_add_response_header(resp, "x-amzn-RequestId", r->request_id);
  if (rep->error_type != NULL)
    MHD_add_response_header(resp, "x-amzn-ErrorType", rep->error_type);
  if (rep->allow != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rep->allow);
  if (rep->close)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result ok = MHD_queue_response(c, (unsigned)rep->status, resp);
  MHD_destroy_response(resp);
  return ok;
}

/* Shutdown has begun: a request on a kept-alive connection gets a clean 503 and the
 * connection is closed, so the client retries elsewhere instead of meeting a reset. */
static enum MHD_Result refuse_draining(struct MHD_Connection *c, request *r) {
  af_error err;
  af_error_set(&err, AF_ERR_UNAVAILABLE, "appflowd is shutting down: retry on another server");
  af_bridge_reply rep;
  af_bridge_error_reply(&err, &r->arena, &rep);
  rep.close = true;
  return send_reply(c, r, &rep);
}

/* The connection came past --http-max-connections: a clean 503 the SDKs retry, then the
 * connection is closed, so the client neither waits nor meets a reset. */
static enum MHD_Result refuse_over_limit(struct MHD_Connection *c, af_bridge_server *s,
                                         request *r) {
  af_error err;
  af_error_set(&err, AF_ERR_UNAVAILABLE,
               "appflowd is serving its limit of %u connections on this port "
               "(--http-max-connections): retry later, or reuse an open connection",
               s->max_conns);
  af_bridge_reply rep;
  af_bridge_error_reply(&err, &r->arena, &rep);
  rep.close = true;
  return send_reply(c, r, &rep);
}

static enum MHD_Result refuse_too_large(struct MHD_Connection *c, af_bridge_server *s, request *r) {
  af_error err;
  af_error_set(&err, AF_ERR_REQUEST_TOO_LARGE,
               "The request body is over appflowd's limit of %zu bytes (--max-request-bytes)",
               s->max_body);
  af_bridge_reply rep;
  af_bridge_error_reply(&err, &r->arena, &rep);
  return send_reply(c, r, &rep);
}

/* Appends upload data; false once the body passes the limit. */
static bool append(af_bridge_server *s, request *r, const char *data, size_t n) {
  if (n > s->max_body - r->len)
    return false;
  if (r->len + n > r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 1024;
    while (cap < r->len + n)
      cap *= 2;
    char *b = realloc(r->body, cap < s->max_body ? cap : s->max_body);
    if (b == NULL)
      return false;
    r->body = b;
    r->cap = cap < s->max_body ? cap : s->max_body;
  }
  memcpy(r->body + r->len, data, n);
  r->len += n;
  return true;
}

/* A declared length over the limit is refused before a byte of the body is read. */
static bool declared_too_large(struct MHD_Connection *c, size_t max) {
  const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl == NULL)
    return false;
  char *end;
  unsigned long long n = strtoull(cl, &end, 10);
  return *end != '\0' || n > max;
}

/* Takes one chunk of body: kept while under the limit, dropped (and counted) past it.
 * False when the client has sent so much that the connection should just be closed. */
static bool take_upload(af_bridge_server *s, request *r, const char *data, size_t n) {
  if (!r->too_large && append(s, r, data, n))
    return true;
  r->too_large = true;
  r->discarded += n;
  return r->discarded <= s->max_body * DISCARD_FACTOR;
}

/* libmicrohttpd hands on_request the path percent-decoded and without its query, but the
 * routes split labels before decoding (botocore sends '/' in an ARN as %2F), read the query,
 * and SigV4 signs the target as sent. This runs once per request, before its headers are
 * parsed, with the raw request-target (path and query): the connection keeps a copy (HTTP/1.1
 * answers one request at a time per connection). Returns NULL, so *con_cls stays NULL for
 * on_request as before. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
  (void)cls;
  conn *k = conn_of(c);
  if (k == NULL)
    return NULL;
  size_t n = strlen(uri) + 1;
  if (n > k->uri_cap) {
    char *u = realloc(k->uri, n);
    if (u == NULL) {
      if (k->uri != NULL)
        k->uri[0] = '\0'; /* the request then fails: never a stale target */
      return NULL;
    }
    k->uri = u;
    k->uri_cap = n;
  }
  memcpy(k->uri, uri, n);
  return NULL;
}

typedef struct header_list {
  af_sigv4_header *h;
  size_t n, cap;
} header_list;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
  (void)kind;
  header_list *l = cls;
  if (l->n < l->cap)
    l->h[l->n++] = (af_sigv4_header){key, value ? value : ""};
  return MHD_YES;
}

/* The request-target as sent, saved by on_uri; NULL when it could not be kept (no memory). */
static const char *raw_uri(struct MHD_Connection *c) {
  const conn *k = conn_of(c);
  return k != NULL && k->uri != NULL && k->uri[0] != '\0' ? k->uri : NULL;
}

/* The raw target could not be kept (out of memory): the request cannot be routed. */
static void refuse_no_target(request *r, af_bridge_reply *rep) {
  af_error err;
  af_error_set(&err, AF_ERR_INTERNAL_SERVER, "out of memory");
  af_bridge_error_reply(&err, &r->arena, rep);
}

/* The account and region of a signed request, as AWS emulators take them: the region of the
 * signature's credential scope; the account its key has in --aws-credentials, else the access
 * key id itself when it is 12 digits (as LocalStack and moto do), else the service's. */
static void take_caller(request *r, const af_sigv4_caller *who) {
  const char *account = who->account;
  if (account == NULL && strlen(who->key_id) == 12 && strspn(who->key_id, "0123456789") == 12)
    account = who->key_id;
  size_t n = account != NULL ? strlen(account) : 0;
  if (n >= sizeof r->account) /* the core refuses what is not 12 digits: keep it too long */
    n = sizeof r->account - 1;
  memcpy(r->account, account != NULL ? account : "", n);
  r->account[n] = '\0';
  snprintf(r->region, sizeof r->region, "%s", who->region);
}

/* Without --aws-credentials no signature is checked, but its scope still says who calls. */
static void unverified_caller(struct MHD_Connection *c, request *r) {
  af_sigv4_caller who;
  if (af_sigv4_scope_of(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"), &who))
    take_caller(r, &who);
}

/* True when the request's SigV4 signature is right; else fills rep with the refusal. */
static bool authentic(struct MHD_Connection *c, af_bridge_server *s, request *r, const char *method,
                      af_bridge_reply *rep) {
  int n = MHD_get_connection_values(c, MHD_HEADER_KIND, NULL, NULL);
  size_t cap = n > 0 ? (size_t)n : 1;
  header_list l = {af_arena_alloc(&r->arena, cap * sizeof(af_sigv4_header)), 0, cap};
  const char *uri = raw_uri(c);
  size_t path_len = uri ? strcspn(uri, "?") : 0;
  char *path = uri ? af_arena_strndup(&r->arena, uri, path_len) : NULL;
  af_error err;
  if (l.h == NULL || path == NULL) {
    af_error_set(&err, AF_ERR_INTERNAL_SERVER, "out of memory");
  } else {
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &l);
    const char *query = uri[path_len] == '?' ? uri + path_len + 1 : "";
    af_sigv4_request req = {method, path, query, l.h, l.n, r->body, r->len};
    af_sigv4_caller who;
    if (af_sigv4_verify(s->creds, &req, time(NULL), &who, &err) == AF_OK) {
      r->principal = who.principal;
      take_caller(r, &who);
      return true;
    }
  }
  af_bridge_error_reply(&err, &r->arena, rep);
  return false;
}

static enum MHD_Result send_answer(request *r) {
  af_bridge_server *s = r->server;
  if (r->rep.error_type != NULL && af_log_enabled(s->log, AF_LOG_DEBUG)) {
    /* what the caller sent (libmicrohttpd has decoded %0A and the like) is escaped, so no
     * request can write a log line of its own */
    char method[64], url[512];
    af_log_printf(s->log, AF_LOG_DEBUG, "%s %s: %d %s",
                  af_escape(method, sizeof method, r->method, strlen(r->method)),
                  af_escape(url, sizeof url, r->url, strlen(r->url)), r->rep.status,
                  r->rep.error_type);
  }
  return send_reply(r->connection, r, &r->rep);
}

/* The service has answered (on any thread). */
static void answered(void *ctx) {
  request *r = ctx;
  af_bridge_server *s = r->server;
  struct MHD_Connection *c = r->connection;
  /* Once the state changes the door may send the reply and reuse r: read it first. */
  int was = atomic_exchange(&r->work, WORK_ANSWERED);
  if (was == WORK_SUSPENDED) /* libmicrohttpd calls on_request again, which sends it */
    MHD_resume_connection(c);
  atomic_fetch_sub(&s->working, 1); /* last: stop may free the daemon once this is 0 */
}

/* A request header by name (case-insensitive), for the members the model carries in headers. */
static const char *header_of(void *ctx, const char *name) {
  return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

/* Hands the request to the service; answers at once if it already has, else suspends the
 * connection until it does, so no server thread waits on the store. */
static enum MHD_Result hand_over(struct MHD_Connection *c, af_bridge_server *s, request *r,
                                 const char *method, const char *target) {
  r->connection = c;
  atomic_store(&r->work, WORK_RUNNING);
  atomic_fetch_add(&s->working, 1);
  /* The request has arrived whole: from here its own deadline bounds it (the service answers
   * by then), and the watchdog leaves the connection be until the reply has gone. */
  conn *k = conn_of(c);
  if (k != NULL)
    atomic_store(&k->deadline_ms, 0);
  af_bridge_context headers = {.get = header_of,
                               .ctx = c,
                               .principal = r->principal,
                               .account = r->account[0] ? r->account : NULL,
                               .region = r->region[0] ? r->region : NULL,
                               .deadline_ms = r->deadline_ms};
  af_bridge_handle(s->svc, method, target, &headers, r->body, r->len, &r->arena, &r->rep, answered,
                   r);
  int expected = WORK_RUNNING;
  if (!atomic_compare_exchange_strong(&r->work, &expected, WORK_SUSPENDING))
    return send_answer(r); /* answered already */
  MHD_suspend_connection(c);
  expected = WORK_SUSPENDING;
  if (!atomic_compare_exchange_strong(&r->work, &expected, WORK_SUSPENDED))
    MHD_resume_connection(c); /* answered while suspending: on_request will send it */
  return MHD_YES;
}

/* libmicrohttpd calls this once with the headers, then once per chunk of body, then once more
 * with no data: the moment to answer; and again after a suspended connection is resumed. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)version;
  af_bridge_server *s = cls;
  request *r = *con_cls;
  if (r == NULL) {
    if ((r = request_start(c)) == NULL)
      return MHD_NO;
    *con_cls = r;
    r->server = s;
    r->connection = c;
    r->deadline_ms = af_store_now_ms() + s->request_timeout_ms;
    r->method = method;
    r->url = url;
    r->start_ns = s->observer != NULL ? af_bridge_observe_start(s->observer) : 0;
    atomic_fetch_add(&s->in_flight, 1);
    if (atomic_load(&s->draining)) {
      r->answered = true;
      return refuse_draining(c, r);
    }
    /* Over the limit, the body is read and dropped (answering before it would leave it
     * unread, and closing then resets the connection, losing the answer). */
    r->too_large = r->over;
    if (r->over || !declared_too_large(c, s->max_body))
      return MHD_YES;
    /* Answered before a byte of the body is read; libmicrohttpd then closes the connection. */
    r->too_large = r->answered = true;
    return refuse_too_large(c, s, r);
  }
  if (*upload_size > 0) {
    bool keep = take_upload(s, r, upload, *upload_size);
    *upload_size = 0;
    return keep ? MHD_YES : MHD_NO;
  }
  if (r->answered) {
    int expected = WORK_ANSWERED; /* resumed: the service's answer is waiting */
    if (atomic_compare_exchange_strong(&r->work, &expected, WORK_NONE))
      return send_answer(r);
    return MHD_YES;
  }
  r->answered = true;
  if (r->over)
    return refuse_over_limit(c, s, r);
  if (r->too_large)
    return refuse_too_large(c, s, r);
  r->method = method;
  r->url = url;
  const char *target = raw_uri(c);
  if (target == NULL)
    refuse_no_target(r, &r->rep);
  else if (s->creds == NULL) {
    unverified_caller(c, r);
    return hand_over(c, s, r, method, target);
  } else if (authentic(c, s, r, method, &r->rep))
    return hand_over(c, s, r, method, target);
  return send_answer(r);
}

/* libmicrohttpd's own messages (a client that hung up, a bad request line) are for debugging. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  const af_log *log = cls;
  if (!af_log_enabled(log, AF_LOG_DEBUG))
    return;
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  line[strcspn(line, "\n")] = '\0';
  af_log_printf(log, AF_LOG_DEBUG, "http: %s", line);
}

/* While draining, a new connection is closed as soon as it is accepted: refused, not left
 * waiting. (MHD_quiesce_daemon would close the listener instead, but with a thread pool on epoll
 * it races the pool's threads removing the listener themselves and aborts the process: it
 * panics on the ENOENT of the loser, libmicrohttpd 0.9.75 to 0.9.77 daemon.c.) */
/* Runs on the libmicrohttpd thread that will own the connection, before the connection is in
 * its epoll set: the moment to mark that thread (see bridge/epoll_drain.h). */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
  (void)addr;
  (void)addrlen;
  af_epoll_drain_mark_thread();
  const af_bridge_server *s = cls;
  return atomic_load(&s->draining) ? MHD_NO : MHD_YES;
}

static struct MHD_Daemon *start_daemon(af_bridge_server *s, const af_bridge_config *cfg,
                                       const struct sockaddr_storage *ss) {
  /* MHD_ALLOW_SUSPEND_RESUME brings the inter-thread channel (MHD_USE_ITC) with it. With
   * MHD_USE_TURBO libmicrohttpd reads a socket before epoll says it is ready, and closes without
   * shutdown() first: StopFlow at 16 connections rose about 8%, a SQLite toggle about 10%, with
   * the connection, limit and bad-input tests unchanged. */
  unsigned flags =
      MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO;
  if (ss->ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  /* The logger goes first, as libmicrohttpd asks, so it also hears about the other options. */
  unsigned threads = (unsigned)(cfg->threads > 0 ? cfg->threads : 1);
  unsigned timeout = cfg->timeout_seconds ? cfg->timeout_seconds : AF_BRIDGE_DEFAULT_TIMEOUT;
  unsigned slots = af_bridge_connection_slots(s->max_conns);
  /* One option and its values per line. */
  /* clang-format off */
  return MHD_start_daemon(flags, 0, on_accept, s, on_request, s,
                          MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)cfg->log,
                          MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)ss,
                          MHD_OPTION_THREAD_POOL_SIZE, threads,
                          MHD_OPTION_CONNECTION_LIMIT, slots,
                          MHD_OPTION_CONNECTION_TIMEOUT, timeout,
                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                          MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                          MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
                          MHD_OPTION_END);
  /* clang-format on */
}

unsigned af_bridge_connection_slots(unsigned max_connections) {
  unsigned max = max_connections ? max_connections : AF_BRIDGE_DEFAULT_MAX_CONNECTIONS;
  return max + OVER_LIMIT_MARGIN(max);
}

af_bridge_server *af_bridge_server_start(const af_bridge_config *cfg, af_flows *svc,
                                         af_error *err) {
  struct sockaddr_storage ss;
  socklen_t len;
  char why[256];
  if (af_listen_resolve(cfg->listen, &ss, &len, why, sizeof why) != 0) {
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "cannot listen for HTTP on %s: %s", cfg->listen, why);
    return NULL;
  }
  af_bridge_server *s = calloc(1, sizeof *s);
  if (s == NULL) {
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return NULL;
  }
  s->svc = svc;
  s->log = cfg->log;
  s->max_body = cfg->max_body ? cfg->max_body : AF_BRIDGE_DEFAULT_MAX_BODY;
  s->creds = cfg->creds;
  s->timeout = cfg->timeout_seconds ? cfg->timeout_seconds : AF_BRIDGE_DEFAULT_TIMEOUT;
  s->max_conns = cfg->max_connections ? cfg->max_connections : AF_BRIDGE_DEFAULT_MAX_CONNECTIONS;
  double rt = cfg->request_timeout > 0 ? cfg->request_timeout : AF_BRIDGE_DEFAULT_REQUEST_TIMEOUT;
  s->request_timeout_ms = (long long)(rt * 1000);
  s->warned_ms = now_ms() - REFUSED_WARNING_MS; /* the first refusal is told at once */
  atomic_init(&s->draining, false);
  atomic_init(&s->in_flight, 0);
  atomic_init(&s->working, 0);
  atomic_init(&s->watchdog_stop, false);
  pthread_mutex_init(&s->conns_lock, NULL);
  if ((cfg->metrics != NULL || cfg->access_log != NULL) &&
      (s->observer = af_bridge_observer_new(cfg->metrics, cfg->access_log, svc, err)) == NULL) {
    pthread_mutex_destroy(&s->conns_lock);
    free(s);
    return NULL;
  }
  s->daemon = start_daemon(s, cfg, &ss);
  if (s->daemon == NULL) {
    af_listen_explain(cfg->listen, why, sizeof why);
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "cannot listen for HTTP on %s: %s", cfg->listen, why);
    pthread_mutex_destroy(&s->conns_lock);
    af_bridge_observer_free(s->observer);
    free(s);
    return NULL;
  }
  /* Without its watchdog the door would not hold --http-timeout: no watchdog, no door. */
  int e = pthread_create(&s->watchdog, NULL, watchdog_main, s);
  if (e != 0) { /* pthread_create says why in what it returns, not in errno */
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "cannot start the AWS door's watchdog thread: %s",
                 strerror(e));
    af_bridge_server_stop(s, 0);
    return NULL;
  }
  s->watchdog_running = true;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : 0;
  return s;
}

int af_bridge_server_port(const af_bridge_server *s) { return s->port; }

void af_bridge_server_drain(af_bridge_server *s) {
  if (s != NULL) /* from here on, new connections are refused: see on_accept */
    atomic_store(&s->draining, true);
}

void af_bridge_server_stop(af_bridge_server *s, double grace_seconds) {
  if (s == NULL)
    return;
  af_bridge_server_drain(s);
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) { /* requests are short: a light poll keeps this free of locks on the hot path */
    int left = atomic_load(&s->in_flight);
    clock_gettime(CLOCK_MONOTONIC, &now);
    double waited =
        (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9;
    if (left <= 0)
      break;
    if (waited >= grace_seconds) {
      af_log_printf(s->log, AF_LOG_WARN, "%d HTTP request%s still running after %.1fs: closing",
                    left, left == 1 ? "" : "s", grace_seconds);
      break;
    }
    nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
  }
  /* The service's answers land in requests this server owns: wait for every one (a store
   * bounds how long an op may take), so none lands after the daemon is gone. */
  while (atomic_load(&s->working) > 0)
    nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
  if (s->watchdog_running) {
    atomic_store(&s->watchdog_stop, true);
    pthread_join(s->watchdog, NULL);
  }
  MHD_stop_daemon(s->daemon);
  pthread_mutex_destroy(&s->conns_lock);
  af_bridge_observer_free(s->observer);
  free(s);
}
