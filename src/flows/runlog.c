/* A run log with its start tokens and executions left packed.
 *
 * A flow's RunLog (records.proto) holds up to AF_START_TOKENS_KEPT tokens and AF_EXECUTIONS_KEPT
 * runs, about 15 KB once a flow has been started often. StartFlow reads a few of them (the
 * tokens' times and names, the latest run) and writes one more of each: unpacking every one with
 * protobuf-c and packing them all again was 400,000 instructions a call, under the flow's lock.
 * Here the log's other fields are unpacked as usual and each token and run is kept as the bytes
 * it was packed as, to be read one at a time and written back as they were.
 *
 * Joining writes the unpacked fields first and then the tokens and runs: protobuf keeps a
 * repeated field's elements in the order they come, wherever they come in the message, so the
 * bytes unpack as the log they were split from. */
#include "flows/internal.h"

#include <string.h>

#define FIELD_START_TOKENS 3 /* RunLog.start_tokens */
#define FIELD_EXECUTIONS 6   /* RunLog.executions */
#define WIRE_VARINT 0
#define WIRE_LEN 2

/* Room for n + 1 elements in *v (capacity *cap), growing it in the arena; false when out of
 * memory. */
static bool room(af_arena *a, af_bytes **v, size_t n, size_t *cap) {
  if (n + 1 < *cap)
    return true;
  af_bytes *grown = af_arena_grow(a, *v, *cap * sizeof **v, 2 * *cap * sizeof **v);
  if (grown == NULL)
    return false;
  *v = grown;
  *cap *= 2;
  return true;
}

af_packed_runs *af__runs_split(af_bytes runs, af_arena *a) {
  af_packed_runs *s = af_arena_alloc(a, sizeof *s);
  /* sized for a full log, with room for the token and run StartFlow adds */
  size_t cap_t = AF_START_TOKENS_KEPT + 2, cap_r = AF_EXECUTIONS_KEPT + 2, cap_h = 256, hl = 0;
  uint8_t *head = af_arena_alloc(a, cap_h);
  if (s == NULL || head == NULL ||
      (s->tokens = af_arena_alloc(a, cap_t * sizeof *s->tokens)) == NULL ||
      (s->runs = af_arena_alloc(a, cap_r * sizeof *s->runs)) == NULL)
    return NULL;
  s->n_tokens = s->n_runs = 0;
  const uint8_t *p = runs.data, *end = runs.len ? runs.data + runs.len : p; /* NULL + 0 is UB */
  while (p < end) {
    const uint8_t *field = p, *data;
    uint64_t key;
    size_t len;
    if (!af__wire_field(&p, end, &key, &data, &len))
      return NULL;
    if (key == (FIELD_START_TOKENS << 3 | WIRE_LEN)) {
      if (!room(a, &s->tokens, s->n_tokens, &cap_t))
        return NULL;
      s->tokens[s->n_tokens++] = (af_bytes){data, len};
    } else if (key == (FIELD_EXECUTIONS << 3 | WIRE_LEN)) {
      if (!room(a, &s->runs, s->n_runs, &cap_r))
        return NULL;
      s->runs[s->n_runs++] = (af_bytes){data, len};
    } else { /* the head's: copied, to be unpacked */
      size_t n = (size_t)(p - field);
      if (hl + n > cap_h) {
        size_t grown = 2 * (hl + n);
        if ((head = af_arena_grow(a, head, cap_h, grown)) == NULL)
          return NULL;
        cap_h = grown;
      }
      memcpy(head + hl, field, n);
      hl += n;
    }
  }
  s->head = af_flows_runs((af_bytes){head, hl}, a);
  return s->head != NULL ? s : NULL;
}

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7)
    n++;
  return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
  for (; v >= 0x80; v >>= 7)
    *p++ = (uint8_t)(v | 0x80);
  *p++ = (uint8_t)v;
  return p;
}

static uint8_t *put_all(uint8_t *p, unsigned number, const af_bytes *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    p = put_varint(p, (uint64_t)number << 3 | WIRE_LEN);
    p = put_varint(p, v[i].len);
    memcpy(p, v[i].data, v[i].len);
    p += v[i].len;
  }
  return p;
}

static size_t size_all(unsigned number, const af_bytes *v, size_t n) {
  size_t size = 0;
  for (size_t i = 0; i < n; i++)
    size += varint_len((uint64_t)number << 3 | WIRE_LEN) + varint_len(v[i].len) + v[i].len;
  return size;
}

bool af__runs_join(const af_packed_runs *s, af_arena *a, af_bytes *out) {
  size_t rest = size_all(FIELD_START_TOKENS, s->tokens, s->n_tokens) +
                size_all(FIELD_EXECUTIONS, s->runs, s->n_runs);
  af_bytes b;
  if (!af__pack_room(&s->head->base, rest, a, &b))
    return false;
  uint8_t *buf = (uint8_t *)b.data;
  uint8_t *p = put_all(buf + b.len, FIELD_START_TOKENS, s->tokens, s->n_tokens);
  put_all(p, FIELD_EXECUTIONS, s->runs, s->n_runs);
  *out = (af_bytes){buf, b.len + rest};
  return true;
}

bool af__runs_unsplit(af_packed_runs *s, af_arena *a) {
  Appflowd__Store__V1__RunLog *h = s->head;
  size_t n = h->n_executions + s->n_runs;
  Appflowd__Store__V1__Execution **v = af_arena_alloc(a, (n ? n : 1) * sizeof *v);
  if (v == NULL)
    return false;
  for (size_t i = 0; i < h->n_executions; i++) /* not memcpy: none is NULL */
    v[i] = h->executions[i];
  for (size_t i = 0; i < s->n_runs; i++) {
    v[h->n_executions + i] =
        appflowd__store__v1__execution__unpack(&a->allocator, s->runs[i].len, s->runs[i].data);
    if (v[h->n_executions + i] == NULL)
      return false;
  }
  h->executions = v;
  h->n_executions = n;
  s->n_runs = 0;
  return true;
}

bool af__token_peek(af_bytes token, int64_t *at_ms, const char **name, size_t *name_len) {
  const uint8_t *p = token.data, *end = token.len ? token.data + token.len : p;
  *at_ms = 0;
  *name = "";
  *name_len = 0;
  /* Done once both are read: fields 1 and 2, which come first as tokens are packed, in field
   * order and each field once. */
  int seen = 0;
  while (p < end && seen != 3) {
    uint64_t key, v;
    const uint8_t *data = NULL;
    size_t len = 0;
    if (!af__wire_varint(&p, end, &key))
      return false;
    if (key == (1 << 3 | WIRE_VARINT)) { /* StartToken.at_ms */
      if (!af__wire_varint(&p, end, &v))
        return false;
      *at_ms = (int64_t)v;
      seen |= 1;
    } else if (!af__wire_skip(&p, end, (unsigned)(key & 7), &data, &len)) {
      return false;
    } else if (key == (2 << 3 | WIRE_LEN)) { /* StartToken.client_token */
      *name = (const char *)data;
      *name_len = len;
      seen |= 2;
    }
  }
  return true;
}
