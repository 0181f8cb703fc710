/* The in-memory flow table: flows by name, O(1) lookup, safe to use from many threads.
 *
 * Storage only: it knows no AppFlow rules. A caller changes a flow through af_table_update,
 * which runs the caller's function on the flow under that flow's shard lock, so a
 * read-check-write is atomic without a lock over the whole table.
 *
 * Ownership: the table owns every flow; insert copies what it is given.
 * Thread-safety: every function except af_table_new/af_table_free is thread-safe. */
#ifndef AF_FLOWS_TABLE_H
#define AF_FLOWS_TABLE_H

#include "appflow/v1/appflow.pb-c.h"
#include "flows/error.h"

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

/* What a flow is made from; every pointer is borrowed for the call only. */
typedef struct af_flow_spec {
  const char *name;
  size_t name_len;
  Appflow__V1__TriggerType trigger;
  Appflow__V1__FlowStatus status;
  const char *description; /* NUL-terminated, or NULL for none */
  const af_tag *tags;      /* NUL-terminated keys and values */
  size_t ntags;
} af_flow_spec;

/* A stored flow. Only `status` changes after insertion, and only under the shard lock (i.e.
 * inside an af_table_update function); everything else is immutable. */
typedef struct af_flow {
  struct af_flow *next; /* bucket chain */
  uint64_t hash;
  const char *description; /* NULL for none; points into this allocation */
  const af_tag *tags;      /* ntags entries; points into this allocation */
  uint32_t ntags;
  uint16_t name_len;
  uint8_t trigger; /* Appflow__V1__TriggerType */
  uint8_t status;  /* Appflow__V1__FlowStatus */
  char name[];     /* NUL-terminated */
} af_flow;

/* Runs with the flow's shard locked: must not block or call back into the table. Returns
 * AF_OK or an error it has set in err; af_table_update returns the same. */
typedef af_err (*af_table_update_fn)(af_flow *flow, void *ctx, af_error *err);

/* A new empty table; NULL when out of memory. `seed` keys the hash (pass random bits so
 * callers cannot choose colliding names). alloc is copied; NULL means malloc and free. */
af_table *af_table_new(uint64_t seed, const af_allocator *alloc);
/* Frees the table and its flows. NULL is fine. No other call may be running. */
void af_table_free(af_table *t);

/* Adds a copy of spec. AF_ERR_NAME_TAKEN if the name exists, AF_ERR_INTERNAL_SERVER when out
 * of memory; the table is unchanged on failure. Does not validate the name. */
af_err af_table_insert(af_table *t, const af_flow_spec *spec, af_error *err);

/* Finds name[0..len) and runs fn on it under its shard lock. AF_ERR_RESOURCE_NOT_FOUND (with
 * a message naming the flow) if absent, else fn's result. */
af_err af_table_update(af_table *t, const char *name, size_t len, af_table_update_fn fn, void *ctx,
                       af_error *err);

/* Number of flows; exact when no insert is running. */
size_t af_table_count(af_table *t);

#endif
