/* src/flows/runlog.c: a run log split into its unpacked fields and its packed tokens and runs
 * joins back into the same log; StartFlow's packed run is the run af__start_run adds to the
 * unpacked log, in the same place; tokens peeked; malformed logs and tokens refused. */
#include "flows/internal.h"

#include "store_under_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static af_arena arena;

static void setup(void) { af_arena_init(&arena); }
static void teardown(void) { af_arena_destroy(&arena); }
TestSuite(runlog, .init = setup, .fini = teardown);

/* "<prefix>-<i>", in the arena. */
static char *numbered(const char *prefix, size_t i) {
  char *s = af_arena_alloc(&arena, 32);
  cr_assert_not_null(s);
  snprintf(s, 32, "%s-%zu", prefix, i);
  return s;
}

/* A log of n tokens and m runs (runs newest first, a second apart), two scripted outcomes, an
 * update token and every scalar set; packed in the arena. */
static af_bytes full_log(size_t n, size_t m) {
  Appflowd__Store__V1__RunLog r = APPFLOWD__STORE__V1__RUN_LOG__INIT;
  r.last_run_ms = 1000000 + (int64_t)m * 1000;
  r.last_execution_id = "run-0";
  r.schema_version = 3;
  r.next_fire_ms = 77;
  r.schedule_anchor_ms = 55;
  r.consecutive_failures = 2;
  r.start_tokens = af_arena_alloc(&arena, (n + 1) * sizeof *r.start_tokens);
  r.executions = af_arena_alloc(&arena, (m + 1) * sizeof *r.executions);
  cr_assert(r.start_tokens != NULL && r.executions != NULL);
  for (size_t i = 0; i < n; i++) {
    Appflowd__Store__V1__StartToken *t = af_arena_alloc(&arena, sizeof *t);
    cr_assert_not_null(t);
    appflowd__store__v1__start_token__init(t);
    t->at_ms = 5000 + (int64_t)i;
    t->client_token = numbered("token", i);
    t->execution_id = "run-x";
    t->flow_status = 1;
    r.start_tokens[r.n_start_tokens++] = t;
  }
  for (size_t i = 0; i < m; i++) {
    Appflowd__Store__V1__Execution *e = af_arena_alloc(&arena, sizeof *e);
    cr_assert_not_null(e);
    appflowd__store__v1__execution__init(e);
    e->execution_id = numbered("run", i);
    e->started_ms = 1000000 + (int64_t)(m - i) * 1000;
    e->duration_ms = 10;
    e->data_pull_start_ms = e->started_ms - 1000;
    e->data_pull_end_ms = e->started_ms;
    e->message = i % 2 ? "failed" : "";
    r.executions[r.n_executions++] = e;
  }
  Appflowd__Store__V1__ScriptedOutcome o1 = APPFLOWD__STORE__V1__SCRIPTED_OUTCOME__INIT,
                                       o2 = APPFLOWD__STORE__V1__SCRIPTED_OUTCOME__INIT;
  o1.status = 4;
  o1.message = "scripted failure";
  o1.duration_ms = 42;
  o2.duration_ms = -1;
  Appflowd__Store__V1__ScriptedOutcome *outcomes[] = {&o1, &o2};
  r.outcomes = outcomes;
  r.n_outcomes = 2;
  Appflowd__Store__V1__UpdateToken u = APPFLOWD__STORE__V1__UPDATE_TOKEN__INIT;
  Appflowd__Store__V1__UpdateToken *updates[] = {&u};
  u.client_token = "update-1";
  r.update_tokens = updates;
  r.n_update_tokens = 1;
  af_bytes out;
  cr_assert(af__pack(&r.base, &arena, &out));
  return out;
}

/* The log's bytes as protobuf-c packs it: field order and all, for comparing logs. */
static af_bytes canonical(af_bytes packed) {
  Appflowd__Store__V1__RunLog *r = af_flows_runs(packed, &arena);
  cr_assert_not_null(r, "not a RunLog");
  af_bytes out;
  cr_assert(af__pack(&r->base, &arena, &out));
  return out;
}

static void assert_same_log(af_bytes a, af_bytes b) {
  af_bytes ca = canonical(a), cb = canonical(b);
  cr_assert_eq(ca.len, cb.len, "%zu bytes against %zu", ca.len, cb.len);
  cr_assert(memcmp(ca.data, cb.data, ca.len) == 0);
}

Test(runlog, split_and_join_give_the_same_log) {
  size_t sizes[][2] = {{0, 0}, {1, 0}, {0, 1}, {64, 100}, {200, 300}}; /* beyond the bounds too */
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    af_bytes log = full_log(sizes[k][0], sizes[k][1]);
    af_packed_runs *s = af__runs_split(log, &arena);
    cr_assert_not_null(s);
    cr_assert_eq(s->n_tokens, sizes[k][0]);
    cr_assert_eq(s->n_runs, sizes[k][1]);
    cr_assert_eq(s->head->n_start_tokens, 0);
    cr_assert_eq(s->head->n_executions, 0);
    cr_assert_eq(s->head->n_outcomes, 2);
    cr_assert_eq(s->head->schema_version, 3);
    af_bytes joined;
    cr_assert(af__runs_join(s, &arena, &joined));
    assert_same_log(log, joined);
  }
}

Test(runlog, an_empty_log_splits_into_nothing) {
  af_packed_runs *s = af__runs_split((af_bytes){NULL, 0}, &arena);
  cr_assert_not_null(s);
  cr_assert_eq(s->n_tokens + s->n_runs, 0);
  af_bytes joined;
  cr_assert(af__runs_join(s, &arena, &joined));
  cr_assert_eq(joined.len, 0);
}

Test(runlog, malformed_logs_and_tokens_are_refused) {
  af_bytes log = full_log(3, 3);
  cr_assert_null(af__runs_split((af_bytes){log.data, log.len - 1}, &arena), "cut short");
  static const uint8_t long_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  cr_assert_null(af__runs_split((af_bytes){long_varint, sizeof long_varint}, &arena));
  static const uint8_t past_end[] = {0x1a, 0x05, 0x08, 0x01};
  cr_assert_null(af__runs_split((af_bytes){past_end, sizeof past_end}, &arena));
  int64_t at;
  const char *name;
  size_t len;
  static const uint8_t bad_token[] = {0x08, 0x01, 0x12, 0x09, 'x'};
  cr_assert_not(af__token_peek((af_bytes){bad_token, sizeof bad_token}, &at, &name, &len));
}

Test(runlog, a_token_peeked_gives_its_time_and_name) {
  af_packed_runs *s = af__runs_split(full_log(3, 0), &arena);
  cr_assert_not_null(s);
  int64_t at;
  const char *name;
  size_t len;
  cr_assert(af__token_peek(s->tokens[2], &at, &name, &len));
  cr_assert_eq(at, 5002);
  cr_assert_eq(len, strlen("token-2"));
  cr_assert(memcmp(name, "token-2", len) == 0);
}

Test(runlog, unsplit_puts_every_run_on_the_head_in_order) {
  af_bytes log = full_log(2, 5);
  af_packed_runs *s = af__runs_split(log, &arena);
  cr_assert_not_null(s);
  cr_assert(af__runs_unsplit(s, &arena));
  cr_assert_eq(s->n_runs, 0);
  cr_assert_eq(s->head->n_executions, 5);
  cr_assert_str_eq(s->head->executions[4]->execution_id, "run-4");
  af_bytes joined;
  cr_assert(af__runs_join(s, &arena, &joined));
  assert_same_log(log, joined);
}

/* The run started at at_ms, on the split log and on the unpacked one, gives the same log. */
static void same_run_both_ways(af_flows *svc, size_t runs, int64_t at_ms) {
  af_bytes log = full_log(4, runs);
  af_run_start rs = {"new-run", at_ms, 0, 123};
  Appflowd__Store__V1__RunLog *r = af_flows_runs(log, &arena);
  af_packed_runs *s = af__runs_split(log, &arena);
  cr_assert(r != NULL && s != NULL);
  cr_assert(af__start_run(svc, r, &rs, &arena));
  cr_assert(af__start_run_packed(svc, s, &rs, &arena));
  af_bytes a, b;
  cr_assert(af__pack(&r->base, &arena, &a));
  cr_assert(af__runs_join(s, &arena, &b));
  assert_same_log(a, b);
  cr_assert_eq(s->n_runs, runs < AF_EXECUTIONS_KEPT ? runs + 1 : AF_EXECUTIONS_KEPT);
}

Test(runlog, a_packed_run_goes_where_an_unpacked_one_does) {
  af_store *store;
  af_flows *svc = test_service_new(&(af_flows_config){.run_duration_ms = 2000}, &store);
  same_run_both_ways(svc, 0, 5000);                          /* the first run */
  same_run_both_ways(svc, 10, 2000000);                      /* the newest */
  same_run_both_ways(svc, 10, 1005500);                      /* a scheduler's, between older runs */
  same_run_both_ways(svc, 10, 1);                            /* older than every run */
  same_run_both_ways(svc, AF_EXECUTIONS_KEPT, 9000000000LL); /* the oldest falls off */
  same_run_both_ways(svc, AF_EXECUTIONS_KEPT, 1);            /* the new one falls off at once */
  test_service_free(svc, store);
}

/* The varint a byte at a time, as the wire format defines it: the reference for the reader. */
static size_t put_reference(uint8_t *out, uint64_t v) {
  size_t n = 0;
  for (; v >= 0x80; v >>= 7)
    out[n++] = (uint8_t)(v | 0x80);
  out[n++] = (uint8_t)v;
  return n;
}

/* Every length of varint (1 to 10 bytes) is read whole, at the end of the bytes or followed by
 * others (the reader's one-load path needs 8 bytes to hand), and one cut short is refused. */
Test(runlog, varints_of_every_length_are_read_as_written) {
  uint64_t values[] = {0,          1,
                       127,        128,
                       300,        16383,
                       16384,      1733580000000ULL,
                       UINT32_MAX, (1ULL << 49) - 1,
                       1ULL << 49, (1ULL << 56) - 1,
                       1ULL << 56, (1ULL << 63) - 1,
                       1ULL << 63, UINT64_MAX};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    for (size_t trail = 0; trail <= 9; trail++) {
      uint8_t buf[32];
      size_t n = put_reference(buf, values[i]);
      memset(buf + n, 0x81, trail); /* continuation bytes: must not be read into the value */
      const uint8_t *p = buf;
      uint64_t v = 0;
      cr_assert(af__wire_varint(&p, buf + n + trail, &v), "value %zu trail %zu", i, trail);
      cr_assert_eq(v, values[i], "value %zu trail %zu", i, trail);
      cr_assert_eq(p, buf + n, "value %zu trail %zu", i, trail);
      p = buf;
      if (n > 1 && trail == 0)
        cr_assert_not(af__wire_varint(&p, buf + n - 1, &v), "value %zu cut short", i);
    }
  }
  static const uint8_t eleven[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0x01};
  const uint8_t *p = eleven;
  uint64_t v;
  cr_assert_not(af__wire_varint(&p, eleven + sizeof eleven, &v), "more than 10 bytes");
}
