/* Memos: what the service made of one version of a flow record, kept with it by a store that
 * keeps memos (the memory store: flows/store.h, af_memo).
 *
 * A record's memo holds one part per kind of answer (ListFlows's entry of the flow, DescribeFlow's
 * answer), each made by the first call that needs it and read by every call after, until the
 * record changes and the store drops the memo. A part is the answer's message packed, and slots
 * for what later calls add once: the message unpacked again from those bytes (so it owns all it
 * points to; made by the second call, so that an answer given once costs no more than its
 * packing), the AWS door's JSON, ListFlows's page token. Only answers that say the same whenever
 * they are read are kept: the caller decides (no run in progress).
 *
 * Every step is a compare-and-swap from NULL: the memo into the record's slot, a part into the
 * memo, a message or a text into the part. Readers call these under the shard's shared lock (a
 * scan's visitor, a read-only rule), so the store, which drops a memo only under the lock alone,
 * never frees one a reader is retaining. */
#include "flows/internal.h"

#include "common/encode.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct af_flow_memo {
  af_memo base;
  _Atomic(af_memo_part *) parts[AF_MEMO_KINDS];
};

static void part_free(af_memo_part *p) {
  if (p == NULL)
    return;
  ProtobufCMessage *msg = atomic_load_explicit(&p->msg, memory_order_acquire);
  if (msg != NULL)
    protobuf_c_message_free_unpacked(msg, NULL);
  free(atomic_load_explicit(&p->json, memory_order_acquire));
  free(atomic_load_explicit(&p->token, memory_order_acquire));
  free(p);
}

static void memo_free(af_memo *base) {
  af_flow_memo *m = (af_flow_memo *)base;
  for (size_t k = 0; k < AF_MEMO_KINDS; k++)
    part_free(atomic_load_explicit(&m->parts[k], memory_order_acquire));
  free(m);
}

/* protobuf-c's allocations for a part's message, counted into *data. */
static void *counted_alloc(void *data, size_t size) {
  *(size_t *)data += size + 16; /* malloc's own header and rounding, about */
  return malloc(size);
}

static void system_free(void *data, void *p) {
  (void)data;
  free(p);
}

static void *system_alloc(void *data, size_t size) {
  (void)data;
  return malloc(size);
}

/* A part of msg (packed as the core packs what it stores), with its size (room for a door's JSON
 * included) in *bytes; NULL when out of memory. */
static af_memo_part *part_new(const ProtobufCMessage *msg, size_t *bytes) {
  size_t len = 0, head = offsetof(af_memo_part, packed);
  af_memo_part *p = af_encode_alloc(msg, head, sizeof *p - head, system_alloc, NULL, &len);
  if (p == NULL)
    return NULL;
  p->len = len;
  p->desc = msg->descriptor;
  *bytes = sizeof *p + 3 * len; /* the JSON a door may add: about twice the packed bytes */
  atomic_init(&p->msg, NULL);
  atomic_init(&p->json, NULL);
  atomic_init(&p->token, NULL);
  return p;
}

const ProtobufCMessage *af__memo_msg(af_store *store, af_memo *held, af_memo_part *p) {
  ProtobufCMessage *m = atomic_load_explicit(&p->msg, memory_order_acquire);
  if (m != NULL)
    return m;
  size_t bytes = 0;
  ProtobufCAllocator counting = {counted_alloc, system_free, &bytes};
  if ((m = protobuf_c_message_unpack(p->desc, &counting, p->len, p->packed)) == NULL)
    return NULL;
  ProtobufCMessage *empty = NULL;
  if (!atomic_compare_exchange_strong_explicit(&p->msg, &empty, m, memory_order_acq_rel,
                                               memory_order_acquire)) {
    protobuf_c_message_free_unpacked(m, NULL); /* another call unpacked it first */
    return empty;
  }
  atomic_fetch_add_explicit(&held->bytes, bytes, memory_order_relaxed);
  atomic_fetch_add_explicit(&store->memo_bytes, bytes, memory_order_relaxed);
  return m;
}

/* The record's memo, or NULL when it has none yet. */
static af_flow_memo *memo_in(const af_flow_record *f) {
  return f->memo != NULL ? (af_flow_memo *)atomic_load_explicit(f->memo, memory_order_acquire)
                         : NULL;
}

af_memo_part *af__memo_part(af_memo *memo, af_memo_kind k, af_memo **held) {
  af_flow_memo *m = (af_flow_memo *)memo;
  af_memo_part *p = atomic_load_explicit(&m->parts[k], memory_order_acquire);
  if (p == NULL)
    return NULL;
  af_memo_retain(memo);
  *held = memo;
  return p;
}

af_memo_part *af__memo_find(const af_flow_record *f, af_memo_kind k, af_memo **held) {
  af_flow_memo *m = memo_in(f);
  return m != NULL ? af__memo_part(&m->base, k, held) : NULL;
}

/* The record's memo, put in its slot first when it has none; NULL when out of memory. */
static af_flow_memo *memo_of(af_store *store, const af_flow_record *f) {
  af_flow_memo *m = memo_in(f);
  if (m != NULL)
    return m;
  if ((m = calloc(1, sizeof *m)) == NULL)
    return NULL;
  atomic_init(&m->base.refs, 1); /* the slot's */
  atomic_init(&m->base.bytes, sizeof *m);
  m->base.free = memo_free;
  af_memo *empty = NULL;
  if (atomic_compare_exchange_strong_explicit(f->memo, &empty, &m->base, memory_order_acq_rel,
                                              memory_order_acquire)) {
    atomic_fetch_add_explicit(&store->memo_bytes, sizeof *m, memory_order_relaxed);
    return m;
  }
  free(m); /* another reader's came first */
  return (af_flow_memo *)empty;
}

af_memo_part *af__memo_keep(af_store *store, const af_flow_record *f, af_memo_kind k,
                            const ProtobufCMessage *msg, af_memo **held) {
  if (f->memo == NULL ||
      atomic_load_explicit(&store->memo_bytes, memory_order_relaxed) >= AF_MEMO_BUDGET)
    return NULL;
  af_flow_memo *m = memo_of(store, f);
  size_t bytes = 0;
  af_memo_part *p = m != NULL ? part_new(msg, &bytes) : NULL;
  if (p == NULL)
    return NULL;
  af_memo_part *empty = NULL;
  if (atomic_compare_exchange_strong_explicit(&m->parts[k], &empty, p, memory_order_acq_rel,
                                              memory_order_acquire)) {
    atomic_fetch_add_explicit(&m->base.bytes, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&store->memo_bytes, bytes, memory_order_relaxed);
  } else {
    part_free(p); /* another reader made the same part first */
    p = empty;
  }
  af_memo_retain(&m->base);
  *held = &m->base;
  return p;
}

bool af__memo_text_keep(_Atomic(char *) *slot, const char *text) {
  char *copy = strdup(text), *empty = NULL;
  if (copy == NULL)
    return false;
  if (!atomic_compare_exchange_strong_explicit(slot, &empty, copy, memory_order_acq_rel,
                                               memory_order_acquire))
    free(copy); /* another call kept the same text first */
  return true;
}
