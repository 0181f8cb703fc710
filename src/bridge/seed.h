/* The seed file: what to load at start-up, a JSON array of objects, in order. An object with a
 * connectorProfileName and no flowName is a connector profile (CreateConnectorProfile's request,
 * credentials and all, plus an optional "entities": {"<group>": [Entity, ...]} saying what the
 * profile's connector contains, in data/entities.json's form); one with a connectorLabel and
 * neither is a custom connector (RegisterConnector's request). Each is created as its operation
 * creates it, and kept as it is when the store has one of that name. Every other object is a
 * flow: what `aws appflow create-flow --cli-input-json` takes (CreateFlow's request) plus an
 * optional "flowStatus" (Active, Deprecated, Deleted, Draft, Errored or Suspended; absent: the
 * status CreateFlow gives, Active for an on-demand flow, else Draft) and an optional
 * "flowStatusMessage" (DescribeFlow's, e.g. why a flow is Errored; at most 2048 bytes):
 *   [{"flowName": "daily_sync", "flowStatus": "Active",
 *     "triggerConfig": {"triggerType": "Scheduled", "triggerProperties": {"Scheduled":
 *       {"scheduleExpression": "rate(1days)"}}},
 *     "sourceFlowConfig": {...}, "destinationFlowConfigList": [...], "tasks": [...],
 *     "tags": {"team": "data"}}, ...]
 * Each flow is decoded by the AWS door's transcoder and checked by the same code as CreateFlow
 * (af_flows_check_create), so a seed holds only flows CreateFlow would accept. The array is read
 * by a streaming reader over the caller's buffer (no JSON tree of the file), so a million flows
 * load in little memory, and every error points at its line and column.
 *
 * Any entry may name the account and region it belongs to ("accountId", "region"; each absent or
 * null: the service's --account and --region), checked as the core checks a call's; a flow name
 * may then appear once per account and region. A profile may leave its credentials out (a state
 * document, admin/state.h, never holds them).
 *
 * Each flow is added unless the store has a flow of that name already (a durable store keeps
 * what it has across restarts); a name given twice in one seed is an error.
 *
 * Errors: -1 with err filled; the store may then hold the flows before the bad one (start-up
 * stops anyway). Thread-safety: one load at a time per service. */
#ifndef AF_BRIDGE_SEED_H
#define AF_BRIDGE_SEED_H

#include "common/compiler.h"
#include "flows/service.h"

#include <stddef.h>

typedef struct af_seed_error {
  int line;   /* 1-based; 0 when the error has no position (e.g. file unreadable) */
  int column; /* 1-based, in characters (UTF-8 code points) */
  char message[AF_ERROR_MESSAGE_MAX + 512]; /* room for CreateFlow's own message */
} af_seed_error;

/* What a load did. */
typedef struct af_seed_result {
  size_t flows; /* flows read (added + kept) */
  size_t added; /* new in the store */
  size_t kept;  /* the store had a flow of that name already, which stays as it was */
  size_t profiles, profiles_added;     /* connector profiles read, and new in the store */
  size_t connectors, connectors_added; /* custom connector registrations likewise */
} af_seed_result;

/* Parses buf[0..len) and stores each flow in svc's store. *res (may be NULL) says how many
 * were read, added and kept. Returns 0, or -1 with err set. */
int af_seed_load_buffer(af_flows *svc, const char *buf, size_t len, af_seed_result *res,
                        af_seed_error *err) AF_MUST_USE;
/* Reads the file at path again for its profiles' "entities" only, replacing every profile's own
 * entities in the service's catalog (ResetConnectorMetadataCache). 0, or -1 with why in msg. */
int af_seed_reload_entities(af_flows *svc, const char *path, char *msg, size_t msgsz) AF_MUST_USE;
/* Reads the file at path and loads it as af_seed_load_buffer. Returns 0, or -1 with err set
 * (line 0 for I/O errors, message from strerror). */
int af_seed_load_file(af_flows *svc, const char *path, af_seed_result *res,
                      af_seed_error *err) AF_MUST_USE;

/* As af_seed_load_buffer and af_seed_load_file, for a caller that has svc to itself while they
 * run (start-up: nothing else reads or writes svc). A seed of 4 MiB or more holding only flows
 * and loaded into an empty memory store is then read in two parts on two threads; when that
 * cannot give what reading in order gives (a name given twice, any error), the store is emptied
 * (af_flows_reset, which logs it) and the file read again in order, so the result and any
 * error are the same either way. */
int af_seed_load_buffer_alone(af_flows *svc, const char *buf, size_t len, af_seed_result *res,
                              af_seed_error *err) AF_MUST_USE;
int af_seed_load_file_alone(af_flows *svc, const char *path, af_seed_result *res,
                            af_seed_error *err) AF_MUST_USE;

#endif
