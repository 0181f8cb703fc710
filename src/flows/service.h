/* The AppFlow service: every AppFlow rule appflowd knows lives here (validation, the flow
 * lifecycle's state machine, idempotency tokens, paging, ARNs). The doors decode a request into its
 * protobuf-c message, call the RPC's handler through af_flows_rpcs, and encode what it returns;
 * they hold no rules.
 *
 * Ownership: af_flows owns its table. Handlers borrow the request, and build the response's
 * strings in the caller's arena, so a response lives exactly as long as that arena's contents.
 * Errors: a handler returns AF_OK, or an af_err with err->message set for the caller.
 * Thread-safety: handlers may run concurrently from any number of threads; new/free may not. */
#ifndef AF_FLOWS_SERVICE_H
#define AF_FLOWS_SERVICE_H

#include "appflow/v1/appflow.pb-c.h"
#include "flows/arena.h"
#include "flows/error.h"
#include "flows/log.h"
#include "flows/table.h"

#include <stdbool.h>
#include <stdint.h>

#define AF_FLOW_NAME_MAX 256

typedef struct af_flows af_flows;

/* Wall-clock time in milliseconds since the epoch; tests pass their own to move time on. */
typedef struct af_clock {
  int64_t (*now_ms)(void *ctx);
  void *ctx;
} af_clock;

typedef struct af_flows_config {
  const char *region;        /* copied; "us-east-1" when NULL */
  const char *account;       /* copied; "000000000000" when NULL */
  const af_log *log;         /* borrowed, may be NULL; flow state changes are logged at info */
  const af_allocator *alloc; /* the table's memory; NULL = malloc (tests limit it) */
  const af_clock *clock;     /* copied; NULL = the system's real-time clock */
} af_flows_config;

/* A service with an empty table. NULL when out of memory or when region or account would
 * make an invalid ARN (error in err). */
af_flows *af_flows_new(const af_flows_config *cfg, af_error *err);
/* NULL is fine. No handler may be running. */
void af_flows_free(af_flows *svc);
/* The service's table, for seeding; owned by svc. */
af_table *af_flows_table(af_flows *svc);

/* The service's clock, in epoch milliseconds. */
int64_t af_flows_now_ms(const af_flows *svc);

/* ARN of a flow: arn:aws:appflow:{region}:{account}:flow/{name}. Returns the length written
 * (excluding the NUL), truncating to fit dstsz like snprintf. */
size_t af_flows_arn(const af_flows *svc, char *dst, size_t dstsz, const char *name, size_t len);

/* Outcome details a caller (or test) may want beyond the response. */
typedef struct af_stop_result {
  bool changed; /* this call moved the flow to SUSPENDED */
} af_stop_result;

/* StopFlow: see DESIGN.md's semantics table. resp must be initialised by the caller; its
 * strings are allocated from arena. result may be NULL. */
af_err af_flows_stop_flow(af_flows *svc, const Appflow__V1__StopFlowRequest *req,
                          Appflow__V1__StopFlowResponse *resp, af_arena *arena,
                          af_stop_result *result, af_error *err);

/* The other RPCs, with the same contract as af_flows_stop_flow: validate, act, fill resp
 * (initialised by the caller) from arena. Semantics: DESIGN.md and the proto's comments. */
af_err af_flows_create_flow(af_flows *svc, const Appflow__V1__CreateFlowRequest *req,
                            Appflow__V1__CreateFlowResponse *resp, af_arena *arena, af_error *err);
af_err af_flows_describe_flow(af_flows *svc, const Appflow__V1__DescribeFlowRequest *req,
                              Appflow__V1__DescribeFlowResponse *resp, af_arena *arena,
                              af_error *err);
af_err af_flows_list_flows(af_flows *svc, const Appflow__V1__ListFlowsRequest *req,
                           Appflow__V1__ListFlowsResponse *resp, af_arena *arena, af_error *err);
af_err af_flows_start_flow(af_flows *svc, const Appflow__V1__StartFlowRequest *req,
                           Appflow__V1__StartFlowResponse *resp, af_arena *arena, af_error *err);
af_err af_flows_delete_flow(af_flows *svc, const Appflow__V1__DeleteFlowRequest *req,
                            Appflow__V1__DeleteFlowResponse *resp, af_arena *arena, af_error *err);
af_err af_flows_tag_resource(af_flows *svc, const Appflow__V1__TagResourceRequest *req,
                             Appflow__V1__TagResourceResponse *resp, af_arena *arena,
                             af_error *err);
af_err af_flows_untag_resource(af_flows *svc, const Appflow__V1__UntagResourceRequest *req,
                               Appflow__V1__UntagResourceResponse *resp, af_arena *arena,
                               af_error *err);
af_err af_flows_list_tags(af_flows *svc, const Appflow__V1__ListTagsForResourceRequest *req,
                          Appflow__V1__ListTagsForResourceResponse *resp, af_arena *arena,
                          af_error *err);

/* One RPC of appflow.v1.AppFlowService, so doors can serve every RPC from one loop. */
typedef af_err (*af_rpc_handler)(af_flows *svc, const ProtobufCMessage *req, ProtobufCMessage *resp,
                                 af_arena *arena, af_error *err);
typedef struct af_rpc {
  const char *name; /* "StopFlow" */
  const char *path; /* gRPC path, "/appflow.v1.AppFlowService/StopFlow" */
  const ProtobufCMessageDescriptor *input, *output;
  af_rpc_handler handler;
} af_rpc;

/* Every RPC the service answers; af_flows_rpc_count entries. */
extern const af_rpc af_flows_rpcs[];
extern const size_t af_flows_rpc_count;
/* The RPC called name ("StopFlow"), or NULL. */
const af_rpc *af_flows_rpc_named(const char *name);

#endif
