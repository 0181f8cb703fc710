/* The AppFlow service: every AppFlow rule appflowd knows lives here (validation, the flow
 * lifecycle's state machine, idempotency tokens, paging, ARNs), run against a store
 * (flows/store.h) it borrows. The doors decode a request into its protobuf-c message, call the
 * RPC through af_flows_call, and encode what it answers; they hold no rules.
 *
 * Calls complete through a callback: at once on the memory store, later (on a store thread) on
 * a database store, so a door thread never waits on a disk or a network.
 *
 * Ownership: af_flows borrows its store (or owns the memory store it makes when given none).
 * A call borrows the request and builds the response's strings in the caller's arena, so a
 * response lives exactly as long as that arena's contents.
 * Errors: a call ends with AF_OK, or an af_err with err->message set for the caller.
 * Thread-safety: calls may run concurrently from any number of threads; new/free may not. */
#ifndef AF_FLOWS_SERVICE_H
#define AF_FLOWS_SERVICE_H

#include "appflow/v1/appflow.pb-c.h"
#include "common/awsmodel.h"
#include "common/compiler.h"
#include "common/pbc.h"
#include "flows/arena.h"
#include "flows/error.h"
#include "flows/log.h"
#include "flows/store.h"

#include <stdbool.h>
#include <stdint.h>

#define AF_FLOW_NAME_MAX 256
/* The longest flowStatusMessage a seed may give. */
#define AF_STATUS_MESSAGE_MAX 2048
/* The largest request either door takes by default (--max-request-bytes): 1 MiB holds a flow
 * with 1,000 mapped fields. */
#define AF_DEFAULT_MAX_REQUEST_BYTES (1024 * 1024)

typedef struct af_flows af_flows;

/* Wall-clock time in milliseconds since the epoch; tests pass their own to move time on. */
typedef struct af_clock {
  int64_t (*now_ms)(void *ctx);
  void *ctx;
} af_clock;

typedef struct af_flows_config {
  const char *region;    /* copied; "us-east-1" when NULL */
  const char *account;   /* copied; "000000000000" when NULL */
  const af_log *log;     /* borrowed, may be NULL; flow state changes are logged at info */
  af_store *store;       /* borrowed, outlives the service; NULL = a memory store of its own */
  const af_clock *clock; /* copied; NULL = the system's real-time clock */
  /* borrowed, outlives the service; NULL = an empty one of its own (no connector types known:
   * DescribeConnectors lists none and CreateFlow checks no pairs) */
  struct af_catalog *catalog;
  /* how long a run StartFlow starts stays InProgress before it ends (--run-duration);
   * 0: it has ended by the time StartFlow answers */
  int64_t run_duration_ms;
} af_flows_config;

/* A service on cfg->store. NULL when out of memory or when region or account would make an
 * invalid ARN (error in err). */
af_flows *af_flows_new(const af_flows_config *cfg, af_error *err) AF_MUST_USE;
/* NULL is fine. No call may be running. */
void af_flows_free(af_flows *svc);
/* The store the service runs on. */
af_store *af_flows_store(af_flows *svc);
/* The account and region of calls that name none (--account, --region); the service's. */
const char *af_flows_account(const af_flows *svc);
const char *af_flows_region(const af_flows *svc);

/* The service's clock, in epoch milliseconds: the config's clock plus however far the emulator's
 * clock has been moved (AdvanceClock). */
int64_t af_flows_now_ms(const af_flows *svc);

/* ARN of a flow: arn:aws:appflow:{region}:{account}:flow/{name}. Returns the length written
 * (excluding the NUL), truncating to fit dstsz like snprintf. */
size_t af_flows_arn(const af_flows *svc, char *dst, size_t dstsz, const char *name, size_t len);

/* Where a call's answer goes. The caller must not touch arena, err or the response until done
 * has run; done runs exactly once, on the calling thread before af_flows_call returns or later
 * on a store thread. */
typedef struct af_reply_to {
  af_arena *arena;     /* the request's memory: the response's strings are made here */
  af_error *err;       /* set when the call fails */
  int64_t deadline_ms; /* af_store_now_ms() after which no one waits for the answer; 0: none */
  void (*done)(void *ctx, af_err rc);
  void *ctx;
  /* the caller's principal ARN (createdBy, lastUpdatedBy): borrowed for the call; NULL for the
   * account's root, arn:aws:iam::ACCOUNT:root */
  const char *principal;
  /* the account and region the call acts in (borrowed for the call): NULL for the service's
   * own (--account, --region). A malformed one is the call's ValidationException. */
  const char *account;
  const char *region;
  /* a seed's create (af_flows_seed_call_in): a connector profile may come without credentials */
  bool seeding;
  /* the caller's, NULL when it packs none: where the service lists the messages of the response
   * it has packed already (ListFlows's flows it keeps memos of), for common/encode.h; they stay
   * valid until the arena is reset */
  af_pbc_ready *ready;
} af_reply_to;

/* One RPC of appflow.v1.AppFlowService, so doors can serve every RPC from one loop. The table
 * is derived from the contract: one row per method of the service descriptor (so per operation
 * of AppFlow's model), with the core's handler, or none for an operation appflowd does not
 * serve yet (the doors answer UNIMPLEMENTED / 501 NotImplementedException). */
typedef void (*af_rpc_handler)(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                               const af_reply_to *to);
typedef struct af_rpc {
  const char *name; /* "StopFlow" */
  const char *path; /* gRPC path, "/appflow.v1.AppFlowService/StopFlow" */
  const ProtobufCMessageDescriptor *input, *output;
  const af_model_operation *op; /* the model's operation: route, member tables */
  af_rpc_handler handler;       /* NULL: not served yet */
} af_rpc;

/* The number of RPCs (every operation of the model) and the i-th, in the service's order. */
size_t af_flows_rpc_count(const af_flows *svc);
const af_rpc *af_flows_rpc_at(const af_flows *svc, size_t i);
/* The RPC called name ("StopFlow"), or NULL. */
const af_rpc *af_flows_rpc_named(const af_flows *svc, const char *name);
/* The RPC of op, an entry of af_model_operations (the AWS door's routes), or NULL when the
 * service has none: af_flows_rpc_named(svc, op->name), from a table af_flows_new builds. */
const af_rpc *af_flows_rpc_of(const af_flows *svc, const af_model_operation *op);

/* The emulator control API's RPCs (appflowd.emulator.v1.EmulatorService: SendEvent,
 * SetOutcomes, AdvanceClock), one row per method of its descriptor, op NULL (no AWS
 * operation). Doors serve them only when the control API is on (--admin-listen). */
size_t af_flows_emulator_rpc_count(const af_flows *svc);
const af_rpc *af_flows_emulator_rpc_at(const af_flows *svc, size_t i);
const af_rpc *af_flows_emulator_rpc_named(const af_flows *svc, const char *name);

/* ---- the scheduler (flows/scheduler.c) ---- */

/* Starts the thread that fires scheduled runs as they come due (looking every tick_ms; 0:
 * every second) and that AdvanceClock needs. First reads the emulator's clock from the store
 * and, when no other appflowd is serving the store (a restart), ends every run left in
 * progress as Error, interrupted (how many in *interrupted, which may be NULL). Waits for the
 * store; AF_OK or the error. A second call does nothing. */
af_err af_flows_scheduler_start(af_flows *svc, int tick_ms, size_t *interrupted,
                                af_error *err) AF_MUST_USE;
/* Stops it (af_flows_free does too); this instance no longer counts as serving the store. */
void af_flows_scheduler_stop(af_flows *svc);

/* Runs rpc on req; resp is initialised by the caller (protobuf_c_message_init). The request is
 * first checked against the model (every constraint, at every depth: flows/check.h); then an
 * RPC without a handler ends with AF_ERR_NOT_IMPLEMENTED. With to->deadline_ms set, a call
 * whose deadline has passed ends AF_ERR_REQUEST_TIMEOUT without starting, and one answered
 * after it ends with it too, in place of AF_OK or the store's AF_ERR_UNAVAILABLE (a refusal
 * stands: it changed nothing). */
void af_flows_call(af_flows *svc, const af_rpc *rpc, const ProtobufCMessage *req,
                   ProtobufCMessage *resp, const af_reply_to *to);
/* af_flows_call, waiting for the answer (start-up, tools and tests; never on a door thread). */
af_err af_flows_call_sync(af_flows *svc, const af_rpc *rpc, const ProtobufCMessage *req,
                          ProtobufCMessage *resp, af_arena *arena, af_error *err) AF_MUST_USE;
/* ... in an account and region (each NULL: the service's; borrowed for the call). */
af_err af_flows_call_sync_in(af_flows *svc, const char *account, const char *region,
                             const af_rpc *rpc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                             af_arena *arena, af_error *err) AF_MUST_USE;

/* ---- typed, waiting forms of the RPCs, for tests and tools ---- */

/* Outcome details a caller (or test) may want beyond the response. */
typedef struct af_stop_result {
  bool changed; /* this call moved the flow to SUSPENDED */
} af_stop_result;

/* StopFlow: see docs/ARCHITECTURE.md's semantics table. result may be NULL. */
af_err af_flows_stop_flow(af_flows *svc, const Appflow__V1__StopFlowRequest *req,
                          Appflow__V1__StopFlowResponse *resp, af_arena *arena,
                          af_stop_result *result, af_error *err) AF_MUST_USE;
af_err af_flows_create_flow(af_flows *svc, const Appflow__V1__CreateFlowRequest *req,
                            Appflow__V1__CreateFlowResponse *resp, af_arena *arena,
                            af_error *err) AF_MUST_USE;
af_err af_flows_describe_flow(af_flows *svc, const Appflow__V1__DescribeFlowRequest *req,
                              Appflow__V1__DescribeFlowResponse *resp, af_arena *arena,
                              af_error *err) AF_MUST_USE;
af_err af_flows_list_flows(af_flows *svc, const Appflow__V1__ListFlowsRequest *req,
                           Appflow__V1__ListFlowsResponse *resp, af_arena *arena,
                           af_error *err) AF_MUST_USE;
af_err af_flows_start_flow(af_flows *svc, const Appflow__V1__StartFlowRequest *req,
                           Appflow__V1__StartFlowResponse *resp, af_arena *arena,
                           af_error *err) AF_MUST_USE;
af_err af_flows_delete_flow(af_flows *svc, const Appflow__V1__DeleteFlowRequest *req,
                            Appflow__V1__DeleteFlowResponse *resp, af_arena *arena,
                            af_error *err) AF_MUST_USE;
af_err af_flows_tag_resource(af_flows *svc, const Appflow__V1__TagResourceRequest *req,
                             Appflow__V1__TagResourceResponse *resp, af_arena *arena,
                             af_error *err) AF_MUST_USE;
af_err af_flows_untag_resource(af_flows *svc, const Appflow__V1__UntagResourceRequest *req,
                               Appflow__V1__UntagResourceResponse *resp, af_arena *arena,
                               af_error *err) AF_MUST_USE;
af_err af_flows_list_tags(af_flows *svc, const Appflow__V1__ListTagsForResourceRequest *req,
                          Appflow__V1__ListTagsForResourceResponse *resp, af_arena *arena,
                          af_error *err) AF_MUST_USE;

/* ---- seeding: flows made at start-up (the seed file, tests, fuzzers) ---- */

typedef struct af_tag {
  const char *key, *value; /* NUL-terminated */
} af_tag;

/* A flow to seed; every pointer is borrowed for the call only. With a definition (a CreateFlow
 * request the caller has checked with af_flows_check_create), the flow is what CreateFlow
 * would make of it, in the given status, and trigger, description and tags are taken from it;
 * without one, only the members here are set (tests and benchmarks that need no more). */
typedef struct af_flow_spec {
  const char *name;
  size_t name_len;
  Appflow__V1__TriggerType trigger;
  Appflow__V1__FlowStatus status; /* UNSPECIFIED: the status CreateFlow gives the trigger */
  const char *description;        /* NULL for none */
  const af_tag *tags;
  size_t ntags;
  const Appflow__V1__CreateFlowRequest *definition; /* NULL for none; not changed */
  const char *status_message; /* flowStatusMessage (why it is Errored, say); NULL for none */
  /* the account and region the flow belongs to, each NULL for the service's (--account,
   * --region); a malformed one is af_flows_seed_add's ValidationException */
  const char *account, *region;
} af_flow_spec;

/* Every check CreateFlow makes of req before it stores anything: the model's constraints and
 * AppFlow's rules (flows/check.h, flows/rules.h). AF_OK or AF_ERR_VALIDATION with AWS's
 * message. */
af_err af_flows_check_create(af_flows *svc, const Appflow__V1__CreateFlowRequest *req,
                             af_error *err) AF_MUST_USE;

/* Seeds many flows with several in flight at once (a database store commits them in groups).
 * Not thread-safe: one seeder belongs to one thread. */
typedef struct af_flows_seeder af_flows_seeder;

/* NULL when out of memory. */
af_flows_seeder *af_flows_seed_begin(af_flows *svc) AF_MUST_USE;
/* Like af_flows_seed_begin, every flow created at now_ms: another seeder's time
 * (af_flows_seed_time), so two seeders loading one file side by side stamp its flows alike. */
af_flows_seeder *af_flows_seed_begin_at(af_flows *svc, int64_t now_ms) AF_MUST_USE;
/* When the seeder's flows are created (epoch milliseconds). */
int64_t af_flows_seed_time(const af_flows_seeder *sd);
/* Adds spec unless a flow of that name exists in its account and region (then it is kept as it
 * is), recording the scope first (af__scope_record). Checks nothing the caller should have
 * (names, tags): the seed file's reader validates; a malformed account or region is -1 with
 * the ValidationException in err. 0 once submitted, 1 when
 * the store has already said it had the flow (a store that answers at once: memory), or -1
 * with err set once any flow failed to store. */
int af_flows_seed_add(af_flows_seeder *sd, const af_flow_spec *spec, af_error *err) AF_MUST_USE;
/* Waits for every flow added, frees the seeder and says how many were added and how many were
 * there already (either may be NULL). 0, or -1 with err set when any failed. */
int af_flows_seed_end(af_flows_seeder *sd, size_t *added, size_t *kept, af_error *err) AF_MUST_USE;
/* The profiles req's connectors name exist in spec's account and region and are of their types,
 * as CreateFlow checks them (waiting for the store; each profile is read once per seeder, so a
 * million flows naming one profile read it once). AF_OK, or CreateFlow's error (a malformed
 * account or region is a ValidationException). */
af_err af_flows_seed_check_profiles(af_flows_seeder *sd, const af_flow_spec *spec,
                                    const Appflow__V1__CreateFlowRequest *req,
                                    af_error *err) AF_MUST_USE;
/* af_flows_call_sync_in for a seed's CreateConnectorProfile or RegisterConnector: the same
 * checks, except that a profile may leave connectorProfileCredentials out (a state document
 * never holds them; the profile then has none). */
af_err af_flows_seed_call_in(af_flows *svc, const char *account, const char *region,
                             const af_rpc *rpc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                             af_arena *arena, af_error *err) AF_MUST_USE;
/* One flow: AF_OK (added, or kept when *added is false; added may be NULL), or the error. */
af_err af_flows_seed_one(af_flows *svc, const af_flow_spec *spec, bool *added,
                         af_error *err) AF_MUST_USE;

/* ---- state: every account's records as seed entries, and a reset (flows/state.c) ---- */

typedef enum af_state_kind { AF_STATE_CONNECTOR, AF_STATE_PROFILE, AF_STATE_FLOW } af_state_kind;

/* One record as the seed file's entry that makes it again; borrowed for the visit only. */
typedef struct af_state_entry {
  af_state_kind kind;
  const char *account, *region; /* the scope it lives in */
  /* RegisterConnector's request, CreateConnectorProfile's (no credentials, no clientToken) or
   * CreateFlow's (no clientToken; description and tags as the flow has them now) */
  const ProtobufCMessage *request;
  Appflow__V1__FlowStatus status; /* a flow's */
  const char *status_message;     /* a flow's flowStatusMessage, or NULL */
} af_state_entry;

/* Visits every account and region's records as seed entries: the service's scope first, then
 * the others by name; in each, the registrations, then the profiles, then the flows, each by
 * name, so that loading them in this order makes them again and two equal states visit equal
 * entries. Flows seeded without a definition (tests' af_flow_spec) make no entry. visit returns
 * false to stop (then AF_ERR_INTERNAL_SERVER, "out of memory"). Waits for the store: never on a
 * door thread. AF_OK or the error; concurrent changes may or may not be seen. */
af_err af_flows_state(af_flows *svc, bool (*visit)(const af_state_entry *e, void *ctx), void *ctx,
                      af_error *err);

/* What af_flows_reset removed. */
typedef struct af_reset_result {
  size_t flows, profiles, connectors; /* records, in every scope */
  size_t timers;                      /* the scheduler's rows: flow timers, scopes, the clock */
} af_reset_result;

/* Removes every account and region's flows (their clientToken records too), profiles and
 * registrations, the scheduler's timer rows, the recorded scopes and the emulator's clock row,
 * keeping the instances' rows; then the clock's offset is 0, the process forgets its scopes and
 * the catalog its per-profile entities. Not atomic: a call running meanwhile may leave what it
 * made. Waits for the store. AF_OK, or the store's error with what was removed so far in *res
 * (may be NULL). */
af_err af_flows_reset(af_flows *svc, af_reset_result *res, af_error *err);

/* The catalog the service answers connector questions from. */
struct af_catalog *af_flows_catalog(af_flows *svc);

/* ---- the census (flows/census.c): what the store holds, for operators' metrics ---- */

typedef enum af_census_kind {
  AF_CENSUS_FLOWS,     /* flows by flowStatus */
  AF_CENSUS_EXECUTIONS /* the runs in the flows' run logs (each keeps its latest 100) by status */
} af_census_kind;
/* One count: how many flows (or runs) of account and region are in status, AWS's word
 * ("Active", "InProgress"). Strings are borrowed for the call. */
typedef void (*af_census_fn)(void *ctx, af_census_kind kind, const char *account,
                             const char *region, const char *status, uint64_t count);
/* Counts every flow by status and every run in their run logs by its status now, by a paged
 * scan of each account and region's flows, then reports each count through fn (on the calling
 * thread, every status of both kinds for each account and region, zeros included). Waits for the
 * store: never on a door thread. AF_OK, or the store's error (THROTTLING, UNAVAILABLE,
 * INTERNAL_SERVER) with nothing reported. */
af_err af_flows_census(af_flows *svc, af_census_fn fn, void *ctx, af_error *err);

/* The number of flows, by a scan (tests, fuzzers); _upto stops counting at limit. */
size_t af_flows_count(af_flows *svc);
size_t af_flows_count_upto(af_flows *svc, size_t limit);

/* Whether the store holds nothing a seed could meet: no flow, connector profile or custom
 * connector in any account and region, and no scheduler row (another scope's records come
 * after its scope row there). Waits for the store; false when it fails. */
bool af_flows_store_empty(af_flows *svc);

#endif
