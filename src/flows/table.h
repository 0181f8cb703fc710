/* The in-memory flow table: flows by name, O(1) lookup, a stable order for paging, safe to use
 * from many threads.
 *
 * Storage only: it knows no AppFlow rules. A caller changes a flow through af_table_update,
 * which runs the caller's function on the flow under that flow's shard lock, so a
 * read-check-write is atomic without a lock over the whole table.
 *
 * Order: flows are kept sorted by (keyed hash of the name, name), a total order that does not
 * depend on which other flows exist, so af_table_scan can resume after any name - even one
 * deleted since - and never returns a flow twice or skips one that stayed.
 *
 * Ownership: the table owns every flow and the blocks hung on it (tags, runs); insert copies
 * what it is given. Thread-safety: every function except af_table_new/af_table_free is
 * thread-safe; functions marked "locked" may only be called from inside an update function. */
#ifndef AF_FLOWS_TABLE_H
#define AF_FLOWS_TABLE_H

#include "appflow/v1/appflow.pb-c.h"
#include "flows/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct af_table af_table;

/* Where the table's memory comes from; tests pass one that fails on demand to show that
 * running out of memory is an error, never a crash or a half-made change. */
typedef struct af_allocator {
  void *(*alloc)(void *ctx, size_t size); /* NULL on failure */
  void (*free)(void *ctx, void *p);       /* p may be NULL */
  void *ctx;
} af_allocator;

typedef struct af_tag {
  const char *key, *value;
} af_tag;

/* A flow's tags: n entries whose strings live in the same allocation. */
typedef struct af_tagset {
  uint32_t n;
  af_tag tags[];
} af_tagset;

/* What a flow is made from; every pointer is borrowed for the call only. Members after
 * ntags may be left zero. */
typedef struct af_flow_spec {
  const char *name;
  size_t name_len;
  Appflow__V1__TriggerType trigger;
  Appflow__V1__FlowStatus status;
  const char *description; /* NUL-terminated, or NULL for none */
  const af_tag *tags;      /* NUL-terminated keys and values */
  size_t ntags;
  const uint8_t *definition; /* opaque bytes kept as given (the service's packed request) */
  size_t definition_len;
  const char *source_connector;      /* NUL-terminated, or NULL */
  const char *destination_connector; /* NUL-terminated, or NULL */
  const char *create_token;          /* NUL-terminated, or NULL */
  int64_t created_ms;                /* also the first updated_ms */
} af_flow_spec;

/* A stored flow. The members under "mutable" change only under the shard lock (inside an
 * update function); the rest never change after insertion. */
typedef struct af_flow {
  struct af_flow *next; /* bucket chain, sorted by (hash, name) */
  uint64_t hash;
  const char *description; /* NULL for none; this and the next four point into the flow */
  const uint8_t *definition;
  const char *source_connector, *destination_connector, *create_token; /* NULL for none */
  int64_t created_ms;
  uint32_t definition_len;
  uint16_t name_len;
  uint8_t trigger;       /* Appflow__V1__TriggerType */
  uint8_t create_status; /* the status it was created with */
  /* mutable */
  uint8_t status; /* Appflow__V1__FlowStatus */
  int64_t updated_ms;
  af_tagset *tags; /* NULL for none; replaced whole by af_table_set_tags */
  void *runs;      /* the caller's block from af_table_block_alloc, or NULL */
  char name[];     /* NUL-terminated */
} af_flow;

/* Runs with the flow's shard locked: must not block or call back into the table (except the
 * "locked" functions). Returns AF_OK or an error it has set in err. */
typedef af_err (*af_table_update_fn)(af_flow *flow, void *ctx, af_error *err);

/* Visits one flow during a scan, under its shard lock; returns false to stop the scan. */
typedef bool (*af_table_scan_fn)(const af_flow *flow, void *ctx);

/* A new empty table; NULL when out of memory. `seed` keys the hash (pass random bits so
 * callers cannot choose colliding names). alloc is copied; NULL means malloc and free. */
af_table *af_table_new(uint64_t seed, const af_allocator *alloc);
/* Frees the table and its flows. NULL is fine. No other call may be running. */
void af_table_free(af_table *t);

/* Adds a copy of spec. If the name exists: AF_ERR_NAME_TAKEN, or, when on_taken is not NULL,
 * whatever on_taken returns after running on the existing flow under its lock. Out of memory
 * is AF_ERR_INTERNAL_SERVER. The table is unchanged unless AF_OK was returned for a new flow.
 * Does not validate the name. *inserted (may be NULL) says whether a flow was added. */
af_err af_table_insert_or(af_table *t, const af_flow_spec *spec, af_table_update_fn on_taken,
                          void *ctx, bool *inserted, af_error *err);
/* af_table_insert_or without on_taken. */
af_err af_table_insert(af_table *t, const af_flow_spec *spec, af_error *err);

/* Finds name[0..len) and runs fn on it under its shard lock. AF_ERR_RESOURCE_NOT_FOUND (with
 * a message naming the flow) if absent, else fn's result. */
af_err af_table_update(af_table *t, const char *name, size_t len, af_table_update_fn fn, void *ctx,
                       af_error *err);

/* Like af_table_update, then removes and frees the flow if fn returned AF_OK (fn may be
 * NULL: always remove). */
af_err af_table_delete(af_table *t, const char *name, size_t len, af_table_update_fn fn, void *ctx,
                       af_error *err);

/* Visits flows in the table's order, starting just after the name after[0..after_len) (which
 * need not exist), or at the first flow when after is NULL, until fn returns false. Locks one
 * shard at a time: a flow that exists for the whole scan is visited exactly once. */
void af_table_scan(af_table *t, const char *after, size_t after_len, af_table_scan_fn fn,
                   void *ctx);

/* Locked. Replaces f's tags with a copy of tags[0..n) (n == 0: none). AF_ERR_INTERNAL_SERVER
 * when out of memory, with f unchanged. */
af_err af_table_set_tags(af_table *t, af_flow *f, const af_tag *tags, size_t n, af_error *err);

/* Memory from the table's allocator for a block the caller hangs on af_flow.runs; the table
 * frees it with the flow. NULL when out of memory. */
void *af_table_block_alloc(af_table *t, size_t size);
/* Frees a block from af_table_block_alloc; NULL is fine. */
void af_table_block_free(af_table *t, void *p);

/* Number of flows; exact when no insert or delete is running. */
size_t af_table_count(af_table *t);

#endif
