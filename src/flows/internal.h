/* Private to src/flows: the service's state and the helpers its files share.
 * Thread-safety: as af_flows (see service.h). */
#ifndef AF_FLOWS_INTERNAL_H
#define AF_FLOWS_INTERNAL_H

#include "flows/service.h"
#include "google/protobuf/timestamp.pb-c.h"

#include <stdatomic.h>
#include <stdint.h>

/* How long a clientToken makes a retry return the first result, as AWS documents. */
#define AF_TOKEN_TTL_MS (8LL * 60 * 60 * 1000)

struct af_flows {
  af_table *table;
  const af_log *log;
  char region[64];
  char account[16];
  char arn_prefix[128]; /* "arn:aws:appflow:{region}:{account}:flow/": ARNs are copied, not
                           formatted, as ListFlows makes 100 per page */
  size_t arn_prefix_len;
  af_clock clock;
  uint64_t token_key; /* checks ListFlows tokens we issued */
  uint64_t id_key[2]; /* with id_counter, makes execution ids */
  _Atomic uint64_t id_counter;
};

/* Every map<string, string> entry protoc-c generates has this layout; af_flows_tag_entries
 * builds them for any of our TagsEntry messages (static asserts in service.c hold it). */
typedef struct af_map_entry {
  ProtobufCMessage base;
  char *key;
  char *value;
} af_map_entry;

af_err af_flows_oom(af_error *err);
/* "arn:aws:appflow:{region}:{account}:flow/{name}" in the arena; NULL when out of memory. */
char *af_flows_arn_dup(const af_flows *svc, af_arena *arena, const char *name, size_t len);
/* A Timestamp for epoch milliseconds in the arena; NULL when out of memory. */
Google__Protobuf__Timestamp *af_flows_timestamp(af_arena *arena, int64_t ms);
/* Copies a tag set into map entries of type desc in the arena; false when out of memory. */
bool af_flows_tag_entries(const af_tagset *ts, const ProtobufCMessageDescriptor *desc,
                          af_arena *arena, size_t *n, af_map_entry ***out);
/* The proto name of a status (FLOW_STATUS_ACTIVE) and its AWS spelling (Active). */
const char *af_flows_status_name(uint8_t status);
const char *af_flows_status_aws(uint8_t status, char *buf, size_t bufsz);

/* A flow's runs block (af_flow.runs): its last on-demand run and the StartFlow clientTokens
 * seen in the last AF_TOKEN_TTL_MS, newest first, each with the result it gave. */
typedef struct af_start_record {
  int64_t at_ms;
  const char *token; /* points into the block */
  char execution_id[37];
  uint8_t status;
} af_start_record;

typedef struct af_runs {
  int64_t last_ms; /* 0: never run */
  char last_id[37];
  uint32_t n;
  af_start_record rec[];
} af_runs;

/* lastRunExecutionDetails for a runs block (NULL when there was no run). */
Appflow__V1__ExecutionDetails *af_flows_last_run(const af_runs *r, af_arena *arena, bool *oom);

#endif
