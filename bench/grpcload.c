/* grpcload: a gRPC C-core load generator for appflowd's RPCs whose requests differ call by call.
 *
 * h2load sends one fixed body, so it cannot measure a mix over many distinct flows. grpcload
 * keeps --streams calls in flight on each of --conns connections, builds every request afresh,
 * checks every call's gRPC status and reply, and records latencies. It prints one JSON line as
 * described in bench/FORMAT.md. What a call sends and what counts as its expected outcome
 * depend on --rpc:
 *
 *   stop   StopFlow{flow_name: the next name}; for --expect ok the reply must say
 *          FLOW_STATUS_SUSPENDED, for --expect notfound the status must be NOT_FOUND.
 *   start  StartFlow{flow_name: --flow, client_token: the next name}: a new token per call, as
 *          the AWS SDKs send; the reply must say FLOW_STATUS_ACTIVE and carry a 36-character
 *          execution_id.
 *   list   ListFlows{max_results: --page, next_token: the token of this slot's previous reply,
 *          left out for a first page (an empty one is a ValidationException)}: each slot pages
 *          through the table, starting again after the last page; a reply with a next_token
 *          must hold exactly --page flows, the last page (no next_token) at most --page.
 *   churn  CreateFlow{flow_name: the next name, the rest from --tail}, then DeleteFlow{that
 *          name, force_delete: true} on the same slot; a create must answer flow_status
 *          --create-status, a delete an empty message. Both count as calls. When the run
 *          stops, slots let their pending delete run, so no created flow stays behind.
 *   toggle StartFlow{flow_name: the slot's own flow}, then StopFlow of it, and so on: every slot
 *          (connection c, stream m) owns the flow PREFIX + index c * --streams + m, so COUNT
 *          must be at least --conns x --streams. The flows must be scheduled (or event) flows
 *          and Suspended when the run begins (bench/grpc_mix.py --write-seed writes them so):
 *          each slot starts with a StartFlow, so every call is a committed change of state. A
 *          start must answer FLOW_STATUS_ACTIVE without an execution_id, a stop
 *          FLOW_STATUS_SUSPENDED; both must carry an ARN ending in flow/NAME, and both count
 *          as calls. A slot alternates whatever the outcome (a failed call leaves the flow's
 *          state unknown, and the next call settles it), and when the run stops a slot whose
 *          last call was a start makes one more call, a StopFlow, so the run leaves every flow
 *          Suspended and runs can follow each other on one server.
 *   describe
 *          DescribeFlow{flow_name: the next name}; the status must be OK and the reply's
 *          flow_name (field 3) the name sent.
 *
 * "The next name" is PREFIX + zero-padded index from --names PREFIX:COUNT, one counter shared by
 * every slot, cycling through 0..COUNT-1 (stop, start's tokens, churn, describe).
 *
 * Names: the index is zero-padded to max(5, digits in COUNT-1), so COUNT <= 100000 gives
 * bench_00000 .. bench_99999 and COUNT = 1000000 gives bench_000000 .. bench_999999.
 * bench/grpc_mix.py --write-seed uses the same rule.
 *
 * Threads: --threads T (default 1) completion queues, each polled by its own thread, with the
 * connections dealt out among them. The default is 1 because the benchmark machine has 2 cores
 * and the server under test needs them: a client that takes more CPU than it must would slow
 * the server it measures. */
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_SETUP 1
#define EXIT_USAGE 2
#define FLOW_NAME_MAX 256    /* the AWS limit: longer names would only measure rejections */
#define MIN_DIGITS 5         /* keep in step with grpc_mix.py's name_width() */
#define CONNECT_TIMEOUT_S 10 /* a server that has not accepted by then is not there */
#define CALL_GRACE_S 30      /* how long after the run a stuck call may take before it fails */
#define FLOW_STATUS_SUSPENDED 6
#define TOKEN_MAX 4096     /* longest ListFlows next_token kept; a longer one is an error */
#define TAIL_MAX (1 << 16) /* --tail bytes: far more than a CreateFlow needs */
#define FLOW_STATUS_ACTIVE 1
#define EXECUTION_ID_LEN 36 /* a UUID in its text form */
#define METHOD_PREFIX "/appflow.v1.AppFlowService/"

/* Log-linear latency histogram over nanoseconds: exact below 2^(SUB_BITS+1), then 2^SUB_BITS
 * buckets per power of two, so a bucket's midpoint is within 1/2^(SUB_BITS+1) (0.4%) of any
 * value in it. Fixed size, no allocation while the load runs. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (64u * HIST_SUB)

typedef enum expect { EXPECT_OK, EXPECT_NOTFOUND } expect;
typedef enum rpc_mode {
  MODE_STOP,
  MODE_START,
  MODE_LIST,
  MODE_CHURN,
  MODE_TOGGLE,
  MODE_DESCRIBE
} rpc_mode;

/* Per mode: the methods a slot calls (churn and toggle slots alternate two) and how outcomes are
 * checked, for the JSON line's "verified". */
static const struct {
  const char *name, *methods[2], *verified;
} modes[] = {
    [MODE_STOP] = {"stop",
                   {"StopFlow", NULL},
                   "every call's status (and flow_status for ok) checked by a gRPC C-core client"},
    [MODE_START] = {"start",
                    {"StartFlow", NULL},
                    "every call: status OK, flow_status ACTIVE, a 36-character execution_id"},
    [MODE_LIST] = {"list",
                   {"ListFlows", NULL},
                   "every call: status OK, a full page before each next_token, each slot "
                   "following its own tokens to the last page"},
    [MODE_CHURN] = {"churn",
                    {"CreateFlow", "DeleteFlow"},
                    "every call: status OK; creates answer the expected flow_status, deletes an "
                    "empty message; each delete names the flow its slot just created"},
    [MODE_TOGGLE] = {"toggle",
                     {"StartFlow", "StopFlow"},
                     "every call: status OK; starts answer ACTIVE without an execution_id, stops "
                     "SUSPENDED, both with the ARN of the slot's own flow; each slot alternates "
                     "start and stop on its own flow, so every call changes its state"},
    [MODE_DESCRIBE] = {"describe",
                       {"DescribeFlow", NULL},
                       "every call: status OK and the reply's flow_name equal to the name sent"},
};

typedef struct options {
  const char *target, *label, *scenario, *prefix, *flow;
  int conns, streams, threads, digits, page, create_status;
  long count;
  double duration, warmup;
  expect want;
  rpc_mode mode;
  uint8_t *tail; /* --tail's bytes (malloc'd), appended to each CreateFlow request */
  size_t tail_len;
} options;

typedef struct histogram {
  uint64_t counts[HIST_BUCKETS];
} histogram;

/* What one thread saw; merged once the threads have stopped, so no locking. */
typedef struct tally {
  uint64_t ok, errors, warmup_errors;
  uint64_t passes;  /* list: last pages reached, i.e. walks through the whole table */
  uint64_t last_ns; /* when the last measured call completed */
  int reported;     /* the first unexpected outcome was described on stderr */
  histogram latency;
} tally;

struct worker;

/* One call in flight; also the completion-queue tag, and reused for the next call. */
typedef struct slot {
  struct worker *w;
  grpc_channel *channel;
  void *methods[2]; /* grpc_channel_register_call handles: no per-call method interning */
  int phase;        /* churn: 0 = create next, 1 = delete `name` next; toggle: 0 = start next,
                       1 = stop next (the methods[] index either way) */
  char name[FLOW_NAME_MAX + 1]; /* churn: the flow created; toggle: the slot's own flow;
                                   describe: the name sent */
  size_t name_len;
  char token[TOKEN_MAX]; /* list: the next_token to send; empty = first page */
  size_t token_len;
  grpc_call *call;
  grpc_byte_buffer *request, *reply;
  grpc_metadata_array initial_md, trailing_md;
  grpc_status_code status;
  grpc_slice details;
  uint64_t started_ns;
} slot;

typedef struct run {
  options opt;
  grpc_channel **channels;
  void *(*methods)[2];
  struct worker *workers;
  atomic_uint_fast64_t next_index; /* shared so the threads together cycle through every name */
  uint64_t measure_from_ns, stop_at_ns;
  gpr_timespec call_deadline;
} run;

typedef struct worker {
  run *r;
  grpc_completion_queue *cq;
  uint8_t *scratch; /* where this thread builds requests */
  slot *slots;
  size_t nslots, inflight;
  pthread_t thread;
  tally t;
} worker;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- latency histogram ---- */

static size_t hist_index(uint64_t v) {
  if (v < 2 * HIST_SUB)
    return (size_t)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = msb - HIST_SUB_BITS;
  return (size_t)(shift + 1) * HIST_SUB + (size_t)((v >> shift) - HIST_SUB);
}

/* The midpoint of bucket i, in nanoseconds. */
static double hist_value(size_t i) {
  if (i < 2 * HIST_SUB)
    return (double)i;
  unsigned shift = (unsigned)(i / HIST_SUB) - 1;
  uint64_t low = (uint64_t)(i % HIST_SUB + HIST_SUB) << shift;
  return (double)low + (double)((uint64_t)1 << shift) / 2;
}

/* The per-mille percentile in milliseconds (0 with no samples). */
static double hist_percentile_ms(const histogram *h, unsigned per_mille) {
  uint64_t total = 0, seen = 0;
  for (size_t i = 0; i < HIST_BUCKETS; i++)
    total += h->counts[i];
  uint64_t rank = (total * per_mille + 999) / 1000;
  if (rank == 0)
    rank = 1;
  for (size_t i = 0; i < HIST_BUCKETS && total > 0; i++) {
    seen += h->counts[i];
    if (seen >= rank)
      return hist_value(i) / 1e6;
  }
  return 0;
}

/* ---- protobuf, by hand ---- */

static size_t put_varint(uint8_t *out, uint64_t v) {
  size_t n = 0;
  for (;; v >>= 7) {
    out[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    if (v <= 0x7f)
      return n;
  }
}

/* A length-delimited field: key, length, bytes. Returns the encoded size. */
static size_t put_string(uint8_t *out, unsigned field, const char *s, size_t len) {
  size_t n = put_varint(out, (uint64_t)field << 3 | 2);
  n += put_varint(out + n, len);
  memcpy(out + n, s, len);
  return n + len;
}

static const uint8_t *read_varint(const uint8_t *p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (unsigned shift = 0; p < end && shift < 64; shift += 7) {
    uint8_t b = *p++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0)
      return p;
  }
  return NULL;
}

/* What a reply holds in its fields 1..3, which is where every reply checked here keeps what
 * it is checked by; other fields are skipped. The messages are proto2: a field is on the wire
 * when it is present, and an absent varint reads as 0 (e.g. FLOW_STATUS_UNSPECIFIED). */
typedef struct reply_info {
  size_t bytes;
  uint64_t varint[4];    /* the last varint of field i */
  size_t count[4];       /* how often field i occurs */
  const uint8_t *str[4]; /* the last length-delimited field i */
  size_t len[4];
} reply_info;

static int skip_fixed(const uint8_t **p, const uint8_t *end, size_t n) {
  if ((size_t)(end - *p) < n)
    return -1;
  *p += n;
  return 0;
}

/* Reads one field into ri. -1 if malformed. */
static int scan_field(const uint8_t **pp, const uint8_t *end, reply_info *ri) {
  uint64_t key, v;
  const uint8_t *p = *pp;
  if ((p = read_varint(p, end, &key)) == NULL)
    return -1;
  unsigned field = key >> 3 <= 3 ? (unsigned)(key >> 3) : 0;
  ri->count[field]++;
  switch (key & 7) {
  case 0:
    if ((p = read_varint(p, end, &v)) == NULL)
      return -1;
    ri->varint[field] = v;
    break;
  case 1:
  case 5:
    if (skip_fixed(&p, end, (key & 7) == 1 ? 8 : 4) != 0)
      return -1;
    break;
  case 2:
    if ((p = read_varint(p, end, &v)) == NULL || v > (uint64_t)(end - p))
      return -1;
    ri->str[field] = p;
    ri->len[field] = (size_t)v;
    p += v;
    break;
  default:
    return -1;
  }
  *pp = p;
  return 0;
}

static int scan_reply(const uint8_t *p, const uint8_t *end, reply_info *ri) {
  memset(ri, 0, sizeof *ri);
  ri->bytes = (size_t)(end - p);
  while (p < end)
    if (scan_field(&p, end, ri) != 0)
      return -1;
  return 0;
}

/* ---- calls ---- */

/* The next name from the shared counter into dst; returns its length. */
static size_t next_name(run *r, char *dst) {
  uint64_t i = atomic_fetch_add_explicit(&r->next_index, 1, memory_order_relaxed);
  int len = snprintf(dst, FLOW_NAME_MAX + 1, "%s%0*" PRIu64, r->opt.prefix, r->opt.digits,
                     i % (uint64_t)r->opt.count);
  return (size_t)len;
}

/* The slot's next request into out (the worker's scratch); returns its size. */
static size_t build_request(slot *s, uint8_t *out) {
  run *r = s->w->r;
  char name[FLOW_NAME_MAX + 1];
  size_t n = 0;
  switch (r->opt.mode) {
  case MODE_STOP:
    return put_string(out, 1, name, next_name(r, name));
  case MODE_START:
    n = put_string(out, 1, r->opt.flow, strlen(r->opt.flow));
    return n + put_string(out + n, 2, name, next_name(r, name));
  case MODE_LIST:
    out[n++] = 1 << 3; /* max_results, a varint */
    n += put_varint(out + n, (uint64_t)r->opt.page);
    return s->token_len ? n + put_string(out + n, 2, s->token, s->token_len) : n;
  case MODE_CHURN:
    if (s->phase == 0)
      s->name_len = next_name(r, s->name);
    n = put_string(out, 1, s->name, s->name_len);
    if (s->phase == 1) {
      out[n++] = 2 << 3; /* force_delete: true */
      out[n++] = 1;
      return n;
    }
    memcpy(out + n, r->opt.tail, r->opt.tail_len);
    return n + r->opt.tail_len;
  case MODE_TOGGLE: /* StartFlow and StopFlow both have flow_name as field 1 */
    return put_string(out, 1, s->name, s->name_len);
  case MODE_DESCRIBE:
    s->name_len = next_name(r, s->name);
    return put_string(out, 1, s->name, s->name_len);
  }
  return 0;
}

/* A fresh byte buffer per call: SEND_MESSAGE takes the contents of the one it is given. */
static grpc_byte_buffer *next_request(slot *s) {
  uint8_t *buf = s->w->scratch;
  grpc_slice sl = grpc_slice_from_copied_buffer((const char *)buf, build_request(s, buf));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
  grpc_slice_unref(sl);
  return bb;
}

static void fill_ops(slot *s, grpc_op ops[6]) {
  memset(ops, 0, 6 * sizeof *ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = s->request;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &s->reply;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &s->trailing_md;
  ops[5].data.recv_status_on_client.status = &s->status;
  ops[5].data.recv_status_on_client.status_details = &s->details;
}

static void release_call(slot *s) {
  grpc_call_unref(s->call);
  s->call = NULL;
  grpc_byte_buffer_destroy(s->request);
  grpc_byte_buffer_destroy(s->reply);
  s->request = s->reply = NULL;
  grpc_slice_unref(s->details);
  grpc_metadata_array_destroy(&s->initial_md);
  grpc_metadata_array_destroy(&s->trailing_md);
}

/* Starts the slot's next call in one batch. -1 if gRPC refused it (the slot then stays idle). */
static int start_call(slot *s) {
  run *r = s->w->r;
  s->request = next_request(s);
  s->reply = NULL;
  s->status = GRPC_STATUS_UNKNOWN;
  s->details = grpc_empty_slice();
  grpc_metadata_array_init(&s->initial_md);
  grpc_metadata_array_init(&s->trailing_md);
  s->call = grpc_channel_create_registered_call(s->channel, NULL, GRPC_PROPAGATE_DEFAULTS, s->w->cq,
                                                s->methods[s->phase], r->call_deadline, NULL);
  grpc_op ops[6];
  fill_ops(s, ops);
  s->started_ns = now_ns();
  if (grpc_call_start_batch(s->call, ops, 6, s, NULL) != GRPC_CALL_OK) {
    release_call(s);
    return -1;
  }
  s->w->inflight++;
  return 0;
}

/* list: keeps the reply's next_token for the slot's next page. */
static int list_outcome(slot *s, const reply_info *ri) {
  size_t page = (size_t)s->w->r->opt.page;
  /* A present but empty next_token is wrong too: sent back, it is a ValidationException, and
   * left out, it would restart the listing. */
  if (ri->count[2] > 1 || ri->len[2] >= TOKEN_MAX || (ri->count[2] == 1 && ri->len[2] == 0))
    return 0;
  int full = ri->count[2] ? ri->count[1] == page : ri->count[1] <= page;
  s->token_len = ri->len[2];
  memcpy(s->token, ri->str[2], ri->len[2]);
  if (s->token_len == 0)
    s->w->t.passes++;
  return full;
}

/* churn: a create that worked is followed by the delete of its name; anything else by a new
 * create. */
static int churn_outcome(slot *s, const reply_info *ri) {
  int good = s->phase == 0
                 ? ri->varint[2] == (uint64_t)s->w->r->opt.create_status && ri->count[1] == 1
                 : ri->bytes == 0;
  s->phase = s->phase == 0 && good ? 1 : 0;
  return good;
}

/* Whether the reply's field 1 (flow_arn) ends in flow/NAME for the slot's name. */
static int arn_names_slot(const slot *s, const reply_info *ri) {
  static const char tail[] = "flow/";
  size_t t = sizeof tail - 1;
  return ri->count[1] == 1 && ri->len[1] >= t + s->name_len &&
         memcmp(ri->str[1] + ri->len[1] - s->name_len - t, tail, t) == 0 &&
         memcmp(ri->str[1] + ri->len[1] - s->name_len, s->name, s->name_len) == 0;
}

/* toggle: a start (phase 0) answers ACTIVE and, for a scheduled flow, no execution_id; a stop
 * SUSPENDED. The phase moves on in finish_call, whatever the outcome. */
static int toggle_outcome(const slot *s, const reply_info *ri) {
  int status_ok = s->phase == 0 ? ri->varint[2] == FLOW_STATUS_ACTIVE && ri->count[3] == 0
                                : ri->varint[2] == FLOW_STATUS_SUSPENDED;
  return status_ok && ri->count[2] == 1 && arn_names_slot(s, ri);
}

/* describe: the reply's flow_name is the name sent. */
static int describe_outcome(const slot *s, const reply_info *ri) {
  return ri->count[3] == 1 && ri->len[3] == s->name_len &&
         memcmp(ri->str[3], s->name, s->name_len) == 0;
}

/* Payloads may arrive compressed or in pieces: read them through a reader, never data.raw. */
static int reply_outcome(slot *s) {
  grpc_byte_buffer_reader reader;
  if (s->reply == NULL || !grpc_byte_buffer_reader_init(&reader, s->reply))
    return 0;
  grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  const uint8_t *p = GRPC_SLICE_START_PTR(all);
  reply_info ri;
  int good = scan_reply(p, p + GRPC_SLICE_LENGTH(all), &ri) == 0;
  switch (s->w->r->opt.mode) {
  case MODE_STOP:
    good = good && ri.varint[2] == FLOW_STATUS_SUSPENDED;
    break;
  case MODE_START:
    good = good && ri.varint[2] == FLOW_STATUS_ACTIVE && ri.count[3] == 1 &&
           ri.len[3] == EXECUTION_ID_LEN;
    break;
  case MODE_LIST:
    good = good && list_outcome(s, &ri);
    break;
  case MODE_CHURN:
    good = good && churn_outcome(s, &ri);
    break;
  case MODE_TOGGLE:
    good = good && toggle_outcome(s, &ri);
    break;
  case MODE_DESCRIBE:
    good = good && describe_outcome(s, &ri);
    break;
  }
  grpc_slice_unref(all);
  return good;
}

static int outcome_expected(slot *s, expect want) {
  int ok = s->status == GRPC_STATUS_OK;
  if (want == EXPECT_NOTFOUND)
    return s->status == GRPC_STATUS_NOT_FOUND;
  if (!ok) {
    s->phase = 0;     /* churn: a failed call starts over with a new name */
    s->token_len = 0; /* list: and a failed page with the first */
  }
  return ok && reply_outcome(s);
}

/* The first surprise per thread goes to stderr, so a run full of errors says what they are. */
static void describe_unexpected(tally *t, const slot *s, int success) {
  if (t->reported)
    return;
  t->reported = 1;
  char *details = grpc_slice_to_c_string(s->details);
  fprintf(stderr, "grpcload: unexpected outcome: batch %s, status %d '%s', %s reply\n",
          success ? "completed" : "failed", (int)s->status, details,
          s->reply ? "with a" : "without a");
  gpr_free(details);
}

/* Scores a completed call. Only calls completing after the warm-up count. Returns the time. */
static uint64_t finish_call(slot *s, int success) {
  uint64_t end = now_ns();
  worker *w = s->w;
  int toggled = s->phase ^ 1; /* toggle: start and stop alternate, whatever the outcome */
  if (!success) {
    s->phase = 0;
    s->token_len = 0;
  }
  int good = success && outcome_expected(s, w->r->opt.want);
  if (!good)
    describe_unexpected(&w->t, s, success);
  if (w->r->opt.mode == MODE_TOGGLE)
    s->phase = toggled;
  if (end >= w->r->measure_from_ns) {
    *(good ? &w->t.ok : &w->t.errors) += 1;
    w->t.latency.counts[hist_index(end - s->started_ns)]++;
    w->t.last_ns = end;
  } else if (!good) {
    w->t.warmup_errors++;
  }
  release_call(s);
  w->inflight--;
  return end;
}

/* Keeps every slot busy until the stop time, then lets the calls in flight finish. */
static void *worker_main(void *arg) {
  worker *w = arg;
  for (size_t i = 0; i < w->nslots; i++) {
    if (start_call(&w->slots[i]) != 0)
      w->t.errors++;
  }
  while (w->inflight > 0) {
    grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type != GRPC_OP_COMPLETE)
      break; /* cannot happen before we shut the queue down; do not spin if it does */
    slot *s = ev.tag;
    /* A churn slot's pending delete runs even after the stop time, and so does a toggle slot's
     * stop after a start: nothing stays behind, every toggled flow ends Suspended. Neither
     * repeats: a delete or a stop leaves phase 0. */
    int more = finish_call(s, ev.success) < w->r->stop_at_ns || s->phase == 1;
    if (more && start_call(s) != 0)
      w->t.errors++;
  }
  return NULL;
}

/* ---- flags ---- */

__attribute__((format(printf, 1, 2))) static int bad_usage(const char *fmt, ...) {
  va_list ap;
  fputs("grpcload: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\nusage: grpcload --target HOST:PORT --conns C --streams M --duration S\n"
        "                [--warmup S (default 1)] --names PREFIX:COUNT (not for list)\n"
        "                [--rpc stop|start|list|churn|toggle|describe (default stop)]\n"
        "                [--expect ok|notfound (default ok; notfound for stop only)]\n"
        "                [--flow NAME (start)] [--page N (list, default 100)]\n"
        "                [--tail FILE (churn)] [--create-status N (churn, default 1)]\n"
        "                [--threads T (default 1)]\n"
        "                [--label NAME (default appflowd)] [--scenario NAME (default mix)]\n",
        stderr);
  return EXIT_USAGE;
}

static int parse_long(const char *s, long min, long max, long *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

static int int_flag(const char *flag, const char *arg, long max, int *out) {
  long v;
  if (parse_long(arg, 1, max, &v) != 0)
    return bad_usage("%s takes a whole number from 1 to %ld, not '%s'", flag, max, arg);
  *out = (int)v;
  return -1;
}

static int seconds_flag(const char *flag, const char *arg, double min, double *out) {
  char *end;
  double v = strtod(arg, &end);
  if (*arg == '\0' || *end != '\0' || !(v >= min && v <= 86400))
    return bad_usage("%s takes seconds from %g to 86400, not '%s'", flag, min, arg);
  *out = v;
  return -1;
}

/* The label and scenario go into the JSON line as they are: allow nothing that needs escaping. */
static int word_flag(const char *flag, const char *arg, const char **out) {
  if (*arg == '\0' || arg[strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                      "0123456789._-")] != '\0')
    return bad_usage("%s takes letters, digits, '.', '_' and '-', not '%s'", flag, arg);
  *out = arg;
  return -1;
}

static int digits_for(long count) {
  int d = 1;
  for (long v = count - 1; v >= 10; v /= 10)
    d++;
  return d < MIN_DIGITS ? MIN_DIGITS : d;
}

static int names_flag(const char *arg, options *o) {
  const char *colon = strrchr(arg, ':');
  if (colon == NULL || colon == arg || parse_long(colon + 1, 1, 1000000000L, &o->count) != 0)
    return bad_usage("--names takes PREFIX:COUNT (e.g. bench_:10000), not '%s'", arg);
  o->digits = digits_for(o->count);
  if ((size_t)(colon - arg) + (size_t)o->digits > FLOW_NAME_MAX)
    return bad_usage("--names %s makes names longer than %d characters", arg, FLOW_NAME_MAX);
  static char prefix[FLOW_NAME_MAX + 1];
  memcpy(prefix, arg, (size_t)(colon - arg));
  prefix[colon - arg] = '\0';
  o->prefix = prefix;
  return -1;
}

static int mode_flag(const char *arg, rpc_mode *out) {
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    if (strcmp(arg, modes[i].name) == 0) {
      *out = (rpc_mode)i;
      return -1;
    }
  }
  return bad_usage("--rpc takes stop, start, list, churn, toggle or describe, not '%s'", arg);
}

static int flow_flag(const char *arg, const char **out) {
  if (*arg == '\0' || strlen(arg) > FLOW_NAME_MAX)
    return bad_usage("--flow takes a flow name of 1 to %d characters", FLOW_NAME_MAX);
  *out = arg;
  return -1;
}

/* The bytes of a CreateFlowRequest without its flow_name (bench/run.py packs them). */
static int tail_flag(const char *path, options *o) {
  FILE *f = fopen(path, "rb");
  free(o->tail);
  o->tail = malloc(TAIL_MAX + 1);
  o->tail_len = f && o->tail ? fread(o->tail, 1, TAIL_MAX + 1, f) : 0;
  int bad = f == NULL || o->tail == NULL || ferror(f) || o->tail_len > TAIL_MAX;
  if (f != NULL)
    fclose(f);
  if (bad)
    return bad_usage("--tail: cannot read %s, or it is over %d bytes", path, TAIL_MAX);
  return -1;
}

static int expect_flag(const char *arg, expect *out) {
  if (strcmp(arg, "ok") == 0)
    *out = EXPECT_OK;
  else if (strcmp(arg, "notfound") == 0)
    *out = EXPECT_NOTFOUND;
  else
    return bad_usage("--expect takes ok or notfound, not '%s'", arg);
  return -1;
}

enum {
  OPT_TARGET = 256,
  OPT_CONNS,
  OPT_STREAMS,
  OPT_DURATION,
  OPT_WARMUP,
  OPT_NAMES,
  OPT_EXPECT,
  OPT_THREADS,
  OPT_LABEL,
  OPT_SCENARIO,
  OPT_RPC,
  OPT_FLOW,
  OPT_PAGE,
  OPT_TAIL,
  OPT_CREATE_STATUS
};

static const struct option long_options[] = {
    {"target", required_argument, NULL, OPT_TARGET},
    {"conns", required_argument, NULL, OPT_CONNS},
    {"streams", required_argument, NULL, OPT_STREAMS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"names", required_argument, NULL, OPT_NAMES},
    {"expect", required_argument, NULL, OPT_EXPECT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"label", required_argument, NULL, OPT_LABEL},
    {"scenario", required_argument, NULL, OPT_SCENARIO},
    {"rpc", required_argument, NULL, OPT_RPC},
    {"flow", required_argument, NULL, OPT_FLOW},
    {"page", required_argument, NULL, OPT_PAGE},
    {"tail", required_argument, NULL, OPT_TAIL},
    {"create-status", required_argument, NULL, OPT_CREATE_STATUS},
    {NULL, 0, NULL, 0}};

/* Returns -1 to go on, or an exit status. */
static int apply_option(options *o, int c, const char *arg) {
  switch (c) {
  case OPT_TARGET:
    o->target = arg;
    return -1;
  case OPT_CONNS:
    return int_flag("--conns", arg, 1024, &o->conns);
  case OPT_STREAMS:
    return int_flag("--streams", arg, 10000, &o->streams);
  case OPT_DURATION:
    return seconds_flag("--duration", arg, 0.001, &o->duration);
  case OPT_WARMUP:
    return seconds_flag("--warmup", arg, 0, &o->warmup);
  case OPT_NAMES:
    return names_flag(arg, o);
  case OPT_EXPECT:
    return expect_flag(arg, &o->want);
  case OPT_THREADS:
    return int_flag("--threads", arg, 64, &o->threads);
  case OPT_LABEL:
    return word_flag("--label", arg, &o->label);
  case OPT_SCENARIO:
    return word_flag("--scenario", arg, &o->scenario);
  case OPT_RPC:
    return mode_flag(arg, &o->mode);
  case OPT_FLOW:
    return flow_flag(arg, &o->flow);
  case OPT_PAGE:
    return int_flag("--page", arg, 100, &o->page);
  case OPT_TAIL:
    return tail_flag(arg, o);
  case OPT_CREATE_STATUS:
    return int_flag("--create-status", arg, 6, &o->create_status);
  default:
    return bad_usage("unknown flag");
  }
}

static int parse_options(int argc, char **argv, options *o) {
  *o = (options){.label = "appflowd",
                 .scenario = "mix",
                 .threads = 1,
                 .warmup = 1,
                 .page = 100,
                 .create_status = 1};
  int c;
  while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
    int rc = apply_option(o, c, optarg);
    if (rc >= 0)
      return rc;
  }
  if (optind < argc)
    return bad_usage("unexpected argument '%s'", argv[optind]);
  if (o->target == NULL || o->conns == 0 || o->streams == 0 || o->duration == 0)
    return bad_usage("--target, --conns, --streams and --duration are required");
  if (o->prefix == NULL && o->mode != MODE_LIST)
    return bad_usage("--names is required for --rpc %s", modes[o->mode].name);
  if (o->mode == MODE_START && o->flow == NULL)
    return bad_usage("--rpc start needs --flow");
  if (o->mode == MODE_CHURN && o->tail == NULL)
    return bad_usage("--rpc churn needs --tail");
  if (o->want == EXPECT_NOTFOUND && o->mode != MODE_STOP)
    return bad_usage("--expect notfound is for --rpc stop only");
  if (o->mode == MODE_TOGGLE && o->count < (long)o->conns * o->streams)
    return bad_usage("--rpc toggle needs a flow per slot: --names COUNT %ld is below --conns x "
                     "--streams = %ld",
                     o->count, (long)o->conns * o->streams);
  if (o->threads > o->conns)
    return bad_usage("--threads %d exceeds --conns %d: a thread without a connection idles",
                     o->threads, o->conns);
  return -1;
}

/* ---- channels ---- */

/* A distinct argument per channel keeps gRPC from sharing one subchannel (one TCP connection)
 * between them; retries are off because a load generator's call must be exactly one request. */
static grpc_channel *open_channel(const char *target, int index) {
  grpc_arg args[3] = {
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, .value.integer = 1},
      {.type = GRPC_ARG_INTEGER, .key = "grpcload.connection", .value.integer = index},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0}};
  grpc_channel_args chargs = {.num_args = 3, .args = args};
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  grpc_channel *ch = grpc_channel_create(target, creds, &chargs);
  grpc_channel_credentials_release(creds);
  return ch;
}

/* Connects before the clock starts, so the warm-up is not spent in TCP handshakes. */
static int wait_ready(grpc_channel *ch, grpc_completion_queue *cq, gpr_timespec deadline) {
  grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch, 1);
  while (st != GRPC_CHANNEL_READY) {
    if (st == GRPC_CHANNEL_SHUTDOWN) /* e.g. a target gRPC could not parse */
      return -1;
    grpc_channel_watch_connectivity_state(ch, st, deadline, cq, NULL);
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type != GRPC_OP_COMPLETE || !ev.success)
      return -1;
    st = grpc_channel_check_connectivity_state(ch, 1);
  }
  return 0;
}

static void drain_and_destroy(grpc_completion_queue *cq) {
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(cq);
}

static int open_channels(run *r) {
  const options *o = &r->opt;
  grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
  gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                       gpr_time_from_seconds(CONNECT_TIMEOUT_S, GPR_TIMESPAN));
  int rc = 0;
  for (int i = 0; i < o->conns && rc == 0; i++) {
    r->channels[i] = open_channel(o->target, i);
    for (int m = 0; m < 2 && modes[o->mode].methods[m] != NULL; m++) {
      char path[128];
      snprintf(path, sizeof path, "%s%s", METHOD_PREFIX, modes[o->mode].methods[m]);
      r->methods[i][m] = grpc_channel_register_call(r->channels[i], path, NULL, NULL);
    }
    if (wait_ready(r->channels[i], cq, deadline) != 0) {
      fprintf(stderr, "grpcload: cannot connect to %s within %d s (connection %d of %d)\n",
              o->target, CONNECT_TIMEOUT_S, i + 1, o->conns);
      rc = -1;
    }
  }
  drain_and_destroy(cq);
  return rc;
}

/* ---- the run ---- */

/* Connection i belongs to thread i % threads; each connection gets --streams slots. */
static int make_workers(run *r) {
  const options *o = &r->opt;
  for (int t = 0; t < o->threads; t++) {
    worker *w = &r->workers[t];
    w->r = r;
    w->cq = grpc_completion_queue_create_for_next(NULL);
    size_t nconns = (size_t)((o->conns - t + o->threads - 1) / o->threads);
    w->slots = calloc(nconns * (size_t)o->streams, sizeof *w->slots);
    /* Room for the largest request: two names or a token, keys, lengths, the tail. */
    w->scratch = malloc(2 * FLOW_NAME_MAX + TOKEN_MAX + o->tail_len + 64);
    if (w->slots == NULL || w->scratch == NULL)
      return -1;
    for (int c = t; c < o->conns; c += o->threads) {
      for (int m = 0; m < o->streams; m++) {
        slot *s = &w->slots[w->nslots++];
        *s = (slot){.w = w, .channel = r->channels[c]};
        s->methods[0] = r->methods[c][0];
        s->methods[1] = r->methods[c][1];
        if (o->mode == MODE_TOGGLE) /* the slot's own flow; parse_options checked COUNT */
          s->name_len = (size_t)snprintf(s->name, sizeof s->name, "%s%0*ld", o->prefix, o->digits,
                                         (long)c * o->streams + m);
      }
    }
  }
  return 0;
}

static void set_clock(run *r) {
  const options *o = &r->opt;
  uint64_t start = now_ns();
  r->measure_from_ns = start + (uint64_t)(o->warmup * 1e9);
  r->stop_at_ns = r->measure_from_ns + (uint64_t)(o->duration * 1e9);
  /* One absolute deadline for every call: a stuck call fails instead of hanging the run. */
  r->call_deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                   gpr_time_from_millis((int64_t)((o->warmup + o->duration + CALL_GRACE_S) * 1e3),
                                        GPR_TIMESPAN));
}

static int run_load(run *r) {
  set_clock(r);
  int started = 0;
  for (; started < r->opt.threads; started++) {
    worker *w = &r->workers[started];
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
      break;
  }
  for (int t = 0; t < started; t++)
    pthread_join(r->workers[t].thread, NULL);
  return started == r->opt.threads ? 0 : -1;
}

static void merge(const run *r, tally *sum) {
  memset(sum, 0, sizeof *sum);
  for (int t = 0; t < r->opt.threads; t++) {
    const tally *x = &r->workers[t].t;
    sum->ok += x->ok;
    sum->errors += x->errors;
    sum->warmup_errors += x->warmup_errors;
    sum->passes += x->passes;
    if (x->last_ns > sum->last_ns)
      sum->last_ns = x->last_ns;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
      sum->latency.counts[i] += x->latency.counts[i];
  }
}

/* The measured window runs from the end of the warm-up to the last completion, so calls that
 * finish while the run drains count, and so does the time they took. */
static void print_result(const run *r, const tally *sum) {
  const options *o = &r->opt;
  uint64_t requests = sum->ok + sum->errors;
  double seconds = sum->last_ns > r->measure_from_ns
                       ? (double)(sum->last_ns - r->measure_from_ns) / 1e9
                       : o->duration;
  if (sum->warmup_errors > 0)
    fprintf(stderr, "grpcload: %" PRIu64 " unexpected outcomes during the warm-up\n",
            sum->warmup_errors);
  char verified[512];
  snprintf(verified, sizeof verified, "%s", modes[o->mode].verified);
  if (o->mode == MODE_LIST)
    snprintf(verified + strlen(verified), sizeof verified - strlen(verified),
             "; %" PRIu64 " last pages reached", sum->passes);
  printf("{\"door\": \"grpc\", \"target\": \"%s\", \"scenario\": \"%s\", \"conns\": %d, "
         "\"streams\": %d, \"requests\": %" PRIu64 ", \"seconds\": %.3f, \"rps\": %.1f, "
         "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"ok\": %" PRIu64 ", \"errors\": %" PRIu64
         ", \"verified\": \"%s\"}\n",
         o->label, o->scenario, o->conns, o->streams, requests, seconds, (double)requests / seconds,
         hist_percentile_ms(&sum->latency, 500), hist_percentile_ms(&sum->latency, 990), sum->ok,
         sum->errors, verified);
  fflush(stdout);
}

/* Accepts a run set up only in part. */
static void teardown(run *r) {
  for (int i = 0; r->channels != NULL && i < r->opt.conns; i++) {
    if (r->channels[i] != NULL)
      grpc_channel_destroy(r->channels[i]);
  }
  for (int t = 0; r->workers != NULL && t < r->opt.threads; t++) {
    if (r->workers[t].cq != NULL)
      drain_and_destroy(r->workers[t].cq);
    free(r->workers[t].slots);
    free(r->workers[t].scratch);
  }
  free(r->channels);
  free(r->methods);
  free(r->workers);
  free(r->opt.tail);
}

static int setup_and_run(run *r) {
  r->channels = calloc((size_t)r->opt.conns, sizeof *r->channels);
  r->methods = calloc((size_t)r->opt.conns, sizeof *r->methods);
  r->workers = calloc((size_t)r->opt.threads, sizeof *r->workers);
  if (r->channels == NULL || r->methods == NULL || r->workers == NULL) {
    fprintf(stderr, "grpcload: out of memory\n");
    return -1;
  }
  if (open_channels(r) != 0)
    return -1;
  if (make_workers(r) != 0) {
    fprintf(stderr, "grpcload: out of memory\n");
    return -1;
  }
  if (run_load(r) != 0) {
    fprintf(stderr, "grpcload: cannot start the load threads\n");
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  static run r;     /* static: zero-initialised, the shared name counter included */
  static tally sum; /* a histogram: too big for the stack */
  int rc = parse_options(argc, argv, &r.opt);
  if (rc >= 0)
    return rc;
  grpc_init();
  rc = setup_and_run(&r) == 0 ? 0 : EXIT_SETUP;
  if (rc == 0) {
    merge(&r, &sum);
    print_result(&r, &sum);
  }
  teardown(&r);
  grpc_shutdown();
  return rc;
}
