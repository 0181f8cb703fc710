#include "grpc/server.h"

#include "common/listen.h"

#include "grpc/decode.h"
#include "grpc/status.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The core's gRPC codes are the standard ones; make sure they are gRPC's. */
_Static_assert((int)AF_RPC_INVALID_ARGUMENT == (int)GRPC_STATUS_INVALID_ARGUMENT, "codes");
_Static_assert((int)AF_RPC_NOT_FOUND == (int)GRPC_STATUS_NOT_FOUND, "codes");
_Static_assert((int)AF_RPC_ALREADY_EXISTS == (int)GRPC_STATUS_ALREADY_EXISTS, "codes");
_Static_assert((int)AF_RPC_PERMISSION_DENIED == (int)GRPC_STATUS_PERMISSION_DENIED, "codes");
_Static_assert((int)AF_RPC_RESOURCE_EXHAUSTED == (int)GRPC_STATUS_RESOURCE_EXHAUSTED, "codes");
_Static_assert((int)AF_RPC_FAILED_PRECONDITION == (int)GRPC_STATUS_FAILED_PRECONDITION, "codes");
_Static_assert((int)AF_RPC_ABORTED == (int)GRPC_STATUS_ABORTED, "codes");
_Static_assert((int)AF_RPC_UNIMPLEMENTED == (int)GRPC_STATUS_UNIMPLEMENTED, "codes");
_Static_assert((int)AF_RPC_INTERNAL == (int)GRPC_STATUS_INTERNAL, "codes");
_Static_assert((int)AF_RPC_UNAVAILABLE == (int)GRPC_STATUS_UNAVAILABLE, "codes");

/* Calls kept requested per method, so a burst finds one ready (32-64 measured enough). */
#define CALLS_PER_METHOD 64
/* Calls kept requested for methods we do not serve; each is answered at once. */
#define UNKNOWN_CALLS 4

typedef struct af_grpc_server af_grpc_server;
typedef struct slot slot;

/* Every completion-queue tag starts with this, so one loop can dispatch any event. */
typedef struct tag {
  void (*on_event)(af_grpc_server *s, struct tag *t, bool ok);
} tag;

/* A slot waits for a call (REQUESTED), reads its message (RECEIVING), answers (ANSWERING). */
enum slot_state { SLOT_REQUESTED, SLOT_RECEIVING, SLOT_ANSWERING };

/* One requested call: waits for a request, answers it, is requested again. */
struct slot {
  tag base;
  enum slot_state state;
  const af_rpc *rpc; /* NULL: a method we do not serve */
  void *method;      /* gRPC's registered-method handle */
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array request_md;
  grpc_call_details details; /* for unknown methods only */
  grpc_byte_buffer *payload;
  grpc_byte_buffer *reply;
  grpc_slice status_message;
  grpc_metadata trailer;
  int cancelled;
  af_arena arena;
};

struct af_grpc_server {
  grpc_server *server;
  grpc_completion_queue *cq;
  af_flows *svc;
  const af_log *log;
  int port;
  atomic_bool stopping;
  tag shutdown_tag;
  pthread_mutex_t lock;  /* guards in_flight and drained */
  pthread_cond_t change; /* signalled when either changes */
  int in_flight;         /* calls handed to us and not yet answered */
  bool drained;
  int nthreads;
  pthread_t *threads;
  size_t nslots;
  slot *slots;
};

static void slot_request(af_grpc_server *s, slot *sl);

/* ---- answering ---- */

static grpc_byte_buffer *encode_reply(const ProtobufCMessage *resp) {
  size_t len = protobuf_c_message_get_packed_size(resp);
  grpc_slice slice = grpc_slice_malloc(len);
  protobuf_c_message_pack(resp, GRPC_SLICE_START_PTR(slice));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  return bb;
}

/* Reads the whole payload (possibly compressed, so never through data.raw) and decodes it. */
static af_err decode_request(slot *sl, ProtobufCMessage **req, af_error *err) {
  if (sl->payload == NULL)
    return af_error_set(err, AF_ERR_SERIALIZATION, "the call carried no request message");
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, sl->payload))
    return af_error_set(err, AF_ERR_SERIALIZATION, "the request message could not be read");
  grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  af_err rc = af_grpc_decode(sl->rpc->input, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all),
                             &sl->arena, req, err);
  grpc_slice_unref(all);
  return rc;
}

/* Runs the RPC; on success sets sl->reply. */
static af_err run_rpc(af_grpc_server *s, slot *sl, af_error *err) {
  ProtobufCMessage *req;
  af_err rc = decode_request(sl, &req, err);
  if (rc != AF_OK)
    return rc;
  ProtobufCMessage *resp = af_arena_alloc(&sl->arena, sl->rpc->output->sizeof_message);
  if (resp == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
  protobuf_c_message_init(sl->rpc->output, resp);
  rc = sl->rpc->handler(s->svc, req, resp, &sl->arena, err);
  if (rc == AF_OK)
    sl->reply = encode_reply(resp);
  return rc;
}

static void answer(af_grpc_server *s, slot *sl, af_err rc, const af_error *err) {
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  if (rc == AF_OK) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = sl->reply;
  }
  grpc_op *st = &ops[n++];
  st->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  st->data.send_status_from_server.status = (grpc_status_code)af_err_rpc_code(rc);
  if (rc != AF_OK) {
    uint8_t *details;
    size_t len;
    sl->status_message = grpc_slice_from_copied_string(err->message);
    st->data.send_status_from_server.status_details = &sl->status_message;
    if (af_grpc_status_details(err, &sl->arena, &details, &len) == 0) {
      sl->trailer.key = grpc_slice_from_static_string("grpc-status-details-bin");
      sl->trailer.value = grpc_slice_from_copied_buffer((const char *)details, len);
      st->data.send_status_from_server.trailing_metadata = &sl->trailer;
      st->data.send_status_from_server.trailing_metadata_count = 1;
    }
  }
  ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[n++].data.recv_close_on_server.cancelled = &sl->cancelled;
  sl->state = SLOT_ANSWERING;
  grpc_call_error e = grpc_call_start_batch(sl->call, ops, n, &sl->base, NULL);
  if (e != GRPC_CALL_OK) {
    af_log_printf(s->log, AF_LOG_ERROR, "grpc_call_start_batch failed (%d)", (int)e);
    sl->base.on_event(s, &sl->base, false);
  }
}

static void handle_call(af_grpc_server *s, slot *sl) {
  af_error err = {AF_OK, ""};
  af_err rc;
  if (sl->rpc == NULL) {
    char method[256];
    size_t len = GRPC_SLICE_LENGTH(sl->details.method);
    rc = af_error_set(&err, AF_ERR_UNKNOWN_OPERATION,
                      "unknown method %s: appflowd serves appflow.v1.AppFlowService",
                      af_escape(method, sizeof method,
                                (const char *)GRPC_SLICE_START_PTR(sl->details.method), len));
  } else {
    rc = run_rpc(s, sl, &err);
  }
  if (rc != AF_OK)
    af_log_printf(s->log, AF_LOG_DEBUG, "%s: %s: %s", sl->rpc ? sl->rpc->name : "?",
                  af_err_type(rc), err.message);
  answer(s, sl, rc, &err);
}

/* Frees what one call used and makes the slot ready for the next. */
static void slot_reset(slot *sl) {
  if (sl->call != NULL)
    grpc_call_unref(sl->call);
  sl->call = NULL;
  grpc_byte_buffer_destroy(sl->payload);
  grpc_byte_buffer_destroy(sl->reply);
  sl->payload = sl->reply = NULL;
  grpc_slice_unref(sl->status_message);
  grpc_slice_unref(sl->trailer.value);
  sl->status_message = grpc_empty_slice();
  sl->trailer.value = grpc_empty_slice();
  grpc_metadata_array_destroy(&sl->request_md);
  grpc_metadata_array_init(&sl->request_md);
  grpc_call_details_destroy(&sl->details);
  grpc_call_details_init(&sl->details);
  af_arena_reset(&sl->arena);
}

static void count_call(af_grpc_server *s, int delta) {
  pthread_mutex_lock(&s->lock);
  s->in_flight += delta;
  pthread_cond_broadcast(&s->change);
  pthread_mutex_unlock(&s->lock);
}

/* Calls are handed over on their headers (GRPC_SRM_PAYLOAD_NONE), so a call that has begun
 * when shutdown starts is ours to finish even if its message is still on the way. */
static void start_receive(af_grpc_server *s, slot *sl) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &sl->payload;
  sl->state = SLOT_RECEIVING;
  grpc_call_error e = grpc_call_start_batch(sl->call, &op, 1, &sl->base, NULL);
  if (e != GRPC_CALL_OK) {
    af_log_printf(s->log, AF_LOG_ERROR, "grpc_call_start_batch failed (%d)", (int)e);
    sl->base.on_event(s, &sl->base, false);
  }
}

/* The call is over (answered, or gone): free it and wait for the next. */
static void slot_finish(af_grpc_server *s, slot *sl, bool counted) {
  slot_reset(sl);
  if (counted)
    count_call(s, -1);
  if (!atomic_load(&s->stopping))
    slot_request(s, sl);
}

static void slot_event(af_grpc_server *s, tag *t, bool ok) {
  slot *sl = (slot *)t;
  switch (sl->state) {
  case SLOT_REQUESTED:
    if (!ok) { /* the request was withdrawn by shutdown */
      slot_finish(s, sl, false);
      return;
    }
    count_call(s, +1);
    if (sl->rpc == NULL)
      handle_call(s, sl); /* an unknown method: answered without reading its message */
    else
      start_receive(s, sl);
    return;
  case SLOT_RECEIVING:
    if (ok)
      handle_call(s, sl);
    else /* the client went away; unref cancels what is left of the call */
      slot_finish(s, sl, true);
    return;
  case SLOT_ANSWERING:
    slot_finish(s, sl, true);
    return;
  }
}

static void slot_request(af_grpc_server *s, slot *sl) {
  sl->state = SLOT_REQUESTED;
  grpc_call_error e;
  if (sl->rpc != NULL)
    e = grpc_server_request_registered_call(s->server, sl->method, &sl->call, &sl->deadline,
                                            &sl->request_md, NULL, s->cq, s->cq, &sl->base);
  else
    e = grpc_server_request_call(s->server, &sl->call, &sl->details, &sl->request_md, s->cq, s->cq,
                                 &sl->base);
  if (e != GRPC_CALL_OK && !atomic_load(&s->stopping))
    af_log_printf(s->log, AF_LOG_ERROR, "requesting a call failed (%d)", (int)e);
}

/* ---- threads and shutdown ---- */

static void shutdown_event(af_grpc_server *s, tag *t, bool ok) {
  (void)t;
  (void)ok;
  /* Every call has finished: no more events but the queue's own shutdown. */
  grpc_completion_queue_shutdown(s->cq);
  pthread_mutex_lock(&s->lock);
  s->drained = true;
  pthread_cond_broadcast(&s->change);
  pthread_mutex_unlock(&s->lock);
}

static void *poll_thread(void *arg) {
  af_grpc_server *s = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      return NULL;
    if (ev.type == GRPC_OP_COMPLETE) {
      tag *t = ev.tag;
      t->on_event(s, t, ev.success != 0);
    }
  }
}

/* ---- start ---- */

static int create_server(af_grpc_server *s, const af_grpc_config *cfg, af_error *err) {
  grpc_arg args[2];
  args[0] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                       .key = (char *)GRPC_ARG_ALLOW_REUSEPORT,
                       .value.integer = 0}; /* a busy port must fail, not be shared */
  args[1] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                       .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                       .value.integer = cfg->max_receive_bytes > 0 ? cfg->max_receive_bytes
                                                                   : AF_GRPC_DEFAULT_MAX_RECEIVE};
  grpc_channel_args chargs = {2, args};
  s->server = grpc_server_create(&chargs, NULL);
  s->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  s->port = grpc_server_add_http2_port(s->server, cfg->listen, creds);
  grpc_server_credentials_release(creds);
  if (s->port <= 0) {
    char why[256];
    af_listen_explain(cfg->listen, why, sizeof why);
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "cannot listen for gRPC on %s: %s", cfg->listen, why);
    return -1;
  }
  return 0;
}

static void init_slot(slot *sl, const af_rpc *rpc, void *method) {
  memset(sl, 0, sizeof *sl);
  sl->base.on_event = slot_event;
  sl->rpc = rpc;
  sl->method = method;
  sl->status_message = grpc_empty_slice();
  sl->trailer.value = grpc_empty_slice();
  grpc_metadata_array_init(&sl->request_md);
  grpc_call_details_init(&sl->details);
  af_arena_init(&sl->arena);
}

/* Registers every RPC of the service and prepares the call slots for it. */
static int create_slots(af_grpc_server *s, af_error *err) {
  s->nslots = af_flows_rpc_count * CALLS_PER_METHOD + UNKNOWN_CALLS;
  s->slots = calloc(s->nslots, sizeof *s->slots);
  if (s->slots == NULL) {
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return -1;
  }
  size_t k = 0;
  for (size_t r = 0; r < af_flows_rpc_count; r++) {
    const af_rpc *rpc = &af_flows_rpcs[r];
    void *m = grpc_server_register_method(s->server, rpc->path, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
    for (int i = 0; i < CALLS_PER_METHOD; i++)
      init_slot(&s->slots[k++], rpc, m);
  }
  while (k < s->nslots)
    init_slot(&s->slots[k++], NULL, NULL);
  return 0;
}

static void free_server(af_grpc_server *s) {
  if (s->server != NULL)
    grpc_server_destroy(s->server);
  if (s->cq != NULL)
    grpc_completion_queue_destroy(s->cq);
  for (size_t i = 0; s->slots != NULL && i < s->nslots; i++) {
    slot_reset(&s->slots[i]);
    grpc_metadata_array_destroy(&s->slots[i].request_md);
    grpc_call_details_destroy(&s->slots[i].details);
    af_arena_destroy(&s->slots[i].arena);
  }
  free(s->slots);
  free(s->threads);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->change);
  free(s);
}

/* A server that never started (bind failed) still needs its queue shut down and drained before
 * destroy. */
static void abandon(af_grpc_server *s) {
  if (s->cq != NULL) {
    grpc_completion_queue_shutdown(s->cq);
    while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
  }
  free_server(s);
}

static int start_threads(af_grpc_server *s, int n, af_error *err) {
  s->threads = calloc((size_t)n, sizeof *s->threads);
  if (s->threads == NULL) {
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return -1;
  }
  for (; s->nthreads < n; s->nthreads++) {
    if (pthread_create(&s->threads[s->nthreads], NULL, poll_thread, s) != 0) {
      af_error_set(err, AF_ERR_INTERNAL_SERVER, "cannot start thread: %s", strerror(errno));
      return -1;
    }
  }
  return 0;
}

af_grpc_server *af_grpc_server_start(const af_grpc_config *cfg, af_flows *svc, af_error *err) {
  af_grpc_server *s = calloc(1, sizeof *s);
  if (s == NULL) {
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return NULL;
  }
  s->svc = svc;
  s->log = cfg->log;
  s->shutdown_tag.on_event = shutdown_event;
  atomic_init(&s->stopping, false);
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->change, NULL);
  if (create_server(s, cfg, err) != 0 || create_slots(s, err) != 0) {
    abandon(s);
    return NULL;
  }
  grpc_server_start(s->server);
  for (size_t i = 0; i < s->nslots; i++)
    slot_request(s, &s->slots[i]);
  if (start_threads(s, cfg->threads > 0 ? cfg->threads : 1, err) != 0) {
    af_grpc_server_stop(s, 0);
    return NULL;
  }
  return s;
}

int af_grpc_server_port(const af_grpc_server *s) { return s->port; }

/* Waits until no call is in flight (or the queue has drained); returns how many calls are
 * left when `deadline` passes. */
static int wait_calls(af_grpc_server *s, const struct timespec *deadline) {
  pthread_mutex_lock(&s->lock);
  int rc = 0;
  while (s->in_flight > 0 && !s->drained && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&s->change, &s->lock, deadline);
  int left = s->drained ? 0 : s->in_flight;
  pthread_mutex_unlock(&s->lock);
  return left;
}

static void wait_drained(af_grpc_server *s) {
  pthread_mutex_lock(&s->lock);
  while (!s->drained)
    pthread_cond_wait(&s->change, &s->lock);
  pthread_mutex_unlock(&s->lock);
}

static struct timespec deadline_after(double seconds) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  long whole = (long)seconds;
  t.tv_sec += whole;
  t.tv_nsec += (long)((seconds - (double)whole) * 1e9);
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

void af_grpc_server_stop(af_grpc_server *s, double grace_seconds) {
  if (s == NULL)
    return;
  atomic_store(&s->stopping, true);
  grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
  if (s->nthreads == 0) { /* start failed before any thread polled: poll here */
    grpc_server_cancel_all_calls(s->server);
    poll_thread(s);
    free_server(s);
    return;
  }
  /* In-flight calls get the grace period; then whatever is left is cancelled. Idle client
   * connections would hold gRPC's shutdown open on their own, so cancel_all_calls (which also
   * closes them) runs as soon as the calls are done, not only after the grace period. */
  struct timespec deadline = deadline_after(grace_seconds);
  int left = wait_calls(s, &deadline);
  if (left > 0)
    af_log_printf(s->log, AF_LOG_WARN, "%d call%s still running after %.1fs: cancelling them", left,
                  left == 1 ? "" : "s", grace_seconds);
  grpc_server_cancel_all_calls(s->server);
  wait_drained(s);
  for (int i = 0; i < s->nthreads; i++)
    pthread_join(s->threads[i], NULL);
  free_server(s);
}
