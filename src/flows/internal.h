/* Private to src/flows: the service's state, the shape of one call, and the helpers the
 * service's files share. Thread-safety: as af_flows (see service.h). */
#ifndef AF_FLOWS_INTERNAL_H
#define AF_FLOWS_INTERNAL_H

#include "appflowd/store/v1/records.pb-c.h"
#include "common/compiler.h"
#include "flows/catalog.h"
#include "flows/check.h"
#include "flows/service.h"
#include "google/protobuf/timestamp.pb-c.h"

#include <endian.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A flow's tags at most, as the model's TagMap bounds them. */
#define AF_TAGS_MAX 50

/* A flow's runs kept (newest first) for DescribeFlowExecutionRecords. */
#define AF_EXECUTIONS_KEPT 100
/* StartFlow tokens kept per flow: enough for any client's retries, bounded so a client
 * starting one flow in a loop cannot grow it without end. */
#define AF_START_TOKENS_KEPT 64

/* The most the memos of one store may hold (ListFlows's packed entries, flows/list.c): past it
 * pages are made as they were, a flow at a time. About 40,000 flows' entries. */
#define AF_MEMO_BUDGET ((size_t)64 << 20)

/* The key prefix of a CreateFlow clientToken's own record (create.c), followed by the token. */
#define AF_CREATE_TOKEN_KEY AF_STORE_PRIVATE_KEY "create-token:"

/* How long a clientToken makes a retry return the first result, as AWS documents. */
#define AF_TOKEN_TTL_MS (8LL * 60 * 60 * 1000)

/* The account and region a call acts in, and what follows from them: the store scope its
 * records live in and its ARNs. */
typedef struct af_tenant {
  char account[16];
  char region[64];
  char scope[AF_STORE_SCOPE_MAX + 1]; /* "{account}/{region}"; "" for the service's own */
  size_t scope_len;
  char arn_prefix[128]; /* "arn:aws:appflow:{region}:{account}:flow/": ARNs are copied, not
                           formatted, as ListFlows makes 100 per page */
  size_t arn_prefix_len;
  char root_arn[64]; /* "arn:aws:iam::{account}:root": the principal of calls that name none */
} af_tenant;

/* The scopes this process has seen recorded in the store (af__scope_known). */
#define AF_KNOWN_SCOPES 256

typedef struct af_sort_plans af_sort_plans; /* sorted.c */

/* The numbers of the CreateFlowRequest fields that code reading a packed definition finds by
 * number, from its descriptor once (af_flows_new): looked up per call they were 2,000
 * instructions of an UpdateFlow. */
typedef struct af_definition_fields {
  uint32_t kms_arn, tags, tasks, metadata_catalog_config, source_flow_config;
} af_definition_fields;

struct af_flows {
  af_store *store;
  bool own_store;
  const af_log *log;
  af_tenant home; /* --account and --region's: the default scope */
  pthread_mutex_t scopes_lock;
  size_t nscopes;
  char (*scopes)[AF_STORE_SCOPE_MAX + 1]; /* AF_KNOWN_SCOPES recorded ones, under scopes_lock */
  af_clock clock;
  int64_t run_duration_ms;              /* how long a run stays InProgress */
  af_checker *checker;                  /* the model's constraints, compiled once */
  const af_model_shape *connector_type; /* ConnectorType's enum, looked up once */
  af_definition_fields fields;          /* CreateFlowRequest's, looked up once */
  af_sort_plans *sort_plans;            /* where the requests' maps can be, found once */
  struct af_token_mac *token_mac;       /* the store's token key, ready to seal page tokens */
  size_t *connector_len;                /* the length of each of its strings (0: none) */
  af_catalog *catalog; /* connector types and entities (borrowed, or own_catalog) */
  bool own_catalog;
  af_rpc *rpcs; /* one per method of the contract's service */
  size_t nrpcs;
  const af_rpc **op_rpcs; /* by index in af_model_operations: its RPC, or NULL */
  char *paths;            /* the rpcs' gRPC paths */
  af_rpc *emu_rpcs;       /* appflowd.emulator.v1.EmulatorService's, like rpcs */
  size_t n_emu_rpcs;
  char *emu_paths;
  _Atomic int64_t clock_offset_ms; /* how far the emulator's clock is ahead of clock */
  struct af_scheduler *scheduler;  /* NULL until af_flows_scheduler_start */
};

/* One call in flight: made in the request's arena by the RPC's handler, which embeds it first
 * in a struct of its own, and ended by af__call_end. */
typedef struct af_call {
  af_flows *svc;
  const af_tenant *tenant; /* the call's account and region (&svc->home, or in the arena) */
  af_reply_to to;
  af_store_op op;
  int64_t now_ms; /* the service's clock when the call began */
} af_call;

/* A call of `size` bytes (the handler's struct) in to->arena, with its op's deadline and scope
 * set; NULL when out of memory or when to's account or region is malformed, after ending the
 * call with the error. */
void *af__call_new(af_flows *svc, const af_reply_to *to, size_t size) AF_MUST_USE;
/* Ends a call: runs its done with rc. */
void af__call_end(af_call *c, af_err rc);
/* The flowName member of a flow RPC, checked: true, with its length in *len; false once the
 * call has ended with the validation error. */
bool af__call_check_name(af_call *c, const char *name, size_t *len) AF_MUST_USE;
/* Submits the call's op: rule on the flow key[0..len), then done (c->op.ctx is c). */
void af__call_modify(af_call *c, const char *key, size_t len, af_store_rule rule,
                     af_store_done done);
/* The call an op belongs to. */
static inline af_call *af__call_of(af_store_op *op) {
  return (af_call *)(void *)((char *)op - offsetof(af_call, op));
}
/* Read-only rules: af__keep_rule keeps the record, so its op answers whether it is there (OK or
 * NOT_FOUND); af__profile_type_rule also stores a profile record's connector type
 * (Appflow__V1__ConnectorType, 0 when unknown) in *(int *)ctx. */
af_store_verdict af__keep_rule(const af_flow_record *cur, af_flow_record *next, void *ctx);
af_store_verdict af__profile_type_rule(const af_flow_record *cur, af_flow_record *next, void *ctx);
/* Turns a store's answer about flow name into the caller's error (AF_OK for AF_STORE_OK and
 * the codes the caller handles itself: EXISTS and REFUSED keep the rule's message). */
af_err af__store_error(af_call *c, af_store_rc rc, const char *name, size_t len) AF_MUST_USE;

/* Runs begin(arg, to) with a reply_to on arena and err, and waits for its done (the waiting
 * forms of the RPCs). */
af_err af__wait(void (*begin)(void *arg, const af_reply_to *to), void *arg, af_arena *arena,
                af_error *err) AF_MUST_USE;

/* HMAC-SHA256 under one key, with the key's padded blocks hashed once (list.c): what page
 * tokens are sealed with. af__token_mac_new copies nothing it is given; NULL when OpenSSL fails
 * or the key is over 64 bytes. af__token_mac writes the 32-byte MAC of msg; false when OpenSSL
 * fails. Thread-safety: one af_token_mac may be used by any number of threads at once. */
#define AF_SHA256_BLOCK 64
#define AF_SHA256_LEN 32
typedef struct af_token_mac af_token_mac;
af_token_mac *af__token_mac_new(const uint8_t *key, size_t len) AF_MUST_USE;
void af__token_mac_free(af_token_mac *m);
bool af__token_mac(const af_token_mac *m, const uint8_t *msg, size_t len,
                   uint8_t out[AF_SHA256_LEN]) AF_MUST_USE;

/* A page token resuming after name[0..len), sealed for one operation's domain ("appflowd
 * ListFlows v1") and the call's account and region, in the arena; NULL when out of memory or
 * when name is over AF_FLOW_NAME_MAX bytes (no listed name is: the callers' buffers and the
 * model bound them). */
char *af__page_token(const af_call *c, const char *domain, const char *name, size_t len,
                     af_arena *arena) AF_MUST_USE;
/* The name a token resumes after, into name (AF_FLOW_NAME_MAX + 1 bytes); a token not sealed
 * for domain and the call's account and region is a ValidationException naming op
 * ("ListFlows"). */
af_err af__page_token_read(const af_call *c, const char *domain, const char *op, const char *token,
                           char *name, size_t *len, af_error *err) AF_MUST_USE;

/* The handlers of create.c and list.c (service.c holds the RPC table). */
void af__create_flow(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                     const af_reply_to *to);
void af__describe_flow(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                       const af_reply_to *to);
void af__update_flow(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                     const af_reply_to *to);
void af__list_flows(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                    const af_reply_to *to);
void af__tag_resource(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                      const af_reply_to *to);
void af__untag_resource(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                        const af_reply_to *to);
void af__list_tags_for_resource(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                                const af_reply_to *to);

/* Which fields of each message type of the service's requests can lead to a map (sorted.c),
 * made once by af_flows_new so packing sorted follows only those. NULL when out of memory.
 * Immutable once made: any number of threads may read it. */
af_sort_plans *af__sort_plans_new(const ProtobufCMessageDescriptor *const *roots, size_t nroots);
void af__sort_plans_free(af_sort_plans *p);
/* m packed into the arena with every map's entries in key order, at every depth: map entries
 * have no order in meaning, but they do in packed bytes that retries are compared by. m is
 * never changed (maps out of order are sorted as copies of their arrays of entries, in the
 * arena); false when out of memory. plans: the service's, or NULL to walk every field (a
 * message type they do not know is walked whole too). */
bool af__pack_sorted(const af_sort_plans *plans, const ProtobufCMessage *m, af_arena *arena,
                     af_bytes *out) AF_MUST_USE;
/* A flow's definition: req packed (maps sorted) without its name and clientToken, in the arena;
 * NULL when out of memory. req is not changed. */
uint8_t *af__pack_definition(const af_sort_plans *plans, const Appflow__V1__CreateFlowRequest *req,
                             af_arena *arena, size_t *len) AF_MUST_USE;
/* ConflictException for a change f's status does not allow: "Flow x is in Draft state and
 * cannot be <what>". */
af_err af__wrong_state(const af_flow_record *f, const char *what, af_error *err);

af_err af_flows_oom(af_error *err);
/* m packed into the arena (protobuf-c's bytes, by common/encode.h); false when out of memory. */
bool af__pack(const ProtobufCMessage *m, af_arena *arena, af_bytes *out) AF_MUST_USE;
/* af__pack with room for extra more bytes after m's out->len in out->data (for what the caller
 * appends); false when out of memory. */
bool af__pack_room(const ProtobufCMessage *m, size_t extra, af_arena *arena,
                   af_bytes *out) AF_MUST_USE;
/* The status CreateFlow gives a new flow: Active for an on-demand one, else Draft. */
Appflow__V1__FlowStatus af__created_status(Appflow__V1__TriggerType trigger);
/* AF_OK when a flow in f's status may be started or updated (Active, Draft, Suspended or
 * Errored), else the ConflictException "Flow x is in Deprecated state and cannot be <what>". */
af_err af__changeable(const af_flow_record *f, const char *what, af_error *err) AF_MUST_USE;
/* "arn:aws:appflow:{region}:{account}:flow/{name}" in the arena; NULL when out of memory. */
char *af_flows_arn_dup(const af_tenant *t, af_arena *arena, const char *name,
                       size_t len) AF_MUST_USE;
/* The tenant of account and region (NULL: the service's) into *out; ValidationException when
 * either is malformed. */
af_err af__tenant(const af_flows *svc, const char *account, const char *region, af_tenant *out,
                  af_error *err) AF_MUST_USE;
/* Visits every record of table t in scope (NULL: the default), a page at a time, each page
 * resuming after the last name the one before saw; after(ctx), when not NULL, does a page's
 * work between pages (the store is free again then). Waits: never on a door thread. */
af_store_rc af__scan_all(af_flows *svc, af_store_table t, const char *scope, af_store_visit visit,
                         af_store_rc (*after)(void *ctx), void *ctx) AF_MUST_USE;
/* af__scan_all of the flows that ever ran (a run log not empty: af_store_op.ran_only). */
af_store_rc af__scan_ran(af_flows *svc, const char *scope, af_store_visit visit,
                         af_store_rc (*after)(void *ctx), void *ctx) AF_MUST_USE;
/* Calls fn(ctx, scope) for the default scope (NULL) and then for every other account and
 * region's that was ever used (recorded in the timers table by af__scope_record); stops at
 * the first result that is not AF_STORE_OK and returns it. Waits. */
af_store_rc af__scopes_each(af_flows *svc, af_store_rc (*fn)(void *ctx, const char *scope),
                            void *ctx) AF_MUST_USE;
/* Runs rpc once the scope of to's account and region is recorded in the store (at once for the
 * default scope, and for one this process has recorded before), so af__scopes_each finds it
 * however the process ends; else ends the call with the error. */
void af__scope_record(af_flows *svc, const af_rpc *rpc, const ProtobufCMessage *req,
                      ProtobufCMessage *resp, const af_reply_to *to);
/* Records t's scope as af__scope_record does, waiting for the store (the seeder: never on a
 * door thread). AF_OK, or the store's error. */
af_err af__scope_record_sync(af_flows *svc, const af_tenant *t, af_error *err);
/* Forgets the scopes this process has recorded (a reset removed their rows): the next call in
 * each records it again. */
void af__scopes_forget(af_flows *svc);
/* Sets op's scope to t's. */
static inline void af__op_scope(af_store_op *op, const af_tenant *t) {
  op->scope = t->scope_len > 0 ? t->scope : NULL;
  op->scope_len = t->scope_len;
}
/* A Timestamp for epoch milliseconds in the arena; NULL when out of memory. */
Google__Protobuf__Timestamp *af_flows_timestamp(af_arena *arena, int64_t ms) AF_MUST_USE;
/* The proto name of a status (FLOW_STATUS_ACTIVE) and its AWS spelling (Active). */
const char *af_flows_status_name(uint8_t status);
const char *af_flows_status_aws(uint8_t status, char *buf, size_t bufsz);

/* Every map<string, string> entry protoc-c generates has this layout; af_flows_tag_entries
 * builds them for any of our TagsEntry messages (static asserts in service.c hold it). */
typedef struct af_map_entry {
  ProtobufCMessage base;
  char *key;
  char *value;
} af_map_entry;

/* A record's tags (a packed TagSet) as map entries of type desc in the arena (copies, so they
 * outlive the record); false when out of memory or the blob is not a TagSet. */
bool af_flows_tag_entries(af_bytes tags, const ProtobufCMessageDescriptor *desc, af_arena *arena,
                          size_t *n, af_map_entry ***out) AF_MUST_USE;
/* tags[0..n) packed as a TagSet in the arena; false when out of memory. */
bool af_flows_pack_tags(const af_tag *tags, size_t n, af_arena *arena, af_bytes *out) AF_MUST_USE;
/* A record's run log unpacked into the arena (an empty one for none); NULL when out of memory
 * or the blob is not a RunLog. */
Appflowd__Store__V1__RunLog *af_flows_runs(af_bytes runs, af_arena *arena) AF_MUST_USE;
/* lastRunExecutionDetails for a run log (NULL when there was no run; *oom set on failure);
 * _of for a run log already unpacked. */
Appflow__V1__ExecutionDetails *af_flows_last_run(af_bytes runs, int64_t now_ms, af_arena *arena,
                                                 bool *oom);
Appflow__V1__ExecutionDetails *af_flows_last_run_of(const Appflowd__Store__V1__RunLog *r,
                                                    int64_t now_ms, af_arena *arena, bool *oom);

/* Runs (runs.c). An execution's status at now_ms, and since when it has been so. */
Appflow__V1__ExecutionStatus af__execution_status(const Appflowd__Store__V1__Execution *e,
                                                  int64_t now_ms, int64_t *since_ms);
/* Whether what x says of a flow's latest run stays so whatever the clock does: there is none,
 * or it has ended (an answer holding x may then be kept, flows/memo.c). */
static inline bool af__run_details_timeless(const Appflow__V1__ExecutionDetails *x) {
  return x == NULL || (x->most_recent_execution_status !=
                           APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_IN_PROGRESS &&
                       x->most_recent_execution_status !=
                           APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_CANCEL_STARTED);
}
/* What starts a run (af__start_run). */
typedef struct af_run_start {
  const char *id;        /* its execution id (borrowed: must outlive the packed log) */
  int64_t at_ms;         /* when it starts, on the service's clock */
  int trigger;           /* Appflow__V1__TriggerType of what started it */
  int64_t first_pull_ms; /* where the flow's first run's data window starts */
} af_run_start;
/* Adds a run to r in its place (newest first, at most AF_EXECUTIONS_KEPT), ending as r's first
 * scripted outcome says (taken off r), else Successful after the service's run duration; its
 * data window continues from the end of the run before it. false when out of memory. */
bool af__start_run(const af_flows *svc, Appflowd__Store__V1__RunLog *r, const af_run_start *s,
                   af_arena *a) AF_MUST_USE;
/* A run log with its start tokens and executions left as the bytes they were packed as
 * (runlog.c): StartFlow reads a few of up to 64 tokens and 100 runs and adds one of each. In the
 * arena; the tokens and runs borrow the packed log's bytes. */
typedef struct af_packed_runs {
  Appflowd__Store__V1__RunLog *head; /* the other fields, unpacked */
  af_bytes *tokens;                  /* each StartToken, in order (room for one more) */
  size_t n_tokens;
  af_bytes *runs; /* each Execution, newest first (room for one more) */
  size_t n_runs;
} af_packed_runs;
/* Splits a packed RunLog; NULL when out of memory or the bytes are not a RunLog. */
af_packed_runs *af__runs_split(af_bytes runs, af_arena *a) AF_MUST_USE;
/* The log packed again (the head's own tokens and runs, if any, before the packed ones); false
 * when out of memory. */
bool af__runs_join(const af_packed_runs *s, af_arena *a, af_bytes *out) AF_MUST_USE;
/* Unpacks the packed runs onto the head's (for what walks every run); false when out of memory
 * or one is not an Execution. */
bool af__runs_unsplit(af_packed_runs *s, af_arena *a) AF_MUST_USE;
/* A packed StartToken's at_ms and client_token (borrowed from token); false when malformed. */
bool af__token_peek(af_bytes token, int64_t *at_ms, const char **name,
                    size_t *name_len) AF_MUST_USE;
/* Adds a run to a split log, as af__start_run does to an unpacked one. */
bool af__start_run_packed(const af_flows *svc, af_packed_runs *s, const af_run_start *rs,
                          af_arena *a) AF_MUST_USE;
/* Protobuf's wire format: a varint; past one field's value of wire type wt (its bytes, for
 * wire type 2, in *data, *len). False at the end of the bytes or on a malformed value.
 * Inline: StartFlow walks every token and run of a flow's log (about 170 fields) under the
 * shard's lock, and a call per field cost as much as the field. */
AF_MUST_USE static inline bool af__wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  const uint8_t *q = *p;
  if (q < end && *q < 0x80) { /* tags and short lengths: one byte */
    *v = *q;
    *p = q + 1;
    return true;
  }
  if (end - q >= 8) { /* a varint of up to 8 bytes (times in ms take 6) from one 8-byte load */
    uint64_t w;
    memcpy(&w, q, sizeof w);
    w = le64toh(w);                              /* the wire's byte order, whatever the host's */
    uint64_t stops = ~w & 0x8080808080808080ULL; /* the bytes that end a varint */
    if (stops != 0) {
      int bits = __builtin_ctzll(stops) + 1; /* through the first such byte */
      uint64_t x = (bits == 64 ? w : w & ((1ULL << bits) - 1)) & 0x7F7F7F7F7F7F7F7FULL;
      x = ((x & 0x7F007F007F007F00ULL) >> 1) | (x & 0x007F007F007F007FULL); /* 7+7 bits */
      x = ((x & 0x3FFF00003FFF0000ULL) >> 2) | (x & 0x00003FFF00003FFFULL); /* 14+14 */
      x = ((x & 0x0FFFFFFF00000000ULL) >> 4) | (x & 0x000000000FFFFFFFULL); /* 28+28 */
      *v = x;
      *p = q + bits / 8;
      return true;
    }
  }
  uint64_t r = 0;
  size_t max = (size_t)(end - q) < 10 ? (size_t)(end - q) : 10; /* 10 bytes hold 64 bits */
  for (size_t i = 0; i < max; i++) {
    r |= (uint64_t)(q[i] & 0x7F) << (7 * i);
    if (q[i] < 0x80) {
      *v = r;
      *p = q + i + 1;
      return true;
    }
  }
  return false;
}

AF_MUST_USE static inline bool af__wire_skip(const uint8_t **p, const uint8_t *end, unsigned wt,
                                             const uint8_t **data, size_t *len) {
  uint64_t v;
  size_t n = wt == 1 ? 8 : wt == 5 ? 4 : 0;
  if (wt == 0)
    return af__wire_varint(p, end, &v);
  if (wt == 2) {
    if (!af__wire_varint(p, end, &v) || v > (uint64_t)(end - *p))
      return false;
    n = (size_t)v;
  } else if (n == 0 || n > (size_t)(end - *p)) {
    return false;
  }
  *data = *p;
  *len = n;
  *p += n;
  return true;
}
/* One whole field: its key (number << 3 | wire type) and value as af__wire_skip gives it
 * (*data NULL and *len 0 for a varint). */
AF_MUST_USE static inline bool af__wire_field(const uint8_t **p, const uint8_t *end, uint64_t *key,
                                              const uint8_t **data, size_t *len) {
  *data = NULL;
  *len = 0;
  return af__wire_varint(p, end, key) && af__wire_skip(p, end, (unsigned)(*key & 7), data, len);
}
/* A run's metadataCatalogDetails at now_ms (none while it is in progress, or without glue): the
 * flow's Glue table (tablePrefix, then the flow's name, lower case as Glue keeps names) and one
 * partition per run, registered when the run succeeded; in the arena. false when out of
 * memory. */
bool af__catalog_details(af_arena *a, const Appflow__V1__GlueDataCatalogConfig *glue,
                         const char *flow, size_t len, const Appflowd__Store__V1__Execution *e,
                         int64_t now_ms, size_t *n,
                         Appflow__V1__MetadataCatalogDetail ***out) AF_MUST_USE;
/* Ends every run of r in progress at now_ms as Error, interrupted; how many. */
size_t af__interrupt_runs(Appflowd__Store__V1__RunLog *r, int64_t now_ms);
/* The emulator's control RPCs (emulator.c) and the scheduler's (scheduler.c). */
void af__send_event(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                    const af_reply_to *to);
void af__set_outcomes(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                      const af_reply_to *to);
void af__advance_clock(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                       const af_reply_to *to);
/* A scheduled flow's next run not computed yet (RunLog.next_fire_ms): the scheduler computes
 * it from the flow's definition once its timer is due. */
#define AF_FIRE_PENDING (-1)
/* A scheduled flow's schedule starts again at now_ms: its next run is for the scheduler to
 * compute from the definition; afresh (an activation) also forgets the failures counted so far,
 * and the runs from before no longer count. Then arm its timer (af__arm_timer). */
void af__schedule_from(Appflowd__Store__V1__RunLog *r, int64_t now_ms, bool afresh);
/* Makes sure the scheduler looks at flow name by due_ms: its timer row is set to due_ms unless it
 * is due earlier already. Uses c->op (and c's arena), then calls next(c, rc). */
void af__arm_timer(af_call *c, const char *name, size_t len, int64_t due_ms,
                   void (*next)(af_call *c, af_err rc));
/* Stops the scheduler's thread, if running (af_flows_free). */
void af__scheduler_free(af_flows *svc);

void af__describe_flow_execution_records(af_flows *svc, const ProtobufCMessage *req,
                                         ProtobufCMessage *resp, const af_reply_to *to);
void af__cancel_flow_executions(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                                const af_reply_to *to);
/* The AWS name of a ConnectorType value ("S3"), or NULL for none; and back (0 for none). */
const char *af_flows_connector_name(int connector_type);
int af_flows_connector_value(const char *name);
/* af_flows_connector_value with the enum and its strings' lengths that af_flows_new looked up:
 * for loops over records (a ListFlows page asks it twice per flow). */
int af__connector_value(const af_flows *svc, const char *name);
/* Profiles and connectors (profiles.c, connectors.c). */
void af__create_connector_profile(af_flows *svc, const ProtobufCMessage *req,
                                  ProtobufCMessage *resp, const af_reply_to *to);
void af__describe_connector_profiles(af_flows *svc, const ProtobufCMessage *req,
                                     ProtobufCMessage *resp, const af_reply_to *to);
void af__update_connector_profile(af_flows *svc, const ProtobufCMessage *req,
                                  ProtobufCMessage *resp, const af_reply_to *to);
void af__delete_connector_profile(af_flows *svc, const ProtobufCMessage *req,
                                  ProtobufCMessage *resp, const af_reply_to *to);
void af__register_connector(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                            const af_reply_to *to);
void af__update_connector_registration(af_flows *svc, const ProtobufCMessage *req,
                                       ProtobufCMessage *resp, const af_reply_to *to);
void af__unregister_connector(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                              const af_reply_to *to);
void af__describe_connector(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                            const af_reply_to *to);
void af__describe_connectors(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                             const af_reply_to *to);
void af__list_connectors(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                         const af_reply_to *to);
void af__list_connector_entities(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                                 const af_reply_to *to);
void af__describe_connector_entity(af_flows *svc, const ProtobufCMessage *req,
                                   ProtobufCMessage *resp, const af_reply_to *to);
void af__reset_connector_metadata_cache(af_flows *svc, const ProtobufCMessage *req,
                                        ProtobufCMessage *resp, const af_reply_to *to);

/* The check CreateFlow and UpdateFlow make of a flow's connectors (profiles.c): the pair is one
 * the catalog supports, and each side whose type takes a profile names an existing profile of
 * that type. It reads the profiles through c->op, then calls next(c) (c->op free again) or ends
 * the call with the error. The caller embeds the state, which lives until next runs. */
typedef struct af_flow_profiles {
  const char *name[2]; /* source, destination: the profile each names, or NULL */
  int type[2];
  int step, found_type;
  void (*next)(af_call *c);
} af_flow_profiles;
void af__check_flow_profiles(af_call *c, af_flow_profiles *p,
                             const Appflow__V1__SourceFlowConfig *src,
                             const Appflow__V1__DestinationFlowConfig *dst,
                             void (*next)(af_call *c));

/* The synchronous part of that check (the pair, and a profile named where one is needed). */
af_err af__check_flow_connectors(af_flows *svc, const Appflow__V1__SourceFlowConfig *src,
                                 const Appflow__V1__DestinationFlowConfig *dst,
                                 af_error *err) AF_MUST_USE;
/* The profile a flow's side of connector type `type` uses: name, or NULL when the type takes
 * none (what the flow record's source_profile and destination_profile hold). */
const char *af__flow_profile(const char *name, int type);

/* What af__delete_unless_used deletes, and what may use it. */
typedef struct af_delete_spec {
  af_store_table table;       /* where the record is */
  af_store_table users_table; /* where its users are */
  bool (*uses)(const af_flow_record *user, const char *name);
  af_err (*missing)(af_error *err, const char *name); /* the record is not there */
  const char *what, *user_what; /* "Connector profile", "flow": for the ConflictException */
  const char *hint;             /* what to do instead, ending its message */
  const char *log_what;         /* "connector profile": for the log line */
} af_delete_spec;
/* Deletes the record `name` of spec->table, unless force is false and a record of
 * spec->users_table uses it: then a ConflictException "<what> X is in use by <user_what> Y:
 * <hint>". Ends the call (made here from to) either way. */
void af__delete_unless_used(af_flows *svc, const af_reply_to *to, const af_delete_spec *spec,
                            const char *name, bool force);

/* The connector type of the profile called name in t's scope, waiting for the store: AF_OK with
 * *type set, ResourceNotFoundException when there is none, or the store's error (never on a door
 * thread). */
af_err af__profile_type(af_flows *svc, const af_tenant *t, const char *name, int *type,
                        af_error *err) AF_MUST_USE;
/* AWS's ResourceNotFoundException: "Connector Profile with name X does not exist." */
af_err af__profile_missing(af_error *err, const char *name);
/* ValidationException: profile name is of connector type found, but the flow's side (0 source,
 * 1 destination) is of type want. */
af_err af__profile_mismatch(af_error *err, const char *name, int found, int want, int side);

/* Connector ARNs: arn:aws:appflow:{region}:{account}:connectorprofile/{name} and
 * .../connector/{label}, in the arena; NULL when out of memory. */
char *af__profile_arn(const af_tenant *t, af_arena *arena, const char *name) AF_MUST_USE;
char *af__connector_arn(const af_tenant *t, af_arena *arena, const char *label) AF_MUST_USE;

/* The principal ARN a call acts as: the door's, or the account's root. */
static inline const char *af__principal(const af_call *c) {
  return c->to.principal != NULL ? c->to.principal : c->tenant->root_arn;
}
/* A record's createdBy or lastUpdatedBy: NULL (a seeded flow) reads as the account's root. */
const char *af_flows_by(const af_tenant *t, const char *principal);
/* A copy of s in the arena (NULL stays NULL); *oom set on failure. */
char *af_flows_strdup(af_arena *arena, const char *s, bool *oom);

/* ---- memos (flows/memo.c): answers made of one version of a flow record, kept with it ---- */

typedef enum af_memo_kind { AF_MEMO_LIST, AF_MEMO_DESCRIBE, AF_MEMO_KINDS } af_memo_kind;
typedef struct af_flow_memo af_flow_memo;

/* One answer made of a record's version: msg packed, and slots each filled once by
 * compare-and-swap from NULL and read by every call after (freed with the memo). */
typedef struct af_memo_part {
  const ProtobufCMessageDescriptor *desc;
  _Atomic(ProtobufCMessage *)
      msg;                     /* unpacked from packed (owning all it points to): af__memo_msg */
  _Atomic(af_pbc_text *) json; /* the AWS door's text of msg, once it has written it */
  _Atomic(char *) token;       /* ListFlows: the page token that resumes after the flow */
  size_t len;
  uint8_t packed[];
} af_memo_part;

/* The record's part of kind k, or NULL when it has none; the memo holding it retained in *held
 * (the caller releases it, af_memo_release). Only under the record's shard lock: from a scan's
 * visitor or a rule. */
af_memo_part *af__memo_find(const af_flow_record *f, af_memo_kind k, af_memo **held);
/* The same, of the memo a scan's peek is given (af_store_peek). */
af_memo_part *af__memo_part(af_memo *memo, af_memo_kind k, af_memo **held);
/* A part of kind k made of msg and kept with the record (or the one another call kept first),
 * retained in *held; NULL when the store keeps no memos, they are at AF_MEMO_BUDGET, or memory
 * ran out. msg must say the same whenever it is read. Under the shard lock, as af__memo_find. */
af_memo_part *af__memo_keep(af_store *store, const af_flow_record *f, af_memo_kind k,
                            const ProtobufCMessage *msg, af_memo **held);
/* The part's message, unpacked by the first call that asks (held is the memo holding p); NULL
 * when out of memory. Under the shard lock, as af__memo_find. */
const ProtobufCMessage *af__memo_msg(af_store *store, af_memo *held, af_memo_part *p);
/* Keeps a copy of text in *slot unless it holds one already; false when out of memory. */
bool af__memo_text_keep(_Atomic(char *) *slot, const char *text);

#endif
