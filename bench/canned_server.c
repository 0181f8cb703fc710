/* canned_server: the limit appflowd's gRPC door is measured against.
 *
 * It answers /appflow.v1.AppFlowService/StopFlow with the exact bytes appflowd sends for the
 * already suspended flow `bench_suspended`, through the same machinery as src/grpc/server.c:
 * one completion queue created for next, polled by --threads N threads; 64 calls kept
 * requested on a method registered with GRPC_SRM_PAYLOAD_NONE; a RECV_MESSAGE batch, then one
 * batch SEND_INITIAL_METADATA + SEND_MESSAGE + SEND_STATUS_FROM_SERVER + RECV_CLOSE_ON_SERVER.
 * The request is read out of its byte buffer (as appflowd does) but not decoded, so the gap
 * between the two servers is the work appflowd does per request: decode, validate, look the
 * flow up, encode.
 *
 *   canned_server [--listen HOST:PORT] [--threads N] [--answer ok|notfound]
 *                 [--reply METHOD=FILE ...]
 *
 * --answer notfound answers every call as appflowd answers a flow that does not exist: status
 * NOT_FOUND, the same message and the same grpc-status-details-bin bytes, so appflowd's
 * not-found path has a limit of its own (error trailers cost more than a reply's body).
 *
 * --reply DescribeFlow=FILE (repeatable, up to MAX_METHODS) serves
 * /appflow.v1.AppFlowService/METHOD instead, answering every call with status OK and FILE's
 * bytes as the message: the exact reply appflowd gave for the same request, captured by
 * bench/run.py just before, so the lifecycle RPCs each get a limit that sends what appflowd
 * sends. Each method keeps CALLS requested, as appflowd does per method.
 *
 * Prints "canned listening: port=N" on stderr when ready; SIGINT or SIGTERM stop it (exit 0).
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CALLS 64 /* kept requested, as appflowd does per method */
#define MAX_THREADS 256
#define MAX_METHODS 16
#define MAX_REPLY_BYTES (1 << 20)
#define METHOD_PREFIX "/appflow.v1.AppFlowService/"

/* StopFlowResponse{flow_arn: "arn:aws:appflow:us-east-1:000000000000:flow/bench_suspended",
 * flow_status: FLOW_STATUS_SUSPENDED}: field 1 (0x0a) with its 59-byte length (0x3b), then
 * field 2 as a varint (0x10) holding 6. Byte for byte what appflowd's protobuf-c encodes. */
static const char canned_reply[] = "\x0a\x3b"
                                   "arn:aws:appflow:us-east-1:000000000000:flow/bench_suspended"
                                   "\x10\x06";
_Static_assert(sizeof canned_reply - 1 == 63, "StopFlowResponse for bench_suspended");

/* What appflowd sends for StopFlow{flow_name: "bench_missing"}: its message, and the
 * google.rpc.Status carrying google.rpc.ErrorInfo (see tests/unit/test_status.c for the
 * layout, field by field). */
#define NOTFOUND_MESSAGE "Flow bench_missing does not exist" /* 33 bytes */
static const char notfound_details[] =
    "\x08\x05"                  /* code NOT_FOUND */
    "\x12\x21" NOTFOUND_MESSAGE /* message */
    "\x1a\x5e"                  /* details[0], 94 bytes */
    "\x0a\x28"
    "type.googleapis.com/google.rpc.ErrorInfo" /*   Any.type_url */
    "\x12\x32"                                 /*   Any.value, 50 bytes */
    "\x0a\x19"
    "ResourceNotFoundException" /*     reason */
    "\x12\x15"
    "appflow.amazonaws.com"; /*     domain */
_Static_assert(sizeof notfound_details - 1 == 2 + 35 + 2 + 94, "google.rpc.Status bytes");

typedef struct canned canned;

/* Every completion-queue tag starts with this, as in appflowd, so dispatch costs the same. */
typedef struct tag {
  void (*on_event)(canned *c, struct tag *t, bool ok);
} tag;

enum slot_state { SLOT_REQUESTED, SLOT_RECEIVING, SLOT_FINISHING };

/* One method served and what it answers. */
typedef struct answer_spec {
  char path[96];
  const char *bytes; /* the reply message; static for StopFlow, else malloc'd from the file */
  size_t len;
  bool notfound; /* answer NOT_FOUND with appflowd's trailers instead of a message */
  void *handle;  /* grpc_server_register_method's */
} answer_spec;

typedef struct slot {
  tag base;
  enum slot_state state;
  const answer_spec *spec;
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array request_md;
  grpc_byte_buffer *payload;
  grpc_byte_buffer *reply;
  int cancelled;
} slot;

struct canned {
  grpc_server *server;
  grpc_completion_queue *cq;
  answer_spec specs[MAX_METHODS];
  int nspecs;
  int port;
  atomic_bool stopping;
  tag shutdown_tag;
  grpc_slice notfound_message; /* static slices, shared by every call */
  grpc_metadata notfound_trailer;
  slot slots[MAX_METHODS * CALLS];
  int nthreads;
  pthread_t threads[MAX_THREADS];
};

static slot *slot_of(tag *t) { return (slot *)(void *)((char *)t - offsetof(slot, base)); }

/* ---- one call ---- */

static void slot_request(canned *c, slot *sl) {
  sl->state = SLOT_REQUESTED;
  grpc_call_error e =
      grpc_server_request_registered_call(c->server, sl->spec->handle, &sl->call, &sl->deadline,
                                          &sl->request_md, NULL, c->cq, c->cq, &sl->base);
  if (e != GRPC_CALL_OK && !atomic_load(&c->stopping))
    fprintf(stderr, "canned_server: requesting a call failed (%d)\n", (int)e);
}

/* The call is over: free it and wait for the next. The slot is requested again before the old
 * call is released, so the call still holds the server's shutdown open while the request is
 * queued: the request can never reach a queue that shutdown has already closed. */
static void slot_finish(canned *c, slot *sl) {
  grpc_call *old = sl->call;
  sl->call = NULL;
  grpc_byte_buffer_destroy(sl->payload);
  grpc_byte_buffer_destroy(sl->reply);
  sl->payload = sl->reply = NULL;
  grpc_metadata_array_destroy(&sl->request_md);
  grpc_metadata_array_init(&sl->request_md);
  if (!atomic_load(&c->stopping))
    slot_request(c, sl);
  grpc_call_unref(old);
}

static void start_batch(canned *c, slot *sl, const grpc_op *ops, size_t n) {
  if (grpc_call_start_batch(sl->call, ops, n, &sl->base, NULL) == GRPC_CALL_OK)
    return;
  fprintf(stderr, "canned_server: grpc_call_start_batch failed\n");
  slot_finish(c, sl); /* unref cancels the call */
}

static void start_receive(canned *c, slot *sl) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &sl->payload;
  sl->state = SLOT_RECEIVING;
  start_batch(c, sl, &op, 1);
}

/* appflowd copies the request out of its byte buffer before decoding it; so does this, to
 * leave only the decoding out. Returns false when the call carried no message. */
static bool read_request(slot *sl) {
  grpc_byte_buffer_reader reader;
  if (sl->payload == NULL || !grpc_byte_buffer_reader_init(&reader, sl->payload))
    return false;
  grpc_slice bytes = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  grpc_slice_unref(bytes);
  return true;
}

/* A new byte buffer per answer: SEND_MESSAGE takes the slices out of the one it is given, so a
 * buffer cannot be sent twice (the emptied shell is still ours to destroy). */
static grpc_byte_buffer *reply_buffer(const answer_spec *spec) {
  grpc_slice slice = grpc_slice_from_copied_buffer(spec->bytes, spec->len);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  return bb;
}

/* The one answer batch appflowd sends. A call without a message gets INVALID_ARGUMENT and no
 * reply, as appflowd answers it. */
static void answer(canned *c, slot *sl) {
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  bool have = read_request(sl);
  bool notfound = sl->spec->notfound;
  if (have && !notfound) {
    sl->reply = reply_buffer(sl->spec);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = sl->reply;
  }
  grpc_op *st = &ops[n++];
  st->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  st->data.send_status_from_server.status = have ? GRPC_STATUS_OK : GRPC_STATUS_INVALID_ARGUMENT;
  if (have && notfound) {
    st->data.send_status_from_server.status = GRPC_STATUS_NOT_FOUND;
    st->data.send_status_from_server.status_details = &c->notfound_message;
    st->data.send_status_from_server.trailing_metadata = &c->notfound_trailer;
    st->data.send_status_from_server.trailing_metadata_count = 1;
  }
  ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[n++].data.recv_close_on_server.cancelled = &sl->cancelled;
  sl->state = SLOT_FINISHING;
  start_batch(c, sl, ops, n);
}

static void slot_event(canned *c, tag *t, bool ok) {
  slot *sl = slot_of(t);
  switch (sl->state) {
  case SLOT_REQUESTED:
    if (ok)
      start_receive(c, sl);
    /* else the request was withdrawn by shutdown: nothing to free */
    return;
  case SLOT_RECEIVING:
    if (ok)
      answer(c, sl);
    else /* the client went away */
      slot_finish(c, sl);
    return;
  case SLOT_FINISHING:
    slot_finish(c, sl);
    return;
  }
}

/* ---- threads ---- */

/* Every call is over: nothing but the queue's own shutdown can come now. */
static void shutdown_event(canned *c, tag *t, bool ok) {
  (void)t;
  (void)ok;
  grpc_completion_queue_shutdown(c->cq);
}

static void *poll_thread(void *arg) {
  canned *c = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      return NULL;
    if (ev.type == GRPC_OP_COMPLETE) {
      tag *t = ev.tag;
      t->on_event(c, t, ev.success != 0);
    }
  }
}

/* ---- start and stop ---- */

static grpc_arg int_arg(const char *key, int value) {
  return (grpc_arg){.type = GRPC_ARG_INTEGER, .key = (char *)key, .value.integer = value};
}

/* The channel arguments of appflowd's defaults that shape its serving; its keepalive and idle
 * limits only police quiet clients and change nothing under load. */
static int create_server(canned *c, const char *listen) {
  grpc_arg args[] = {
      int_arg(GRPC_ARG_ALLOW_REUSEPORT, 0), /* a busy port must fail, not be shared */
      int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 64 * 1024),
      int_arg(GRPC_ARG_MAX_CONCURRENT_STREAMS, 100),
  };
  grpc_channel_args chargs = {sizeof args / sizeof args[0], args};
  c->server = grpc_server_create(&chargs, NULL);
  c->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(c->server, c->cq, NULL);
  for (int i = 0; i < c->nspecs; i++)
    c->specs[i].handle =
        grpc_server_register_method(c->server, c->specs[i].path, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  c->port = grpc_server_add_http2_port(c->server, listen, creds);
  grpc_server_credentials_release(creds);
  if (c->port > 0)
    return 0;
  fprintf(stderr, "canned_server: cannot listen on %s\n", listen);
  return -1;
}

/* Returns the number of poll threads running; a start with none is reported by the caller. */
static int start(canned *c, int nthreads) {
  grpc_server_start(c->server);
  for (int i = 0; i < c->nspecs * CALLS; i++) {
    c->slots[i].base.on_event = slot_event;
    c->slots[i].spec = &c->specs[i / CALLS];
    grpc_metadata_array_init(&c->slots[i].request_md);
    slot_request(c, &c->slots[i]);
  }
  for (; c->nthreads < nthreads; c->nthreads++)
    if (pthread_create(&c->threads[c->nthreads], NULL, poll_thread, c) != 0)
      break;
  return c->nthreads;
}

/* appflowd's order without its grace period: stop taking calls, cancel the rest (which also
 * lets idle connections go), let the shutdown tag close the queue, then join the threads as
 * they drain it. */
static void stop(canned *c) {
  atomic_store(&c->stopping, true);
  grpc_server_shutdown_and_notify(c->server, c->cq, &c->shutdown_tag);
  grpc_server_cancel_all_calls(c->server);
  if (c->nthreads == 0) /* no thread could start: drain the queue here */
    poll_thread(c);
  for (int i = 0; i < c->nthreads; i++)
    pthread_join(c->threads[i], NULL);
  grpc_server_destroy(c->server);
  grpc_completion_queue_destroy(c->cq);
  for (int i = 0; i < c->nspecs * CALLS; i++)
    grpc_metadata_array_destroy(&c->slots[i].request_md);
}

/* A server that never started (the bind failed) still needs its queue drained before
 * destroy. */
static void abandon(canned *c) {
  grpc_server_destroy(c->server);
  grpc_completion_queue_shutdown(c->cq);
  while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(c->cq);
}

/* ---- flags and signals ---- */

static int usage(void) {
  fprintf(stderr, "usage: canned_server [--listen HOST:PORT] [--threads N] [--answer ok|notfound]\n"
                  "                     [--reply METHOD=FILE ...]\n"
                  "  --listen   address to serve on (default 127.0.0.1:50052; port 0 picks one)\n"
                  "  --threads  completion-queue threads (default: number of cores)\n"
                  "  --reply    serve AppFlowService/METHOD, answering FILE's bytes (instead of\n"
                  "             StopFlow; repeatable)\n");
  return 2;
}

static int parse_threads(const char *arg, int *out) {
  char *end;
  long v = strtol(arg, &end, 10);
  if (*arg == '\0' || *end != '\0' || v < 1 || v > MAX_THREADS)
    return -1;
  *out = (int)v;
  return 0;
}

/* The whole file, malloc'd; NULL (and a message) if unreadable or over MAX_REPLY_BYTES. */
static char *read_reply(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = f ? malloc(MAX_REPLY_BYTES + 1) : NULL;
  *len = buf ? fread(buf, 1, MAX_REPLY_BYTES + 1, f) : 0;
  if (f == NULL || buf == NULL || ferror(f) || *len > MAX_REPLY_BYTES) {
    fprintf(stderr, "canned_server: cannot read %s (or it is over %d bytes)\n", path,
            MAX_REPLY_BYTES);
    free(buf);
    buf = NULL;
  }
  if (f != NULL)
    fclose(f);
  return buf;
}

/* --reply METHOD=FILE. Returns 0, or -1 after a bad value. */
static int add_reply(canned *c, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (eq == NULL || eq == arg || c->nspecs == MAX_METHODS)
    return -1;
  answer_spec *sp = &c->specs[c->nspecs];
  int n = snprintf(sp->path, sizeof sp->path, "%s%.*s", METHOD_PREFIX, (int)(eq - arg), arg);
  if (n < 0 || (size_t)n >= sizeof sp->path || (sp->bytes = read_reply(eq + 1, &sp->len)) == NULL)
    return -1;
  c->nspecs++;
  return 0;
}

/* Returns 0, or -1 after a bad flag. Without --reply, StopFlow is served as --answer says. */
static int parse_flags(int argc, char **argv, canned *c, const char **listen, int *threads) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  *threads = cores > 0 ? (int)cores : 1; /* appflowd's default */
  *listen = "127.0.0.1:50052";
  bool notfound = false;
  for (int i = 1; i < argc; i++) {
    if (i + 1 < argc && strcmp(argv[i], "--listen") == 0)
      *listen = argv[++i];
    else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) {
      if (parse_threads(argv[++i], threads) != 0)
        return -1;
    } else if (i + 1 < argc && strcmp(argv[i], "--answer") == 0) {
      const char *a = argv[++i];
      if (strcmp(a, "ok") != 0 && strcmp(a, "notfound") != 0)
        return -1;
      notfound = strcmp(a, "notfound") == 0;
    } else if (i + 1 < argc && strcmp(argv[i], "--reply") == 0) {
      if (add_reply(c, argv[++i]) != 0)
        return -1;
    } else
      return -1;
  }
  if (c->nspecs == 0)
    c->specs[c->nspecs++] = (answer_spec){.path = METHOD_PREFIX "StopFlow",
                                          .bytes = canned_reply,
                                          .len = sizeof canned_reply - 1,
                                          .notfound = notfound};
  return 0;
}

/* Blocked before grpc_init so gRPC's threads inherit the mask and only sigwait sees them. */
static void block_signals(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, set, NULL);
  signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv) {
  const char *listen;
  int threads;
  static canned c; /* the slots are large for a stack; one server per process */
  if (parse_flags(argc, argv, &c, &listen, &threads) != 0)
    return usage();
  sigset_t signals;
  block_signals(&signals);
  grpc_init();
  c.shutdown_tag.on_event = shutdown_event;
  c.notfound_message = grpc_slice_from_static_string(NOTFOUND_MESSAGE);
  c.notfound_trailer.key = grpc_slice_from_static_string("grpc-status-details-bin");
  c.notfound_trailer.value =
      grpc_slice_from_static_buffer(notfound_details, sizeof notfound_details - 1);
  atomic_init(&c.stopping, false);
  int rc = 0;
  if (create_server(&c, listen) != 0) {
    abandon(&c);
    rc = 1;
  } else {
    if (start(&c, threads) < threads)
      fprintf(stderr, "canned_server: only %d of %d threads started\n", c.nthreads, threads);
    fprintf(stderr, "canned listening: port=%d\n", c.port);
    fflush(stderr);
    int sig = 0;
    if (c.nthreads > 0)
      sigwait(&signals, &sig);
    stop(&c);
    rc = c.nthreads > 0 ? 0 : 1;
  }
  grpc_shutdown();
  for (int i = 0; i < c.nspecs; i++)
    if (c.specs[i].bytes != canned_reply)
      free((char *)c.specs[i].bytes);
  return rc;
}
