#include "grpc/server.h"

#include "common/encode.h"
#include "common/listen.h"
#include "grpc/decode.h"
#include "grpc/health.h"
#include "grpc/observe.h"
#include "grpc/status.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The core's gRPC codes are the standard ones; make sure they are gRPC's. */
_Static_assert((int)AF_RPC_INVALID_ARGUMENT == (int)GRPC_STATUS_INVALID_ARGUMENT, "codes");
_Static_assert((int)AF_RPC_DEADLINE_EXCEEDED == (int)GRPC_STATUS_DEADLINE_EXCEEDED, "codes");
_Static_assert((int)AF_RPC_NOT_FOUND == (int)GRPC_STATUS_NOT_FOUND, "codes");
_Static_assert((int)AF_RPC_ALREADY_EXISTS == (int)GRPC_STATUS_ALREADY_EXISTS, "codes");
_Static_assert((int)AF_RPC_PERMISSION_DENIED == (int)GRPC_STATUS_PERMISSION_DENIED, "codes");
_Static_assert((int)AF_RPC_RESOURCE_EXHAUSTED == (int)GRPC_STATUS_RESOURCE_EXHAUSTED, "codes");
_Static_assert((int)AF_RPC_FAILED_PRECONDITION == (int)GRPC_STATUS_FAILED_PRECONDITION, "codes");
_Static_assert((int)AF_RPC_ABORTED == (int)GRPC_STATUS_ABORTED, "codes");
_Static_assert((int)AF_RPC_UNIMPLEMENTED == (int)GRPC_STATUS_UNIMPLEMENTED, "codes");
_Static_assert((int)AF_RPC_INTERNAL == (int)GRPC_STATUS_INTERNAL, "codes");
_Static_assert((int)AF_RPC_UNAVAILABLE == (int)GRPC_STATUS_UNAVAILABLE, "codes");

/* Calls a method may keep requested, so a burst finds one ready (32-64 measured enough for an
 * AppFlow method); fewer for the platform services, whose calls are rare. A health watch holds
 * its slot for as long as the client watches. A method starts with CALLS_AT_START of them
 * requested and puts GROW_CALLS more to use whenever a call leaves it SPARE_CALLS or fewer
 * waiting: each requested call is a tag on the completion queue, and gRPC as Debian builds it
 * (without NDEBUG) looks every completed tag up in a list of them all, under the queue's lock
 * (cq_check_tag), so 64 for every method made that list some 1,700 long and the lookup 20% of a
 * StopFlow's instructions. Only the methods clients use grow. */
#define RPC_CALLS 64
#define CALLS_AT_START 4
#define GROW_CALLS 4
#define SPARE_CALLS 1
#define UNSERVED_CALLS 2
#define HEALTH_CHECK_CALLS 8
#define HEALTH_WATCH_CALLS 16
#define REFLECTION_CALLS 8
#define UNKNOWN_CALLS 4

/* grpc.health.v1 ServingStatus */
#define HEALTH_SERVING 1
#define HEALTH_NOT_SERVING 2

typedef struct af_grpc_server af_grpc_server;
typedef struct slot slot;

/* Every completion-queue tag starts with this, so one loop can dispatch any event. */
typedef struct tag {
  void (*on_event)(af_grpc_server *s, struct tag *t, bool ok);
} tag;

typedef enum method_kind {
  M_RPC,          /* an AppFlow RPC: unary, through the service's RPC table */
  M_HEALTH_CHECK, /* unary */
  M_HEALTH_WATCH, /* one request, a stream of statuses */
  M_REFLECTION,   /* a stream of requests, one response each */
  M_UNKNOWN       /* any other method: UNIMPLEMENTED */
} method_kind;

typedef struct method {
  const char *path; /* NULL for M_UNKNOWN */
  method_kind kind;
  const af_rpc *rpc;   /* M_RPC only */
  int calls;           /* slots it may keep requested */
  void *handle;        /* gRPC's registered-method handle */
  struct slot *slots;  /* its `calls` slots; the first `active` are in use */
  _Atomic int active;  /* slots put to use: each is requested again after every call */
  _Atomic int waiting; /* slots requested and waiting for a call */
} method;

/* A method whose client sends one message: gRPC hands the call over with that message read
 * (GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER), which saves a RECV_MESSAGE batch - a trip
 * through the completion queue - per call. Reflection streams requests, so it reads its own;
 * an unknown method is answered without reading. */
static bool reads_with_call(const method *m) {
  return m->kind == M_RPC || m->kind == M_HEALTH_CHECK || m->kind == M_HEALTH_WATCH;
}

/* What a slot's call is doing; each state but WATCHING has one batch in flight on `base`. */
enum slot_state {
  SLOT_REQUESTED,     /* waiting for a call */
  SLOT_RECEIVING,     /* reading a request message */
  SLOT_WORKING,       /* the service is answering: no batch in flight until it does */
  SLOT_STREAMING,     /* reflection: a response out and the next request being read */
  SLOT_WATCH_SENDING, /* health watch: a status going out */
  SLOT_WATCHING,      /* health watch: idle until shutdown or the client leaves */
  SLOT_FINISHING,     /* the final status going out */
  SLOT_DONE,          /* health watch: final status sent, client not yet gone */
  SLOT_RELEASED       /* health watch: over; being freed and requested again */
};

/* One requested call: waits for a call, serves it, is requested again. */
struct slot {
  tag base; /* the call's batches */
  af_grpc_server *server;
  tag close;                      /* RECV_CLOSE_ON_SERVER of a health watch, which stays open */
  _Atomic(enum slot_state) state; /* atomic: a store thread reads it (store_health_changed) */
  atomic_bool live;               /* initialised (put_to_use); before that, zero bytes only */
  method *m;
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array request_md;
  grpc_call_details details; /* for unknown methods only */
  grpc_byte_buffer *payload; /* the message last received */
  grpc_byte_buffer *reply;   /* the message being sent */
  grpc_slice status_message;
  grpc_metadata trailer;
  int cancelled;
  bool md_sent;       /* initial metadata has gone out */
  bool close_pending; /* `close` has a batch in flight */
  bool close_done;
  bool watch_known;           /* a watch of a service we report on: it follows our health */
  int watch_sent;             /* the status a watch last sent */
  pthread_mutex_t watch_lock; /* a watch's state, shared with the stopping thread */
  ProtobufCMessage *resp;     /* an AppFlow RPC's response, while the service answers */
  af_error err;               /* ... and its error */
  af_arena arena;
  af_encoder encoder;           /* packs the call's reply; kept, grown, from one call to the next */
  af_pbc_ready ready;           /* the reply's messages the service had packed (the encoder's) */
  af_grpc_call_obs obs;         /* metrics and the access log's, when the server has an observer */
  const char *account, *region; /* the call's; NULL: the service's own (--account, --region) */
};

struct af_grpc_server {
  grpc_server *server;
  grpc_completion_queue *cq;
  af_flows *svc;
  const af_reflection *reflection;
  bool emulator; /* serves the emulator's control RPCs too */
  const af_log *log;
  int port;
  atomic_bool stopping;
  atomic_bool serving; /* false once shutdown begins; health also asks the store */
  tag shutdown_tag;
  atomic_int in_flight; /* calls handed to us and not yet over */
  pthread_mutex_t lock; /* guards shutdown_done and drained; on the call path only while stopping */
  pthread_cond_t change; /* signalled when drained or in_flight change while stopping */
  bool shutdown_done;    /* gRPC's shutdown tag has fired */
  bool drained;          /* ...and no call of ours was left: the queue is shut down */
  bool watching;         /* store_health_changed is registered with the store */
  int nthreads;
  pthread_t *threads;
  size_t nmethods;
  method *methods;
  slot *slots; /* every method's, zeroed: a slot is initialised when first put to use */
  af_grpc_observer *observer; /* NULL: no metrics and no access log */
};

static slot *slot_of(tag *t) { return (slot *)(void *)((char *)t - offsetof(slot, base)); }
static slot *slot_of_close(tag *t) { return (slot *)(void *)((char *)t - offsetof(slot, close)); }

static void slot_request(af_grpc_server *s, slot *sl);
static void init_slot(af_grpc_server *s, slot *sl, method *m);

/* Slot i of m if it has been put to use, else NULL: slots are initialised when first used, so
 * a server holds pages only for the calls its clients have needed. */
static slot *live_slot(method *m, int i) {
  slot *sl = &m->slots[i];
  return atomic_load_explicit(&sl->live, memory_order_acquire) ? sl : NULL;
}

/* ---- what operators see: metrics and the access log (grpc/observe.h) ---- */

/* The call is over with code: counted and logged once (later calls do nothing). */
static void observe_end(af_grpc_server *s, slot *sl, grpc_status_code code, const char *type) {
  if (s->observer == NULL || !sl->obs.live)
    return;
  bool known = sl->m->path != NULL;
  const char *path = known ? sl->m->path : (const char *)GRPC_SLICE_START_PTR(sl->details.method);
  size_t len = known ? strlen(path) : GRPC_SLICE_LENGTH(sl->details.method);
  af_grpc_call_view v = {sl->call, &sl->request_md, path, len, sl->account, sl->region};
  af_grpc_observe_end(s->observer, &sl->obs, code, type, &v);
}

static void observe_bytes(af_grpc_server *s, const grpc_byte_buffer *b, uint64_t *count) {
  if (s->observer != NULL && b != NULL)
    *count += grpc_byte_buffer_length((grpc_byte_buffer *)b);
}

/* ---- bookkeeping ---- */

/* The queue may be shut down only once gRPC has finished shutting down AND no call of ours is
 * in flight: after grpc_server_cancel_all_calls gRPC can report shutdown while a poll thread
 * is still answering a cancelled call, and a batch started on a shut-down queue aborts the
 * process. Runs under s->lock. */
static void maybe_close_queue(af_grpc_server *s) {
  if (!s->shutdown_done || s->drained || atomic_load(&s->in_flight) != 0)
    return;
  s->drained = true;
  grpc_completion_queue_shutdown(s->cq);
  pthread_cond_broadcast(&s->change);
}

/* An atomic count, so calls on different threads never meet on a lock; only once shutdown
 * has begun does a change take the lock, to wake the thread waiting in af_grpc_server_stop
 * and to shut the queue when the last call ends. */
static void count_call(af_grpc_server *s, int delta) {
  atomic_fetch_add(&s->in_flight, delta);
  if (!atomic_load(&s->stopping))
    return;
  pthread_mutex_lock(&s->lock);
  maybe_close_queue(s);
  pthread_cond_broadcast(&s->change);
  pthread_mutex_unlock(&s->lock);
}

/* Counts a call that has just been handed over. False when the queue is already shut down
 * (shutdown finished while the event waited): the call must then start no batch. The count
 * goes up before the check, so maybe_close_queue either sees it or has closed first. */
static bool enter_call(af_grpc_server *s) {
  atomic_fetch_add(&s->in_flight, 1);
  if (!atomic_load(&s->stopping))
    return true;
  pthread_mutex_lock(&s->lock);
  bool open = !s->drained;
  pthread_mutex_unlock(&s->lock);
  if (!open)
    atomic_fetch_sub(&s->in_flight, 1);
  return open;
}

/* Frees what one call used and makes the slot ready for the next. */
static void slot_reset(slot *sl) {
  if (sl->call != NULL)
    grpc_call_unref(sl->call); /* cancels the call if it is not over */
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
  sl->md_sent = sl->close_pending = sl->close_done = false;
  sl->account = sl->region = NULL;
  sl->ready = (af_pbc_ready){0, NULL};
  af_arena_reset(&sl->arena);
}

/* The call is over (answered, or gone): free it and wait for the next. */
static void slot_finish(af_grpc_server *s, slot *sl) {
  observe_end(s, sl, GRPC_STATUS_CANCELLED, NULL); /* over without our status: the client left */
  slot_reset(sl);
  count_call(s, -1);
  if (!atomic_load(&s->stopping))
    slot_request(s, sl);
}

/* A batch that cannot even start is a bug in the ops: say so and drop the call, which
 * unref cancels, rather than leave it hanging. */
static bool start_batch(af_grpc_server *s, slot *sl, tag *t, const grpc_op *ops, size_t n) {
  grpc_call_error e = grpc_call_start_batch(sl->call, ops, n, t, NULL);
  if (e == GRPC_CALL_OK)
    return true;
  af_log_printf(s->log, AF_LOG_ERROR, "grpc_call_start_batch failed (%d)", (int)e);
  return false;
}

/* ---- sending ---- */

static grpc_byte_buffer *bytes_to_buffer(const uint8_t *data, size_t len) {
  grpc_slice slice = grpc_slice_from_copied_buffer((const char *)data, len);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  return bb;
}

/* msg packed by the encoder (common/encode.h), which sizes each nested message once; when it
 * has no memory for its sizes, protobuf-c makes the same bytes without them. */
static grpc_byte_buffer *message_to_buffer(af_encoder *enc, const ProtobufCMessage *msg) {
  size_t len;
  bool sized = af_encode_size(enc, msg, &len);
  if (!sized)
    len = protobuf_c_message_get_packed_size(msg);
  grpc_slice slice = grpc_slice_malloc(len);
  if (sized)
    af_encode_write(enc, msg, GRPC_SLICE_START_PTR(slice));
  else
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  return bb;
}

/* Appends SEND_INITIAL_METADATA the first time a call sends anything. */
static size_t add_initial_md(slot *sl, grpc_op *ops, size_t n) {
  if (!sl->md_sent) {
    grpc_metadata *md = NULL;
    ops[n].data.send_initial_metadata.count =
        af_grpc_observe_headers(sl->server->observer, &sl->obs, &md);
    ops[n].data.send_initial_metadata.metadata = md;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    sl->md_sent = true;
  }
  return n;
}

/* Fills a SEND_STATUS_FROM_SERVER op: rc's code, and for errors the message and
 * grpc-status-details-bin. */
static void status_op(slot *sl, grpc_op *op, af_err rc, const af_error *err) {
  op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  op->data.send_status_from_server.status = (grpc_status_code)af_err_rpc_code(rc);
  if (rc == AF_OK)
    return;
  uint8_t *details;
  size_t len;
  sl->status_message = grpc_slice_from_copied_string(err->message);
  op->data.send_status_from_server.status_details = &sl->status_message;
  if (af_grpc_status_details(err, &sl->arena, &details, &len) == 0) {
    sl->trailer.key = grpc_slice_from_static_string("grpc-status-details-bin");
    sl->trailer.value = grpc_slice_from_copied_buffer((const char *)details, len);
    op->data.send_status_from_server.trailing_metadata = &sl->trailer;
    op->data.send_status_from_server.trailing_metadata_count = 1;
  }
}

/* Ends the call: sl->reply (if any), then the status for rc. */
static void send_final(af_grpc_server *s, slot *sl, af_err rc, const af_error *err) {
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  size_t n = add_initial_md(sl, ops, 0);
  if (sl->reply != NULL) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = sl->reply;
  }
  status_op(sl, &ops[n++], rc, err);
  if (!sl->close_pending) {
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &sl->cancelled;
  }
  sl->state = SLOT_FINISHING;
  if (rc != AF_OK)
    af_log_printf(s->log, AF_LOG_DEBUG, "%s: %s: %s", sl->m->path ? sl->m->path : "?",
                  af_err_type(rc), err->message);
  observe_bytes(s, sl->reply, &sl->obs.bytes_out);
  observe_end(s, sl, (grpc_status_code)af_err_rpc_code(rc), rc == AF_OK ? NULL : af_err_type(rc));
  if (!start_batch(s, sl, &sl->base, ops, n) && !sl->close_pending)
    slot_finish(s, sl);
}

static void start_receive(af_grpc_server *s, slot *sl) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &sl->payload;
  sl->state = SLOT_RECEIVING;
  if (!start_batch(s, sl, &sl->base, &op, 1))
    slot_finish(s, sl);
}

/* ---- answering ---- */

/* The received message's bytes (possibly decompressed, so never read through data.raw).
 * Returns false when there is no message (the client closed its side). */
static bool read_payload(slot *sl, grpc_slice *out) {
  grpc_byte_buffer_reader reader;
  if (sl->payload == NULL || !grpc_byte_buffer_reader_init(&reader, sl->payload))
    return false;
  *out = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  return true;
}

static af_err missing_message(af_error *err) {
  return af_error_set(err, AF_ERR_SERIALIZATION, "the call carried no request message");
}

/* The service has answered: encode and send it (on whichever thread answered). */
static void rpc_done(void *ctx, af_err rc) {
  slot *sl = ctx;
  if (rc == AF_OK) {
    sl->encoder.ready = &sl->ready;
    sl->reply = message_to_buffer(&sl->encoder, sl->resp);
  }
  send_final(sl->server, sl, rc, &sl->err);
}

/* The caller's deadline on the store's clock (0: none), so the store drops work no one waits
 * for. */
static int64_t deadline_ms(const slot *sl) {
  gpr_timespec d = gpr_convert_clock_type(sl->deadline, GPR_CLOCK_MONOTONIC);
  if (gpr_time_cmp(d, gpr_inf_future(GPR_CLOCK_MONOTONIC)) == 0)
    return 0;
  int64_t ms = gpr_time_to_millis(gpr_time_sub(d, gpr_now(GPR_CLOCK_MONOTONIC)));
  return af_store_now_ms() + (ms > 0 ? ms : -1); /* past: the store drops it at once */
}

/* The value of the call's first request header called key (lower case, as gRPC keeps them), in
 * the call's arena; NULL when it has none (or memory ran out: the service's default then). */
static const char *header_value(slot *sl, const char *key) {
  size_t klen = strlen(key);
  for (size_t i = 0; i < sl->request_md.count; i++) {
    const grpc_metadata *m = &sl->request_md.metadata[i];
    if (GRPC_SLICE_LENGTH(m->key) == klen && memcmp(GRPC_SLICE_START_PTR(m->key), key, klen) == 0)
      return af_arena_strndup(&sl->arena, (const char *)GRPC_SLICE_START_PTR(m->value),
                              GRPC_SLICE_LENGTH(m->value));
  }
  return NULL;
}

/* An AppFlow RPC: decode, and hand it to the service, which answers through rpc_done. */
static void run_rpc(af_grpc_server *s, slot *sl) {
  const af_rpc *rpc = sl->m->rpc;
  /* The account and region the call acts in, as AWS's headers name them; the service's own
   * (--account, --region) when it names none (and in the access log of a call refused before). */
  sl->account = header_value(sl, "x-amz-account-id");
  sl->region = header_value(sl, "x-amz-region");
  af_error *err = &sl->err;
  grpc_slice bytes;
  ProtobufCMessage *req;
  af_err rc = read_payload(sl, &bytes) ? AF_OK : missing_message(err);
  if (rc == AF_OK) {
    rc = af_grpc_decode(rpc->input, GRPC_SLICE_START_PTR(bytes), GRPC_SLICE_LENGTH(bytes),
                        &sl->arena, &req, err);
    grpc_slice_unref(bytes);
  }
  if (rc == AF_OK && (sl->resp = af_arena_alloc(&sl->arena, rpc->output->sizeof_message)) == NULL)
    rc = af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
  if (rc != AF_OK) {
    send_final(s, sl, rc, err);
    return;
  }
  protobuf_c_message_init(rpc->output, sl->resp);
  sl->state = SLOT_WORKING;
  af_reply_to to = {.arena = &sl->arena,
                    .err = err,
                    .deadline_ms = deadline_ms(sl),
                    .done = rpc_done,
                    .ctx = sl,
                    .account = sl->account,
                    .region = sl->region,
                    .ready = &sl->ready};
  af_flows_call(s->svc, rpc, req, sl->resp, &to);
}

/* What health reports now for the server and its service: serving until shutdown begins, and
 * only while the store can serve. */
static bool serving_now(af_grpc_server *s) {
  return atomic_load(&s->serving) && af_store_healthy(af_flows_store(s->svc));
}

/* Health Check, or the first answer of a Watch: the status for the requested service. */
static af_err health_status(af_grpc_server *s, slot *sl, bool watch, int *status, af_error *err) {
  grpc_slice bytes;
  if (!read_payload(sl, &bytes))
    return missing_message(err);
  af_err rc = af_health_status(GRPC_SLICE_START_PTR(bytes), GRPC_SLICE_LENGTH(bytes),
                               serving_now(s), watch, &sl->arena, status, err);
  grpc_slice_unref(bytes);
  return rc;
}

static af_err encode_health(slot *sl, int status, af_error *err) {
  uint8_t *out;
  size_t len;
  af_err rc = af_health_response(status, &sl->arena, &out, &len, err);
  if (rc == AF_OK)
    sl->reply = bytes_to_buffer(out, len);
  return rc;
}

static af_err run_check(af_grpc_server *s, slot *sl, af_error *err) {
  int status;
  af_err rc = health_status(s, sl, false, &status, err);
  return rc == AF_OK ? encode_health(sl, status, err) : rc;
}

/* ---- health watch: the one call that stays open ---- */

/* Sends a status; the last one (at shutdown) ends the call with UNAVAILABLE so the client
 * looks for another server. Runs under watch_lock. */
static void watch_send(af_grpc_server *s, slot *sl, int status, bool last) {
  af_error err;
  grpc_byte_buffer_destroy(sl->reply);
  sl->reply = NULL;
  af_arena_reset(&sl->arena);
  if (encode_health(sl, status, &err) != AF_OK) {
    send_final(s, sl, err.code, &err);
    return;
  }
  grpc_op ops[3];
  memset(ops, 0, sizeof ops);
  size_t n = add_initial_md(sl, ops, 0);
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n++].data.send_message.send_message = sl->reply;
  observe_bytes(s, sl->reply, &sl->obs.bytes_out);
  if (last) {
    af_error_set(&err, AF_ERR_UNAVAILABLE, "appflowd is shutting down");
    status_op(sl, &ops[n++], AF_ERR_UNAVAILABLE, &err);
    observe_end(s, sl, GRPC_STATUS_UNAVAILABLE, af_err_type(AF_ERR_UNAVAILABLE));
  }
  sl->state = last ? SLOT_FINISHING : SLOT_WATCH_SENDING;
  sl->watch_sent = status;
  if (!start_batch(s, sl, &sl->base, ops, n))
    sl->state = SLOT_DONE; /* the close event ends it */
}

static void watch_start(af_grpc_server *s, slot *sl) {
  af_error err;
  int status;
  af_err rc = health_status(s, sl, true, &status, &err);
  if (rc != AF_OK) {
    send_final(s, sl, rc, &err);
    return;
  }
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &sl->cancelled;
  if (!start_batch(s, sl, &sl->close, &op, 1)) {
    slot_finish(s, sl);
    return;
  }
  pthread_mutex_lock(&sl->watch_lock);
  sl->close_pending = true;
  sl->watch_known = status == HEALTH_SERVING || status == HEALTH_NOT_SERVING;
  bool stopping = !atomic_load(&s->serving);
  watch_send(s, sl, stopping ? HEALTH_NOT_SERVING : status, stopping);
  pthread_mutex_unlock(&sl->watch_lock);
}

/* The status a watch should report now. Runs under watch_lock. */
static int watch_status(af_grpc_server *s, const slot *sl) {
  if (!sl->watch_known)
    return sl->watch_sent; /* SERVICE_UNKNOWN stays so */
  return serving_now(s) ? HEALTH_SERVING : HEALTH_NOT_SERVING;
}

/* Sends the watch the status health now has, if it has not sent it yet; true when it did.
 * Runs under watch_lock, with no batch of the watch's in flight. */
static bool watch_follow(af_grpc_server *s, slot *sl) {
  int status = watch_status(s, sl);
  if (status == sl->watch_sent)
    return false;
  watch_send(s, sl, status, false);
  return true;
}

/* A watch's batch completed. */
static void watch_sent(af_grpc_server *s, slot *sl, bool ok) {
  pthread_mutex_lock(&sl->watch_lock);
  if (sl->state == SLOT_FINISHING || !ok)
    sl->state = SLOT_DONE;
  else if (!atomic_load(&s->serving))
    watch_send(s, sl, HEALTH_NOT_SERVING, true);
  else if (!watch_follow(s, sl)) /* health may have changed while it was sending */
    sl->state = SLOT_WATCHING;
  /* The client may have left while the send was in flight: then nothing more will come. */
  bool over = sl->close_done && (sl->state == SLOT_DONE || sl->state == SLOT_WATCHING);
  if (over)
    sl->state = SLOT_RELEASED;
  pthread_mutex_unlock(&sl->watch_lock);
  if (over)
    slot_finish(s, sl);
}

/* The client left, or the call ended: finish once no batch of ours is in flight. */
static void watch_closed(af_grpc_server *s, tag *t, bool ok) {
  (void)ok;
  slot *sl = slot_of_close(t);
  pthread_mutex_lock(&sl->watch_lock);
  sl->close_done = true;
  bool over = sl->state == SLOT_WATCHING || sl->state == SLOT_DONE;
  /* Leave WATCHING under the lock, so end_watches never sends on a call being freed. */
  if (over)
    sl->state = SLOT_RELEASED;
  pthread_mutex_unlock(&sl->watch_lock);
  if (over)
    slot_finish(s, sl);
}

/* Calls visit(s, sl) under the watch lock of every health watch slot put to use. */
static void each_watch(af_grpc_server *s, void (*visit)(af_grpc_server *s, slot *sl)) {
  for (size_t i = 0; i < s->nmethods; i++) {
    method *m = &s->methods[i];
    for (int c = 0; m->kind == M_HEALTH_WATCH && c < m->calls; c++) {
      slot *sl = live_slot(m, c);
      if (sl == NULL)
        continue;
      pthread_mutex_lock(&sl->watch_lock);
      visit(s, sl);
      pthread_mutex_unlock(&sl->watch_lock);
    }
  }
}

static void watch_ends(af_grpc_server *s, slot *sl) {
  if (sl->state == SLOT_WATCHING)
    watch_send(s, sl, HEALTH_NOT_SERVING, true);
}

/* Shutdown began: every idle watcher hears NOT_SERVING now; busy ones when their send ends. */
static void end_watches(af_grpc_server *s) { each_watch(s, watch_ends); }

static void watch_changed(af_grpc_server *s, slot *sl) {
  if (sl->state == SLOT_WATCHING && atomic_load(&s->serving))
    watch_follow(s, sl);
}

/* The store's health changed (called on a store thread): idle watchers hear it now, busy ones
 * when their send ends (watch_sent). */
static void store_health_changed(void *ctx, bool healthy) {
  (void)healthy;
  each_watch(ctx, watch_changed);
}

/* ---- reflection: a stream of requests, one response each ---- */

static void reflect(af_grpc_server *s, slot *sl) {
  grpc_slice bytes;
  if (!read_payload(sl, &bytes)) { /* the client is done asking */
    send_final(s, sl, AF_OK, NULL);
    return;
  }
  af_error err;
  uint8_t *out;
  size_t len;
  af_err rc = af_reflection_answer(s->reflection, GRPC_SLICE_START_PTR(bytes),
                                   GRPC_SLICE_LENGTH(bytes), &sl->arena, &out, &len, &err);
  grpc_slice_unref(bytes);
  if (rc != AF_OK) {
    send_final(s, sl, rc, &err);
    return;
  }
  sl->reply = bytes_to_buffer(out, len);
  observe_bytes(s, sl->reply, &sl->obs.bytes_out);
  grpc_byte_buffer_destroy(sl->payload);
  sl->payload = NULL;
  grpc_op ops[3];
  memset(ops, 0, sizeof ops);
  size_t n = add_initial_md(sl, ops, 0);
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n++].data.send_message.send_message = sl->reply;
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n++].data.recv_message.recv_message = &sl->payload;
  sl->state = SLOT_STREAMING;
  if (!start_batch(s, sl, &sl->base, ops, n))
    slot_finish(s, sl);
}

/* ---- dispatch ---- */

static void unknown_method(af_grpc_server *s, slot *sl) {
  af_error err;
  char method_name[256];
  size_t len = GRPC_SLICE_LENGTH(sl->details.method);
  af_error_set(&err, AF_ERR_UNKNOWN_OPERATION,
               "unknown method %s: appflowd serves appflow.v1.AppFlowService, "
               "grpc.health.v1.Health and server reflection",
               af_escape(method_name, sizeof method_name,
                         (const char *)GRPC_SLICE_START_PTR(sl->details.method), len));
  send_final(s, sl, err.code, &err);
}

/* A request message arrived (or the client closed its side). */
static void on_message(af_grpc_server *s, slot *sl) {
  af_error err; /* started only where it is used: most calls never touch it */
  af_err rc;
  switch (sl->m->kind) {
  case M_RPC:
    run_rpc(s, sl);
    return;
  case M_HEALTH_CHECK:
    af_error_start(&err, AF_OK);
    rc = run_check(s, sl, &err);
    send_final(s, sl, rc, &err);
    return;
  case M_HEALTH_WATCH:
    watch_start(s, sl);
    return;
  case M_REFLECTION:
    reflect(s, sl);
    return;
  case M_UNKNOWN:
    unknown_method(s, sl);
    return;
  }
}

/* Requests up to n more of m's slots, never more than m->calls in all; any thread may. */
static void put_to_use(af_grpc_server *s, method *m, int n) {
  for (int i = 0; i < n; i++) {
    int k = atomic_load(&m->active);
    do {
      if (k >= m->calls)
        return;
    } while (!atomic_compare_exchange_weak(&m->active, &k, k + 1));
    slot *sl = &m->slots[k]; /* never in use: this thread alone has it */
    init_slot(s, sl, m);
    atomic_store_explicit(&sl->live, true, memory_order_release);
    slot_request(s, sl);
  }
}

/* One of m's requested slots got its call (or was withdrawn): the method grows when few are
 * left waiting. */
static void call_arrived(af_grpc_server *s, method *m) {
  if (atomic_fetch_sub(&m->waiting, 1) - 1 <= SPARE_CALLS && !atomic_load(&s->stopping))
    put_to_use(s, m, GROW_CALLS);
}

static void slot_event(af_grpc_server *s, tag *t, bool ok) {
  slot *sl = slot_of(t);
  switch (sl->state) {
  case SLOT_REQUESTED:
    call_arrived(s, sl->m);
    if (!ok) { /* the request was withdrawn by shutdown */
      slot_reset(sl);
      return;
    }
    if (!enter_call(s)) {
      slot_reset(sl); /* unref cancels it */
      return;
    }
    if (s->observer != NULL)
      af_grpc_observe_start(s->observer, &sl->obs, (size_t)(sl->m - s->methods));
    if (sl->m->kind == M_UNKNOWN) {
      unknown_method(s, sl); /* answered without reading its message */
    } else if (reads_with_call(sl->m)) {
      observe_bytes(s, sl->payload, &sl->obs.bytes_in);
      on_message(s, sl);
    } else {
      start_receive(s, sl);
    }
    return;
  case SLOT_STREAMING:
    grpc_byte_buffer_destroy(sl->reply);
    sl->reply = NULL;
    af_arena_reset(&sl->arena);
    __attribute__((fallthrough)); /* the next request has been read */
  case SLOT_RECEIVING:
    observe_bytes(s, ok ? sl->payload : NULL, &sl->obs.bytes_in);
    if (ok)
      on_message(s, sl);
    else /* the client went away */
      slot_finish(s, sl);
    return;
  case SLOT_WATCH_SENDING:
    watch_sent(s, sl, ok);
    return;
  case SLOT_FINISHING:
    if (sl->close_pending) /* a watch: its close event may still be to come */
      watch_sent(s, sl, ok);
    else
      slot_finish(s, sl);
    return;
  case SLOT_WORKING:
  case SLOT_WATCHING:
  case SLOT_DONE:
  case SLOT_RELEASED:
    af_log_printf(s->log, AF_LOG_ERROR, "unexpected event on an idle call");
    return;
  }
}

static void slot_request(af_grpc_server *s, slot *sl) {
  if (sl->m->kind == M_HEALTH_WATCH) { /* end_watches reads a watch's state under its lock */
    pthread_mutex_lock(&sl->watch_lock);
    sl->state = SLOT_REQUESTED;
    pthread_mutex_unlock(&sl->watch_lock);
  } else {
    sl->state = SLOT_REQUESTED;
  }
  atomic_fetch_add(&sl->m->waiting, 1);
  grpc_call_error e;
  if (sl->m->kind != M_UNKNOWN)
    e = grpc_server_request_registered_call(
        s->server, sl->m->handle, &sl->call, &sl->deadline, &sl->request_md,
        reads_with_call(sl->m) ? &sl->payload : NULL, s->cq, s->cq, &sl->base);
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
  pthread_mutex_lock(&s->lock);
  s->shutdown_done = true;
  maybe_close_queue(s); /* or the last call in flight will, when it ends */
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

static grpc_arg int_arg(const char *key, int value) {
  return (grpc_arg){.type = GRPC_ARG_INTEGER, .key = (char *)key, .value.integer = value};
}

static int or_default(int v, int def) { return v == 0 ? def : v; }

static grpc_server_credentials *credentials(const af_grpc_tls *tls) {
  if (tls->cert_chain == NULL)
    return grpc_insecure_server_credentials_create();
  grpc_ssl_pem_key_cert_pair pair = {tls->private_key, tls->cert_chain};
  return grpc_ssl_server_credentials_create_ex(
      tls->client_ca, &pair, 1,
      tls->client_ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                     : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
      NULL);
}

static int create_server(af_grpc_server *s, const af_grpc_config *cfg, af_error *err) {
  int strikes = or_default(cfg->max_ping_strikes, AF_GRPC_DEFAULT_PING_STRIKES);
  int min_ping = or_default(cfg->min_ping_interval_ms, AF_GRPC_DEFAULT_MIN_PING_MS);
  int idle = or_default(cfg->max_connection_idle_ms, AF_GRPC_DEFAULT_MAX_IDLE_MS);
  grpc_arg args[] = {
      int_arg(GRPC_ARG_ALLOW_REUSEPORT, 0), /* a busy port must fail, not be shared */
      int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
              or_default(cfg->max_receive_bytes, AF_GRPC_DEFAULT_MAX_RECEIVE)),
      int_arg(GRPC_ARG_MAX_CONCURRENT_STREAMS,
              or_default(cfg->max_concurrent_streams, AF_GRPC_DEFAULT_MAX_STREAMS)),
      int_arg(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, min_ping < 0 ? 0 : min_ping),
      /* Without this, gRPC 1.51 counts any ping on a connection with no call open as a
       * strike (it allows one per 2 hours), whatever the interval above says. */
      int_arg(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1),
      int_arg(GRPC_ARG_HTTP2_MAX_PING_STRIKES, strikes < 0 ? 0 : strikes),
      int_arg(GRPC_ARG_MAX_CONNECTION_IDLE_MS, idle < 0 ? INT32_MAX : idle),
  };
  grpc_channel_args chargs = {sizeof args / sizeof args[0], args};
  s->server = grpc_server_create(&chargs, NULL);
  s->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);
  grpc_server_credentials *creds = credentials(&cfg->tls);
  s->port = creds ? grpc_server_add_http2_port(s->server, cfg->listen, creds) : 0;
  if (creds != NULL)
    grpc_server_credentials_release(creds);
  if (s->port <= 0) {
    char why[256];
    af_listen_explain(cfg->listen, why, sizeof why);
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "cannot listen for gRPC on %s: %s", cfg->listen,
                 creds ? why : "the TLS certificate or key is unusable");
    return -1;
  }
  return 0;
}

/* Every method the server answers: the service's RPCs, health, and (when configured)
 * reflection under both names clients use (grpcurl asks v1alpha, buf curl v1 first). */
static int create_methods(af_grpc_server *s) {
  static const struct {
    const char *path;
    method_kind kind;
    int calls;
  } platform[] = {
      {"/grpc.health.v1.Health/Check", M_HEALTH_CHECK, HEALTH_CHECK_CALLS},
      {"/grpc.health.v1.Health/Watch", M_HEALTH_WATCH, HEALTH_WATCH_CALLS},
      {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", M_REFLECTION, REFLECTION_CALLS},
      {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", M_REFLECTION,
       REFLECTION_CALLS},
  };
  size_t nplatform = sizeof platform / sizeof platform[0];
  size_t nrpcs = af_flows_rpc_count(s->svc);
  size_t nemu = s->emulator ? af_flows_emulator_rpc_count(s->svc) : 0;
  s->methods = calloc(nrpcs + nemu + nplatform + 1, sizeof *s->methods);
  if (s->methods == NULL)
    return -1;
  for (size_t r = 0; r < nrpcs + nemu; r++) {
    const af_rpc *rpc =
        r < nrpcs ? af_flows_rpc_at(s->svc, r) : af_flows_emulator_rpc_at(s->svc, r - nrpcs);
    /* an operation not served yet answers UNIMPLEMENTED at once: a few calls are enough */
    int calls = rpc->handler != NULL ? RPC_CALLS : UNSERVED_CALLS;
    s->methods[s->nmethods++] = (method){rpc->path, M_RPC, rpc, calls, NULL};
  }
  for (size_t i = 0; i < nplatform; i++) {
    if (platform[i].kind == M_REFLECTION && s->reflection == NULL)
      continue;
    s->methods[s->nmethods++] =
        (method){platform[i].path, platform[i].kind, NULL, platform[i].calls, NULL};
  }
  s->methods[s->nmethods++] = (method){NULL, M_UNKNOWN, NULL, UNKNOWN_CALLS, NULL};
  return 0;
}

/* Prepares a slot never used before: it is still zero from create_slots' calloc. */
static void init_slot(af_grpc_server *s, slot *sl, method *m) {
  sl->server = s;
  sl->base.on_event = slot_event;
  sl->close.on_event = watch_closed;
  sl->m = m;
  sl->status_message = grpc_empty_slice();
  sl->trailer.value = grpc_empty_slice();
  grpc_metadata_array_init(&sl->request_md);
  grpc_call_details_init(&sl->details);
  pthread_mutex_init(&sl->watch_lock, NULL);
  af_arena_init(&sl->arena);
  af_encoder_init(&sl->encoder);
}

/* Registers every method and prepares its call slots. */
static int create_slots(af_grpc_server *s, af_error *err) {
  if (create_methods(s) != 0) {
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return -1;
  }
  size_t nslots = 0;
  for (size_t i = 0; i < s->nmethods; i++)
    nslots += (size_t)s->methods[i].calls;
  s->slots = calloc(nslots, sizeof *s->slots); /* large: pages come as slots are used */
  if (s->slots == NULL) {
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return -1;
  }
  size_t k = 0;
  for (size_t i = 0; i < s->nmethods; i++) {
    method *m = &s->methods[i];
    if (m->kind != M_UNKNOWN)
      m->handle = grpc_server_register_method(
          s->server, m->path, NULL,
          reads_with_call(m) ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER : GRPC_SRM_PAYLOAD_NONE,
          0);
    m->slots = &s->slots[k];
    k += (size_t)m->calls;
    atomic_init(&m->active, 0);
    atomic_init(&m->waiting, 0);
  }
  return 0;
}

/* Metrics and the access log of every method but the unknown one (last), when either is on. */
static int create_observer(af_grpc_server *s, const af_grpc_config *cfg, af_error *err) {
  if (cfg->metrics == NULL && cfg->access_log == NULL)
    return 0;
  size_t n = s->nmethods - 1;
  af_grpc_method_info *info = calloc(n ? n : 1, sizeof *info);
  if (info == NULL) {
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    method_kind k = s->methods[i].kind;
    info[i] = (af_grpc_method_info){s->methods[i].path, k == M_HEALTH_WATCH ? AF_GRPC_SERVER_STREAM
                                                        : k == M_REFLECTION ? AF_GRPC_BIDI_STREAM
                                                                            : AF_GRPC_UNARY};
  }
  s->observer = af_grpc_observer_new(cfg->metrics, cfg->access_log, s->svc, info, n, err);
  free(info);
  return s->observer != NULL ? 0 : -1;
}

static void free_server(af_grpc_server *s) {
  if (s->server != NULL)
    grpc_server_destroy(s->server);
  if (s->cq != NULL)
    grpc_completion_queue_destroy(s->cq);
  for (size_t i = 0; s->slots != NULL && i < s->nmethods; i++) {
    method *m = &s->methods[i];
    for (int c = 0; c < atomic_load(&m->active); c++) { /* the slots put to use */
      slot *sl = &m->slots[c];
      slot_reset(sl);
      grpc_metadata_array_destroy(&sl->request_md);
      grpc_call_details_destroy(&sl->details);
      pthread_mutex_destroy(&sl->watch_lock);
      af_arena_destroy(&sl->arena);
      af_encoder_free(&sl->encoder);
    }
  }
  free(s->slots);
  af_grpc_observer_free(s->observer);
  free(s->methods);
  free(s->threads);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->change);
  free(s);
}

/* A server that never started (bind failed) still needs its queue shut down and drained
 * before destroy. */
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
    int e = pthread_create(&s->threads[s->nthreads], NULL, poll_thread, s);
    if (e != 0) {
      af_error_set(err, AF_ERR_INTERNAL_SERVER, "cannot start thread: %s", strerror(e));
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
  s->reflection = cfg->reflection;
  s->emulator = cfg->emulator;
  s->log = cfg->log;
  s->shutdown_tag.on_event = shutdown_event;
  atomic_init(&s->stopping, false);
  atomic_init(&s->serving, true);
  atomic_init(&s->in_flight, 0);
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->change, NULL);
  if (create_server(s, cfg, err) != 0 || create_slots(s, err) != 0 ||
      create_observer(s, cfg, err) != 0) {
    abandon(s);
    return NULL;
  }
  grpc_server_start(s->server);
  for (size_t i = 0; i < s->nmethods; i++)
    put_to_use(s, &s->methods[i], CALLS_AT_START);
  s->watching = af_store_watch(af_flows_store(svc), store_health_changed, s);
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
  while (atomic_load(&s->in_flight) > 0 && !s->drained && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&s->change, &s->lock, deadline);
  int left = s->drained ? 0 : atomic_load(&s->in_flight);
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
  atomic_store(&s->serving, false);
  atomic_store(&s->stopping, true);
  if (s->watching)
    af_store_unwatch(af_flows_store(s->svc), store_health_changed, s);
  grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
  if (s->nthreads == 0) { /* start failed before any thread polled: poll here */
    grpc_server_cancel_all_calls(s->server);
    poll_thread(s);
    free_server(s);
    return;
  }
  end_watches(s);
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
