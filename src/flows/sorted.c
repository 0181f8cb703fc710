/* Packing with every map's entries in key order, and the plans that say where maps can be.
 *
 * Map entries have no order in meaning, but they do in packed bytes that retries are compared
 * by, so what the service stores is packed sorted. Finding the maps meant walking every field
 * of every message of a request (3,200 instructions of an UpdateFlow, most of them on the
 * connector-properties messages, which have dozens of fields and no map but a custom
 * connector's). A plan, made once per message type, lists the fields that can lead to a map:
 * the walk follows only those. */
#include "flows/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH_MAX 64 /* deeper messages are packed as they are (a request is far shallower) */

/* ---- plans ---- */

#define TYPES_MAX 2048        /* message types reachable from the requests (about 300 today) */
#define SLOTS (2 * TYPES_MAX) /* a power of two: the table is at most half full */

typedef struct plan {
  const ProtobufCMessageDescriptor *d; /* NULL: a free slot */
  bool holds;                          /* one of d's fields leads to a map */
  uint32_t n;                          /* those fields */
  uint32_t *fields;                    /* their indexes in d->fields */
} plan;

struct af_sort_plans {
  plan slots[SLOTS]; /* open addressing by descriptor address */
  uint32_t *indexes; /* every plan's fields, end to end */
};

/* A map's entry message: what protoc makes of map<string, V> (key 1, value 2, "...Entry"). */
static bool is_map_entry(const ProtobufCMessageDescriptor *d) {
  size_t n = strlen(d->name);
  return d->n_fields == 2 && n > 5 && strcmp(d->name + n - 5, "Entry") == 0 &&
         d->fields[0].type == PROTOBUF_C_TYPE_STRING && strcmp(d->fields[0].name, "key") == 0;
}

/* d's slot, or the free one where it goes. */
static plan *slot_for(const af_sort_plans *p, const ProtobufCMessageDescriptor *d) {
  size_t i = (size_t)((((uintptr_t)d >> 4) * 0x9E3779B97F4A7C15ULL) >> 20) & (SLOTS - 1);
  while (p->slots[i].d != d && p->slots[i].d != NULL)
    i = (i + 1) & (SLOTS - 1);
  return (plan *)&p->slots[i];
}

static const plan *find(const af_sort_plans *p, const ProtobufCMessageDescriptor *d) {
  const plan *s = p != NULL ? slot_for(p, d) : NULL;
  return s != NULL && s->d == d ? s : NULL;
}

/* Gives d and every message type under it a slot; false past TYPES_MAX of them. */
static bool reach(af_sort_plans *p, const ProtobufCMessageDescriptor *d, size_t *n) {
  plan *s = slot_for(p, d);
  if (s->d != NULL)
    return true;
  if (*n == TYPES_MAX)
    return false;
  s->d = d;
  (*n)++;
  for (unsigned i = 0; i < d->n_fields; i++)
    if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE && !reach(p, d->fields[i].descriptor, n))
      return false;
  return true;
}

/* Field f of a type with a slot leads to a map: its type is a map's entry, or holds one below. */
static bool leads_to_map(const af_sort_plans *p, const ProtobufCFieldDescriptor *f) {
  return f->type == PROTOBUF_C_TYPE_MESSAGE &&
         (is_map_entry(f->descriptor) || find(p, f->descriptor)->holds);
}

/* Sets holds for every type, to a fixed point (message types may nest themselves). */
static void find_maps(af_sort_plans *p) {
  bool changed = true;
  while (changed) {
    changed = false;
    for (plan *s = p->slots; s < p->slots + SLOTS; s++) {
      for (unsigned k = 0; s->d != NULL && !s->holds && k < s->d->n_fields; k++)
        if (leads_to_map(p, &s->d->fields[k]))
          changed = s->holds = true;
    }
  }
}

/* Each type's fields that lead to a map, into p->indexes; false when out of memory. */
static bool list_fields(af_sort_plans *p) {
  size_t total = 0;
  for (const plan *s = p->slots; s < p->slots + SLOTS; s++)
    for (unsigned k = 0; s->d != NULL && k < s->d->n_fields; k++)
      total += leads_to_map(p, &s->d->fields[k]);
  uint32_t *next = p->indexes = malloc((total ? total : 1) * sizeof *p->indexes);
  for (plan *s = p->slots; next != NULL && s < p->slots + SLOTS; s++) {
    s->fields = next;
    for (unsigned k = 0; s->d != NULL && k < s->d->n_fields; k++)
      if (leads_to_map(p, &s->d->fields[k]))
        next[s->n++] = k;
    next += s->n;
  }
  return next != NULL;
}

af_sort_plans *af__sort_plans_new(const ProtobufCMessageDescriptor *const *roots, size_t nroots) {
  af_sort_plans *p = calloc(1, sizeof *p);
  size_t n = 0;
  bool ok = p != NULL;
  for (size_t i = 0; ok && i < nroots; i++)
    ok = reach(p, roots[i], &n);
  if (ok)
    find_maps(p);
  if (!ok || !list_fields(p)) {
    af__sort_plans_free(p);
    return NULL;
  }
  return p;
}

void af__sort_plans_free(af_sort_plans *p) {
  if (p == NULL)
    return;
  free(p->indexes);
  free(p);
}

/* ---- the sorted view ---- */

static int by_key(const ProtobufCMessage *a, const ProtobufCMessage *b) {
  const af_map_entry *x = (const af_map_entry *)a, *y = (const af_map_entry *)b;
  return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

static bool in_key_order(ProtobufCMessage *const *v, size_t n) {
  for (size_t i = 1; i < n; i++)
    if (by_key(v[i - 1], v[i]) > 0)
      return false;
  return true;
}

/* Sorts v by key with tmp (n / 2 pointers) to merge through. Stable, so entries sharing a key
 * (possible on gRPC, where the last one counts) keep their order and so their meaning. */
static void merge_sort(ProtobufCMessage **v, ProtobufCMessage **tmp, size_t n) {
  if (n < 2)
    return;
  size_t h = n / 2, i = 0, j = h, k = 0;
  merge_sort(v, tmp, h);
  merge_sort(v + h, tmp, n - h);
  memcpy(tmp, v, h * sizeof *v);
  while (i < h && j < n) /* k <= j: the merge never overwrites a right-hand entry unread */
    v[k++] = by_key(v[j], tmp[i]) < 0 ? v[j++] : tmp[i++];
  while (i < h)
    v[k++] = tmp[i++];
}

typedef struct viewer {
  const af_sort_plans *plans;
  af_arena *arena;
} viewer;

static const ProtobufCMessage *sorted_view(const viewer *w, const ProtobufCMessage *m, int depth);

/* A copy of the n entries at v in the arena; NULL when out of memory. */
static ProtobufCMessage **copy_list(ProtobufCMessage *const *v, size_t n, af_arena *a) {
  ProtobufCMessage **out = af_arena_alloc(a, n * sizeof *out);
  if (out != NULL)
    memcpy(out, v, n * sizeof *out);
  return out;
}

/* What repeated message field f of m packs as: its own array when every entry (and every map
 * under them) is in order, else a copy in the arena, sorted when f is a map. NULL when out of
 * memory. */
static ProtobufCMessage **sorted_list(const viewer *w, const ProtobufCMessage *m,
                                      const ProtobufCFieldDescriptor *f, int depth) {
  size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
  ProtobufCMessage **v, **out;
  memcpy(&v, (const char *)m + f->offset, sizeof v);
  out = v;
  const plan *each = find(w->plans, f->descriptor); /* entries with no map below: not walked */
  for (size_t k = 0; (each == NULL || each->n > 0) && k < n; k++) {
    const ProtobufCMessage *e = sorted_view(w, v[k], depth + 1);
    if (e == NULL || (e != v[k] && out == v && (out = copy_list(v, n, w->arena)) == NULL))
      return NULL;
    if (out != v)
      out[k] = (ProtobufCMessage *)e; /* packed, never changed */
  }
  if (n < 2 || !is_map_entry(f->descriptor) || in_key_order(out, n))
    return out;
  ProtobufCMessage **tmp = af_arena_alloc(w->arena, (n / 2) * sizeof *tmp);
  if (tmp == NULL || (out == v && (out = copy_list(v, n, w->arena)) == NULL))
    return NULL;
  merge_sort(out, tmp, n);
  return out;
}

/* Field i of m's walk: the plan's i-th field, or (no plan) every field. */
static const ProtobufCFieldDescriptor *walked(const ProtobufCMessageDescriptor *d, const plan *p,
                                              unsigned i) {
  return &d->fields[p != NULL ? p->fields[i] : i];
}

/* m as it packs with every map in key order: m itself when all are (nothing allocated), else a
 * copy of m in the arena whose fields on the way to a map out of order are copies, and that
 * map's array of entries a sorted copy. m and what it points to are never changed, so a
 * caller's const request stays as it was. NULL when out of memory. */
static const ProtobufCMessage *sorted_view(const viewer *w, const ProtobufCMessage *m, int depth) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const plan *p = find(w->plans, d);
  unsigned n = p != NULL ? p->n : d->n_fields;
  ProtobufCMessage *copy = NULL;
  for (unsigned i = 0; depth < DEPTH_MAX && i < n; i++) {
    const ProtobufCFieldDescriptor *f = walked(d, p, i);
    if (f->type != PROTOBUF_C_TYPE_MESSAGE ||
        ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
         *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id))
      continue; /* not a message, or a member of a oneof that holds another */
    const void *was, *now;
    memcpy(&was, (const char *)m + f->offset, sizeof was);
    now = was;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
      now = sorted_list(w, m, f, depth);
    else if (was != NULL)
      now = sorted_view(w, was, depth + 1);
    if (now == NULL && was != NULL)
      return NULL;
    if (now == was)
      continue;
    if (copy == NULL) {
      if ((copy = af_arena_alloc(w->arena, d->sizeof_message)) == NULL)
        return NULL;
      memcpy(copy, m, d->sizeof_message);
    }
    memcpy((char *)copy + f->offset, &now, sizeof now);
  }
  return copy != NULL ? copy : m;
}

bool af__pack_sorted(const af_sort_plans *plans, const ProtobufCMessage *m, af_arena *arena,
                     af_bytes *out) {
  const viewer w = {plans, arena};
  const ProtobufCMessage *v = sorted_view(&w, m, 0);
  return v != NULL && af__pack(v, arena, out);
}

uint8_t *af__pack_definition(const af_sort_plans *plans, const Appflow__V1__CreateFlowRequest *req,
                             af_arena *arena, size_t *len) {
  /* Map entries have no order in meaning, but they do in the packed bytes a retry is compared
   * by (and clients need not keep it), so the definition is stored sorted. */
  Appflow__V1__CreateFlowRequest d = *req;
  d.flow_name = NULL;
  d.client_token = NULL;
  af_bytes b;
  if (!af__pack_sorted(plans, &d.base, arena, &b))
    return NULL;
  *len = b.len;
  return (uint8_t *)b.data;
}
